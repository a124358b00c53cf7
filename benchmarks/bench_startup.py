"""Start-up figures of the whole command line, each beside its anchor.

Prints the median wall time and the median CPU time (user + system, which a
busy machine disturbs less) of:

- ``python -c pass`` (the anchor), ``python -c "import argparse"`` (the
  floor of nixgen's command line, which argparse parses) and ``python -c
  "import attrs"`` (the floor of every command that builds the model or asks
  the runtime: both are attrs classes, and attrs imports inspect);
- ``nixgen --help``, ``nixgen list --no-eval``, ``nixgen check --no-eval`` in a
  fresh ``nixgen init`` project (target: < 0.1 s), and how much of list's and
  check's time is imports (``-X importtime``'s times summed; beside attrs');
- where nix is installed: a no-op ``nixgen build`` of an already-built
  project beside ``nix build`` of the same runners typed by hand (target: no
  slower than nix by hand; the no-op build runs no nix at all).

    python benchmarks/bench_startup.py [ROUNDS]

The programs run as an installed nixgen does: with compiled bytecode
(``PYTHONDONTWRITEBYTECODE`` is dropped; a warm-up run writes it).
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nixgen import Flake, Interface, MicroVM, Share, write_project
from nixgen.build import build, flake_ref
from nixgen.nixcmd import NixRunner
from tests.standin import offline_nix_env, prepare_inputs

TARGET = 0.1


def nixgen_command() -> list[str]:
    script = Path(sys.executable).with_name("nixgen")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "nixgen"]


def measure(
    argv: Sequence[str], rounds: int, *, cwd: Path, env: Mapping[str, str]
) -> tuple[float, float]:
    """Median wall and CPU seconds of ``argv`` over ``rounds`` runs (after one warm-up)."""
    walls: list[float] = []
    cpus: list[float] = []
    for index in range(rounds + 1):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, check=False)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr.decode()}")
        if index:  # the first run writes bytecode and warms caches
            walls.append(wall)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def import_time(argv: Sequence[str], rounds: int, *, cwd: Path, env: Mapping[str, str]) -> float:
    """Median seconds ``argv`` spends importing: ``-X importtime``'s own times, summed."""
    totals = []
    for _ in range(rounds):
        done = subprocess.run(
            argv,
            cwd=cwd,
            env={**env, "PYTHONPROFILEIMPORTTIME": "1"},
            capture_output=True,
            text=True,
            check=True,
        )
        # "import time:       900 |        900 |     ipaddress" (its own µs, with its imports)
        own = [line.removeprefix("import time:").split("|")[0] for line in done.stderr.splitlines()]
        totals.append(sum(int(us) for us in own if us.strip().isdigit()) / 1e6)
    return statistics.median(totals)


def show(label: str, figures: tuple[float, float], note: str = "") -> None:
    wall, cpu = figures
    print(f"{label:<34} wall {wall * 1000:7.1f} ms   cpu {cpu * 1000:7.1f} ms  {note}")


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 9
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    nixgen = nixgen_command()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        project = base / "demo"
        subprocess.run([*nixgen, "init", str(project)], env=env, check=True, capture_output=True)

        anchor = measure([sys.executable, "-c", "pass"], rounds, cwd=project, env=env)
        show("python -c pass (anchor)", anchor)
        show(
            "python -c 'import argparse' (floor)",
            measure([sys.executable, "-c", "import argparse"], rounds, cwd=project, env=env),
        )
        show(
            "python -c 'import attrs' (floor)",
            measure([sys.executable, "-c", "import attrs"], rounds, cwd=project, env=env),
            "(list and check: the model and runtime are attrs classes)",
        )
        for args in (["--help"], ["list", "--no-eval"], ["check", "--no-eval"]):
            figures = measure([*nixgen, *args], rounds, cwd=project, env=env)
            show(f"nixgen {' '.join(args)}", figures, f"(target < {TARGET * 1000:.0f} ms)")
        # what of it is imports (every module's own time, -X importtime), beside attrs'
        attrs_imports = import_time(
            [sys.executable, "-c", "import attrs"], rounds, cwd=project, env=env
        )
        print(f"{'  imports of python -c import attrs':<34} {attrs_imports * 1000:7.1f} ms")
        for args in (["list", "--no-eval"], ["check", "--no-eval"]):
            seconds = import_time([*nixgen, *args], rounds, cwd=project, env=env)
            print(f"{'  imports of nixgen ' + ' '.join(args):<34} {seconds * 1000:7.1f} ms")

        if shutil.which("nix") is None:
            print("no-op nixgen build: skipped (nix is not installed: apt-get install nix-bin)")
            return
        nix_env = {**env, **offline_nix_env(base)}
        inputs = {n: f"path:{p}" for n, p in prepare_inputs(base / "inputs").items()}
        built = base / "built"
        guests = [
            MicroVM(name=f"g{i}", interfaces=[Interface.user()], shares=[Share.ro_store()])
            for i in range(3)
        ]
        write_project(Flake(guests=guests), built)
        os.environ.update(nix_env)
        build(built, nix=NixRunner(override_inputs=inputs))  # builds, fills the no-op cache
        overrides = [a for n, u in inputs.items() for a in ("--override-input", n, u)]
        noop = measure([*nixgen, "build", *overrides], rounds, cwd=built, env=nix_env)
        ref = flake_ref(built)
        by_hand = measure(
            [
                "nix",
                "--extra-experimental-features",
                "nix-command flakes",
                "build",
                "--no-link",
                *(
                    f"{ref}#nixosConfigurations.{g.name}.config.microvm.declaredRunner"
                    for g in guests
                ),
                *overrides,
            ],
            rounds,
            cwd=built,
            env=nix_env,
        )
        show("nix build by hand (anchor)", by_hand)
        show("no-op nixgen build", noop, "(target: no slower than nix by hand)")


if __name__ == "__main__":
    main()
