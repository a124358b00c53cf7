"""The project as a picture: hosts, their networks and guests (``nixgen graph``).

:meth:`Graph.of` lays a :class:`~nixgen.model.Flake` out as boxes: one per
host, holding one group per network of the host (bridge, routed, macvtap),
one for the guests on QEMU's user networking and one for guests on no
network; each guest with its hypervisor, vCPUs and memory, the interface,
MAC and addresses the network plan (:func:`nixgen.network.plan_networks`)
gives it, its forwarded ports and its shares of the host's store.  Guests no
host runs sit in a box of their own.

From there: :meth:`Graph.dot` (Graphviz's language, built with PyPI's
``graphviz``, which quotes identifiers and attributes), :meth:`Graph.svg`
and :meth:`Graph.png` (Graphviz's ``dot`` lays it out, run through
:mod:`nixgen.process` like every program nixgen starts) and
:meth:`Graph.mermaid` (Mermaid flowchart text for READMEs and issue
trackers).  Every text of the model reaches a label through one escaping
function per language: :func:`html_text` (Graphviz HTML-like labels) and
:func:`mermaid_text`.

Runtime state is passed in, not looked up: ``status`` maps guest names to a
:class:`GuestMark`; :func:`marks_from_status` makes that map from what
:meth:`nixgen.runtime.Runtime.status` returns, so this module imports
nothing of the runtime.
"""

from __future__ import annotations

import enum
import html
import math
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Literal, Protocol

import attrs
import graphviz

from nixgen.errors import GraphError
from nixgen.files import write_atomically
from nixgen.model import Flake, Host, MicroVM, Network
from nixgen.model.frozen import frozen_mapping
from nixgen.network import Attachment, IPInterface, NetworkPlan, plan_networks
from nixgen.process.errors import CommandError, CommandNotFoundError

__all__ = [
    "FORMATS",
    "SUFFIXES",
    "WORD_JOINER",
    "Format",
    "Graph",
    "Group",
    "GuestBox",
    "GuestMark",
    "HostBox",
    "Link",
    "html_text",
    "marks_from_status",
    "mermaid_text",
]

Format = Literal["dot", "svg", "png", "mermaid"]
FORMATS: tuple[Format, ...] = ("dot", "svg", "png", "mermaid")
GroupKind = Literal["bridge", "routed", "macvtap", "user", "none"]


class GuestMark(enum.StrEnum):
    """A guest's runtime state as the picture colours it (see :func:`marks_from_status`)."""

    RUNNING = "running"
    STOPPED = "stopped"
    CRASHED = "crashed"
    OUTDATED = "outdated"
    STALE = "stale"


#: fill colour and what the legend says, per mark
MARKS: Mapping[GuestMark, tuple[str, str]] = {
    GuestMark.RUNNING: ("#c8e6c9", "running"),
    GuestMark.STOPPED: ("#e0e0e0", "stopped"),
    GuestMark.CRASHED: ("#ffcdd2", "crashed"),
    GuestMark.OUTDATED: ("#fff59d", "outdated: the flake builds another runner"),
    GuestMark.STALE: ("#ffcc80", "stale: booted another runner than current"),
}
#: border colour, style and legend text, per kind of group
KINDS: Mapping[GroupKind, tuple[str, str, str]] = {
    "bridge": ("#1565c0", "solid", "bridge network"),
    "routed": ("#2e7d32", "dashed", "routed network"),
    "macvtap": ("#ef6c00", "dotted", "macvtap network"),
    "user": ("#6d4c41", "dashed", "QEMU user networking"),
    "none": ("#9e9e9e", "dotted", "no network"),
}
# One family, so that dot measures the text with the font browsers then draw it in
# (a list of fallbacks makes dot measure with its default font instead).
_FONT = "DejaVu Sans"
_SMALL = 9
_GREY = "#555555"


class StatusLike(Protocol):
    """What :func:`marks_from_status` reads of a :class:`nixgen.runtime.GuestStatus`."""

    @property
    def name(self) -> str: ...

    @property
    def state(self) -> object: ...

    @property
    def freshness(self) -> str: ...


