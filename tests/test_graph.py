"""`nixgen graph`: the picture of hosts, networks and guests, in DOT, SVG, PNG and Mermaid."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nixgen import Flake, Host, HostVM, Interface, MicroVM, Network, plan_networks
from nixgen.errors import GraphError
from nixgen.graph import (
    MARKS,
    WORD_JOINER,
    Graph,
    GuestMark,
    format_for,
    html_text,
    marks_from_status,
    mermaid_text,
)
from nixgen.project import init_project
from nixgen.runtime import GuestState, GuestStatus
from nixgen.starters import TEMPLATES, Choices, build_template
from tests.clirunner import run_cli
from tests.fleet import make_fleet
from tests.guestimage import cache_dir

HERE = Path(__file__).resolve().parent
SVG = "{http://www.w3.org/2000/svg}"

needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None,
    reason="Graphviz's dot is missing: apt-get install graphviz (scripts/test.sh does)",
)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None or shutil.which("dot") is None,
    reason="chromium and Graphviz's dot are missing: apt-get install chromium graphviz "
    "(scripts/test.sh does)",
)


def mermaid_js() -> Path | None:
    """Mermaid's browser bundle, as scripts/test.sh fetches it (npm pack mermaid@11)."""
    path = cache_dir() / "mermaid" / "package" / "dist" / "mermaid.min.js"
    return path if path.is_file() else None


needs_mermaid = pytest.mark.skipif(
    CHROMIUM is None or mermaid_js() is None,
    reason="chromium or Mermaid is missing: apt-get install chromium, and run scripts/test.sh "
    "(it fetches Mermaid with `npm pack mermaid@11` into the test cache)",
)


@pytest.fixture(scope="module")
def multi() -> Flake:
    return build_template("multi", Choices())


@pytest.fixture(scope="module")
def fleet() -> Flake:
    flake = make_fleet(hosts=5, per_host=40)
    assert len(flake.guests) == 200 and len(flake.hosts) == 5
    return flake


@pytest.fixture(scope="module")
def fleet_svg(fleet: Flake) -> bytes:
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is missing: apt-get install graphviz")
    return Graph.of(fleet).svg()


def model_words(flake: Flake) -> Iterator[str]:
    """Every name, address and MAC of the model that the picture must show once."""
    yield from (g.name for g in flake.guests)
    yield from (h.name for h in flake.hosts)
    plan = plan_networks(flake)
    assert not [p for p in plan.problems if not p.warning]
    for a in plan.attachments:
        yield a.mac
        yield from (str(x) for x in a.addresses)
    for _key, addresses in plan.host_addresses:
        yield from (str(x.ip) for x in addresses)  # the range beside it gives the prefix
    for vm in flake.guests:
        yield from (i.mac or "" for i in vm.resolved_interfaces())


def count(word: str, text: str) -> int:
    """How often ``word`` stands alone in ``text`` (not inside a longer name or address)."""
    return len(re.findall(rf"(?<![\w.:-]){re.escape(word)}(?![\w:/-]|\.\w)", text))


def assert_each_once(flake: Flake, text: str) -> None:
    words = list(model_words(flake))
    assert len(words) == len(set(words)), "the test model repeats a word"
    wrong = {w: n for w in words if (n := count(w, text)) != 1}
    assert not wrong, f"not shown exactly once: {dict(list(wrong.items())[:10])}"


# ------------------------------------------------------------------ DOT and Mermaid text


def test_multi_template_dot_shows_each_guest_host_and_address_once(multi: Flake) -> None:
    dot = Graph.of(multi).dot()
    assert dot.startswith("digraph nixgen {")
    assert_each_once(multi, dot)
    for fact in ("qemu · 1 vCPU · 512 MiB", "bridge microvm", "10.0.0.0/24", "NAT", "/nix/store"):
        assert fact in dot


def test_fleet_dot_and_mermaid_show_each_guest_host_and_address_once(fleet: Flake) -> None:
    graph = Graph.of(fleet)
    assert_each_once(fleet, graph.dot())
    assert_each_once(fleet, html.unescape(graph.mermaid()))


