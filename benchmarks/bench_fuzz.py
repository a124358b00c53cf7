"""The fuzz tests of tests/test_fuzz.py, long: many more examples.

Target (issue 10): the serializer refuses or round-trips every value through
real Nix (-0.0, surrogates, deep nesting included), the Python API raises
nothing but NixgenErrors whatever the model holds, and every edit command
either succeeds leaving a consistent project or changes nothing.  Prints how
many examples ran and how long they took; a failure prints hypothesis's
minimal example and exits 1.

    python benchmarks/bench_fuzz.py [EXAMPLES]
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nixgen.project import init_project
from tests import fuzz  # the same properties as the test-suite


def timed(name: str, examples: int, run: Callable[[], None]) -> None:
    start = time.perf_counter()
    run()
    print(f"{name:<40} {examples:>6} examples  {time.perf_counter() - start:7.1f} s  ok")


def main() -> None:
    examples = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    many = settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))

    @many
    @given(st.lists(st.one_of(fuzz.any_values, fuzz.nested()), min_size=1, max_size=12))
    def serializer(batch: list[Any]) -> None:
        fuzz.check_serializer(batch)

    @many
    @given(st.lists(fuzz.any_floats, min_size=1, max_size=20))
    def float_signs(batch: list[float]) -> None:
        fuzz.check_float_signs(batch)

    @many
    @given(fuzz.junk_flakes())
    def api(build: Callable[[], Any]) -> None:
        fuzz.check_only_nixgen_errors(build)

    with tempfile.TemporaryDirectory() as tmp:
        pristine = Path(tmp) / "pristine"
        init_project(pristine, name="vm", git_add=False)
        counter = iter(range(10**9))

        @settings(
            max_examples=examples // 5 or 1, deadline=None, suppress_health_check=list(HealthCheck)
        )
        @given(st.lists(fuzz.edits(), min_size=1, max_size=4))
        def edits(commands: list[list[str]]) -> None:
            project = Path(tmp) / f"p{next(counter)}"
            shutil.copytree(pristine, project, ignore=shutil.ignore_patterns(".nixgen"))
            try:
                for args in commands:
                    fuzz.check_edit(project, args)
            finally:
                shutil.rmtree(project, ignore_errors=True)

        @settings(
            max_examples=examples // 5 or 1,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(st.lists(fuzz.edits("db"), min_size=1, max_size=4))
        def hand_edits(commands: list[list[str]]) -> None:
            flake = Path(tmp) / f"h{next(counter)}"
            shutil.copytree(Path(__file__).parent.parent / "tests" / "corpus" / "split", flake)
            try:
                for args in commands:
                    fuzz.check_edit(flake, args)
            finally:
                shutil.rmtree(flake, ignore_errors=True)

        if fuzz.NIX_INSTANTIATE is not None:
            timed("serializer vs real Nix", examples, serializer)
            timed("float signs vs real Nix", examples, float_signs)
        else:
            print("nix not found: serializer runs skipped (apt-get install nix-bin)")
        timed("Python API: only NixgenErrors", examples, api)
        timed("edit commands (1-4 per example)", examples // 5 or 1, edits)
        timed("edits of a hand-written flake", examples // 5 or 1, hand_edits)


if __name__ == "__main__":
    main()
