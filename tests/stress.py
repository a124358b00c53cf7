"""Concurrent writers on one project: the lost-update check behind the project lock.

Eight writers at once: six change ``microvm.mem`` of a guest of their own, two
change one shared guest (one its ``mem``, the other its ``vcpu``).  Each round
every writer sets a new value; at the end, each writer's last value must be
on disk (no lost update), and ``nixgen.toml``, ``flake.nix`` and ``vms/``
must agree (nothing out of step: a render has nothing to write).

Writers are real ``nixgen set`` processes (``mode="process"``) or threads of
API calls (``mode="thread"``).  tests/test_lock.py runs a bounded version;
benchmarks/bench_stress.py the long one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

import attrs

from nixgen import Flake, MicroVM
from nixgen.flake import FlakeFile
from nixgen.lock import project_lock
from nixgen.project import Project, toml_text
from nixgen.render import GUESTS_DIR, SOURCE_NAME, render_files

SHARED = "shared"


@attrs.frozen
class Writer:
    index: int
    guest: str
    key: str  # microvm.mem or microvm.vcpu

    def value(self, round_: int) -> int:
        """Distinct per writer and round, and valid for the key."""
        if self.key == "microvm.vcpu":
            return 1 + round_ % 64
        return 256 + 8 * (self.index * 1000 + round_)


@attrs.frozen
class Report:
    writers: int
    rounds: int
    seconds: float
    lost: list[str]  # writers whose last value is not on disk
    out_of_step: list[str]  # files a render would still change
    failures: list[str]  # writers that exited non-zero (with why)


def writers(count: int = 8) -> list[Writer]:
    own = [Writer(i, f"w{i}", "microvm.mem") for i in range(count - 2)]
    return [
        *own,
        Writer(count - 2, SHARED, "microvm.mem"),
        Writer(count - 1, SHARED, "microvm.vcpu"),
    ]


def make_project(root: Path, count: int = 8) -> list[Writer]:
    """A nixgen project with the writers' guests, rendered."""
    crew = writers(count)
    names = list(dict.fromkeys(w.guest for w in crew))
    root.mkdir(parents=True, exist_ok=True)
    (root / "nixgen.toml").write_text(toml_text(Flake(guests=[MicroVM(name=n) for n in names])))
    Project.at(root).render()
    return crew


def _set_process(root: Path, writer: Writer, round_: int) -> str | None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "nixgen",
            "set",
            writer.guest,
            f"{writer.key}={writer.value(round_)}",
            "-f",
            str(root),
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ, NIXGEN_LOCK_TIMEOUT="600"),
        check=False,
    )
    if proc.returncode != 0:
        return f"writer {writer.index} round {round_}: exit {proc.returncode}: {proc.stderr[-300:]}"
    return None


def _set_thread(root: Path, writer: Writer, round_: int) -> str | None:
    # What the CLI does: the lock from reading the flake to writing it.
    with project_lock(root, timeout=600):
        flake = FlakeFile.load(root)
        flake.set(writer.guest, writer.key, writer.value(round_))
        flake.save()
    return None


def run(root: Path, crew: list[Writer], rounds: int, *, mode: str = "process") -> Report:
    """Every writer sets ``rounds`` values, all writers at once; then checks."""
    step: Callable[[Path, Writer, int], str | None] = (
        _set_process if mode == "process" else _set_thread
    )
    failures: list[str] = []
    guard = threading.Lock()

    def one(writer: Writer) -> None:
        for round_ in range(rounds):
            try:
                failure = step(root, writer, round_)
            except Exception as err:  # a thread's error is a failure of the run
                failure = f"writer {writer.index} round {round_}: {type(err).__name__}: {err}"
            if failure is not None:
                with guard:
                    failures.append(failure)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(crew)) as pool:
        list(pool.map(one, crew))
    seconds = time.perf_counter() - start
    return Report(
        writers=len(crew),
        rounds=rounds,
        seconds=seconds,
        lost=lost_updates(root, crew, rounds),
        out_of_step=out_of_step(root),
        failures=failures,
    )


def lost_updates(root: Path, crew: list[Writer], rounds: int) -> list[str]:
    """Writers whose last value is missing, in nixgen.toml or in the flake."""
    toml = Project.at(root).load()
    flake = FlakeFile.load(root)
    lost = []
    for writer in crew:
        want = writer.value(rounds - 1)
        field = writer.key.removeprefix("microvm.")
        in_toml = getattr(toml.guest(writer.guest), field)
        in_flake = getattr(flake[writer.guest], field)
        if in_toml != want or in_flake != want:
            lost.append(
                f"writer {writer.index}: {writer.guest}.{field} = {in_toml} (toml), "
                f"{in_flake} (flake), wanted {want}"
            )
    return lost


def out_of_step(root: Path) -> list[str]:
    """Generated files that differ from what nixgen.toml renders to (empty: all in step)."""
    project = Project.at(root)
    expected = render_files(project.load(), source=SOURCE_NAME)
    differ = [
        str(rel)
        for rel, text in expected.items()
        if not (root / rel).is_file() or (root / rel).read_text(encoding="utf-8") != text
    ]
    extra = [
        str(p.relative_to(root))
        for p in (root / GUESTS_DIR).glob("*.nix")
        if PurePosixPath(p.relative_to(root).as_posix()) not in expected
    ]
    return differ + extra