def test_every_kind_of_network_forwarded_ports_and_store_shares_are_drawn(fleet: Flake) -> None:
    graph = Graph.of(fleet)
    alpha = graph.hosts[0]
    assert alpha.name == "alpha"
    assert [(g.kind, g.title) for g in alpha.groups] == [
        ("bridge", "lan"),
        ("routed", "dmz"),
        ("macvtap", "uplink"),
        ("user", "user networking"),
    ]
    dmz = alpha.groups[1]
    # The two bridge guests also on the routed network are drawn once, joined to it.
    assert dmz.also == ("alpha-vm000", "alpha-vm001")
    assert "alpha-vm000" in alpha.groups[0].guests
    both = graph.guests["alpha-vm000"]
    assert [link.network for link in both.links] == ["lan", "dmz"]
    user = graph.guests[alpha.groups[3].guests[0]]
    assert user.ports == ("tcp 2238 → 22",)
    assert user.store == ("/nix/store (9p)",)
    dot = graph.dot()
    assert dot.count("constraint=false") == 2 * 5
    assert "a guest on a further network of its host" in dot
    assert "a guest on a further network" not in Graph.of(build_template("multi", Choices())).dot()
    assert "macvtap on eno1 (bridge)" in dot and "gateway 172.16.0.254" in dot
    assert "port tcp 2238 → 22" in dot


def test_guests_no_host_runs_are_drawn_in_a_box_of_their_own() -> None:
    flake = Flake(
        guests=[
            MicroVM(name="solo", interfaces=[Interface.user()]),
            MicroVM(name="quiet"),
            MicroVM(name="hosted", interfaces=[Interface.tap_device("vm-hosted")]),
        ],
        hosts=[Host(name="rack7", vms=[HostVM(name="hosted")])],
    )
    graph = Graph.of(flake)
    assert [h.name for h in graph.hosts] == ["rack7", None]
    assert [(g.kind, g.guests) for g in graph.hosts[0].groups] == [("none", ("hosted",))]
    assert graph.hosts[0].groups[0].title == "own interfaces"
    assert [(g.kind, g.guests) for g in graph.hosts[1].groups] == [
        ("user", ("solo",)),
        ("none", ("quiet",)),
    ]
    assert_each_once(flake, graph.dot())


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_every_init_template_is_drawn(template: str) -> None:
    flake = build_template(template, Choices())
    graph = Graph.of(flake)
    assert_each_once(flake, graph.dot())
    assert_each_once(flake, html.unescape(graph.mermaid()))
    if shutil.which("dot"):
        svg = graph.svg()
        assert_each_once(flake, svg_texts(svg))


@pytest.mark.parametrize(
    "flake",
    [
        Flake(),
        Flake(hosts=[Host(name="idle"), Host(name="spare", networks=[Network.bridged("lan", [])])]),
    ],
    ids=["nothing", "hosts-without-guests"],
)
def test_a_project_with_nothing_to_show_still_draws(flake: Flake) -> None:
    graph = Graph.of(flake)
    assert [h.name for h in graph.hosts] == [h.name for h in flake.hosts]
    assert graph.dot().startswith("digraph nixgen {")
    assert graph.mermaid().startswith("flowchart TB\n")
    if shutil.which("dot"):
        assert b"<svg" in graph.svg()


def test_mermaid_nests_networks_in_hosts(multi: Flake) -> None:
    text = Graph.of(multi).mermaid()
    lines = text.splitlines()
    assert lines[0] == "flowchart TB"
    # Titles of one line (Mermaid draws a longer one over the contents); details in a node.
    assert lines[1] == '  subgraph h0["<b>vmhost</b>"]'
    assert lines[3] == '    h0i["x86_64-linux"]'
    assert lines[4] == '    subgraph h0n0["<b>lan</b>"]'
    assert lines[5].startswith('      h0n0i["bridge microvm<br>10.0.0.0/24<br>host 10.0.0.1')
    assert sum(1 for line in lines if re.match(r" *g\d+\[", line)) == 3
    assert text.count("subgraph") == text.count("end\n") == 2
    assert "style h0n0 stroke:#1565c0" in text


