"""The host side: machines that run the guests, and the networks between them.

A :class:`Host` is a NixOS machine running microvm.nix's host module: it
lists the guests it runs (``microvm.vms.<name>``, :class:`HostVM`) and the
networks it gives them (:class:`Network`).  nixgen renders each host as
``nixosModules.<host>`` (to import into an existing configuration) and,
when asked, as a full ``nixosConfigurations.<host>``.

Value classes only: interface names, MAC and IP addresses are worked out by
:mod:`nixgen.network`, the rules live in :mod:`nixgen.validate`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any, Literal

import attrs

from nixgen._repr import attrs_repr
from nixgen.model.devices import MacvtapMode
from nixgen.model.expr import Nix
from nixgen.model.fields import option, to_tuple
from nixgen.model.frozen import frozen_mapping
from nixgen.model.guest import DEFAULT_STATE_VERSION, MicroVM, System

__all__ = [
    "DEFAULT_BRIDGE",
    "IFNAME_MAX",
    "Host",
    "HostVM",
    "Network",
    "NetworkType",
    "VMMode",
    "tap_id",
]

NetworkType = Literal["bridge", "routed", "macvtap"]
VMMode = Literal["flake", "config"]

#: The bridge name of upstream's network guide, used when a bridge network names none.
DEFAULT_BRIDGE = "microvm"
#: Linux interface names have at most 15 characters (IFNAMSIZ - 1).
IFNAME_MAX = 15


def tap_id(name: str) -> str:
    """A host interface name for ``name``: ``vm-<name>``, shortened with a hash to fit 15.

    ``vm-`` is the prefix of upstream's network guides; the hash keeps two long
    names that share a beginning apart.
    """
    candidate = f"vm-{name}"
    if len(candidate) <= IFNAME_MAX:
        return candidate
    import hashlib  # (4 ms at import: only for long names)

    digest = hashlib.sha256(name.encode()).hexdigest()[:4]
    return f"vm-{name[:7]}-{digest}"


def _modules(items: Iterable[Nix | PurePosixPath | str]) -> tuple[Nix | PurePosixPath, ...]:
    """Module files may be given as strings: they are paths, never Nix strings."""
    return tuple(PurePosixPath(m) if isinstance(m, str) else m for m in items)


@attrs.frozen
class HostVM:
    """One guest of the flake that a host runs (``microvm.vms.<name>``).

    ``mode`` says how the host gets the guest:

    - ``"flake"`` (default): ``flake = self``; the host builds this flake's
      ``nixosConfigurations.<name>``, so updating one guest touches only that
      guest (``updateFlake`` is the flake reference ``microvm -u`` updates from
      later; with it set, host rebuilds leave an installed guest alone);
    - ``"config"``: ``config = ./vms/<name>.nix``; the host evaluates the guest
      module itself ("fully declarative"), rebuilding the host updates it.

    ``autostart`` and ``restartIfChanged`` are upstream's options;
    ``restart_if_changed=None`` keeps upstream's default (true only for
    ``config`` guests).
    """

    name: str = option(always=True)
    mode: VMMode = option("flake")
    update_flake: str | None = option(None)
    autostart: bool = option(True)
    restart_if_changed: bool | None = option(None)

    __repr__ = attrs_repr


def _vms(items: Iterable[HostVM | MicroVM | str]) -> tuple[HostVM, ...]:
    """A host's guests; a name (or the guest itself) stands for ``HostVM(name)``."""
    return tuple(
        HostVM(name=i)
        if isinstance(i, str)
        else HostVM(name=i.name)
        if isinstance(i, MicroVM)
        else i
        for i in items
    )


def _guest_names(items: Iterable[str | MicroVM]) -> tuple[str, ...]:
    """A network's guests, by name (a guest object stands for its name)."""
    return tuple(i.name if isinstance(i, MicroVM) else i for i in items)


