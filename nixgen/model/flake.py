"""A flake: its inputs, its guests, and how it exposes them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from nixgen._repr import attrs_repr
from nixgen.model.fields import option, to_tuple
from nixgen.model.frozen import frozen_mapping
from nixgen.model.guest import MicroVM, System
from nixgen.model.host import Host

NIXPKGS_URL = "github:NixOS/nixpkgs/nixos-unstable"
MICROVM_URL = "github:microvm-nix/microvm.nix"
MICROVM_CACHE = "https://microvm.cachix.org"
MICROVM_CACHE_KEY = "microvm.cachix.org-1:oXnBc6hRE3eX5rSYdRyMYXnfzcCxC7yKPTbZXALsqys="


@attrs.frozen
class Input:
    """A flake input; ``follows`` maps the input's own inputs onto ours."""

    name: str = option(always=True)
    url: str = option(always=True)
    follows: Mapping[str, str] = option(factory=dict, converter=frozen_mapping)
    flake: bool = option(True)

    __repr__ = attrs_repr


DEFAULT_INPUTS: tuple[Input, ...] = (
    Input(name="nixpkgs", url=NIXPKGS_URL),
    Input(name="microvm", url=MICROVM_URL, follows={"nixpkgs": "nixpkgs"}),
)


def _guest_tuple(guests: Iterable[MicroVM]) -> tuple[MicroVM, ...]:
    return to_tuple(guests)


def _host_tuple(hosts: Iterable[Host]) -> tuple[Host, ...]:
    return to_tuple(hosts)


@attrs.frozen
class Flake:
    """The flake nixgen renders: ``nixosConfigurations`` and runner ``packages``.

    ``default`` names the guest that ``nix run .`` boots (default: the first
    guest of each system).  ``binary_cache`` adds microvm.nix's cache to
    ``nixConfig`` so that hypervisors and kernels are downloaded, not built.
    ``hosts`` are the machines that run the guests (see :class:`Host`).
    """

    guests: Sequence[MicroVM] = option(factory=tuple, converter=_guest_tuple)
    description: str = option("NixOS micro-VMs", always=True)
    inputs: Sequence[Input] = option(DEFAULT_INPUTS, converter=to_tuple)
    binary_cache: bool = option(True)
    default: str | None = option(None)
    hosts: Sequence[Host] = option(factory=tuple, converter=_host_tuple)

    @property
    def systems(self) -> tuple[System, ...]:
        """The systems the guests are built for, in first-seen order."""
        seen: dict[System, None] = {}
        for guest in self.guests:
            seen.setdefault(guest.system, None)
        return tuple(seen)

    def guest(self, name: str) -> MicroVM:
        """The guest called ``name``; ``KeyError`` naming the known ones otherwise."""
        for g in self.guests:
            if g.name == name:
                return g
        known = ", ".join(g.name for g in self.guests) or "none"
        raise KeyError(f"no guest {name!r} in this flake (guests: {known})")

    def host(self, name: str) -> Host:
        """The host called ``name``; ``KeyError`` naming the known ones otherwise."""
        for h in self.hosts:
            if h.name == name:
                return h
        known = ", ".join(h.name for h in self.hosts) or "none"
        raise KeyError(f"no host {name!r} in this flake (hosts: {known})")

    def host_of(self, guest: str) -> Host | None:
        """The (first) host that runs guest ``guest``, or None."""
        return next((h for h in self.hosts if guest in h.guest_names), None)

    def with_host(self, host: Host) -> Flake:
        """A copy with ``host`` added, or replacing the host of the same name."""
        if host.name in {h.name for h in self.hosts}:
            hosts = tuple(host if h.name == host.name else h for h in self.hosts)
        else:
            hosts = (*self.hosts, host)
        return attrs.evolve(self, hosts=hosts)

    def without_host(self, name: str) -> Flake:
        self.host(name)
        return attrs.evolve(self, hosts=tuple(h for h in self.hosts if h.name != name))

    def input(self, name: str) -> Input | None:
        return next((i for i in self.inputs if i.name == name), None)

    def with_guest(self, guest: MicroVM) -> Flake:
        """A copy with ``guest`` added, or replacing the guest of the same name."""
        names = [g.name for g in self.guests]
        if guest.name in names:
            guests = tuple(guest if g.name == guest.name else g for g in self.guests)
        else:
            guests = (*self.guests, guest)
        return attrs.evolve(self, guests=guests)

    def without_guest(self, name: str) -> Flake:
        """A copy without guest ``name``, taken out of every host too.

        Each host loses its ``vms`` entry and ``autostart`` name, each network
        the guest, its pinned addresses and interface id; a ``default``
        naming it is dropped.  The guests after it on a network move to the
        addresses before them unless theirs are pinned (``Network.addresses``).
        ``KeyError`` when there is no such guest.
        """
        self.guest(name)
        hosts = tuple(_host_without(h, name) for h in self.hosts)
        return attrs.evolve(
            self,
            guests=tuple(g for g in self.guests if g.name != name),
            hosts=hosts,
            default=None if self.default == name else self.default,
        )

    def rename_guest(self, old: str, new: str) -> Flake:
        """A copy with guest ``old`` called ``new``, everywhere the flake names it.

        The hosts' ``vms`` and ``autostart``, the networks' ``guests`` (in
        place: addresses handed out in order do not move), pinned
        ``addresses`` and ``ids``, and ``default`` follow.  The guest's own
        interfaces keep their MAC addresses: the derived ones depend on the
        name, so they are pinned (:meth:`MicroVM.resolved_interfaces`).  The
        interfaces of its networks are derived from the name and get new
        MACs and, unless pinned in ``ids``, new names (``vm-<new>``).
        ``KeyError`` when there is no guest ``old``, ``ValueError`` when
        ``new`` is taken.
        """
        vm = self.guest(old)
        if new == old:
            return self
        if any(g.name == new for g in self.guests):
            raise ValueError(f"there is already a guest {new!r} in this flake")
        renamed = vm.evolve(name=new, interfaces=vm.resolved_interfaces())
        return attrs.evolve(
            self,
            guests=tuple(renamed if g.name == old else g for g in self.guests),
            hosts=tuple(_host_renaming(h, old, new) for h in self.hosts),
            default=new if self.default == old else self.default,
        )

    def evolve(self, **changes: Any) -> Flake:
        return attrs.evolve(self, **changes)

    __repr__ = attrs_repr


def _host_without(host: Host, name: str) -> Host:
    if (
        name not in host.guest_names
        and name not in host.autostart
        and not any(name in n.guests for n in host.networks)
    ):
        return host
    return host.evolve(
        vms=tuple(vm for vm in host.vms if vm.name != name),
        autostart=tuple(a for a in host.autostart if a != name),
        networks=tuple(
            net.evolve(
                guests=tuple(g for g in net.guests if g != name),
                addresses={g: a for g, a in net.addresses.items() if g != name},
                ids={g: i for g, i in net.ids.items() if g != name},
            )
            for net in host.networks
        ),
    )


def _host_renaming(host: Host, old: str, new: str) -> Host:
    def rename(name: str) -> str:
        return new if name == old else name

    def keys(table: Mapping[str, Any]) -> dict[str, Any]:
        return {rename(k): v for k, v in table.items()}

    return host.evolve(
        vms=tuple(attrs.evolve(vm, name=new) if vm.name == old else vm for vm in host.vms),
        autostart=tuple(rename(a) for a in host.autostart),
        networks=tuple(
            net.evolve(
                guests=tuple(rename(g) for g in net.guests),
                addresses=keys(net.addresses),
                ids=keys(net.ids),
            )
            for net in host.networks
        ),
    )