# ------------------------------------------------------------------ escaping


HOSTILE = [
    'a"b',
    "x]; evil [label=<b>",
    "<B>bold</B> & more",
    "#35; entity",
    "pipe|and`tick`",
    "end",
    "new\nline\ttab",
    "back\\slash",
    "\\N \\G \\\\ \\L",
    "ünïcödé → ✓",
    "{curly} (round) [square]",
    "%%{init: {'theme': 'dark'}}%%",
    "click g0 call alert()",
    "`markdown`",
    "&amp; #quot;",
    "--> x:::cls",
    "<img src=x onerror=alert(1)>",
]
#: what a picture shows of a name: control characters made visible
SHOWN = {"new\nline\ttab": "new\\x0aline\\x09tab"}
#: what may stand in a Mermaid label besides plain text: HTML's named entities
MERMAID_ENTITY = re.compile(r"&(?:amp|lt|gt|quot|num|semi|percnt|grave);")


@pytest.mark.parametrize("text", HOSTILE)
def test_mermaid_text_leaves_nothing_mermaid_or_html_reads(text: str) -> None:
    escaped = mermaid_text(text)
    assert not set(MERMAID_ENTITY.sub("", escaped)) & set('"<>&#;%`\n'), escaped
    assert html.unescape(escaped) == SHOWN.get(text, text)


@given(st.text())
def test_mermaid_text_round_trips(text: str) -> None:
    escaped = mermaid_text(text)
    assert not set(MERMAID_ENTITY.sub("", escaped)) & set('"<>&#;%`')
    if all(c.isprintable() or c == " " for c in text):
        assert html.unescape(escaped) == text


@given(st.text())
def test_html_text_round_trips(text: str) -> None:
    escaped = html_text(text)
    assert not set(escaped) & set("<>\"'")
    assert "&" not in re.sub(r"&(?:amp|lt|gt|quot|#x27|#8288);", "", escaped)
    # No backslash escape of Graphviz's (\N, \G, \\, …) is left in it.
    assert not re.search(r"\\[^&]|\\$", escaped)
    if all(c.isprintable() or c == " " for c in text):
        assert html.unescape(escaped).replace(WORD_JOINER, "") == text


def hostile_flake() -> Flake:
    guests = [
        MicroVM(name=f"g{i}-{name}", interfaces=[Interface.user()])
        for i, name in enumerate(HOSTILE)
    ]
    hosts = [
        Host(
            name='host "<one>" & #1;',
            vms=[HostVM(name=g.name) for g in guests[:6]],
            networks=[Network.bridged('net "]<x>', [g.name for g in guests[:6]])],
        )
    ]
    return Flake(guests=guests, hosts=hosts)


@needs_dot
def test_hostile_names_reach_the_svg_as_text() -> None:
    """Quotes, markup, brackets and newlines in names end up as text, not as DOT or SVG."""
    flake = hostile_flake()
    svg = Graph.of(flake).svg()
    texts = [(t.text or "").replace(WORD_JOINER, "") for t in ET.fromstring(svg).iter(f"{SVG}text")]
    assert 'host "<one>" & #1;' in texts
    assert 'net "]<x>' in texts
    for guest in flake.guests:
        shown = guest.name.replace("\n", "\\x0a").replace("\t", "\\x09")
        assert texts.count(shown) == 1, guest.name


@needs_dot
@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=4, unique=True),
    st.text(min_size=1, max_size=12),
    st.text(min_size=1, max_size=12),
)
def test_any_names_lay_out_and_reach_the_svg(guests: list[str], host: str, network: str) -> None:
    """Whatever the names, dot reads the text nixgen writes, and shows each name."""
    flake = Flake(
        guests=[MicroVM(name=g) for g in guests],
        hosts=[
            Host(
                name=host,
                vms=[HostVM(name=g) for g in guests],
                networks=[Network.bridged(network, guests[:1])],
            )
        ],
    )
    svg = Graph.of(flake).svg()
    texts = [(t.text or "").replace(WORD_JOINER, "") for t in ET.fromstring(svg).iter(f"{SVG}text")]

    def shown(name: str) -> str:
        return "".join(c if c.isprintable() or c == " " else f"\\x{ord(c):02x}" for c in name)

    for name in [*guests, host, network]:
        # Graphviz trims the spaces around a label's text.
        assert shown(name).strip() in [t.strip() for t in texts], name


