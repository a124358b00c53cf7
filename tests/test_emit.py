"""The Nix serializer: layout, escaping, and real Nix as the oracle."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import PurePosixPath
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nixgen.errors import NixEmitError, NixgenError
from nixgen.model import Nix
from nixgen.nix.emit import (
    _syntax_problem,
    application,
    attr_name,
    binding,
    bindings,
    parse_attr_path,
    quote_string,
    to_nix,
)
from nixgen.nix.errors import NixSyntaxError
from nixgen.nix.parse import Document

NIX_INSTANTIATE = shutil.which("nix-instantiate")
needs_nix = pytest.mark.skipif(
    NIX_INSTANTIATE is None, reason="nix not found: apt-get install nix-bin (see README)"
)


def nix_eval(text: str) -> Any:
    """Evaluate Nix text with the real evaluator and return it as JSON data."""
    assert NIX_INSTANTIATE is not None
    proc = subprocess.run(
        [NIX_INSTANTIATE, "--eval", "--strict", "--json", "-E", text],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, f"nix rejected:\n{text}\n---\n{proc.stderr}"
    return json.loads(proc.stdout)


def nix_parses(text: str) -> bool:
    assert NIX_INSTANTIATE is not None
    proc = subprocess.run(
        [NIX_INSTANTIATE, "--parse", "-E", text], capture_output=True, text=True, check=False
    )
    return proc.returncode == 0


# ----------------------------------------------------------------- layout


def test_scalars() -> None:
    assert to_nix(None) == "null"
    assert to_nix(True) == "true"
    assert to_nix(False) == "false"
    assert to_nix(42) == "42"
    assert to_nix(-7) == "-7"
    assert to_nix(1.5) == "1.5"
    assert to_nix(1e20) == "1.0e+20"
    assert to_nix("hi") == '"hi"'


def test_empty_collections_use_nixfmt_spacing() -> None:
    assert to_nix([]) == "[ ]"
    assert to_nix({}) == "{ }"


def test_short_scalar_list_stays_on_one_line() -> None:
    assert to_nix(["a", "b"]) == '[\n  "a"\n  "b"\n]' or to_nix(["a", "b"]) == '[ "a" "b" ]'
    assert to_nix(["a", "b"]) == '[ "a" "b" ]'


def test_long_list_breaks_one_item_a_line() -> None:
    items = ["x" * 40, "y" * 40, "z" * 40]
    assert to_nix(items) == "[\n" + "".join(f'  "{i}"\n' for i in items) + "]"


def test_attrset_layout_and_dotted_collapse() -> None:
    value = {"services": {"openssh": {"enable": True}}, "a": {"b": 1, "c": 2}}
    assert to_nix(value) == (
        "{\n  services.openssh.enable = true;\n  a = {\n    b = 1;\n    c = 2;\n  };\n}"
    )


def test_nested_list_of_attrsets_is_indented_like_nixfmt() -> None:
    text = bindings({"interfaces": [{"type": "user", "id": "eth0"}]}, 1)
    assert text == (
        '  interfaces = [\n    {\n      type = "user";\n      id = "eth0";\n    }\n  ];'
    )


def test_binding_width_counts_the_key() -> None:
    key = "extra-trusted-public-keys"
    text = bindings({key: ["k" * 70]}, 2)
    assert text.startswith(f"    {key} = [\n")


def test_negative_numbers_and_applications_are_parenthesised_in_lists() -> None:
    assert to_nix([-1, 2, -0.0]) == "[ (-1) 2 (0.0 * -1) ]"
    assert to_nix([Nix("lib.mkDefault 1"), Nix("pkgs.hello")]) == "[ (lib.mkDefault 1) pkgs.hello ]"


def test_one_binding_and_an_application_as_a_person_writes_them() -> None:
    assert binding(["microvm", "mem"], 4096) == "microvm.mem = 4096;"
    assert binding(["users", "a b"], "x") == 'users."a b" = "x";'
    assert application("lib.mkForce", 4096) == Nix("lib.mkForce 4096")
    assert application("lib.mkForce", -1) == Nix("lib.mkForce (-1)")
    assert application("lib.mkForce", Nix("pkgs.f x")) == Nix("lib.mkForce (pkgs.f x)")
    assert application("lib.mkForce", [1, -2]) == Nix("lib.mkForce [ 1 (-2) ]")


def test_attribute_names() -> None:
    assert attr_name("foo") == "foo"
    assert attr_name("foo-bar_baz'") == "foo-bar_baz'"
    assert attr_name("foo.bar") == '"foo.bar"'
    assert attr_name("1abc") == '"1abc"'
    assert attr_name("") == '""'
    assert attr_name("in") == '"in"'
    assert attr_name("${x}") == '"\\${x}"'


def test_parse_attr_path_follows_nix_quoting() -> None:
    assert parse_attr_path('environment.etc."x.conf".text') == [
        "environment",
        "etc",
        "x.conf",
        "text",
    ]
    with pytest.raises(NixEmitError):
        parse_attr_path("a..b")
    with pytest.raises(NixEmitError):
        parse_attr_path('a."b')


def test_paths() -> None:
    assert to_nix(PurePosixPath("vms/web.nix")) == "./vms/web.nix"
    assert to_nix(PurePosixPath("../m.nix")) == "../m.nix"
    assert to_nix(PurePosixPath("/etc/x")) == "/etc/x"
    assert to_nix(PurePosixPath("/a b/c")) == '/. + "/a b/c"'
    with pytest.raises(NixEmitError, match="relative path"):
        to_nix(PurePosixPath("a b/c"))


def test_multiline_strings_use_indented_strings() -> None:
    text = to_nix({"script": "echo hi\necho ${HOME} ''\n"}, 0)
    assert text == "{\n  script = ''\n    echo hi\n    echo ''${HOME} '''\n  '';\n}"


def test_values_nix_cannot_hold_are_refused() -> None:
    with pytest.raises(NixEmitError, match="NUL"):
        to_nix("a\x00b")
    with pytest.raises(NixEmitError, match="surrogate"):
        to_nix("a\ud800b")
    with pytest.raises(NixEmitError, match="64-bit"):
        to_nix(2**63)
    with pytest.raises(NixEmitError, match="subnormal"):
        to_nix(5e-324)
    with pytest.raises(NixEmitError, match="finite"):
        to_nix(math.inf)
    with pytest.raises(NixEmitError, match="no Nix spelling"):
        to_nix({1, 2})
    with pytest.raises(NixEmitError, match="attribute names must be strings"):
        to_nix({1: 2})


def test_raw_expression_is_verbatim_and_reindented() -> None:
    expr = Nix("{\n  a = 1;\n}")
    assert to_nix({"x": expr}) == "{\n  x = {\n    a = 1;\n  };\n}"
    with pytest.raises(NixgenError, match="empty Nix expression"):
        Nix("  ")


# ----------------------------------------------------------------- real Nix as the oracle

# Strings mixing everything that needs escaping in either string kind.
_tricky = st.sampled_from(
    [
        "${",
        "$${",
        "''",
        "'''",
        "''$",
        "\\",
        '"',
        "\n",
        "\r",
        "\t",
        "$",
        "'",
        "{",
        "}",
        " ",
        "é",
        "☃",
    ]
)
nix_strings = st.lists(
    st.one_of(
        _tricky,
        st.text(
            st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]), max_size=5
        ),
    ),
    max_size=12,
).map("".join)
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1),
    nix_strings,
)
keys = st.one_of(nix_strings, st.from_regex(r"[a-z][a-z0-9-]{0,6}", fullmatch=True))
values = st.recursive(
    leaves,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=20,
)


@needs_nix
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(values, min_size=1, max_size=15))
def test_real_nix_reads_back_what_was_written(batch: list[Any]) -> None:
    # One evaluation per batch keeps the suite fast.
    assert nix_eval(to_nix(batch)) == batch


@needs_nix
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(values, min_size=1, max_size=10))
def test_real_nix_applies_a_function_to_each_argument_written(batch: list[Any]) -> None:
    """Every argument stands as one: an identity function gives each value back,
    and a binding of it reads back at its path."""
    applied = to_nix([application("id", value) for value in batch])
    assert nix_eval(f"let id = x: x; in {applied}") == batch
    written = " ".join(binding(["a", "b", str(i)], v) for i, v in enumerate(batch))
    assert nix_eval(f"{{ {written} }}") == {"a": {"b": {str(i): v for i, v in enumerate(batch)}}}


@needs_nix
@settings(max_examples=20, deadline=None)
@given(st.lists(nix_strings, min_size=1, max_size=20))
def test_strings_round_trip_in_both_string_kinds(batch: list[str]) -> None:
    quoted = "[ " + " ".join(quote_string(s) for s in batch) + " ]"
    assert nix_eval(quoted) == batch
    multi = [s + "\nsecond line\n" for s in batch]
    assert nix_eval(to_nix(multi)) == multi


@needs_nix
@settings(max_examples=15, deadline=None)
@given(
    st.lists(st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=False), min_size=1)
)
def test_floats_round_trip(batch: list[float]) -> None:
    assert nix_eval(to_nix(batch)) == pytest.approx(
        batch, rel=1e-5, abs=1e-300
    )  # Nix 2.8 prints 6 digits


@needs_nix
@pytest.mark.parametrize(
    "payload",
    [
        '${builtins.abort "injected"}',
        '"; x = builtins.abort "injected"; y = "',
        "''; x = builtins.abort ''injected''; y = ''",
        '\n${builtins.abort "injected"}\n',
        "$${builtins.abort \"injected\"}\n''${x}\n",
        '\\${builtins.abort "injected"}',
        "'''${builtins.abort \"injected\"}\nx\n",  # found by hypothesis: ' fused with ''${
    ],
)
def test_no_string_can_inject_code(payload: str) -> None:
    value = {payload: payload, "list": [payload, payload + "\n"]}
    assert nix_eval(to_nix(value)) == value


@needs_nix
def test_every_layout_parses() -> None:
    sample = {
        "a": [{"b": [1, -2, {"c": None}]}, Nix("lib.mkForce 3")],
        "d.e": PurePosixPath("./x.nix"),
        "s": "x\n  y\n",
    }
    assert nix_parses("{ lib }: " + to_nix(sample))


@needs_nix
def test_indented_string_expressions_in_lists() -> None:
    """An expression made of several ''…'' strings is parenthesised (found in review)."""
    values = [Nix("''a'' + ''b''"), Nix("''x''"), Nix("''it'''s''"), 1]
    text = to_nix(values)
    assert text == "[ (''a'' + ''b'') ''x'' ''it'''s'' 1 ]"
    assert nix_eval(text) == ["ab", "x", "it''s", 1]


_NAMES_AND_DOTS = st.lists(
    st.one_of(
        st.sampled_from(["pkgs", "htop", "if", "or", "rec", "a'", "_x", "-b", "1a", "true"]),
        st.text(alphabet="ab_'-.1 ", max_size=4),
    ),
    min_size=1,
    max_size=4,
).map(".".join)


@settings(max_examples=200, deadline=None)
@given(text=_NAMES_AND_DOTS)
def test_a_verbatim_name_is_let_through_only_where_the_parser_would(text: str) -> None:
    """Names and selections (`pkgs.htop`) skip the parser; what they let through,
    the parser takes too (keywords, stray dots and dashes go to the parser)."""
    try:
        Document.parse(text)
        parses = True
    except NixSyntaxError:
        parses = False
    assert (_syntax_problem(text) is None) == parses, text
