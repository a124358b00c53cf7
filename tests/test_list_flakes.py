"""``nixgen list``/``status`` of flakes without a nixgen.toml: literal and computed guests.

A literal flake's guests are read from its text (``tests/corpus``); a
computed one's (``tests/computed``, against the stand-ins) come from the one
evaluation of :mod:`nixgen.evaluate`; with ``--no-eval`` a note says what was
not read and that reading it needs nix.  Hosts are never listed as guests.
"""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest

from nixgen.nixcmd import NixRunner
from nixgen.runtime import Runtime
from tests.clirunner import run_cli
from tests.standin import (
    NIX_SKIP_REASON,
    flake_override_args,
    inputs_with_flake_parts,
    nix_available,
)

HERE = Path(__file__).parent
COMPUTED = HERE / "computed"
#: microvm.* option → the column of `nixgen list --json`
COLUMNS = {"microvm.hypervisor": "hypervisor", "microvm.vcpu": "vcpu", "microvm.mem": "mem"}

needs_nix = pytest.mark.skipif(not nix_available(), reason=NIX_SKIP_REASON)


def _run(*args: str) -> tuple[int, str, str]:
    result = run_cli(list(args))
    return result.exit_code, result.stdout, result.stderr


def _copy(tmp_path: Path, source: Path) -> Path:
    folder = tmp_path / source.name
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns("expect.toml"))
    return folder


def _expect(shape: str) -> dict[str, Any]:
    return tomllib.loads((COMPUTED / shape / "expect.toml").read_text(encoding="utf-8"))


@pytest.fixture(autouse=True)
def _state_outside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a path: flake's state folder links to XDG_STATE_HOME: keep it in the test's folder
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.delenv("NIXGEN_STATE_DIR", raising=False)


# ------------------------------------------------------------------ literal flakes, no nix


def test_a_literal_flake_lists_its_guests_and_not_its_hosts(tmp_path: Path) -> None:
    folder = _copy(tmp_path, HERE / "corpus" / "with-hosts")
    code, out, err = _run("list", "--no-eval", "--json", "-f", str(folder))
    assert code == 0, err
    listed = {g["name"]: g for g in json.loads(out)}
    assert list(listed) == ["web", "db", "cache"]  # vmhost, edge, spare are hosts
    assert listed["web"]["mem"] == 512  # written in flake.nix
    # written nowhere: unknown until built, never the model's default
    assert (listed["db"]["mem"], listed["db"]["vcpu"]) == (None, None)
    assert all(g["freshness"] == "not built" for g in listed.values())
    assert err == ""
    code, out, _err = _run("list", "--no-eval", "-f", str(folder))
    assert code == 0
    rows = out.splitlines()
    assert rows[0].split() == [
        "NAME",
        "STATE",
        "PID",
        "UPTIME",
        "HYPERVISOR",
        "VCPU",
        "MEM",
        "RUNNER",
    ]
    assert [r.split()[0] for r in rows[1:]] == ["web", "db", "cache"]


def test_a_split_flake_lists_the_guests_of_its_module_files(tmp_path: Path) -> None:
    folder = _copy(tmp_path, HERE / "corpus" / "split")
    declared = Runtime(folder).declaration()
    assert (declared.source, declared.complete, declared.notes) == ("flake", True, ())
    assert declared.names == ("web", "db", "builder")
    assert (declared.facts["builder"].vcpu, declared.facts["builder"].mem) == (4, 4096)
    # `lib.mkDefault "qemu"` as written is no hypervisor name: unknown, not a guess
    assert declared.facts["web"].hypervisor is None


def test_status_of_a_literal_flake_refuses_a_name_it_does_not_have(tmp_path: Path) -> None:
    folder = _copy(tmp_path, HERE / "corpus" / "split")
    code, _out, err = _run("status", "--no-eval", "webb", "-f", str(folder))
    assert code != 0
    assert "no guest(s) webb" in err and "builder, db, web" in err
    code, out, err = _run("status", "--no-eval", "db", "-f", str(folder))
    assert code == 0, err
    assert out.startswith("db: stopped")
    assert "2048 MiB" in out


def test_no_eval_on_a_computed_flake_says_what_was_not_read(tmp_path: Path) -> None:
    folder = _copy(tmp_path, COMPUTED / "genattrs")
    code, out, err = _run("list", "--no-eval", "-f", str(folder))
    assert code == 0, err
    assert out == "no guests\n"
    # the flake layer's own words, with the place, and what would read it
    assert "flake.nix:29" in err
    assert "`lib.genAttrs`" in err and "nixpkgs.lib.genAttrs names mkWorker" in err
    assert "needs nix" in err and "without --no-eval" in err
    declared = Runtime(folder).declaration(evaluate=False)
    assert not declared.complete and declared.names == ()
    # a name it cannot check is not refused: the computed part may have it
    code, out, err = _run("status", "--no-eval", "worker1", "-f", str(folder))
    assert code == 0, err
    assert out.startswith("worker1: stopped")