def test_hostile_names_stay_inside_mermaid_labels() -> None:
    text = Graph.of(hostile_flake()).mermaid()
    for line in text.splitlines():
        # Each line is one statement: its labels are quoted, and nothing in them ends a quote.
        assert line.count('"') in (0, 2), line
        assert not re.search(r'"[^"]*[<>][^"]*"', re.sub(r"</?b>|<br>", "", line)), line
    assert "g3-&num;35&semi; entity" in text


# ------------------------------------------------------------------ runtime state


def status(name: str, state: GuestState, **fields: object) -> GuestStatus:
    return GuestStatus(name=name, state=state, state_dir=Path("/nowhere") / name, **fields)  # type: ignore[arg-type]


def test_marks_follow_what_nixgen_status_says() -> None:
    runner = Path("/nix/store/aaa-runner")
    other = Path("/nix/store/bbb-runner")
    found = [
        status("up", GuestState.RUNNING, current=runner, outdated=False),
        status("down", GuestState.STOPPED, current=runner, outdated=False),
        status("never", GuestState.STOPPED),
        status("boom", GuestState.CRASHED, current=runner, outdated=True),
        status("old", GuestState.RUNNING, current=runner, expected=other, outdated=True),
        status("stale", GuestState.RUNNING, current=runner, booted=other, stale=True),
    ]
    assert marks_from_status(found) == {
        "up": GuestMark.RUNNING,
        "down": GuestMark.STOPPED,
        "never": GuestMark.STOPPED,
        "boom": GuestMark.CRASHED,
        "old": GuestMark.OUTDATED,
        "stale": GuestMark.STALE,
    }


def node_fill(dot: str, label_name: str) -> str:
    for line in dot.splitlines():
        if f"<B>{label_name}</B>" in line:
            found = re.search(r'fillcolor="?([^" \]]+)', line)
            assert found is not None
            return found.group(1)
    raise AssertionError(f"no node for {label_name}")


def test_status_colours_each_guest_and_the_legend_explains_them(multi: Flake) -> None:
    marks = {"web": GuestMark.RUNNING, "db": GuestMark.CRASHED, "cache": GuestMark.STALE}
    plain = Graph.of(multi).dot()
    coloured = Graph.of(multi, status=marks).dot()
    assert {node_fill(plain, n) for n in marks} == {"white"}
    for name, mark in marks.items():
        assert node_fill(coloured, name) == MARKS[mark][0]
    for _fill, text in MARKS.values():
        assert text in coloured and text not in plain
    mermaid = Graph.of(multi, status=marks).mermaid()
    assert "class g0 running" in mermaid and "class g1 crashed" in mermaid
    assert "classDef stale fill:#ffcc80" in mermaid


