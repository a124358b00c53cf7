"""Property tests: random set/unset sequences keep every untouched byte and always parse."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tree_sitter import Node

from nixgen.nix import edit
from nixgen.nix.emit import attr_path, to_nix
from nixgen.nix.errors import NixEditError
from nixgen.nix.parse import ATTRSET_TYPES, Document, Step, unwrap

CORPUS = Path(__file__).parent / "corpus"
NIX = shutil.which("nix-instantiate")
G = ("outputs", "nixosConfigurations")

# (corpus file, locator of an attribute set to edit)
TARGETS: list[tuple[str, tuple[Step, ...]]] = [
    ("flakes/template.nix", (*G, "my-microvm", "modules", 1)),
    ("flakes/multi-guest.nix", (*G, "web", "modules", 1)),
    ("flakes/multi-guest.nix", (*G, "db", "modules", 1)),
    ("flakes/comments-everywhere.nix", (*G, "commented", "modules", 1)),
    ("flakes/crlf.nix", (*G, "crlf", "modules", 1)),
    ("flakes/bom.nix", (*G, "bom", "modules", 1)),
    ("flakes/tabs.nix", (*G, "tabbed", "modules", 1)),
    ("flakes/four-spaces.nix", (*G, "arm", "modules", 1)),
    ("flakes/single-line.nix", (*G, "tiny", "modules", 1)),
    ("flakes/empty-sets.nix", (*G, "empty", "modules", 1)),
    ("flakes/trailing-whitespace.nix", (*G, "trail", "modules", 1)),
    ("flakes/unicode.nix", (*G, "gäst", "modules", 1)),
    ("flakes/indented-strings.nix", (*G, "strings", "modules", 1)),
    ("flakes/inherit-from.nix", (*G, "inh", "modules", 1)),
    ("flakes/dotted-guests.nix", (*G, "beta", "modules", 2)),
    ("flakes/let-bound-guests.nix", (*G, "router")),
    ("split/vms/web.nix", ()),
    ("split/hosts/default.nix", ("config",)),
    ("modules/guest-full.nix", ()),
    ("modules/mkif-mkdefault.nix", ()),
    ("modules/host.nix", ("microvm", "vms", "inline", "config")),
]

PATHS: list[tuple[str, ...]] = [
    ("microvm", "mem"),
    ("microvm", "vcpu"),
    ("microvm", "balloon"),
    ("microvm",),
    ("microvm", "qemu", "machine"),
    ("microvm", "shares"),
    ("microvm", "interfaces"),
    ("networking", "hostName"),
    ("networking",),
    ("services", "openssh", "enable"),
    ("services", "openssh", "settings", "PermitRootLogin"),
    ("environment", "etc", "motd", "text"),
    ("fileSystems", "/", "device"),
    ("users", "users", "root", "password"),
    ("system",),
    ("a-b",),
    ("if",),
]

_TEXT = st.one_of(
    st.text(
        st.characters(codec="utf-8", exclude_characters="\x00"),
        max_size=12,
    ),
    st.sampled_from(["", "a\nb\n", "line\n  more\n", "${x} and ''", "tab\there", "é\n"]),
)
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**62), max_value=2**62), _TEXT
)
_KEYS = st.sampled_from(["a", "port", "x-y", "with space", "if", "/"])
VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=3),
    max_leaves=6,
)
OPS = st.lists(
    st.tuples(st.sampled_from(["set", "unset"]), st.sampled_from(PATHS), VALUES),
    min_size=1,
    max_size=6,
)


def shape(node: Node) -> list[tuple[str, int, int]]:
    out: list[tuple[str, int, int]] = []
    cursor = node.walk()
    while True:
        current = cursor.node
        assert current is not None
        out.append((current.type, current.start_byte, current.end_byte))
        if cursor.goto_first_child():
            continue
        while not cursor.goto_next_sibling():
            if not cursor.goto_parent():
                return out


def flat(doc: Document, container: Node) -> dict[tuple[str, ...], str]:
    """Every leaf binding below ``container``: path -> value source text."""
    out: dict[tuple[str, ...], str] = {}

    def walk(node: Node, base: tuple[str, ...]) -> None:
        for b in doc.iter_bindings(node, base):
            value = b.value
            if value is not None and unwrap(value).type in ATTRSET_TYPES and not b.inherited:
                before = len(out)
                walk(unwrap(value), b.path)
                if len(out) > before:
                    continue
            out[b.path] = doc.text_of(value) if value is not None else f"inherit {b.path[-1]}"

    walk(container, ())
    return out


def related(a: Sequence[str], b: Sequence[str]) -> bool:
    n = min(len(a), len(b))
    return tuple(a[:n]) == tuple(b[:n])


def check_step(
    before: Document, after: Document, locator: tuple[Step, ...], path: tuple[str, ...]
) -> None:
    place = before.locate(locator)
    start, end = place.container.start_byte, place.container.end_byte
    grown = len(after.source) - len(before.source)
    # Every byte outside the edited attribute set is untouched.
    assert after.source[:start] == before.source[:start]
    assert after.source[end + grown :] == before.source[end:]
    # Every binding unrelated to the path keeps its text.
    new_place = after.locate(locator)
    old = {
        k: v
        for k, v in flat(before, place.container).items()
        if not related(k, place.prefix + path)
    }
    new = {
        k: v
        for k, v in flat(after, new_place.container).items()
        if not related(k, new_place.prefix + path)
    }
    assert new == old
    # The incremental reparse is the same as a fresh parse.
    fresh = Document.parse(after.source, after.path)
    assert after.sexp() == fresh.sexp()
    assert shape(after.tree.root_node) == shape(fresh.tree.root_node)


def run_ops(
    target: tuple[str, tuple[Step, ...]], ops: list[tuple[str, tuple[str, ...], object]]
) -> Document:
    """Apply the operations, checking each step; the final document."""
    file, locator = target
    doc = Document.load(CORPUS / file)
    for verb, path, value in ops:
        try:
            if verb == "set":
                new = edit.set_value(doc, locator, path, to_nix(value))
            else:
                new = edit.unset(doc, locator, path)
        except NixEditError as err:
            # Refused only where a prefix is not an attribute set literal.
            assert "not an attribute set literal" in str(err), str(err)
            continue
        check_step(doc, new, locator, path)
        place = new.locate(locator)
        found = new.lookup(place.container, place.prefix + path)
        if verb == "set":
            assert len(found.exact) == 1 and not found.inner
            node = new.binding_value(found.exact[0])
            assert node is not None
            assert new.value(node) == value, attr_path(path)
        else:
            assert not found.found
        doc = new
    return doc


_SETTINGS = settings(
    deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@settings(_SETTINGS, max_examples=60)
@given(target=st.sampled_from(TARGETS), ops=OPS)
def test_random_edits_keep_untouched_bytes_and_parse(
    target: tuple[str, tuple[Step, ...]], ops: list[tuple[str, tuple[str, ...], object]]
) -> None:
    run_ops(target, ops)


@pytest.mark.nix
@pytest.mark.skipif(NIX is None, reason="nix not found: apt-get install nix-bin")
@settings(_SETTINGS, max_examples=25)
@given(target=st.sampled_from(TARGETS), ops=OPS)
def test_random_edits_parse_with_real_nix(
    target: tuple[str, tuple[Step, ...]], ops: list[tuple[str, tuple[str, ...], object]]
) -> None:
    doc = run_ops(target, ops)
    done = subprocess.run(
        [NIX or "nix-instantiate", "--parse", "-E", doc.text.removeprefix("\ufeff")],
        capture_output=True,
        text=True,
        check=False,
        cwd=CORPUS,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.nix
@pytest.mark.skipif(NIX is None, reason="nix not found: apt-get install nix-bin")
def test_nix_is_really_checked() -> None:
    # A broken document must fail the same check the property test relies on.
    done = subprocess.run(
        [NIX or "nix-instantiate", "--parse", "-E", "{ a = ; }"],
        capture_output=True,
        check=False,
    )
    assert done.returncode != 0