def marks_from_status(statuses: Iterable[StatusLike]) -> dict[str, GuestMark]:
    """``{guest: mark}`` from ``Runtime.status()``: what ``nixgen status`` says, as one mark.

    A crash shows first; then the runner is out of date (``outdated``: the
    flake builds another one; ``stale``: the guest booted another one than
    ``current``), since both ask for an action; then running or stopped.
    """
    marks = {}
    for status in statuses:
        state = str(status.state)
        if state == "crashed":
            mark = GuestMark.CRASHED
        elif status.freshness == "outdated":
            mark = GuestMark.OUTDATED
        elif status.freshness == "stale":
            mark = GuestMark.STALE
        elif state == "running":
            mark = GuestMark.RUNNING
        else:
            mark = GuestMark.STOPPED
        marks[status.name] = mark
    return marks


# ----------------------------------------------------------------- the layout


@attrs.frozen
class Link:
    """One interface of a guest: on a network of its host, or declared on the guest."""

    #: the network's name, or None for an interface of the guest's own
    network: str | None
    kind: str
    id: str
    mac: str
    addresses: tuple[str, ...] = ()


@attrs.frozen
class GuestBox:
    name: str
    hypervisor: str
    vcpu: int
    mem: int
    links: tuple[Link, ...] = ()
    #: forwarded ports, e.g. ``tcp 2222 → 22``
    ports: tuple[str, ...] = ()
    #: shares of the host's /nix/store, e.g. ``/nix/store (9p)``
    store: tuple[str, ...] = ()
    mark: GuestMark | None = None


@attrs.frozen
class Group:
    """A network of a host (or the host's guests on user networking, or on none)."""

    kind: GroupKind
    title: str
    details: tuple[str, ...] = ()
    #: guests drawn in this group, in the network's order
    guests: tuple[str, ...] = ()
    #: members drawn in an earlier group (a guest on several networks)
    also: tuple[str, ...] = ()


@attrs.frozen
class HostBox:
    #: None: the guests that no host runs
    name: str | None
    details: tuple[str, ...] = ()
    groups: tuple[Group, ...] = ()


@attrs.frozen
class Graph:
    """The picture of a flake's hosts, networks and guests."""

    hosts: tuple[HostBox, ...]
    guests: Mapping[str, GuestBox] = attrs.field(converter=frozen_mapping)
    #: whether runtime state was given (the legend then explains the colours)
    with_status: bool = False

    @classmethod
    def of(
        cls,
        flake: Flake,
        *,
        plan: NetworkPlan | None = None,
        status: Mapping[str, GuestMark] | None = None,
    ) -> Graph:
        """Lay ``flake`` out; ``plan`` defaults to :func:`plan_networks`\\ ``(flake)``.

        ``status`` colours the guests it names (:func:`marks_from_status`).
        A guest the plan could not attach (an invalid network) is drawn
        without that network: validate first to hear why.
        """
        plan = plan if plan is not None else plan_networks(flake)
        by_guest = plan.by_guest()
        marks = status or {}
        guests = {
            vm.name: _guest_box(vm, by_guest.get(vm.name, ()), marks.get(vm.name))
            for vm in flake.guests
        }
        placed: set[str] = set()
        hosts = [_host_box(host, flake, plan, guests, placed) for host in flake.hosts]
        loose = [vm for vm in flake.guests if vm.name not in placed]
        if loose:
            groups = _loose_groups(loose, guests)
            hosts.append(HostBox(name=None, details=("no host runs these",), groups=groups))
        return cls(hosts=tuple(hosts), guests=guests, with_status=status is not None)

    # ------------------------------------------------------------- outputs

    def dot(self) -> str:
        """Graphviz DOT text (lay it out with ``dot -Tsvg``)."""
        return _Dot(self).source()

    def mermaid(self) -> str:
        """Mermaid flowchart text (GitHub, GitLab and most trackers draw it)."""
        return "\n".join(_mermaid_lines(self)) + "\n"

    def svg(self) -> bytes:
        return run_dot(self.dot(), "svg")

    def png(self) -> bytes:
        return run_dot(self.dot(), "png")

    def render(self, format: Format) -> bytes:
        """The picture in ``format``, as the bytes of a file."""
        if format == "dot":
            return self.dot().encode()
        if format == "mermaid":
            return self.mermaid().encode()
        if format in ("svg", "png"):
            return run_dot(self.dot(), format)
        raise GraphError(
            f"unknown picture format {format!r}", hint="use one of " + ", ".join(FORMATS)
        )

    def write(self, path: Path | str, format: Format) -> None:
        """Write the picture to ``path``: the old file or the new one, never half of one."""
        _write_atomically(Path(path), self.render(format))


