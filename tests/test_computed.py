"""Computed nixosConfigurations, read and edited through evaluation with real nix.

Each folder of ``tests/computed/`` is a flake project against the stand-ins
(``tests/standins``; flake-parts' stand-in too) with a hand-written
``expect.toml``: its guests and hosts, a few values and where the winning
definition is written, an edit that ``set`` makes (the files it changes), an
``unset``, and a refusal with what its message names (file:line, the
expression).  Every edit is checked by nixgen evaluating again; here the
tests evaluate once more on their own and compare.
"""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest

from nixgen.evaluate import FlakeEvaluator, evaluate_flake
from nixgen.flake import FlakeFile
from nixgen.flake.errors import EvaluationError
from nixgen.nixcmd import NixRunner
from tests.clirunner import run_cli
from tests.flakefiles import snapshot
from tests.standin import (
    NIX_SKIP_REASON,
    flake_override_args,
    inputs_with_flake_parts,
    nix_available,
)

pytestmark = pytest.mark.skipif(not nix_available(), reason=NIX_SKIP_REASON)

CORPUS = Path(__file__).parent / "computed"
SHAPES = sorted(p.name for p in CORPUS.iterdir() if (p / "expect.toml").is_file())


def _with(section: str) -> list[str]:
    """The shapes whose expect.toml has ``section``."""
    return [
        s
        for s in SHAPES
        if section in tomllib.loads((CORPUS / s / "expect.toml").read_text(encoding="utf-8"))
    ]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return inputs_with_flake_parts(tmp_path_factory.mktemp("inputs"))


def _runner(inputs: dict[str, Path], folder: Path) -> NixRunner:
    args = flake_override_args(inputs, folder)
    return NixRunner(override_inputs={args[i + 1]: args[i + 2] for i in range(0, len(args), 3)})


def _copy(tmp_path: Path, shape: str) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path / shape
    shutil.copytree(CORPUS / shape, folder, ignore=shutil.ignore_patterns("expect.toml"))
    expect = tomllib.loads((CORPUS / shape / "expect.toml").read_text(encoding="utf-8"))
    return folder, expect


def _run(*args: str) -> tuple[int, str, str]:
    result = run_cli(list(args))
    return result.exit_code, result.stdout, result.stderr


def test_the_corpus_has_the_shapes_the_issue_names() -> None:
    assert len(SHAPES) >= 10
    # every shape is edited or refused, and the corpus does each kind of edit
    assert all(s in _with("set") or s in _with("refuse") for s in SHAPES)
    assert _with("add") and _with("unset")
    for wanted in (
        "mapattrs",
        "listtoattrs",
        "genattrs",
        "readdir",
        "mkvm-helper",
        "import-vms",
        "flake-parts",
        "snowfall",
        "defaults",
        "function-argument",
        "host",
        "nixpkgs-location",
    ):
        assert wanted in SHAPES


@pytest.mark.parametrize("shape", SHAPES)
def test_show_finds_every_guest_with_values_and_winning_places(
    tmp_path: Path, inputs: dict[str, Path], shape: str
) -> None:
    folder, expect = _copy(tmp_path, shape)
    code, out, err = _run("show", "--json", "-f", str(folder), *flake_override_args(inputs, folder))
    assert code == 0, err
    data = json.loads(out)
    assert data["evaluated"] is True
    assert sorted(g["name"] for g in data["guests"]) == sorted(expect["guests"])
    assert sorted(h["name"] for h in data["hosts"]) == sorted(expect.get("hosts", []))
    by_name = {g["name"]: g for g in [*data["guests"], *data["hosts"]]}
    for name, values in expect.get("values", {}).items():
        for key, value in values.items():
            assert by_name[name]["settings"][key] == value, (name, key)
    for name, places in expect.get("where", {}).items():
        for key, where in places.items():
            assert by_name[name]["where"][key] == [where], (name, key)
    for name, runs in expect.get("runs", {}).items():
        assert sorted(by_name[name]["runs"]) == sorted(runs)
    # the table says the same, with the place of the winner
    name, places = next(iter(expect["where"].items()))
    code, out, err = _run("show", name, "-f", str(folder), *flake_override_args(inputs, folder))
    assert code == 0, err
    for key, where in places.items():
        line = next(row for row in out.splitlines() if row.startswith(key + " "))
        assert where in line


