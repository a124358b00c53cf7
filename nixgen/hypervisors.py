"""What each hypervisor of microvm.nix can do, as one table of data.

Read off microvm.nix's runner code (which wins over its README).  The
validator checks guests against this table and ``docs/hypervisors.md`` is
generated from it (``nixgen hypervisors``), so the two
can never disagree.
"""

from __future__ import annotations

import attrs

from nixgen._repr import attrs_repr
from nixgen.model.guest import HYPERVISORS, Hypervisor


@attrs.frozen
class Capabilities:
    name: Hypervisor
    share_protos: frozenset[str]
    interface_types: frozenset[str]
    passthrough: frozenset[str]
    balloon: bool
    mem_hotplug: bool
    graphics: bool
    vsock: bool
    clean_shutdown: bool
    hosts: str
    # Only read-write 9p shares work (the runner has no read-only 9p).
    ninep_read_write_only: bool = False
    # Hypervisor-specific options of microvm.nix.
    user_and_credentials: bool = False
    forward_ports: bool = False
    initial_balloon_mem: bool = False
    hugepage_mem: bool = False
    image_types: frozenset[str] = frozenset({"raw"})
    emulated_cpu: bool = False
    macos_host_only: bool = False
    notes: str = ""

    __repr__ = attrs_repr


_LINUX = "x86_64/aarch64 Linux"

TABLE: dict[Hypervisor, Capabilities] = {
    c.name: c
    for c in (
        Capabilities(
            name="qemu",
            share_protos=frozenset({"9p", "virtiofs"}),
            interface_types=frozenset({"user", "tap", "macvtap", "bridge"}),
            passthrough=frozenset({"pci", "usb"}),
            balloon=True,
            mem_hotplug=True,
            graphics=True,
            vsock=True,
            clean_shutdown=True,
            hosts=_LINUX + ", aarch64-darwin",
            user_and_credentials=True,
            forward_ports=True,
            emulated_cpu=True,
            notes="memory hotplug needs a machine other than `microvm` (e.g. `q35`)",
        ),
        Capabilities(
            name="cloud-hypervisor",
            share_protos=frozenset({"virtiofs"}),
            interface_types=frozenset({"tap", "macvtap"}),
            passthrough=frozenset({"pci"}),
            balloon=True,
            mem_hotplug=True,
            graphics=True,
            vsock=True,
            clean_shutdown=True,
            hosts=_LINUX,
            initial_balloon_mem=True,
            hugepage_mem=True,
            image_types=frozenset({"raw", "qcow2", "vhd", "vhdx"}),
            notes="graphics through a vhost-user GPU",
        ),
        Capabilities(
            name="firecracker",
            share_protos=frozenset(),
            interface_types=frozenset({"tap"}),
            passthrough=frozenset(),
            balloon=False,
            mem_hotplug=False,
            graphics=False,
            vsock=True,
            clean_shutdown=True,
            hosts=_LINUX,
            notes="clean shutdown needs the control socket",
        ),
        Capabilities(
            name="crosvm",
            share_protos=frozenset({"9p", "virtiofs"}),
            interface_types=frozenset({"tap", "macvtap"}),
            passthrough=frozenset({"pci"}),
            balloon=True,
            mem_hotplug=False,
            graphics=True,
            vsock=True,
            clean_shutdown=True,
            hosts=_LINUX,
            ninep_read_write_only=True,
        ),
        Capabilities(
            name="kvmtool",
            share_protos=frozenset({"9p"}),
            interface_types=frozenset({"user", "tap", "macvtap"}),
            passthrough=frozenset({"pci"}),
            balloon=True,
            mem_hotplug=False,
            graphics=False,
            vsock=True,
            clean_shutdown=False,
            hosts="Linux",
            ninep_read_write_only=True,
        ),
        Capabilities(
            name="stratovirt",
            share_protos=frozenset({"virtiofs"}),
            interface_types=frozenset({"user", "tap", "macvtap", "bridge"}),
            passthrough=frozenset({"usb"}),
            balloon=False,
            mem_hotplug=False,
            graphics=False,
            vsock=False,
            clean_shutdown=False,
            hosts=_LINUX,
            notes="PCI passthrough fails on x86_64",
        ),
        Capabilities(
            name="alioth",
            share_protos=frozenset({"virtiofs"}),
            interface_types=frozenset({"tap"}),
            passthrough=frozenset(),
            balloon=False,
            mem_hotplug=False,
            graphics=False,
            vsock=True,
            clean_shutdown=False,
            hosts="Linux",
        ),
        Capabilities(
            name="vfkit",
            share_protos=frozenset({"virtiofs"}),
            interface_types=frozenset({"user"}),
            passthrough=frozenset(),
            balloon=False,
            mem_hotplug=False,
            graphics=True,
            vsock=False,
            clean_shutdown=True,
            hosts="macOS only",
            macos_host_only=True,
        ),
    )
}

assert tuple(TABLE) == HYPERVISORS, "every hypervisor of the model has a row"


def capabilities(hypervisor: Hypervisor) -> Capabilities:
    return TABLE[hypervisor]


def supporting(predicate_name: str) -> list[str]:
    """The hypervisors whose capability ``predicate_name`` is true (for hints)."""
    return [name for name, caps in TABLE.items() if getattr(caps, predicate_name)]


def _set(values: frozenset[str]) -> str:
    return ", ".join(sorted(values)) if values else "—"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def markdown_table() -> str:
    """The capability table as Markdown, for ``docs/hypervisors.md``."""
    header = (
        "| hypervisor | shares | interface types | passthrough | balloon | memory hotplug "
        "| graphics | vsock | clean shutdown | hosts | notes |"
    )
    lines = [header, "|" + "---|" * 11]
    for caps in TABLE.values():
        shares = _set(caps.share_protos)
        if caps.ninep_read_write_only:
            shares += " (9p read-write only)"
        lines.append(
            f"| {caps.name} | {shares} | {_set(caps.interface_types)} | {_set(caps.passthrough)} "
            f"| {_yes(caps.balloon)} | {_yes(caps.mem_hotplug)} | {_yes(caps.graphics)} "
            f"| {_yes(caps.vsock)} | {_yes(caps.clean_shutdown)} | {caps.hosts} | {caps.notes} |"
        )
    only = [
        ("`user`, `credentialFiles`", "user_and_credentials"),
        ("`forwardPorts` (with a `user` interface)", "forward_ports"),
        ("`initialBalloonMem`", "initial_balloon_mem"),
        ("`hugepageMem`", "hugepage_mem"),
        ("`cpu` (an emulated CPU model: TCG, slow)", "emulated_cpu"),
    ]
    lines.append("")
    lines.append("Options only some hypervisors take:")
    lines.append("")
    for label, attr in only:
        lines.append(f"- {label}: {', '.join(supporting(attr))}")
    lines.append(
        "- volume `imageType` other than `raw`: "
        + ", ".join(n for n, c in TABLE.items() if len(c.image_types) > 1)
    )
    return "\n".join(lines) + "\n"