def test_cli_status_colours_guests_from_the_runtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fake runtime state: Runtime.status answers as it would for three guests."""
    from nixgen.runtime import Runtime

    init_project(tmp_path / "p", template="multi", git_add=False)
    seen: dict[str, object] = {}

    def fake_status(self: Runtime, names: object = None, **kw: object) -> list[GuestStatus]:
        seen.update(kw, project=self.project, root=self.state_root)
        runner = Path("/nix/store/aaa-runner")
        return [
            status("web", GuestState.RUNNING, current=runner, outdated=False),
            status("db", GuestState.RUNNING, current=runner, outdated=True),
            status("cache", GuestState.CRASHED),
        ]

    monkeypatch.setattr(Runtime, "status", fake_status)
    state = tmp_path / "state"
    result = run_cli(
        ["graph", str(tmp_path / "p"), "--status", "--no-eval", "--state-dir", str(state)],
    )
    assert result.exit_code == 0, result.output
    assert seen["evaluate"] is False and seen["root"] == state.resolve()
    dot = result.output
    assert node_fill(dot, "web") == MARKS[GuestMark.RUNNING][0]
    assert node_fill(dot, "db") == MARKS[GuestMark.OUTDATED][0]
    assert node_fill(dot, "cache") == MARKS[GuestMark.CRASHED][0]


def test_cli_status_reads_the_state_folders(tmp_path: Path) -> None:
    """The real runtime over state folders written as a run leaves them: one guest
    ended with exit code 3 (crashed), one was stopped by nixgen, one never ran."""
    from nixgen.runtime import ExitRecord, StateDir

    init_project(tmp_path / "p", template="multi", git_add=False)
    state = tmp_path / "state"
    for name, code, requested in (("db", 3, False), ("web", None, True)):
        folder = StateDir.under(state, name)
        folder.create()
        folder.write_exit(
            ExitRecord(
                pid=4242,
                exit_code=code,
                signal=None if code is not None else 15,
                started_at=1.0,
                ended_at=2.0,
                requested=requested,
            )
        )
    code, out = invoke(
        "graph", str(tmp_path / "p"), "--status", "--no-eval", "--state-dir", str(state)
    )
    assert code == 0, out
    assert node_fill(out, "db") == MARKS[GuestMark.CRASHED][0]
    assert node_fill(out, "web") == MARKS[GuestMark.STOPPED][0]
    assert node_fill(out, "cache") == MARKS[GuestMark.STOPPED][0]


def test_cli_status_with_no_state_shows_every_guest_stopped(tmp_path: Path) -> None:
    """The real runtime, no fake: guests never started are stopped."""
    init_project(tmp_path / "p", template="multi", git_add=False)
    state = tmp_path / "state"
    state.mkdir()
    code, out = invoke(
        "graph", str(tmp_path / "p"), "--status", "--no-eval", "--state-dir", str(state)
    )
    assert code == 0, out
    for name in ("web", "db", "cache"):
        assert node_fill(out, name) == MARKS[GuestMark.STOPPED][0]
    assert "stale: booted another runner than current" in out


# ------------------------------------------------------------------ the command line


def invoke(*args: str) -> tuple[int, str]:
    result = run_cli(list(args))
    return result.exit_code, result.output


def test_cli_prints_dot_and_mermaid(tmp_path: Path) -> None:
    init_project(tmp_path / "p", template="multi", git_add=False)
    code, out = invoke("graph", str(tmp_path / "p"))
    assert code == 0 and out.startswith("digraph nixgen {")
    code, out = invoke("graph", str(tmp_path / "p"), "--format", "mermaid")
    assert code == 0 and out.startswith("flowchart TB\n")


@needs_dot
def test_cli_writes_svg_and_png_by_suffix(tmp_path: Path) -> None:
    init_project(tmp_path / "p", template="multi", git_add=False)
    code, out = invoke("graph", str(tmp_path / "p"), "-o", str(tmp_path / "out.svg"))
    assert code == 0, out
    svg = (tmp_path / "out.svg").read_bytes()
    assert b"<svg" in svg and b">web</text>" in svg
    code, out = invoke("graph", str(tmp_path / "p"), "-o", str(tmp_path / "out.png"))
    assert code == 0, out
    assert (tmp_path / "out.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert format_for("x.gv") == "dot" and format_for("x.mmd") == "mermaid"
    code, out = invoke("graph", str(tmp_path / "p"), "-o", str(tmp_path / "out.jpg"))
    assert code == 2 and "Pass --format, or name the file *.dot, *.gv, *.svg" in out
    assert not (tmp_path / "out.jpg").exists()


def test_missing_dot_is_named_with_its_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    init_project(tmp_path / "p", template="multi", git_add=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(GraphError, match="apt-get install graphviz"):
        Graph.of(build_template("multi", Choices())).svg()
    code, out = invoke("graph", str(tmp_path / "p"), "-o", str(tmp_path / "out.svg"))
    assert code == 1
    assert "Graphviz's `dot` is not installed" in out and "apt-get install graphviz" in out
    assert not (tmp_path / "out.svg").exists()
    # DOT and Mermaid need no Graphviz.
    assert invoke("graph", str(tmp_path / "p"))[0] == 0


def test_an_output_path_that_cannot_be_written_is_named(tmp_path: Path) -> None:
    init_project(tmp_path / "p", template="multi", git_add=False)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    code, out = invoke("graph", str(tmp_path / "p"), "-o", str(blocker / "out.dot"))
    assert code == 1
    assert f"{blocker / 'out.dot'}: the picture could not be written" in out
    assert blocker.read_text() == "not a folder\n"
    # An existing picture is replaced whole, and no temporary file is left beside it.
    target = tmp_path / "out.dot"
    target.write_text("old\n")
    assert invoke("graph", str(tmp_path / "p"), "-o", str(target))[0] == 0
    assert target.read_text().startswith("digraph nixgen {")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "out.dot", "p"]


def test_invalid_project_reports_problems_and_writes_nothing(tmp_path: Path) -> None:
    init_project(tmp_path / "p", template="multi", git_add=False)
    toml = tmp_path / "p/nixgen.toml"
    toml.write_text(toml.read_text().replace('ipv4 = "10.0.0.0/24"', 'ipv4 = "10.0.0.0/33"'))
    code, out = invoke("graph", str(tmp_path / "p"), "-o", str(tmp_path / "out.dot"))
    assert code == 1
    assert 'hosts["vmhost"].networks["lan"].ipv4' in out
    assert not (tmp_path / "out.dot").exists()


def test_a_folder_without_a_project_is_named(tmp_path: Path) -> None:
    code, out = invoke("graph", str(tmp_path))
    assert code == 1
    assert f"{tmp_path.resolve()}: no nixgen.toml or flake.nix here" in out
    assert "nixgen graph DIR" in out


def test_a_hand_written_flake_is_drawn_from_its_guests(tmp_path: Path) -> None:
    init_project(tmp_path / "p", template="multi", git_add=False)
    (tmp_path / "p/nixgen.toml").unlink()
    code, out = invoke("graph", str(tmp_path / "p"), "--format", "mermaid")
    assert code == 0, out
    for name in ("web", "db", "cache"):
        assert f"<b>{name}</b>" in out


# ------------------------------------------------------------------ Graphviz and a browser


@needs_dot
def test_dot_lays_out_the_multi_template_and_the_fleet(multi: Flake, fleet_svg: bytes) -> None:
    for svg in (Graph.of(multi).svg(), fleet_svg):
        root = ET.fromstring(svg)
        assert root.tag == f"{SVG}svg"
    # dot itself, on the text nixgen prints: exit code 0 and no warning.
    done = subprocess.run(
        ["dot", "-Tsvg"], input=Graph.of(multi).dot().encode(), capture_output=True, check=False
    )
    assert done.returncode == 0 and done.stderr == b"", done.stderr


def points(element: ET.Element) -> list[tuple[float, float]]:
    text = element.get("points", "")
    return [(float(x), float(y)) for x, y in (p.split(",") for p in text.split())]


def node_boxes(svg: bytes) -> dict[str, tuple[float, float, float, float]]:
    """Each node's outline (from the SVG's geometry) as (x0, y0, x1, y1)."""
    boxes = {}
    for group in ET.fromstring(svg).iter(f"{SVG}g"):
        if group.get("class") != "node":
            continue
        title = group.findtext(f"{SVG}title") or ""
        corners = [
            xy for shape in group.iter() if shape.tag in (f"{SVG}polygon",) for xy in points(shape)
        ]
        corners += [
            (float(x), float(y))
            for path in group.iter(f"{SVG}path")
            for x, y in re.findall(r"(-?[\d.]+),(-?[\d.]+)", path.get("d", ""))
        ]
        xs, ys = [x for x, _ in corners], [y for _, y in corners]
        boxes[title] = (min(xs), min(ys), max(xs), max(ys))
    return boxes


@needs_dot
def test_no_two_label_boxes_overlap_in_the_fleet_svg(fleet: Flake, fleet_svg: bytes) -> None:
    boxes = node_boxes(fleet_svg)
    # 200 guests, 5 hosts, their 20 networks, and the legend.
    assert len(boxes) == 200 + 5 + 20 + 1
    ordered = sorted(boxes.items(), key=lambda item: item[1][0])
    clashes = []
    for i, (name, (_x0, y0, x1, y1)) in enumerate(ordered):
        for other, (u0, v0, _u1, v1) in ordered[i + 1 :]:
            if u0 >= x1:
                break
            if v0 < y1 and y0 < v1:
                clashes.append((name, other))
    assert clashes == []
    # Readable at fleet size: about as wide as tall, not a 200-guest banner.
    root = ET.fromstring(fleet_svg)
    width, height = (float(root.get(k, "0").removesuffix("pt")) for k in ("width", "height"))
    assert 0.5 < width / height < 3, (width, height)


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def dump_result(page: Path, profile: Path, *extra: str) -> dict[str, object]:
    """Open ``page`` in headless chromium; the JSON its script left in <pre id="result">."""
    assert CHROMIUM is not None
    dom = subprocess.run(
        [
            CHROMIUM,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            *extra,
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=240,
        check=True,
        text=True,
    ).stdout
    found = re.search(r'<pre id="result">(.*?)</pre>', dom, re.S)
    assert found is not None, dom[-2000:]
    result: dict[str, object] = json.loads(html.unescape(found.group(1)))
    return result


def browse(tmp_path: Path, svg: bytes, name: str) -> tuple[Path, dict[str, object]]:
    """Open the SVG in headless chromium: a screenshot, and the page measured by svg_geometry.js."""
    assert CHROMIUM is not None
    picture = tmp_path / f"{name}.svg"
    picture.write_bytes(svg)
    shot = tmp_path / f"{name}.png"
    subprocess.run(
        [
            CHROMIUM,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile-shot'}",
            "--window-size=1280,900",
            f"--screenshot={shot}",
            picture.as_uri(),
        ],
        capture_output=True,
        timeout=240,
        check=True,
    )
    inline = svg.decode()
    page = tmp_path / f"{name}.html"
    page.write_text(
        "<!DOCTYPE html><html><body>"
        + inline[inline.index("<svg") :]
        + '<pre id="result"></pre><script>'
        + (HERE / "svg_geometry.js").read_text()
        + "</script></body></html>"
    )
    return shot, dump_result(page, tmp_path / "profile-dom")


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@needs_chromium
def test_a_browser_draws_the_multi_template(tmp_path: Path, multi: Flake) -> None:
    shot, measured = browse(tmp_path, Graph.of(multi).svg(), "multi")
    assert png_size(shot) == (1280, 900)
    # A blank page compresses to a few hundred bytes; a drawing does not.
    assert shot.stat().st_size > 10_000
    texts = measured["texts"]
    assert isinstance(texts, list)
    for name in ("web", "db", "cache", "vmhost", "lan"):
        assert texts.count(name) == 1, name
    assert measured["outside"] == [] and measured["overlapping"] == []


@needs_chromium
def test_a_browser_finds_every_guest_of_the_fleet_without_overlaps(
    tmp_path: Path, fleet: Flake, fleet_svg: bytes
) -> None:
    shot, measured = browse(tmp_path, fleet_svg, "fleet")
    assert png_size(shot) == (1280, 900) and shot.stat().st_size > 10_000
    texts = measured["texts"]
    assert isinstance(texts, list)
    for guest in fleet.guests:
        assert texts.count(guest.name) == 1, guest.name
    assert measured["nodes"] == 226
    assert measured["outside"] == [], measured["outside"][:5]  # type: ignore[index]
    assert measured["overlapping"] == [], measured["overlapping"][:5]  # type: ignore[index]


def svg_texts(svg: bytes) -> str:
    return "\n".join(t.text or "" for t in ET.fromstring(svg).iter(f"{SVG}text"))


@pytest.mark.parametrize("name", ["multi.svg", "fleet-status.svg"])
def test_the_pictures_in_the_docs_show_their_models(name: str) -> None:
    """docs/images/ is written by scripts/docs-pictures.py: a stale picture fails here."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "docs_pictures", HERE.parent / "scripts" / "docs-pictures.py"
    )
    assert spec is not None and spec.loader is not None
    pictures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pictures)
    if name == "multi.svg":
        flake = build_template("multi", Choices())
    else:
        flake = make_fleet(hosts=2, per_host=10)
        graph = pictures.fleet_status_graph()
        assert {box.mark for box in graph.guests.values()} == set(GuestMark)
    text = svg_texts((HERE.parent / "docs" / "images" / name).read_bytes())
    assert_each_once(flake, text)
    assert (name == "fleet-status.svg") == ("stale: booted another runner than current" in text)
    assert "images/" + name in (HERE.parent / "docs" / "graph.md").read_text()