#: file suffixes and the format each asks for
SUFFIXES: Mapping[str, Format] = {
    ".dot": "dot",
    ".gv": "dot",
    ".svg": "svg",
    ".png": "png",
    ".mmd": "mermaid",
    ".mermaid": "mermaid",
}


def format_for(path: Path | str) -> Format | None:
    """The format a file name asks for by its suffix (:data:`SUFFIXES`), or None."""
    return SUFFIXES.get(Path(path).suffix.lower())


def _guest_box(vm: MicroVM, attached: Sequence[Attachment], mark: GuestMark | None) -> GuestBox:
    links = [
        Link(
            network=a.network,
            kind=a.type,
            id=a.id,
            mac=a.mac,
            addresses=tuple(str(x) for x in a.addresses),
        )
        for a in attached
    ]
    links += [
        Link(network=None, kind=i.type, id=i.id, mac=i.mac or "") for i in vm.resolved_interfaces()
    ]
    ports = tuple(
        f"{p.proto} {_end(p.host.address, p.host.port)} → {_end(p.guest.address, p.guest.port)}"
        for p in vm.forward_ports
    )
    store = tuple(f"{s.source} ({s.proto})" for s in vm.shares if s.source == "/nix/store")
    return GuestBox(
        name=vm.name,
        hypervisor=vm.hypervisor,
        vcpu=vm.vcpu,
        mem=vm.mem,
        links=tuple(links),
        ports=ports,
        store=store,
        mark=mark,
    )


def _end(address: str, port: int) -> str:
    return f"{address}:{port}" if address else str(port)


def _host_box(
    host: Host,
    flake: Flake,
    plan: NetworkPlan,
    guests: Mapping[str, GuestBox],
    placed: set[str],
) -> HostBox:
    runs = [n for n in dict.fromkeys(host.guest_names) if n in guests and n not in placed]
    groups = []
    for net in host.networks:
        attached = [a.guest for a in plan.of_network(host.name, net.name)]
        # Members the plan refused (an invalid network) are still drawn here.
        members = [g for g in dict.fromkeys(net.guests) if g in guests and g in runs]
        members += [g for g in attached if g not in members]
        mine = tuple(g for g in members if g not in placed)
        placed.update(mine)
        groups.append(
            Group(
                kind=net.type,
                title=net.name,
                details=_network_details(net, plan.addresses_of_host(host.name, net.name)),
                guests=mine,
                also=tuple(g for g in members if g not in mine),
            )
        )
    rest = [g for g in runs if g not in placed]
    placed.update(rest)
    vms = {vm.name: vm for vm in flake.guests}
    groups.extend(_loose_groups([vms[g] for g in rest], guests))
    details: list[str] = [host.system]
    if host.nixos_configuration:
        details.append(f"deploys to {host.ssh_target}")
    if host.state_dir:
        details.append(f"state in {host.state_dir}")
    return HostBox(name=host.name, details=tuple(details), groups=tuple(groups))


def _loose_groups(vms: Sequence[MicroVM], guests: Mapping[str, GuestBox]) -> tuple[Group, ...]:
    """The guests of a host on no network of it: on QEMU's user networking, or on none."""
    user = tuple(vm.name for vm in vms if any(i.type == "user" for i in vm.interfaces))
    other = tuple(vm.name for vm in vms if vm.name not in user)
    groups = []
    if user:
        groups.append(
            Group(kind="user", title="user networking", details=("QEMU's NAT",), guests=user)
        )
    if other:
        own = any(guests[g].links for g in other)
        title = "own interfaces" if own else "no network"
        groups.append(Group(kind="none", title=title, guests=other))
    return tuple(groups)