@pytest.mark.parametrize(
    ("shape", "section"), [(s, "set") for s in _with("set")] + [(s, "add") for s in _with("add")]
)
def test_set_edits_the_winning_definition_and_is_checked(
    tmp_path: Path, inputs: dict[str, Path], shape: str, section: str
) -> None:
    """``set``: an option defined in the flake's files; ``add``: one defined
    nowhere, which goes to a module only that guest uses."""
    folder, expect = _copy(tmp_path, shape)
    edit = expect[section]
    before = snapshot(folder)
    evaluated = evaluate_flake(folder, nix=_runner(inputs, folder))
    assignment = f"{edit['key']}={edit['value']}"
    args = [
        "set",
        edit["guest"],
        assignment,
        "-f",
        str(folder),
        *flake_override_args(inputs, folder),
    ]
    code, diff, err = _run(*args, "--dry-run")
    assert code == 0, err
    assert snapshot(folder) == before
    assert "not evaluated again (--dry-run)" in err
    assert all(f"+++ b/{path}" in diff for path in edit["changes"])
    code, _out, err = _run(*args)
    assert code == 0, err
    after = snapshot(folder)
    changed = sorted(k for k in after if after[k] != before.get(k))
    assert changed == sorted(edit["changes"])
    for path in changed:  # one line changed or added, nothing else
        old = before[path].decode().splitlines()
        new = after[path].decode().splitlines()
        assert abs(len(new) - len(old)) <= 1
        assert len(set(new) - set(old)) == 1
    again = evaluate_flake(folder, nix=_runner(inputs, folder))
    option = again.configurations[edit["guest"]].options[edit["key"]]
    assert json.dumps(option.value) == json.dumps(json.loads(edit["value"]))
    for other, config in evaluated.configurations.items():
        if other != edit["guest"]:
            assert again.configurations[other].values() == config.values()


@pytest.mark.parametrize("shape", _with("unset"))
def test_unset_removes_the_winning_binding(
    tmp_path: Path, inputs: dict[str, Path], shape: str
) -> None:
    folder, expect = _copy(tmp_path, shape)
    edit = expect["unset"]
    before = snapshot(folder)
    args = [
        "unset",
        edit["guest"],
        edit["key"],
        "-f",
        str(folder),
        *flake_override_args(inputs, folder),
    ]
    code, _out, err = _run(*args)
    assert code == 0, err
    after = snapshot(folder)
    changed = sorted(k for k in after if after[k] != before.get(k))
    assert changed == sorted(edit["changes"])
    again = evaluate_flake(folder, nix=_runner(inputs, folder))
    option = again.configurations[edit["guest"]].options.get(edit["key"])
    if option is not None:  # a default of the flake's own files wins now
        assert "still" not in err
        assert edit.get("then") == option.value


@pytest.mark.parametrize("shape", _with("refuse"))
def test_refusals_name_the_place_and_the_expression(
    tmp_path: Path, inputs: dict[str, Path], shape: str
) -> None:
    folder, expect = _copy(tmp_path, shape)
    refusals = expect["refuse"]
    before = snapshot(folder)
    for refuse in refusals if isinstance(refusals, list) else [refusals]:
        assignment = f"{refuse['key']}={refuse['value']}"
        args = [
            "set",
            refuse["guest"],
            assignment,
            "-f",
            str(folder),
            *flake_override_args(inputs, folder),
        ]
        code, out, err = _run(*args)
        assert code == 1, out
        for text in refuse["says"]:
            assert text in err
        assert "hint:" in err
        assert snapshot(folder) == before


def test_an_edit_that_does_not_take_effect_is_rolled_back(
    tmp_path: Path, inputs: dict[str, Path]
) -> None:
    """A definition nixgen edits, but which a mkForce elsewhere overrides, is
    restored byte for byte after the re-evaluation shows no change."""
    folder, _ = _copy(tmp_path, "genattrs")
    flake = FlakeFile.load(folder, evaluator=FlakeEvaluator(_runner(inputs, folder)))
    flake.evaluate()
    # Behind nixgen's back: the worker's own module forces the value.
    own = folder / "vms" / "worker1.nix"
    before = snapshot(folder)
    flake.set("worker1", "microvm.mem", 4096)
    text = own.read_text(encoding="utf-8")
    forced = folder / "force.nix"
    forced.write_text("{ lib, ... }: { microvm.mem = lib.mkForce 1024; }\n", encoding="utf-8")
    flake_nix = folder / "flake.nix"
    flake_nix.write_bytes(
        flake_nix.read_bytes().replace(b"./common.nix", b"./common.nix\n            ./force.nix")
    )
    before = snapshot(folder)
    with pytest.raises(EvaluationError) as caught:
        flake.save()
    assert "restored" in caught.value.message
    assert "worker1: microvm.mem is 1024, not 4096" in caught.value.message
    assert snapshot(folder) == before
    assert own.read_text(encoding="utf-8") == text


