"""Core speed figures: rendering and validating many guests.

Targets (issues: nixgen core, 9): render a 1,000-guest nixgen.toml into a
fresh folder in under 1 s, the whole operation (load, validate, render,
write); validate 1,000 guests in under 0.5 s.  Prints figures; asserts
nothing.  The whole operation is timed in a fresh interpreter each time
(nixgen imported; what one process remembers of a guest would flatter a
repeat), beside its parts timed here.

    python benchmarks/bench_core.py [N]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from nixgen import Flake, Interface, MicroVM, Share, User, Volume, render_files, validate
from nixgen.model.convert import load_flake_file
from nixgen.project import toml_text
from nixgen.render import write_project

HYPERVISORS = ("qemu", "cloud-hypervisor", "firecracker", "crosvm")


def make_flake(count: int) -> Flake:
    guests = []
    for i in range(count):
        hv = HYPERVISORS[i % len(HYPERVISORS)]
        shares = (
            [] if hv == "firecracker" else [Share.ro_store("virtiofs" if hv != "qemu" else "9p")]
        )
        guests.append(
            MicroVM(
                name=f"guest-{i:05d}",
                hypervisor=hv,  # type: ignore[arg-type]
                vcpu=1 + i % 4,
                mem=256 + 64 * (i % 8),
                interfaces=[Interface.tap_device(f"vm-{i:05d}")],
                volumes=[Volume(image="var.img", mount_point="/var", size=512)],
                shares=shares,
                users=[User(name="root", ssh_keys=["ssh-ed25519 AAAAC3Nza bench@host"])],
                packages=["htop"],
                nixos={"services.nginx.enable": i % 2 == 0},
            )
        )
    return Flake(guests=guests)


TUNING = {
    "optimize.enable": False,
    "storeDiskErofsFlags": ["-zlz4"],
    "vsock.ssh.enable": False,
    "prettyProcnames": True,
    "binScripts.hello": "echo hello",
}


def best_of(runs: int, work: Callable[[], object]) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def on_new_guests(runs: int, count: int, work: Callable[[Flake], object]) -> tuple[float, float]:
    """:func:`best_of` ``work`` on a flake of ``count`` guests built anew for each run."""
    times = []
    for _ in range(runs):
        flake = make_flake(count)
        start = time.perf_counter()
        work(flake)
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


# Project.render timed inside a fresh interpreter, nixgen already imported.
IN_PROCESS = """
import os, sys, time
from nixgen.project import Project
wall, before = time.perf_counter(), os.times()
Project.at(sys.argv[1]).render()
after = os.times()
print(time.perf_counter() - wall, after.user - before.user, after.system - before.system)
"""


_SCRATCH: list[tempfile.TemporaryDirectory[str]] = []


def _scratch() -> str:
    """One folder for every fresh render of this run, removed when the run ends."""
    if not _SCRATCH:
        _SCRATCH.append(tempfile.TemporaryDirectory())
    return _SCRATCH[0].name


def fresh_render_figures(guests: int, repeat: int, *, cli: bool) -> tuple[float, float]:
    """Median wall and CPU seconds of rendering a ``guests``-guest nixgen.toml into a
    fresh folder: in a fresh interpreter with nixgen imported, or ``nixgen render``."""
    wall, user, system = fresh_render_split(guests, repeat, cli=cli)
    return wall, user + system


def fresh_render_split(guests: int, repeat: int, *, cli: bool) -> tuple[float, float, float]:
    """:func:`fresh_render_figures` with the CPU time split: median wall, user and system
    seconds.  System time is mostly the kernel creating the new files, which
    grows when many files were deleted on the same filesystem in the last minutes."""
    text = toml_text(make_flake(guests))
    runs: list[tuple[float, float, float]] = []
    # Every run's folder is kept until the benchmark ends: a run is not charged for
    # the filesystem taking back the files of the one before (ext4 without a journal
    # steps over inodes freed in the last minutes each time it makes a file).
    parent = Path(tempfile.mkdtemp(dir=_scratch()))
    for i in range(repeat):
        folder = parent / str(i)
        folder.mkdir()
        (folder / "nixgen.toml").write_text(text)
        if cli:
            wall, before = time.perf_counter(), os.times()
            subprocess.run(
                [sys.executable, "-m", "nixgen", "render", str(folder)],
                check=True,
                capture_output=True,
            )
            after = os.times()
            user = after.children_user - before.children_user
            system = after.children_system - before.children_system
            runs.append((time.perf_counter() - wall, user, system))
        else:
            out = subprocess.run(
                [sys.executable, "-c", IN_PROCESS, str(folder)],
                check=True,
                capture_output=True,
            )
            wall_s, user_s, system_s = out.stdout.split()
            runs.append((float(wall_s), float(user_s), float(system_s)))
    return (
        statistics.median(r[0] for r in runs),
        statistics.median(r[1] for r in runs),
        statistics.median(r[2] for r in runs),
    )


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    flake = make_flake(count)
    for cli in (True, False):
        wall, user, system = fresh_render_split(count, 3, cli=cli)
        how = "`python -m nixgen render`" if cli else "Project.render, nixgen imported"
        print(
            f"render {count} guests from nixgen.toml into a fresh folder (load, validate, "
            f"render, write; {how}): median {wall:.3f} s wall, {user:.3f} s user "
            f"{system:.3f} s system cpu  (target < 1 s)"
        )
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "nixgen.toml"
        source.write_text(toml_text(flake))
        best, median = best_of(5, lambda: load_flake_file(source))
        print(f"  load nixgen.toml ({count} guests): best {best:.3f} s  median {median:.3f} s")
    # Each run on guests built anew (untimed): what is worked out for a guest
    # object is kept while it lives, and a second look at the same objects is
    # nearly free (printed after, as "again").
    best, median = on_new_guests(5, count, validate)
    print(
        f"validate {count} guests:         best {best:.3f} s  median {median:.3f} s  (target < 0.5 s)"
    )
    # microvm.* names and values the model does not type are checked against
    # microvm.nix's schema: the same guests with five such options each.
    best, median = on_new_guests(
        5, count, lambda f: validate(f.evolve(guests=[g.evolve(extra=TUNING) for g in f.guests]))
    )
    print(
        f"validate {count} guests, 5 extra options each: best {best:.3f} s  median {median:.3f} s  "
        "(target < 0.5 s; includes building the tuned guests)"
    )
    best, median = on_new_guests(5, count, render_files)
    print(
        f"render {count} guests (memory): best {best:.3f} s  median {median:.3f} s  (target < 1 s)"
    )
    best, median = on_new_guests(5, count, lambda f: (validate(f), render_files(f)))
    print(
        f"validate, then render {count} guests (memory): best {best:.3f} s  median {median:.3f} s"
    )
    validate(flake)
    render_files(flake)
    best, median = best_of(5, lambda: (validate(flake), render_files(flake)))
    print(f"  again, the same guest objects: best {best:.3f} s  median {median:.3f} s")
    with tempfile.TemporaryDirectory() as tmp:
        best, median = best_of(1, lambda: write_project(flake, Path(tmp)))
        print(f"render {count} guests to disk: {best:.3f} s (first write)")
        best, median = best_of(3, lambda: write_project(flake, Path(tmp)))
        print(f"re-render {count} guests (no change): best {best:.3f} s  median {median:.3f} s")


if __name__ == "__main__":
    main()