def _network_details(net: Network, host_addresses: Sequence[IPInterface]) -> tuple[str, ...]:
    if net.type == "bridge":
        first = f"bridge {net.bridge_name}"
    elif net.type == "macvtap":
        first = f"macvtap on {net.link} ({net.macvtap_mode})"
    else:
        first = "routed"
    lines = [first]
    ranges = ", ".join(r for r in (net.ipv4, net.ipv6) if r)
    if ranges:
        lines.append(ranges)
    if host_addresses:
        lines.append("host " + ", ".join(str(a.ip) for a in host_addresses))
    if net.gateway:
        lines.append("gateway " + ", ".join(net.gateway))
    if net.link and net.type != "macvtap":
        lines.append(f"link {net.link}" + (" (proxy ARP)" if net.proxy_arp else ""))
    if net.nat:
        lines.append(
            "NAT" + (f" out of {net.external_interface}" if net.external_interface else "")
        )
    if net.dns:
        lines.append("DNS " + ", ".join(net.dns))
    return tuple(lines)


# ----------------------------------------------------------------- escaping


def _visible(text: str) -> str:
    """Control characters as ``\\xNN``: a label shows them rather than breaking on them."""
    return "".join(c if c.isprintable() or c == " " else f"\\x{ord(c):02x}" for c in text)


#: U+2060 WORD JOINER: no width, no glyph, no line break
WORD_JOINER = "\u2060"


def html_text(text: str) -> str:
    """``text`` for a Graphviz HTML-like label: markup characters as entities.

    Graphviz reads ``\\N``, ``\\G``, ``\\\\`` (and ``\\E``, ``\\H``, ``\\T``,
    ``\\L``) in the text of every label, HTML-like ones and entities included,
    as the node's or graph's name or a single backslash: an invisible word
    joiner after each backslash keeps a name that holds one as it is.
    """
    escaped = html.escape(_visible(text), quote=True)
    return escaped.replace("\\", "\\&#8288;")


# Mermaid draws flowchart labels as HTML, so HTML's named entities spell the characters
# that would end a quoted label (") or turn into markup (< > &), and those Mermaid itself
# reads: '#' and ';' (its own entity codes, #35;), '%' (%%{init}%% directives), '`'
# (Markdown strings).  Numeric entities would not do: they contain '#'.
_MERMAID_ENTITIES = {
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    '"': "&quot;",
    "#": "&num;",
    ";": "&semi;",
    "%": "&percnt;",
    "`": "&grave;",
}


def mermaid_text(text: str) -> str:
    """``text`` for a quoted Mermaid label, shown as it is by Mermaid (tested with Mermaid 11).

    Nothing in it can end the label, start markup or reach Mermaid's own
    syntax (entity codes, directives, Markdown strings); control characters
    show as ``\\xNN``.
    """
    return "".join(_MERMAID_ENTITIES.get(c, c) for c in _visible(text))


# ----------------------------------------------------------------- DOT


def _rows(rows: Iterable[str]) -> str:
    """An HTML-like label of stacked rows (each row already escaped markup)."""
    body = "".join(f"<TR><TD>{row}</TD></TR>" for row in rows)
    return f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">{body}</TABLE>>'


def _small(text: str, colour: str = _GREY) -> str:
    return f'<FONT POINT-SIZE="{_SMALL}" COLOR="{colour}">{html_text(text)}</FONT>'


def _bold(text: str, size: int = 11) -> str:
    return f'<FONT POINT-SIZE="{size}"><B>{html_text(text)}</B></FONT>'


def _guest_rows(box: GuestBox) -> Iterator[str]:
    yield _bold(box.name)
    yield html_text(f"{box.hypervisor} · {box.vcpu} vCPU · {box.mem} MiB")
    for link in box.links:
        where = link.network if link.network is not None else link.kind
        for address in link.addresses:
            yield html_text(f"{where}: {address}")
        if not link.addresses:
            yield html_text(f"{where}: no address" if link.network is not None else where)
        yield _small(f"{link.id} {link.mac}".strip())
    for port in box.ports:
        yield _small(f"port {port}", "#000000")
    for share in box.store:
        yield _small(f"host {share}")
    if box.mark is not None:
        yield f"<I>{html_text(str(box.mark))}</I>"


# Rough size of a guest box (points) and the shape aimed at: a little wider than tall.
_GUEST_W, _GUEST_H, _ASPECT = 190, 110, 1.4


