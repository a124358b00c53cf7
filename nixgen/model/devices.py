"""What a guest is attached to: interfaces, volumes, shares, devices, ports.

Value classes only; the rules about which combinations work live in
:mod:`nixgen.validate`, next to the hypervisor table they read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import attrs

from nixgen._repr import attrs_repr
from nixgen.model.fields import option, to_tuple

InterfaceType = Literal["user", "tap", "macvtap", "bridge"]
MacvtapMode = Literal["private", "vepa", "bridge", "passthru", "source"]
ShareProto = Literal["9p", "virtiofs"]
ShareCache = Literal["auto", "always", "metadata", "never"]
SecurityModel = Literal["passthrough", "none", "mapped", "mapped-file"]
ImageType = Literal["raw", "qcow2", "vhd", "vhdx"]
DeviceBus = Literal["pci", "usb"]
PortProto = Literal["tcp", "udp"]
PortFrom = Literal["host", "guest"]


def stable_mac(guest: str, interface_id: str) -> str:
    """A locally administered unicast MAC that depends only on the names.

    The same guest and interface always get the same address, so a
    re-render never changes a guest's network identity.
    """
    import hashlib  # (OpenSSL's: 4 ms at import; a MAC is made when asked for)

    digest = hashlib.sha256(f"nixgen:{guest}:{interface_id}".encode()).digest()
    # 0x02 in the first octet: locally administered (bit 1) and unicast (bit 0 clear).
    octets = bytes([(digest[0] & 0xFC) | 0x02]) + digest[1:6]
    return octets.hex(":")


@attrs.frozen
class MacvtapOptions:
    link: str = option()
    mode: MacvtapMode = option("bridge", always=True)

    __repr__ = attrs_repr


@attrs.frozen
class TapOptions:
    vhost: bool = option(False)

    __repr__ = attrs_repr


@attrs.frozen
class Interface:
    """A network interface (``microvm.interfaces``).

    ``mac=None`` means nixgen derives a stable address from the guest's name
    and ``id`` (see :func:`stable_mac`).
    """

    type: InterfaceType = option(always=True)
    id: str = option(always=True)
    mac: str | None = option(None)
    bridge: str | None = option(None)
    macvtap: MacvtapOptions | None = option(None)
    tap: TapOptions | None = option(None)

    @classmethod
    def user(cls, id: str = "eth0", mac: str | None = None) -> Interface:
        """QEMU's user networking (slirp): no host set-up, outbound only."""
        return cls(type="user", id=id, mac=mac)

    @classmethod
    def tap_device(cls, id: str, mac: str | None = None, *, vhost: bool = False) -> Interface:
        """A tap device the host creates (``microvm-tap-interfaces@``)."""
        return cls(type="tap", id=id, mac=mac, tap=TapOptions(vhost=vhost) if vhost else None)

    @classmethod
    def macvtap_on(
        cls, id: str, link: str, mode: MacvtapMode = "bridge", mac: str | None = None
    ) -> Interface:
        """A macvtap interface on the host link ``link``."""
        return cls(type="macvtap", id=id, mac=mac, macvtap=MacvtapOptions(link=link, mode=mode))

    @classmethod
    def on_bridge(cls, id: str, bridge: str, mac: str | None = None) -> Interface:
        """A qemu bridge-helper interface attached to host bridge ``bridge``."""
        return cls(type="bridge", id=id, mac=mac, bridge=bridge)

    __repr__ = attrs_repr


@attrs.frozen
class Volume:
    """A disk image (``microvm.volumes``), created on first start when missing."""

    image: str = option(always=True)
    size: int = option(always=True)
    # None: an unformatted disk, not mounted (written as `mountPoint = null`).
    mount_point: str | None = option(None, always=True)
    fs_type: str = option("ext4")
    auto_create: bool = option(True)
    read_only: bool = option(False)
    direct: bool = option(False)
    image_type: ImageType = option("raw")
    label: str | None = option(None)
    serial: str | None = option(None)
    mkfs_extra_args: Sequence[str] = option(factory=tuple, converter=to_tuple)

    __repr__ = attrs_repr


@attrs.frozen
class Share:
    """A host folder shared into the guest over 9p or virtiofs (``microvm.shares``)."""

    tag: str = option(always=True)
    source: str = option(always=True)
    mount_point: str = option(always=True)
    proto: ShareProto = option("9p", always=True)
    read_only: bool = option(False)
    socket: str | None = option(None)
    cache: ShareCache = option("auto")
    security_model: SecurityModel = option("none")
    posix_acl: bool = option(True)
    extra_args: Sequence[str] = option(factory=tuple, converter=to_tuple)

    @classmethod
    def ro_store(cls, proto: ShareProto = "9p") -> Share:
        """The host's ``/nix/store`` read-only at ``/nix/.ro-store``, as upstream's template.

        With it the guest needs no store image: microvm.nix turns
        ``storeOnDisk`` off by itself.
        """
        return cls(tag="ro-store", source="/nix/store", mount_point="/nix/.ro-store", proto=proto)

    @classmethod
    def virtiofs(cls, tag: str, source: str, mount_point: str, *, read_only: bool = False) -> Share:
        """A virtiofs share; microvm.nix runs one virtiofsd per share on the host."""
        return cls(
            tag=tag, source=source, mount_point=mount_point, proto="virtiofs", read_only=read_only
        )

    __repr__ = attrs_repr


@attrs.frozen
class QemuDeviceOptions:
    bus: str | None = option(None)
    device_extra_args: str | None = option(None)
    id: str | None = option(None)

    __repr__ = attrs_repr


@attrs.frozen
class Device:
    """A host device passed through (``microvm.devices``): PCI address or USB spec."""

    bus: DeviceBus = option(always=True)
    path: str = option(always=True)
    qemu: QemuDeviceOptions | None = option(None)

    __repr__ = attrs_repr


@attrs.frozen
class PortEnd:
    port: int = option(always=True)
    address: str = option("")

    __repr__ = attrs_repr


@attrs.frozen
class ForwardPort:
    """A port forwarded by qemu's user networking (``microvm.forwardPorts``)."""

    host: PortEnd = option(always=True)
    guest: PortEnd = option(always=True)
    proto: PortProto = option("tcp")
    from_: PortFrom = option("host", name="from")

    @classmethod
    def tcp(cls, host_port: int, guest_port: int) -> ForwardPort:
        return cls(host=PortEnd(port=host_port), guest=PortEnd(port=guest_port))

    __repr__ = attrs_repr


@attrs.frozen
class Vsock:
    """AF_VSOCK for the guest; ``cid`` must be unique per host and at least 3."""

    cid: int | None = option(None, always=True)

    __repr__ = attrs_repr