def test_a_nixgen_project_is_still_read_from_its_toml(tmp_path: Path) -> None:
    from nixgen import Flake, MicroVM, write_project
    from nixgen.project import Project

    flake = Flake(guests=[MicroVM(name="a", mem=768), MicroVM(name="b", vcpu=3)])
    write_project(flake, tmp_path / "p")
    Project(tmp_path / "p").save(flake)
    declared = Runtime(tmp_path / "p").declaration(evaluate=True)  # no nix needed
    assert (declared.source, declared.names, declared.complete) == ("nixgen.toml", ("a", "b"), True)
    code, out, err = _run("list", "--no-eval", "--json", "-f", str(tmp_path / "p"))
    assert code == 0, err
    assert [g["name"] for g in json.loads(out)] == ["a", "b"]


# ------------------------------------------------------------------ computed flakes, real nix


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if not nix_available():
        pytest.skip(NIX_SKIP_REASON)
    return inputs_with_flake_parts(tmp_path_factory.mktemp("inputs"))


SHAPES = ["genattrs", "mapattrs", "flake-parts", "mkvm-helper", "listtoattrs", "host"]


@needs_nix
@pytest.mark.parametrize("shape", SHAPES)
def test_list_evaluates_a_computed_flake_and_shows_its_guests(
    tmp_path: Path, inputs: dict[str, Path], shape: str
) -> None:
    folder = _copy(tmp_path, COMPUTED / shape)
    expect = _expect(shape)
    code, out, err = _run("list", "--json", "-f", str(folder), *flake_override_args(inputs, folder))
    assert code == 0, err
    listed = {g["name"]: g for g in json.loads(out)}
    assert sorted(listed) == sorted(expect["guests"])  # hosts are not guests
    for name, values in expect.get("values", {}).items():
        for key, column in COLUMNS.items():
            if key in values:
                assert listed[name][column] == values[key], (name, key)
    for guest in listed.values():  # the evaluation knows them all, microvm.nix's defaults too
        assert guest["hypervisor"] and guest["vcpu"] and guest["mem"], guest
        assert guest["freshness"] == "not built"
        assert guest["expected"], "the runner the flake evaluates to"
        assert not guest["notes"]
    code, out, err = _run("list", "-f", str(folder), *flake_override_args(inputs, folder))
    assert code == 0, err
    rows = {r.split()[0]: r.split() for r in out.splitlines()[1:]}
    for name, guest in listed.items():
        assert rows[name][4:7] == [guest["hypervisor"], str(guest["vcpu"]), str(guest["mem"])]


@needs_nix
def test_status_names_a_computed_guest_and_refuses_a_typo(
    tmp_path: Path, inputs: dict[str, Path]
) -> None:
    folder = _copy(tmp_path, COMPUTED / "genattrs")
    nix = flake_override_args(inputs, folder)
    code, out, err = _run("status", "worker1", "-f", str(folder), *nix)
    assert code == 0, err
    assert out.startswith("worker1: stopped")
    assert "qemu, 2 vCPU, 1024 MiB" in out
    code, _out, err = _run("status", "worker3", "-f", str(folder), *nix)
    assert code != 0
    assert "no guest(s) worker3" in err and "worker1, worker2" in err


@needs_nix
def test_the_library_says_who_told(tmp_path: Path, inputs: dict[str, Path]) -> None:
    folder = _copy(tmp_path, COMPUTED / "mkvm-helper")
    args = flake_override_args(inputs, folder)
    nix = NixRunner(override_inputs={args[i + 1]: args[i + 2] for i in range(0, len(args), 3)})
    runtime = Runtime(folder, nix=nix)
    declared = runtime.declaration(evaluate=True)
    assert declared.source == "evaluation" and declared.complete
    assert sorted(declared.names) == ["db", "web"]
    assert declared.facts["db"].hypervisor == "cloud-hypervisor"
    assert runtime.declared() == []  # the text alone does not name them
    assert sorted(runtime.names(evaluate=True)) == ["db", "web"]


@needs_nix
def test_an_evaluation_that_fails_says_why_and_keeps_what_is_written(tmp_path: Path) -> None:
    folder = _copy(tmp_path, COMPUTED / "genattrs")
    # no --override-input: offline, nix cannot fetch the inputs
    code, out, err = _run("list", "-f", str(folder))
    assert code == 0, err
    assert out == "no guests\n"
    assert "note: not evaluated:" in err and "--override-input" in err
    assert "`lib.genAttrs`" in err  # and what the text left unread


def test_a_flake_written_by_the_python_api_lists_its_guests(tmp_path: Path) -> None:
    from nixgen import Flake, MicroVM, write_project

    write_project(Flake(guests=[MicroVM(name="a", mem=640), MicroVM(name="b")]), tmp_path / "p")
    assert not (tmp_path / "p" / "nixgen.toml").exists()  # a flake, read as text
    code, out, err = _run("list", "--no-eval", "--json", "-f", str(tmp_path / "p"))
    assert code == 0, err
    listed = {g["name"]: g for g in json.loads(out)}
    assert list(listed) == ["a", "b"]
    assert listed["a"]["mem"] == 640
