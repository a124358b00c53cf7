"""A new guest shaped like one already there: its interfaces, volumes and shares.

``nixgen add NAME`` gives a new guest the devices of a guest the flake
already has (the last one with the same hypervisor; none when no guest has it), made
its own: names that carry the old guest's name carry the new one's, tap and
macvtap interfaces get a host interface name of their own (two guests cannot
share one), MACs are derived anew from the new names, and virtiofs sockets
follow the new host name.  Everything else (the store share, relative volume
images, which live in each guest's own state folder) is the same.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from nixgen.model.devices import Interface, Share, Volume
from nixgen.model.guest import MicroVM
from nixgen.model.host import tap_id

__all__ = ["pick_template", "shaped_like"]


def pick_template(guests: Sequence[MicroVM], vm: MicroVM) -> MicroVM | None:
    """The guest whose shape a new one takes: the last with ``vm``'s hypervisor
    (another hypervisor may not take the same devices: 9p, interface types)."""
    same = [g for g in guests if g.hypervisor == vm.hypervisor and g.name != vm.name]
    return same[-1] if same else None


def shaped_like(vm: MicroVM, template: MicroVM) -> MicroVM:
    """``vm`` with ``template``'s interfaces, volumes and shares, renamed for ``vm``."""
    old, new = template.name, vm.name

    def renamed(text: str) -> str:
        return text.replace(old, new) if old else text

    def interface(item: Interface, index: int) -> Interface:
        ident = renamed(item.id)
        if item.type in ("tap", "macvtap") and ident == item.id:
            # a host interface name: unique on the host, so never the template's
            ident = tap_id(new) if index == 0 else tap_id(f"{new}{index}")
        return attrs.evolve(item, id=ident, mac=None)

    def volume(item: Volume) -> Volume:
        return attrs.evolve(item, image=renamed(item.image))

    def share(item: Share) -> Share:
        socket = renamed(item.socket) if item.socket else None
        source = renamed(item.source) if item.source != "/nix/store" else item.source
        return attrs.evolve(item, socket=socket, source=source)

    return attrs.evolve(
        vm,
        interfaces=[interface(i, n) for n, i in enumerate(template.interfaces)],
        volumes=[volume(v) for v in template.volumes],
        shares=[share(s) for s in template.shares],
    )