@attrs.frozen
class Network:
    """A network a host gives some of its guests, with static addresses.

    ``type``:

    - ``"bridge"``: a host bridge (``bridge``, default ``microvm``) holding
      the host's address; every guest gets a tap interface attached to it.
      ``link`` adds a host port to the bridge (the guests then sit on that
      LAN); ``nat`` masquerades the guests' traffic out of
      ``externalInterface``.
    - ``"routed"``: no shared segment; each guest's tap carries only host
      routes (/32, /128) between the host and that guest, as upstream's routed
      network guide.  ``proxyArp`` answers ARP for the guests on ``link``.
    - ``"macvtap"``: each guest gets a macvtap interface on the host link
      ``link`` and an address of that LAN; ``gateway`` is the LAN's router.

    ``ipv4``/``ipv6`` are the ranges (``"10.0.0.0/24"``, ``"fd00:1::/64"``)
    the guests' addresses come from, in the order of ``guests``; an address
    in ``addresses`` (by guest name) is kept instead.  ``ids`` gives a guest's
    interface a name of your choosing (default: ``vm-<guest>``).
    """

    name: str = option(always=True)
    type: NetworkType = option("bridge", always=True)
    ipv4: str | None = option(None)
    ipv6: str | None = option(None)
    guests: Sequence[str] = option(factory=tuple, converter=_guest_names)
    addresses: Mapping[str, Sequence[str]] = option(factory=dict, converter=frozen_mapping)
    ids: Mapping[str, str] = option(factory=dict, converter=frozen_mapping)
    bridge: str | None = option(None)
    link: str | None = option(None)
    macvtap_mode: MacvtapMode = option("bridge")
    host_address: Sequence[str] = option(factory=tuple, converter=to_tuple)
    gateway: Sequence[str] = option(factory=tuple, converter=to_tuple)
    dns: Sequence[str] = option(factory=tuple, converter=to_tuple)
    default_route: bool = option(True)
    nat: bool = option(False)
    external_interface: str | None = option(None)
    proxy_arp: bool = option(False)

    @property
    def bridge_name(self) -> str:
        """The host bridge of a bridge network."""
        return self.bridge or DEFAULT_BRIDGE

    @property
    def forwarding(self) -> bool:
        """Whether the host forwards the guests' packets (routed networks, NAT)."""
        return self.nat or self.type == "routed"

    @classmethod
    def bridged(cls, name: str, guests: Iterable[str | MicroVM], **settings: Any) -> Network:
        """A bridge network: ``Network.bridged("lan", ["web"], ipv4="10.0.0.0/24", nat=True)``."""
        return cls(name=name, type="bridge", guests=_guest_names(guests), **settings)

    @classmethod
    def routed(cls, name: str, guests: Iterable[str | MicroVM], **settings: Any) -> Network:
        """A routed network (host routes per guest, no shared segment)."""
        return cls(name=name, type="routed", guests=_guest_names(guests), **settings)

    @classmethod
    def macvtap_on(
        cls, name: str, link: str, guests: Iterable[str | MicroVM], **settings: Any
    ) -> Network:
        """Guests on the LAN of the host link ``link`` through macvtap interfaces."""
        return cls(name=name, type="macvtap", link=link, guests=_guest_names(guests), **settings)

    def evolve(self, **changes: Any) -> Network:
        return attrs.evolve(self, **changes)

    __repr__ = attrs_repr


@attrs.frozen
class Host:
    """A NixOS machine that runs guests of the flake (microvm.nix's host module).

    ``vms`` are the guests it runs (names or guests of the flake, or
    :class:`HostVM` for settings); ``networks`` the networks it gives them.
    ``autostart`` adds further names to ``microvm.autostart`` (guests managed
    with the imperative ``microvm`` command; the ``vms`` start by their own
    ``autostart``).

    nixgen always renders ``nixosModules.<name>``; ``nixos_configuration``
    adds a full ``nixosConfigurations.<name>`` (with ``networking.hostName``,
    ``system.stateVersion`` and ``modules``, e.g. the hardware configuration),
    which ``nixgen deploy`` deploys to ``target_host`` (an ssh destination;
    default: the host's name).  ``nixos`` holds free NixOS settings of the
    host module, as for guests.
    """

    name: str = option(always=True)
    system: System = option("x86_64-linux", always=True)
    vms: Sequence[HostVM] = option(factory=tuple, converter=_vms)
    networks: Sequence[Network] = option(factory=tuple, converter=to_tuple)
    autostart: Sequence[str] = option(factory=tuple, converter=to_tuple)
    state_dir: str | None = option(None)
    nixos_configuration: bool = option(False, name="nixosConfiguration")
    state_version: str = option(DEFAULT_STATE_VERSION)
    target_host: str | None = option(None)
    nixos: Mapping[str, Any] = option(factory=dict, converter=frozen_mapping)
    modules: Sequence[Nix | PurePosixPath] = option(factory=tuple, converter=_modules)

    @property
    def guest_names(self) -> tuple[str, ...]:
        return tuple(vm.name for vm in self.vms)

    @property
    def ssh_target(self) -> str:
        """Where ``nixgen deploy`` sends this host's system."""
        return self.target_host or self.name

    def vm(self, name: str) -> HostVM:
        """The entry of guest ``name``; ``KeyError`` naming the host's guests otherwise."""
        for vm in self.vms:
            if vm.name == name:
                return vm
        known = ", ".join(self.guest_names) or "none"
        raise KeyError(f"host {self.name!r} runs no guest {name!r} (it runs: {known})")

    def network(self, name: str) -> Network:
        for net in self.networks:
            if net.name == name:
                return net
        known = ", ".join(n.name for n in self.networks) or "none"
        raise KeyError(f"host {self.name!r} has no network {name!r} (networks: {known})")

    def evolve(self, **changes: Any) -> Host:
        return attrs.evolve(self, **changes)

    __repr__ = attrs_repr