def _columns(host: HostBox) -> list[int]:
    """Guests per row for each group of a host.

    The host gets a grid about as wide as tall, shared between its groups by
    their sizes, so that every group ends at about the same depth.
    """
    sizes = [len(g.guests) for g in host.groups]
    total = sum(sizes)
    width = max(1, min(12, math.ceil(math.sqrt(total * _GUEST_H / _GUEST_W * _ASPECT))))
    if total <= 4:
        width = max(1, total)  # a few guests read best side by side
    return [max(1, round(width * n / total)) if total else 1 for n in sizes]


def _hosts_per_row(hosts: Sequence[tuple[int, int]]) -> int:
    """How many hosts side by side (each ``(columns, rows)``) make the picture about _ASPECT."""
    best, best_error = 1, math.inf
    for per_row in range(1, len(hosts) + 1):
        rows = [hosts[i : i + per_row] for i in range(0, len(hosts), per_row)]
        width = max(max(1, sum(c for c, _ in row)) for row in rows) * _GUEST_W
        height = sum(max(r + 2 for _, r in row) for row in rows) * _GUEST_H
        error = abs(math.log(width / height / _ASPECT))
        if error < best_error:
            best, best_error = per_row, error
    return best


class _Dot:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.dot = graphviz.Digraph(
            "nixgen",
            graph_attr={
                "rankdir": "TB",
                "fontname": _FONT,
                "nodesep": "0.2",
                "ranksep": "0.3",
                "newrank": "true",
                "labelloc": "t",
            },
            node_attr={
                "shape": "box",
                "style": "rounded,filled",
                "fillcolor": "white",
                "fontname": _FONT,
                "fontsize": "10",
                "margin": "0.12,0.05",
            },
            edge_attr={"arrowhead": "none"},
        )
        self.ids: dict[str, str] = {g: f"g{i}" for i, g in enumerate(graph.guests)}

    def source(self) -> str:
        self._legend()
        columns = [_columns(host) for host in self.graph.hosts]
        shapes = [
            (
                sum(cols),
                max(
                    (math.ceil(len(g.guests) / c) for g, c in zip(h.groups, cols, strict=True)),
                    default=0,
                ),
            )
            for h, cols in zip(self.graph.hosts, columns, strict=True)
        ]
        per_row = _hosts_per_row(shapes) if shapes else 1
        for index, host in enumerate(self.graph.hosts):
            top = f"h{index}"
            self._host(host, top, f"cluster_h{index}", columns[index])
            if index >= per_row:
                # Hosts in rows of per_row (the picture about as tall as wide): each host
                # below the one per_row before it, its 3-D box under that one's.
                above = index - per_row
                self.dot.edge(f"h{above}", top, style="invis", minlen=str(shapes[above][1] + 3))
        for start in range(0, len(self.graph.hosts), per_row):
            with self.dot.subgraph() as row:
                row.attr(rank="same")
                for index in range(start, min(start + per_row, len(self.graph.hosts))):
                    row.node(f"h{index}")
        source: str = self.dot.source
        return source

    def _legend(self) -> None:
        rows = ['<TR><TD COLSPAN="2"><B>legend</B></TD></TR>']
        rows.append(
            '<TR><TD BORDER="1" STYLE="ROUNDED" BGCOLOR="#fafafa">  </TD>'
            f'<TD ALIGN="LEFT">{html_text("host (the box holds its networks)")}</TD></TR>'
        )
        used = {group.kind for host in self.graph.hosts for group in host.groups}
        for kind, (colour, style, text) in KINDS.items():
            if kind not in used:
                continue
            rows.append(
                f'<TR><TD BORDER="1" STYLE="{style}" COLOR="{colour}">  </TD>'
                f'<TD ALIGN="LEFT"><FONT COLOR="{colour}">{html_text(text)}</FONT></TD></TR>'
            )
        if any(group.also for host in self.graph.hosts for group in host.groups):
            rows.append(
                "<TR><TD>- -</TD>"
                f'<TD ALIGN="LEFT">{html_text("a guest on a further network of its host")}</TD></TR>'
            )
        if self.graph.with_status:
            for fill, text in MARKS.values():
                rows.append(
                    f'<TR><TD BORDER="1" BGCOLOR="{fill}">  </TD>'
                    f'<TD ALIGN="LEFT">{html_text(text)}</TD></TR>'
                )
        label = (
            '<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="2" CELLPADDING="2">'
            + "".join(rows)
            + "</TABLE>>"
        )
        self.dot.node("legend", label=label, shape="plain", style="")

    def _host(self, host: HostBox, top: str, cluster: str, columns: Sequence[int]) -> None:
        with self.dot.subgraph(name=cluster) as box:
            named = host.name is not None
            box.attr(
                label="",
                style="rounded,filled" if named else "rounded,dashed",
                fillcolor="#fafafa",
                color="#424242" if named else "#9e9e9e",
                penwidth="1.5" if named else "1",
            )
            title = _bold(host.name, 14) if host.name is not None else _bold("no host", 12)
            box.node(
                top,
                label=_rows([title, *(_small(d) for d in host.details)]),
                shape="box3d" if named else "box",
                style="filled" if named else "dashed",
                fillcolor="#eceff1",
            )
            for j, group in enumerate(host.groups):
                hub = f"{top}n{j}"
                colour, style, _text = KINDS[group.kind]
                with box.subgraph(name=f"{cluster}_n{j}") as net:
                    net.attr(label="", style=f"rounded,{style}", color=colour, penwidth="1.5")
                    net.node(
                        hub,
                        label=_rows(
                            [
                                f'<FONT COLOR="{colour}">{_bold(group.title)}</FONT>',
                                *(_small(d) for d in group.details),
                            ]
                        ),
                        shape="box",
                        style="filled",
                        color=colour,
                        fillcolor="white",
                    )
                    self._grid(net, hub, group.guests, columns[j])
                self.dot.edge(top, hub, color=colour, style=style, penwidth="1.5")
                for guest in group.also:
                    # A guest on several networks is drawn once, joined to the others.
                    self.dot.edge(
                        hub, self.ids[guest], color=colour, style="dashed", constraint="false"
                    )

    def _grid(self, net: graphviz.Digraph, hub: str, members: Sequence[str], columns: int) -> None:
        """The guests of a group in rows of ``columns`` under its hub."""
        for i, name in enumerate(members):
            box = self.graph.guests[name]
            fill = MARKS[box.mark][0] if box.mark is not None else "white"
            net.node(self.ids[name], label=_rows(_guest_rows(box)), fillcolor=fill)
            above = hub if i < columns else self.ids[members[i - columns]]
            net.edge(above, self.ids[name], style="invis")


