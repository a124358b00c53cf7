"""The lossless Nix document: round trips, refusals, navigation, literal values."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path, PurePosixPath

import pytest
from tree_sitter import Node

from nixgen.nix.emit import Nix
from nixgen.nix.errors import NixPathError, NixSyntaxError, UnsupportedSyntaxError
from nixgen.nix.parse import Document

CORPUS = Path(__file__).parent / "corpus"
SUPPORTED = sorted(p for p in CORPUS.rglob("*.nix") if "unsupported" not in p.parts)
UNSUPPORTED = sorted((CORPUS / "unsupported").glob("*.nix"))
NIX = shutil.which("nix-instantiate")
needs_nix = pytest.mark.skipif(NIX is None, reason="nix not found: apt-get install nix-bin")


def _id(path: Path) -> str:
    return str(path.relative_to(CORPUS))


# --------------------------------------------------------------------------- round trips


def test_corpus_is_large_and_varied() -> None:
    assert len(SUPPORTED) >= 30
    raw = [p.read_bytes() for p in SUPPORTED]
    assert any(b"\r\n" in r for r in raw), "a CRLF file"
    assert any(r.startswith(b"\xef\xbb\xbf") for r in raw), "a file with a BOM"
    assert any(b"\n\t" in r for r in raw), "a tab-indented file"
    assert any(not r.endswith(b"\n") for r in raw), "a file without a final newline"
    assert any(b" \n" in r for r in raw), "trailing whitespace"
    assert any(any(ch > 127 for ch in r) for r in raw), "unicode"


@pytest.mark.parametrize("path", SUPPORTED, ids=_id)
def test_round_trip_is_byte_identical(path: Path) -> None:
    raw = path.read_bytes()
    doc = Document.load(path)
    assert doc.source == raw
    assert doc.text.encode("utf-8") == raw
    assert str(doc) == raw.decode("utf-8")
    assert Document.parse(raw.decode("utf-8"), path) == doc
    assert not doc.tree.root_node.has_error


@pytest.mark.nix
@needs_nix
def test_corpus_parses_with_real_nix(tmp_path: Path) -> None:
    # Nix 2.8 rejects a byte-order mark (nixgen keeps it as found): strip it for Nix.
    files = []
    for i, path in enumerate(SUPPORTED):
        copy = tmp_path / f"{i}-{path.name}"
        copy.write_bytes(path.read_bytes().removeprefix(b"\xef\xbb\xbf"))
        files.append(str(copy))
    done = subprocess.run(
        [NIX or "nix-instantiate", "--parse", *files], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("path", UNSUPPORTED, ids=_id)
def test_unsupported_constructs_are_refused(path: Path) -> None:
    with pytest.raises(UnsupportedSyntaxError) as caught:
        Document.load(path)
    err = caught.value
    assert err.file == path
    assert err.line is not None and err.line > 1
    assert err.column is not None and err.column > 1
    assert err.hint


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("a |> f", "pipe operators"),
        ("f <| a", "pipe operators"),
        ("{}//x", "`//x`"),
        ("a//b", "`a//b`"),
        ("~/a//b", "`~/a//b`"),
        ("x: ~/${x}", "`~/${…}`"),
        ("x: ''${x}'${x}''", "directly before `${`"),
        ("{ inherit; }", "`inherit` without names"),
        ("x: { inherit (x); }", "`inherit` without names"),
    ],
)
def test_each_misread_construct_has_its_own_message(text: str, needle: str) -> None:
    with pytest.raises(UnsupportedSyntaxError, match=None) as caught:
        Document.parse(text)
    assert needle in str(caught.value)


@pytest.mark.parametrize(
    "text",
    [
        "a // b",
        "x//{}",
        "./a/${b}//c",
        '"https://example.org//x"',
        "# a//b\n1",
        "a: ''${a}'' + ''a'${a}''",
        "x: ~/a/${x}",
    ],
)
def test_what_the_grammar_reads_right_is_accepted(text: str) -> None:
    Document.parse(text)


def test_syntax_error_has_file_line_column_and_the_text(tmp_path: Path) -> None:
    path = tmp_path / "flake.nix"
    path.write_text('{\n  a = 1;\n  b = [ 1 2;\n  c = "x";\n}\n')
    with pytest.raises(NixSyntaxError) as caught:
        Document.load(path)
    err = caught.value
    assert (err.file, err.line) == (path, 3)
    assert err.column is not None
    assert "b = [ 1 2;" in str(err)
    assert str(err).startswith(f"{path}:3:")


def test_missing_token_is_named() -> None:
    with pytest.raises(NixSyntaxError, match="missing `;`") as caught:
        Document.parse("{\n  a = 1\n}\n")
    assert (caught.value.line, caught.value.column) == (2, 8)


def test_columns_count_characters_not_bytes() -> None:
    with pytest.raises(NixSyntaxError) as caught:
        Document.parse('{ "é" = 1 }')
    assert caught.value.column == 10  # right after `1` (byte column 11)


def test_invalid_utf8_is_refused() -> None:
    with pytest.raises(NixSyntaxError, match="UTF-8"):
        Document.parse(b'{ a = "\xff"; }')


def test_save_atomic_writes_exactly_and_keeps_mode(tmp_path: Path) -> None:
    path = tmp_path / "flake.nix"
    path.write_bytes(b"{ a = 1; }\r\n")
    path.chmod(0o640)
    doc = Document.parse(b"\xef\xbb\xbf{ b = 2; }\r\n", path)
    assert doc.save_atomic() == path
    assert path.read_bytes() == b"\xef\xbb\xbf{ b = 2; }\r\n"
    assert path.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["flake.nix"]


# --------------------------------------------------------------------------- navigation

FLAKE = """{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
  outputs = { self, nixpkgs, ... }@inputs:
    let
      system = "x86_64-linux";
      alias = system;
      shared = { microvm.hypervisor = "qemu"; };
      inherit (shared) microvm;
    in
    with nixpkgs.lib;
    rec {
      nixosConfigurations.web = nixosSystem {
        inherit system;
        modules = [
          shared
          ({ pkgs, ... }: {
            microvm.mem = 1024;
            microvm = { vcpu = 2; };
            networking.hostName = "web";
          })
        ];
      };
      nixosConfigurations.db = nixpkgs.lib.nixosSystem { system = alias; modules = [ ]; };
      name = nixosConfigurations.web;
    };
}
"""


@pytest.fixture
def flake() -> Document:
    return Document.parse(FLAKE)


def test_outputs_follows_function_let_with_and_rec(flake: Document) -> None:
    outputs = flake.outputs()
    assert outputs is not None
    assert outputs.type == "rec_attrset_expression"
    assert flake.span(outputs).line == 11


def test_lookup_sees_dotted_and_nested_forms(flake: Document) -> None:
    module = flake.locate(("outputs", "nixosConfigurations", "web", "modules", 1))
    assert module.prefix == ()
    mem = flake.lookup(module.container, ("microvm", "mem"))
    assert [b.written for b in mem.exact] == [("microvm", "mem")]
    vcpu = flake.lookup(module.container, ("microvm", "vcpu"))
    assert [b.written for b in vcpu.exact] == [("vcpu",)]
    assert vcpu.prefix == ("microvm",)
    whole = flake.lookup(module.container, ("microvm",))
    assert [b.path for b in whole.exact] == [("microvm",)]
    assert [b.path for b in whole.inner] == [("microvm", "mem")]
    missing = flake.lookup(module.container, ("microvm", "balloon"))
    assert not missing.found and missing.prefix == ("microvm",)
    host = flake.get(module.container, ("networking", "hostName"))
    assert host is not None and flake.literal(host) == "web"


def test_lookup_reports_a_blocking_expression() -> None:
    doc = Document.parse("{ microvm = cfg; }")
    found = doc.lookup(doc.expression(), ("microvm", "mem"))
    assert found.blocker is not None and found.blocker.path == ("microvm",)


def test_locate_through_dotted_prefix_gives_a_virtual_place(flake: Document) -> None:
    place = flake.locate(("outputs", "nixosConfigurations"))
    assert place.prefix == ("nixosConfigurations",)
    assert place.container.type == "rec_attrset_expression"


def test_locate_errors_say_where(flake: Document) -> None:
    with pytest.raises(NixPathError, match="list has 2 elements"):
        flake.locate(("outputs", "nixosConfigurations", "web", "modules", 5))
    with pytest.raises(NixPathError, match="not an attribute set literal"):
        flake.locate(("inputs", "nixpkgs", "url"))


def test_variables_resolve_through_let_inherit_and_chains(flake: Document) -> None:
    db = flake.locate(("outputs", "nixosConfigurations", "db")).container
    alias = flake.get(db, ("system",))
    assert alias is not None
    assert flake.literal(flake.resolve(alias)) == "x86_64-linux"
    web = flake.locate(("outputs", "nixosConfigurations", "web")).container
    inherited = flake.get(web, ("system",))
    assert inherited is not None and flake.literal(inherited) == "x86_64-linux"
    shared = flake.locate(("outputs", "nixosConfigurations", "web", "modules", 0))
    assert flake.value(shared.container) == {"microvm": {"hypervisor": "qemu"}}


def test_parameters_and_with_names_stay_unresolved(flake: Document) -> None:
    doc = Document.parse("{ pkgs, ... }: let x = pkgs; in with pkgs; [ x hello ]")
    lst = doc.attrset_of(doc.expression())
    assert lst is None
    body = doc.expression().child_by_field_name("body")
    assert body is not None
    elements = doc.list_elements(doc.resolve(_body(doc, body)))
    assert [doc.text_of(doc.resolve(e)) for e in elements] == ["pkgs", "hello"]


def test_a_name_bound_only_by_dotted_let_bindings_hides_the_outer_one() -> None:
    doc = Document.parse("let x = 1; in let x.y = 2; in [ x ]")
    inner = _body(doc, doc.expression())
    [element] = doc.list_elements(inner)
    assert doc.resolve(element) == element
    assert doc.literal(element) == Nix("x")


def _body(doc: Document, node: Node) -> Node:
    while node.type in ("let_expression", "with_expression"):
        inner = node.child_by_field_name("body")
        assert inner is not None
        node = inner
    return node


def test_scope_index_gives_the_same_answers(flake: Document) -> None:
    def answers(doc: Document) -> list[str]:
        out = []
        for key in ("web", "db"):
            args = doc.locate(("outputs", "nixosConfigurations", key)).container
            value = doc.get(args, ("system",))
            out.append(doc.text_of(doc.resolve(value)) if value is not None else "-")
        return out

    plain = answers(flake)
    indexed = Document.parse(FLAKE)
    indexed.index_scopes()
    assert answers(indexed) == plain == ['"x86_64-linux"', '"x86_64-linux"']


def test_let_attrset_body_is_followed() -> None:
    doc = Document.load(CORPUS / "modules" / "legacy-let.nix")
    aset = doc.attrset_of(doc.expression())
    assert aset is not None
    assert doc.value(aset) == {
        "networking": {"hostName": Nix("hostName")},
        "microvm": {"mem": 512},
    }


# --------------------------------------------------------------------------- literal values


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", 1),
        ("-7", -7),
        ("9223372036854775807", 2**63 - 1),
        ("1.5", 1.5),
        ("-.5", -0.5),
        ("1.0e-3", 0.001),
        ("true", True),
        ("false", False),
        ("null", None),
        ('"a\\nb\\t\\"c\\" \\${x} $$"', 'a\nb\t"c" ${x} $$'),
        ("https://example.org/x?y=1", "https://example.org/x?y=1"),
        ("./a/b.nix", PurePosixPath("a/b.nix")),
        ("/etc/hosts", PurePosixPath("/etc/hosts")),
        ("[ 1 [ 2 ] { a = 3; } ]", [1, [2], {"a": 3}]),
        ('{ a.b = 1; a.c = "x"; "d e" = [ ]; }', {"a": {"b": 1, "c": "x"}, "d e": []}),
        ("rec { a = 1; b = 2; }", {"a": 1, "b": 2}),
        ("(((1)))", 1),
        ("''\n  a\n    b\n''", "a\n  b\n"),
        ("''\n  ''${x} '''\n''", "${x} ''\n"),
        ("''a''\\tb''", "a\tb"),
    ],
)
def test_literals_become_python_values(text: str, value: object) -> None:
    doc = Document.parse(text)
    assert doc.literal(doc.expression()) == value


@pytest.mark.parametrize(
    "text",
    [
        "x",
        "a.b",
        "f 1",
        "1 + 2",
        '"a${b}"',
        "''${b}''",
        "./a/${b}",
        "~/x",
        "<nixpkgs>",
        "{ inherit a; }",
        "{ ${k} = 1; }",
        "{ a = 1; a = 2; }",
        "rec { a = 1; b = a; }",
        "9223372036854775808",
        "''\n  a''\\nb\n''",  # an escaped newline: Nix versions disagree
        '"a\r\nb"',  # raw CR: Nix versions disagree
    ],
)
def test_non_literals_stay_source_text(text: str) -> None:
    doc = Document.parse(text)
    assert doc.literal(doc.expression()) == Nix(text)


def test_value_keeps_literal_structure_around_expressions() -> None:
    doc = Document.parse("{ a = 1; b = pkgs.hello; c = [ x 2 ]; inherit (s) d; inherit e; }")
    assert doc.value(doc.expression()) == {
        "a": 1,
        "b": Nix("pkgs.hello"),
        "c": [Nix("x"), 2],
        "d": Nix("s.d"),
        "e": Nix("e"),
    }


def _literal_nodes(doc: Document) -> list[Node]:
    found: list[Node] = []
    kinds = {
        "string_expression",
        "indented_string_expression",
        "list_expression",
        "attrset_expression",
        "integer_expression",
        "float_expression",
    }
    stack = [doc.tree.root_node]
    while stack:
        node = stack.pop()
        stack.extend(node.named_children)
        if node.type in kinds and doc.is_literal(node) and "/" not in _paths(doc, node):
            found.append(node)
    return found


def _paths(doc: Document, node: Node) -> str:
    # Path values evaluate to store paths: keep them out of the comparison.
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type in ("path_expression", "uri_expression"):
            return "/"
        stack.extend(current.named_children)
    return ""


@pytest.mark.nix
@needs_nix
def test_literal_values_agree_with_nix() -> None:
    exprs: list[str] = []
    values: list[object] = []
    for path in SUPPORTED:
        doc = Document.load(path)
        for node in _literal_nodes(doc):
            exprs.append(f"({doc.text_of(node)})")
            values.append(doc.literal(node))
    assert len(exprs) > 200
    done = subprocess.run(
        [
            NIX or "nix-instantiate",
            "--eval",
            "--strict",
            "--json",
            "-E",
            "[\n" + "\n".join(exprs) + "\n]",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout) == values