def draw_mermaid(tmp_path: Path, text: str) -> dict[str, object]:
    """Mermaid's own drawing of ``text`` in chromium: the texts of its nodes and subgraphs."""
    script = mermaid_js()
    assert script is not None
    page = tmp_path / "mermaid.html"
    page.write_text(
        '<!DOCTYPE html><html><body><pre id="result"></pre>'
        f'<script src="{script.as_uri()}"></script>'
        f"<script>window.MERMAID_TEXT = {json.dumps(text)};</script>"
        f"<script>{(HERE / 'mermaid_render.js').read_text()}</script></body></html>"
    )
    return dump_result(
        page,
        tmp_path / "profile-mermaid",
        "--allow-file-access-from-files",
        "--virtual-time-budget=30000",
    )


@needs_mermaid
def test_mermaid_draws_the_multi_template(tmp_path: Path, multi: Flake) -> None:
    drawn = draw_mermaid(tmp_path, Graph.of(multi).mermaid())
    assert "error" not in drawn, drawn
    nodes, clusters = drawn["nodes"], drawn["clusters"]
    assert isinstance(nodes, list) and isinstance(clusters, list)
    guests = [n for n in nodes if "qemu" in n]
    assert [n.split("qemu")[0] for n in guests] == ["web", "db", "cache"]
    assert "lan: 10.0.0.2/24" in guests[0] and "host /nix/store (9p)" in guests[0]
    assert sorted(clusters) == ["lan", "vmhost"]
    assert "x86_64-linux" in nodes and any(n.startswith("bridge microvm") for n in nodes)
    assert drawn["overlapping"] == []