# ----------------------------------------------------------------- Mermaid


def _mermaid_label(lines: Iterable[str], bold_first: bool = True) -> str:
    parts = [mermaid_text(line) for line in lines]
    if bold_first and parts:
        parts[0] = f"<b>{parts[0]}</b>"
    return '"' + "<br>".join(parts) + '"'


def _mermaid_lines(graph: Graph) -> Iterator[str]:
    """Hosts and networks as nested subgraphs titled by name; their details in a node inside.

    Mermaid draws a subgraph's title on one line over its contents, so the
    details go into a node of their own; invisible links (``~~~``) stack the
    guests in the same grid as the DOT picture.
    """
    ids = {g: f"g{i}" for i, g in enumerate(graph.guests)}
    yield "flowchart TB"
    used: set[GuestMark] = set()
    for index, host in enumerate(graph.hosts):
        top = f"h{index}"
        title = host.name if host.name is not None else "no host"
        yield f"  subgraph {top}[{_mermaid_label([title])}]"
        yield "    direction TB"
        yield f"    {top}i[{_mermaid_label(host.details, bold_first=False)}]"
        for j, (group, columns) in enumerate(zip(host.groups, _columns(host), strict=True)):
            net = f"{top}n{j}"
            yield f"    subgraph {net}[{_mermaid_label([group.title])}]"
            above: list[str] = []
            if group.details:
                yield f"      {net}i[{_mermaid_label(group.details, bold_first=False)}]"
                above = [f"{net}i"]
            for i, name in enumerate(group.guests):
                box = graph.guests[name]
                yield f"      {ids[name]}[{_mermaid_label(_mermaid_guest(box))}]"
                if i >= columns:
                    yield f"      {ids[group.guests[i - columns]]} ~~~ {ids[name]}"
                elif above:
                    yield f"      {above[0]} ~~~ {ids[name]}"
                if box.mark is not None:
                    used.add(box.mark)
                    yield f"      class {ids[name]} {box.mark.value}"
            yield "    end"
            # Outside the network's block: a link inside it would pull the host's node in.
            yield f"    {top}i ~~~ {above[0] if above else net}"
        yield "  end"
    for index, host in enumerate(graph.hosts):
        for j, group in enumerate(host.groups):
            colour, style, _text = KINDS[group.kind]
            dashes = {"dashed": ",stroke-dasharray:6 3", "dotted": ",stroke-dasharray:2 2"}
            yield f"  style h{index}n{j} stroke:{colour},stroke-width:2px{dashes.get(style, '')}"
            hub = f"h{index}n{j}i" if group.details else f"h{index}n{j}"
            for guest in group.also:
                yield f"  {hub} -.- {ids[guest]}"
    if graph.with_status:
        yield f"  subgraph legend[{_mermaid_label(['legend'])}]"
        for mark, (_fill, text) in MARKS.items():
            yield f"    legend_{mark.value}[{_mermaid_label([text], bold_first=False)}]"
            yield f"    class legend_{mark.value} {mark.value}"
        yield "  end"
        used = set(MARKS)
    for mark in MARKS:
        if mark in used:
            yield f"  classDef {mark.value} fill:{MARKS[mark][0]},stroke:#424242"