def test_evaluation_failures_say_what_to_pass(tmp_path: Path) -> None:
    folder, _ = _copy(tmp_path, "genattrs")
    code, _, err = _run("show", "--eval", "-f", str(folder))
    assert code == 1
    assert "--override-input" in err
    # without --eval, show falls back to what is written, saying why
    code, out, err = _run("show", "-f", str(folder))
    assert code == 0
    assert "could not be evaluated" in err
    assert "genAttrs" in out


def test_no_eval_never_runs_nix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder, _ = _copy(tmp_path, "genattrs")
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    code, out, err = _run("show", "--no-eval", "-f", str(folder))
    assert code == 0, err
    assert "genAttrs" in out


_TWO_DEFINITIONS = """{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
  inputs.microvm.url = "github:microvm-nix/microvm.nix";
  inputs.microvm.inputs.nixpkgs.follows = "nixpkgs";

  outputs =
    { self, nixpkgs, microvm }:
    {
      nixosConfigurations.vm = nixpkgs.lib.nixosSystem {
        system = "x86_64-linux";
        modules = [
          microvm.nixosModules.microvm
          ./defaults.nix
          ./vm.nix
        ];
      };
    };
}
"""


def test_a_literal_guest_defined_twice_shows_and_edits_the_true_winner(
    tmp_path: Path, inputs: dict[str, Path]
) -> None:
    """defaults.nix has `microvm.mem = lib.mkDefault 1024;`, vm.nix `microvm.mem =
    4096;`: with nix, show names vm.nix as the one definition that wins, and set
    changes that one line only."""
    folder = tmp_path / "two"
    folder.mkdir()
    (folder / "flake.nix").write_text(_TWO_DEFINITIONS, encoding="utf-8")
    (folder / "defaults.nix").write_text(
        "{ lib, ... }:\n{\n  microvm.mem = lib.mkDefault 1024;\n}\n", encoding="utf-8"
    )
    (folder / "vm.nix").write_text("{\n  microvm.mem = 4096;\n}\n", encoding="utf-8")
    overrides = flake_override_args(inputs, folder)
    code, out, err = _run("show", "vm", "-f", str(folder), *overrides)
    assert code == 0, err
    (row,) = [line for line in out.splitlines() if line.startswith("microvm.mem ")]
    assert "4096" in row and "vm.nix:2" in row and "defaults.nix" not in row
    assert "module system decides" not in out
    before = snapshot(folder)
    code, out, err = _run("set", "vm", "microvm.mem=3000", "-f", str(folder), *overrides)
    assert code == 0, err
    after = snapshot(folder)
    assert after["defaults.nix"] == before["defaults.nix"]
    assert after["vm.nix"] == b"{\n  microvm.mem = 3000;\n}\n"
    # --no-eval reads the text only, as before
    code, out, err = _run("show", "vm", "--no-eval", "-f", str(folder))
    assert code == 0, err
    assert "evaluated with nix" not in out


def test_the_flake_layer_never_runs_nix_itself() -> None:
    """nixgen/flake/ takes an evaluator; nixgen.evaluate (the Nix-runner layer)
    implements it above the flake layer, and the CLI wires them."""
    import ast

    package = Path(__file__).resolve().parents[1] / "nixgen" / "flake"
    for source in package.glob("*.py"):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                assert not name.startswith(("nixgen.evaluate", "nixgen.nixcmd", "nixgen.build")), (
                    source.name,
                    name,
                )


def test_several_assignments_in_one_inline_module(tmp_path: Path, inputs: dict[str, Path]) -> None:
    """The second assignment's binding moved when the first one changed the line
    before it: it is still found where the evaluation saw it."""
    folder, _ = _copy(tmp_path, "mkvm-helper")
    before = (folder / "flake.nix").read_text(encoding="utf-8")
    args = ["set", "db", "microvm.mem=40960", 'microvm.hypervisor="qemu"', "-f", str(folder)]
    code, _out, err = _run(*args, *flake_override_args(inputs, folder))
    assert code == 0, err
    after = (folder / "flake.nix").read_text(encoding="utf-8")
    assert after == before.replace("mem = 2048;", "mem = 40960;").replace(
        'hypervisor = "cloud-hypervisor";', 'hypervisor = "qemu";'
    )


