"""Fuzzing, bounded in time: the serializer against real Nix, the CLI's edit commands.

The properties and strategies live in tests/fuzz.py; benchmarks/bench_fuzz.py
runs the same ones with many more examples.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nixgen.nix.emit import to_nix
from nixgen.project import init_project
from tests import fuzz

needs_nix = pytest.mark.skipif(
    fuzz.NIX_INSTANTIATE is None, reason="nix not found: apt-get install nix-bin (see README)"
)
QUICK = settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))


@needs_nix
@QUICK
@given(st.lists(st.one_of(fuzz.any_values, fuzz.nested()), min_size=1, max_size=12))
def test_serializer_writes_what_nix_reads_or_refuses(batch: list[Any]) -> None:
    fuzz.check_serializer(batch)


@needs_nix
@QUICK
@given(st.lists(fuzz.any_floats, min_size=1, max_size=20))
def test_serializer_keeps_the_sign_of_every_float(batch: list[float]) -> None:
    fuzz.check_float_signs(batch)


@needs_nix
def test_negative_zero_survives_real_nix() -> None:
    fuzz.check_float_signs([-0.0, 0.0, -1.5, 2.0])
    assert fuzz.nix_eval("builtins.toString (" + to_nix(-0.0) + ")") == "-0.000000"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fuzz") / "project"
    init_project(folder, name="vm", git_add=False)
    return folder


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(fuzz.edits(), min_size=1, max_size=3))
def test_edit_commands_succeed_whole_or_change_nothing(
    pristine: Path, tmp_path_factory: pytest.TempPathFactory, commands: list[list[str]]
) -> None:
    project = tmp_path_factory.mktemp("edit") / "project"
    shutil.copytree(pristine, project, ignore=shutil.ignore_patterns(".nixgen"))
    for args in commands:
        fuzz.check_edit(project, args)


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(fuzz.edits("db"), min_size=1, max_size=3))
def test_edits_of_a_hand_written_flake_succeed_whole_or_change_nothing(
    tmp_path_factory: pytest.TempPathFactory, commands: list[list[str]]
) -> None:
    flake = tmp_path_factory.mktemp("hand") / "split"
    shutil.copytree(Path(__file__).parent / "corpus" / "split", flake)
    for args in commands:
        fuzz.check_edit(flake, args)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(fuzz.junk_flakes())
def test_the_python_api_raises_only_nixgen_errors(build: Any) -> None:
    fuzz.check_only_nixgen_errors(build)