def _mermaid_guest(box: GuestBox) -> Iterator[str]:
    yield box.name
    yield f"{box.hypervisor} · {box.vcpu} vCPU · {box.mem} MiB"
    for link in box.links:
        where = link.network if link.network is not None else link.kind
        for address in link.addresses:
            yield f"{where}: {address}"
        yield f"{link.id} {link.mac}".strip()
    for port in box.ports:
        yield f"port {port}"
    for share in box.store:
        yield f"host {share}"
    if box.mark is not None:
        yield str(box.mark)


# ----------------------------------------------------------------- Graphviz's dot


def run_dot(source: str, format: Literal["svg", "png"], *, timeout: float = 300) -> bytes:
    """Lay DOT text out with Graphviz's ``dot`` (through :func:`nixgen.process.run`).

    The text goes in and the picture comes out through files, since a PNG
    is not text.  :class:`GraphError` when ``dot`` is missing, fails or takes
    longer than ``timeout`` seconds.
    """
    from nixgen import process  # the process runner only when a picture is drawn

    with tempfile.TemporaryDirectory(prefix="nixgen-graph-") as folder:
        source_file = Path(folder) / "graph.dot"
        picture_file = Path(folder) / f"graph.{format}"
        source_file.write_text(source, encoding="utf-8")
        try:
            process.run(["dot", f"-T{format}", "-o", picture_file, source_file], timeout=timeout)
        except CommandNotFoundError:
            raise GraphError(
                f"Graphviz's `dot` is not installed, and it draws the {format.upper()}",
                hint="install Graphviz (Debian/Ubuntu: apt-get install graphviz; Nix: "
                "nix profile install nixpkgs#graphviz), or use --format dot or mermaid",
            ) from None
        except CommandError as err:
            tail = "\n".join(err.stderr.strip().splitlines()[-5:])
            raise GraphError(
                f"`dot -T{format}` failed"
                + (f" with exit code {err.exit_code}" if err.exit_code is not None else "")
                + f": {tail or err.message}",
                hint="this is a bug in nixgen's DOT text: please report it with the output "
                "of `nixgen graph --format dot`",
            ) from err
        return picture_file.read_bytes()


def _write_atomically(path: Path, data: bytes) -> None:
    """``data`` into ``path`` through a temporary file beside it (render's atomic_write
    takes text; a PNG is not).  :class:`GraphError` names the path when it cannot."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, data, mode=0o644)
    except OSError as err:
        raise GraphError(
            f"{path}: the picture could not be written ({err.strerror or err}); nothing changed",
            hint="choose a file in a folder you can write to",
        ) from None
