"""nixgen._gc: the cycle collector paused while many model objects are made."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from nixgen import Flake, FlakeFile, MicroVM, write_project
from nixgen._gc import paused_gc


def test_the_collector_is_paused_inside_and_runs_again_after() -> None:
    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
        with paused_gc():  # nested: the outer one turns it back on
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_the_collector_runs_again_after_an_error() -> None:
    with pytest.raises(ValueError), paused_gc():
        raise ValueError("boom")
    assert gc.isenabled()


def test_a_collector_turned_off_by_someone_else_stays_off() -> None:
    gc.disable()
    try:
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_an_edit_of_a_large_flake_collects_once_when_it_is_done(tmp_path: Path) -> None:
    """Moving the guests after a length-changing edit makes objects by the
    thousand, all kept; a collection on the way would walk them for nothing
    (ten of them here, without the pause).  Paused, the edit brings one young
    collection, when the collector resumes."""
    guests = [MicroVM(name=f"vm{i}", mem=1024) for i in range(300)]
    write_project(Flake(guests=guests), tmp_path)
    flake = FlakeFile.load(tmp_path)
    collections: list[int] = []
    # From a full collection every generation's count is zero; otherwise the one
    # collection at the end may fall due as an older one, by what the process did
    # before (the tests before this one): the collector's schedule, not the edit's.
    gc.collect()

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    gc.callbacks.append(count)
    try:
        flake.set("vm10", "microvm.mem", 12345)  # longer: every later guest moves
    finally:
        gc.callbacks.remove(count)
    assert collections in ([], [0])
    assert gc.isenabled()
    assert flake.guest("vm299").settings["microvm.mem"] == 1024  # moved, still read right
    assert flake.guest("vm10").settings["microvm.mem"] == 12345
