"""Evaluation figures for computed flakes, against the stand-in inputs of the test-suite.

Prints, for the largest flake of tests/computed/ (most configurations; or
the shape named as the first argument):
- one evaluation of every configuration (``nixgen.evaluate.evaluate_flake``:
  ``nix flake metadata`` + one ``nix eval``), best of 5;
- ``nixgen show`` of it (load, decide, evaluate, place every definition), best of 5;
- ``nixgen set`` of one option, which evaluates twice (before and to check),
  best of 3 (each on a fresh copy).

    python benchmarks/bench_eval.py [SHAPE]

Needs nix (as the tests do). The stand-ins' module system is small: with real
nixpkgs each evaluation costs what evaluating the guests' options costs there
(seconds), and nixgen adds no other nix call.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nixgen.evaluate import evaluate_flake
from nixgen.nixcmd import NixRunner
from tests.standin import offline_nix_env, override_args, prepare_inputs

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "computed"


def best(runs: int, work: object) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def largest() -> str:
    def size(shape: Path) -> int:
        expect = tomllib.loads((shape / "expect.toml").read_text(encoding="utf-8"))
        return len(expect["guests"]) + len(expect.get("hosts", []))

    shapes = [p for p in CORPUS.iterdir() if (p / "expect.toml").is_file()]
    return max(shapes, key=lambda p: (size(p), p.name)).name


def main() -> None:
    shape = sys.argv[1] if len(sys.argv) > 1 else largest()
    expect = tomllib.loads((CORPUS / shape / "expect.toml").read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        inputs = prepare_inputs(root / "inputs")
        env = offline_nix_env(root)
        overrides = override_args(inputs)
        nix = NixRunner(
            env=env,
            override_inputs={
                overrides[i + 1]: overrides[i + 2] for i in range(0, len(overrides), 3)
            },
        )
        folder = root / shape
        shutil.copytree(CORPUS / shape, folder)
        evaluate_flake(folder, nix=nix)  # the inputs into the store once
        configurations = len(expect["guests"]) + len(expect.get("hosts", []))
        once = best(5, lambda: evaluate_flake(folder, nix=nix))
        nixgen = [sys.executable, "-m", "nixgen"]
        show = best(
            5,
            lambda: subprocess.run(
                [*nixgen, "show", "-f", str(folder), *overrides],
                env=env,
                check=True,
                capture_output=True,
            ),
        )
        edit = expect.get("set") or expect["unset"]
        times = []
        for i in range(3):
            copy = root / f"{shape}-{i}"
            shutil.copytree(CORPUS / shape, copy)
            verb = ["set", edit["guest"], f"{edit['key']}={edit['value']}"]
            if "value" not in edit:
                verb = ["unset", edit["guest"], edit["key"]]
            start = time.perf_counter()
            subprocess.run(
                [*nixgen, *verb, "-f", str(copy), *overrides],
                env=env,
                check=True,
                capture_output=True,
            )
            times.append(time.perf_counter() - start)
        print(f"shape: {shape} ({configurations} configurations)")
        print(f"one evaluation of every configuration: {once * 1000:.0f} ms")
        print(f"nixgen show:                           {show * 1000:.0f} ms")
        print(f"nixgen {verb[0]} (evaluates twice):       {min(times) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