def test_offsets_move_with_one_change() -> None:
    from nixgen.flake.evaluated import _moved

    before = b"a = 1;\nb = 2;\nc = 3;\n"
    after = b"a = 1;\nb = 7777;\nc = 3;\n"
    assert _moved(before, after, 0) == 0  # before the change
    assert _moved(before, after, before.index(b"c")) == after.index(b"c")  # after it
    assert _moved(before, after, before.index(b"2")) is None  # inside it


def test_compare_names_what_changed() -> None:
    from nixgen.flake.evaluated import (
        EvalConfiguration,
        EvalOption,
        EvaluatedFlake,
        Planned,
        compare,
    )
    from nixgen.nix.parse import Document

    def flake(web: int, db: int) -> EvaluatedFlake:
        def config(name: str, mem: int) -> EvalConfiguration:
            option = EvalOption("microvm.mem", ("microvm", "mem"), mem, 100, ())
            return EvalConfiguration(name, "guest", None, {"microvm.mem": option})

        return EvaluatedFlake({"web": config("web", web), "db": config("db", db)})

    check = Planned(Path("vms/web.nix"), Document.parse("{ }"), "microvm.mem", 2048, "vms/web.nix")
    assert compare(flake(1024, 512), flake(2048, 512), "web", [check]) == []
    wrong = compare(flake(1024, 512), flake(1024, 768), "web", [check])
    assert wrong == [
        "web: microvm.mem is 1024, not 2048 (edited at vms/web.nix)",
        "db: microvm.mem changed from 512 to 768",
    ]


def test_a_guest_with_a_module_nixgen_cannot_read_is_evaluated(
    tmp_path: Path, inputs: dict[str, Path]
) -> None:
    """`(import ./hv.nix { … })` hides its settings from the text: with nix, show
    gives the evaluated hypervisor and where it is defined, not the model's default."""
    folder = tmp_path / "opaque"
    folder.mkdir()
    (folder / "flake.nix").write_text(
        _TWO_DEFINITIONS.replace(
            "./defaults.nix\n          ./vm.nix", '(import ./hv.nix { name = "vm"; })'
        ),
        encoding="utf-8",
    )
    (folder / "hv.nix").write_text(
        '{ name }:\n{\n  networking.hostName = name;\n  microvm.hypervisor = "cloud-hypervisor";\n}\n',
        encoding="utf-8",
    )
    flake = FlakeFile.load(folder, evaluator=FlakeEvaluator(_runner(inputs, folder)))
    reason = flake.evaluation_reason("vm")
    assert reason is not None and "import ./hv.nix" in reason
    code, out, err = _run("show", "vm", "-f", str(folder), *flake_override_args(inputs, folder))
    assert code == 0, err
    (row,) = [line for line in out.splitlines() if line.startswith("microvm.hypervisor ")]
    assert '"cloud-hypervisor"' in row and "hv.nix:4" in row


def test_a_guest_that_does_not_evaluate_hides_no_other(
    tmp_path: Path, inputs: dict[str, Path]
) -> None:
    folder, _ = _copy(tmp_path, "genattrs")
    (folder / "vms" / "worker2.nix").write_text(
        "{\n  microvm.memory = 1;\n}\n", encoding="utf-8"
    )  # no such option: the module system throws
    code, out, err = _run("show", "-f", str(folder), *flake_override_args(inputs, folder))
    assert code == 0, err
    assert "worker1" in out and "these do not evaluate" in out and "worker2" in out
    code, _out, err = _run(
        "set", "worker2", "microvm.mem=1", "-f", str(folder), *flake_override_args(inputs, folder)
    )
    assert code == 1 and "'worker2' does not evaluate" in err


def test_a_flake_without_nixos_configurations(tmp_path: Path, inputs: dict[str, Path]) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "flake.nix").write_text(
        '{\n  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";\n'
        "  outputs = { self, nixpkgs }: { };\n}\n",
        encoding="utf-8",
    )
    evaluated = evaluate_flake(folder, nix=_runner(inputs, folder))
    assert evaluated.configurations == {}
    code, out, err = _run("show", "--eval", "-f", str(folder), *flake_override_args(inputs, folder))
    assert code == 0, err
    assert "no nixosConfigurations" in out