@needs_mermaid
def test_mermaid_shows_hostile_names_as_they_are(tmp_path: Path) -> None:
    """Quotes, markup, directives, entity codes and backticks in names: Mermaid shows them."""
    flake = hostile_flake()
    drawn = draw_mermaid(tmp_path, Graph.of(flake).mermaid())
    assert "error" not in drawn, drawn
    nodes, clusters = drawn["nodes"], drawn["clusters"]
    assert isinstance(nodes, list) and isinstance(clusters, list)
    for guest in flake.guests:
        shown = SHOWN.get(guest.name.split("-", 1)[1], guest.name.split("-", 1)[1])
        name = guest.name.split("-", 1)[0] + "-" + shown
        assert sum(1 for n in nodes if n.startswith(name + "qemu")) == 1, name
    assert 'host "<one>" & #1;' in clusters and 'net "]<x>' in clusters, clusters
    assert drawn["overlapping"] == []


@needs_mermaid
def test_mermaid_draws_a_host_of_every_network_kind_without_overlaps(tmp_path: Path) -> None:
    flake = make_fleet(hosts=1, per_host=10)
    drawn = draw_mermaid(tmp_path, Graph.of(flake).mermaid())
    assert "error" not in drawn, drawn
    clusters = drawn["clusters"]
    assert isinstance(clusters, list)
    assert sorted(clusters) == ["alpha", "dmz", "lan", "uplink", "user networking"]
    nodes = drawn["nodes"]
    assert isinstance(nodes, list)
    for guest in flake.guests:
        assert sum(1 for n in nodes if n.startswith(guest.name)) == 1, guest.name
    assert drawn["overlapping"] == []


def test_the_mermaid_example_in_the_docs_is_what_nixgen_prints(multi: Flake) -> None:
    text = (HERE.parent / "docs" / "graph.md").read_text()
    block = re.search(r"^```mermaid\n(.*?)^```$", text, re.M | re.S)
    assert block is not None
    assert block.group(1) == Graph.of(multi).mermaid()
