"""Concurrent writers on one project: lost updates and out-of-step files.

Target (issue 10): 8 concurrent writers x 50 rounds (real `nixgen set`
processes: six on guests of their own, two on the mem and vcpu of one
guest) lose no update and leave nixgen.toml, flake.nix and vms/ in step.
Prints figures; asserts nothing.  tests/test_lock.py runs a bounded version.

    python benchmarks/bench_stress.py [ROUNDS] [process|thread]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import stress  # the same writers as the test-suite


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    mode = sys.argv[2] if len(sys.argv) > 2 else "process"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "project"
        crew = stress.make_project(root)
        report = stress.run(root, crew, rounds, mode=mode)
    sets = report.writers * report.rounds
    print(
        f"writers:              {report.writers} ({mode}es)"
        if mode == "process"
        else f"writers:              {report.writers} (threads)"
    )
    print(f"rounds:               {report.rounds}")
    print(f"sets:                 {sets} in {report.seconds:.1f} s ({sets / report.seconds:.1f}/s)")
    print(f"failed writes:        {len(report.failures)}")
    print(f"lost updates:         {len(report.lost)}   (target 0)")
    print(f"out-of-step files:    {len(report.out_of_step)}   (target 0)")
    for line in [*report.failures[:5], *report.lost, *report.out_of_step]:
        print(f"  {line}")


if __name__ == "__main__":
    main()
