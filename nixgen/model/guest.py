"""A micro-VM guest: its ``microvm.*`` options and the NixOS side around them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any, Literal

import attrs

from nixgen._repr import attrs_repr
from nixgen.model.devices import (
    Device,
    ForwardPort,
    Interface,
    Share,
    Volume,
    Vsock,
    stable_mac,
)
from nixgen.model.expr import Nix
from nixgen.model.fields import option, to_tuple
from nixgen.model.frozen import frozen_mapping, optional_frozen_mapping
from nixgen.model.memo import ByIdentity

Hypervisor = Literal[
    "qemu", "cloud-hypervisor", "firecracker", "crosvm", "kvmtool", "stratovirt", "alioth", "vfkit"
]
System = Literal["x86_64-linux", "aarch64-linux"]
StoreDiskType = Literal["squashfs", "erofs"]
GraphicsBackend = Literal["gtk", "cocoa", "headless"]
DriveIoEngine = Literal["Async", "Sync"]
VfkitLogLevel = Literal["debug", "info", "error"]
InodeFileHandles = Literal["never", "prefer", "mandatory"]

HYPERVISORS: tuple[Hypervisor, ...] = (
    "qemu",
    "cloud-hypervisor",
    "firecracker",
    "crosvm",
    "kvmtool",
    "stratovirt",
    "alioth",
    "vfkit",
)
SYSTEMS: tuple[System, ...] = ("x86_64-linux", "aarch64-linux")
DEFAULT_STATE_VERSION = "26.05"

# Fields of MicroVM that are not ``microvm.*`` options: the NixOS side, and
# ``extra``, whose keys are merged into ``microvm`` as they are.
NON_MICROVM_FIELDS = frozenset(
    {
        "name",
        "system",
        "state_version",
        "users",
        "ssh",
        "allow_empty_root_password",
        "packages",
        "nixos",
        "modules",
        "extra",
    }
)


def _modules(items: Iterable[Nix | PurePosixPath | str]) -> tuple[Nix | PurePosixPath, ...]:
    """Module files may be given as strings: they are paths, never Nix strings.

    One string is not a list of modules: it is kept for ``validate`` to report.
    """
    if isinstance(items, str | bytes | Mapping) or not isinstance(items, Iterable):
        return items  # type: ignore[return-value]  # reported by validate
    return tuple(PurePosixPath(m) if isinstance(m, str) else m for m in items)


# ----------------------------------------------------------------- per-hypervisor groups


@attrs.frozen
class PcieRootPort:
    id: str = option(always=True)
    addr: str | None = option(None)
    bus: str | None = option(None)
    chassis: int | None = option(None)
    slot: str | None = option(None)

    __repr__ = attrs_repr


@attrs.frozen
class QemuOptions:
    """``microvm.qemu.*``."""

    machine: str | None = option(None)
    machine_opts: Mapping[str, str] | None = option(None, converter=optional_frozen_mapping)
    extra_args: Sequence[str] = option(factory=tuple, converter=to_tuple)
    serial_console: bool = option(True)
    pcie_root_ports: Sequence[PcieRootPort] = option(factory=tuple, converter=to_tuple)

    __repr__ = attrs_repr


@attrs.frozen
class CloudHypervisorOptions:
    """``microvm.cloud-hypervisor.*``."""

    extra_args: Sequence[str] = option(factory=tuple, converter=to_tuple)
    platform_oem_strings: Sequence[str] = option(
        factory=tuple, converter=to_tuple, name="platformOEMStrings"
    )

    __repr__ = attrs_repr


@attrs.frozen
class FirecrackerOptions:
    """``microvm.firecracker.*``."""

    extra_args: Sequence[str] = option(factory=tuple, converter=to_tuple)
    drive_io_engine: DriveIoEngine = option("Async")
    cpu: Mapping[str, Any] | None = option(None, converter=optional_frozen_mapping)
    extra_config: Mapping[str, Any] = option(factory=dict, converter=frozen_mapping)

    __repr__ = attrs_repr


@attrs.frozen
class CrosvmOptions:
    """``microvm.crosvm.*``."""

    extra_args: Sequence[str] = option(factory=tuple, converter=to_tuple)
    pivot_root: str | None = option(None)

    __repr__ = attrs_repr


@attrs.frozen
class RosettaOptions:
    enable: bool = option(False)
    install: bool = option(False)
    ignore_if_missing: bool = option(False)

    __repr__ = attrs_repr


@attrs.frozen
class VfkitOptions:
    """``microvm.vfkit.*`` (macOS hosts)."""

    extra_args: Sequence[str] = option(factory=tuple, converter=to_tuple)
    log_level: VfkitLogLevel | None = option("info")
    rosetta: RosettaOptions | None = option(None)

    __repr__ = attrs_repr


@attrs.frozen
class VirtiofsdOptions:
    """``microvm.virtiofsd.*``: how the host runs virtiofsd for virtiofs shares."""

    extra_args: Sequence[str] = option(factory=tuple, converter=to_tuple)
    group: str | None = option("kvm")
    inode_file_handles: InodeFileHandles | None = option("prefer")
    thread_pool_size: str | int = option("`nproc`")

    __repr__ = attrs_repr


@attrs.frozen
class Graphics:
    """``microvm.graphics.*``."""

    enable: bool = option(False, always=True)
    backend: GraphicsBackend | None = option(None)
    socket: str | None = option(None)
    hostmem: str | None = option(None)
    vulkan: Literal["venus", "drm_native_context"] | None = option(None)

    __repr__ = attrs_repr


# ----------------------------------------------------------------- the NixOS side


@attrs.frozen
class User:
    """A login on the guest (``users.users.<name>``)."""

    name: str = option(always=True)
    ssh_keys: Sequence[str] = option(factory=tuple, converter=to_tuple)
    groups: Sequence[str] = option(factory=tuple, converter=to_tuple)
    hashed_password: str | None = option(None)

    __repr__ = attrs_repr


# ----------------------------------------------------------------- the guest


@attrs.frozen
class MicroVM:
    """One NixOS micro-VM guest.

    ``name`` is its ``networking.hostName`` and its name in
    ``nixosConfigurations``.  Fields left at ``None`` (or their default) are
    not written, so microvm.nix's own defaults apply; ``hypervisor``,
    ``vcpu`` and ``mem`` are always written because readers look for them.

    ``extra`` takes any further ``microvm.*`` option by its dotted name
    (``{"optimize.enable": False}``); ``nixos`` takes free NixOS settings
    (``{"services.nginx.enable": True}``); ``modules`` adds verbatim Nix
    modules (``Nix("{ pkgs, ... }: { … }")``) or module files (paths relative
    to the flake folder).
    """

    name: str = option(always=True)
    hypervisor: Hypervisor = option("qemu", always=True)
    vcpu: int = option(1, always=True)
    mem: int = option(512, always=True)
    system: System = option("x86_64-linux", always=True)
    state_version: str = option(DEFAULT_STATE_VERSION, always=True)

    interfaces: Sequence[Interface] = option(factory=tuple, converter=to_tuple)
    volumes: Sequence[Volume] = option(factory=tuple, converter=to_tuple)
    shares: Sequence[Share] = option(factory=tuple, converter=to_tuple)
    devices: Sequence[Device] = option(factory=tuple, converter=to_tuple)
    forward_ports: Sequence[ForwardPort] = option(factory=tuple, converter=to_tuple)
    vsock: Vsock | None = option(None)

    hotplug_mem: int = option(0)
    balloon: bool = option(False)
    initial_balloon_mem: int = option(0)
    deflate_on_oom: bool = option(True, name="deflateOnOOM")
    hugepage_mem: bool = option(False)
    cpu: str | None = option(None)
    #: the control socket; None keeps upstream's default (``<hostName>.sock``),
    #: ``Nix("null")`` means none (upstream's type is ``nullOr str``)
    socket: str | Nix | None = option(None)
    user: str | None = option(None)
    kernel_params: Sequence[str] = option(factory=tuple, converter=to_tuple)
    store_on_disk: bool | None = option(None)
    store_disk_type: StoreDiskType | None = option(None)
    writable_store_overlay: str | None = option(None)
    register_closure: bool = option(True)
    graphics: Graphics | None = option(None)
    credential_files: Mapping[str, str] = option(factory=dict, converter=frozen_mapping)
    pre_start: str = option("")

    qemu: QemuOptions | None = option(None)
    cloud_hypervisor: CloudHypervisorOptions | None = option(None, name="cloud-hypervisor")
    firecracker: FirecrackerOptions | None = option(None)
    crosvm: CrosvmOptions | None = option(None)
    vfkit: VfkitOptions | None = option(None)
    virtiofsd: VirtiofsdOptions | None = option(None)
    extra: Mapping[str, Any] = option(factory=dict, converter=frozen_mapping)

    users: Sequence[User] = option(factory=tuple, converter=to_tuple)
    ssh: bool | None = option(None)
    allow_empty_root_password: bool = option(False)
    packages: Sequence[str | Nix] = option(factory=tuple, converter=to_tuple)
    nixos: Mapping[str, Any] = option(factory=dict, converter=frozen_mapping)
    modules: Sequence[Nix | PurePosixPath] = option(factory=tuple, converter=_modules)

    @property
    def ssh_enabled(self) -> bool:
        """sshd runs when asked, or by default when any user has keys."""
        if self.ssh is not None:
            return self.ssh
        return any(u.ssh_keys for u in self.users)

    def resolved_interfaces(self) -> tuple[Interface, ...]:
        """The interfaces with every missing MAC filled in from :func:`stable_mac`."""
        known = _RESOLVED.get(self)  # validating and rendering ask, for every guest
        if known is None:
            known = tuple(
                i if i.mac is not None else attrs.evolve(i, mac=stable_mac(self.name, i.id))
                for i in self.interfaces
            )
            _RESOLVED.put(self, known)
        return known

    def effective_store_on_disk(self) -> bool:
        """What microvm.nix will decide: a store image unless the host store is shared."""
        if self.store_on_disk is not None:
            return self.store_on_disk
        return not any(s.source == "/nix/store" for s in self.shares)

    def evolve(self, **changes: Any) -> MicroVM:
        """A copy with ``changes`` applied (the model is immutable)."""
        return attrs.evolve(self, **changes)

    __repr__ = attrs_repr


_RESOLVED: ByIdentity[MicroVM, tuple[Interface, ...]] = ByIdentity()
