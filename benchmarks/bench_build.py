"""Build speed figures, against the stand-in inputs of the test-suite.

Prints, for N guests (default 3):
- one nixgen build of all N vs N builds of one guest each (target: ≥ 2× at N = 3);
- a no-op rebuild (target: < 0.2 s, no nix call);
- nixgen's overhead over running the same nix commands by hand (target: < 10 %),
  and, for reference, over a bare ``nix build`` of the runners (which yields
  no artifacts but the runners).

    python benchmarks/bench_build.py [N]

Needs nix (as the tests do).
Every measured build builds for real: each run gets guests nobody built before.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nixgen import Flake, Interface, MicroVM, Nix, Share, write_project
from nixgen.build import build, flake_ref
from nixgen.nixcmd import NixRunner
from tests.standin import offline_nix_env, prepare_inputs


def fresh_project(folder: Path, count: int) -> list[str]:
    """Guests whose systems are new to the store (a nonce in a package)."""
    nonce = uuid.uuid4().hex
    guests = [
        MicroVM(
            name=f"g{i}",
            interfaces=[Interface.user()],
            shares=[Share.ro_store()],
            packages=[Nix(f'pkgs.runCommand "bench-{nonce}-{i}" {{ }} "touch $out"')],
        )
        for i in range(count)
    ]
    write_project(Flake(guests=guests), folder)
    return [g.name for g in guests]


def timed(work: object) -> float:
    start = time.perf_counter()
    work()  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        os.environ.update(offline_nix_env(base))
        inputs = {n: f"path:{p}" for n, p in prepare_inputs(base / "inputs").items()}
        nix = NixRunner(override_inputs=inputs)
        overrides = [a for n, u in inputs.items() for a in ("--override-input", n, u)]

        # Warm up: lock files, stand-in store paths shared by every guest.
        warm = base / "warm"
        fresh_project(warm, 1)
        build(warm, nix=nix, use_cache=False, gc_roots=False)

        together = base / "together"
        names = fresh_project(together, count)
        t_one_call = timed(
            lambda: build(together, nix=nix, use_cache=False, gc_roots=False, jobs="auto")
        )
        apart = base / "apart"
        names = fresh_project(apart, count)
        t_separate = timed(
            lambda: [
                build(apart, [n], nix=nix, use_cache=False, gc_roots=False, jobs="auto")
                for n in names
            ]
        )
        print(f"{count} guests in one nixgen build -j auto: {t_one_call:.2f} s")
        print(f"{count} guests, one build each:    {t_separate:.2f} s")
        print(f"ratio: {t_separate / t_one_call:.2f}x  (target >= 2x at N = 3)")

        build(together, nix=nix)  # fills the cache
        noop = min(timed(lambda: build(together, nix=nix)) for _ in range(5))
        print(f"no-op rebuild: {noop * 1000:.1f} ms  (target < 200 ms)")

        # nixgen vs the same two nix commands typed by hand, five fresh rounds each.
        nixgen_times, hand_times, bare_times, nix_inside = [], [], [], []
        expr = (Path(__file__).resolve().parents[1] / "nixgen/build.nix").read_text()
        nixcmd = ["nix", "--extra-experimental-features", "nix-command flakes"]
        for round_ in range(5):
            mine = base / f"mine{round_}"
            fresh_project(mine, count)
            waited: list[float] = []
            original = NixRunner.run

            def spy(
                self: NixRunner,
                args: object,
                _w: list[float] = waited,
                _run: object = original,
                **kw: object,
            ) -> object:
                result = _run(self, args, **kw)  # type: ignore[operator]
                _w.append(result.duration)
                return result

            NixRunner.run = spy  # type: ignore[assignment, method-assign]
            try:
                nixgen_times.append(
                    timed(lambda mine=mine: build(mine, nix=nix, use_cache=False, gc_roots=False))
                )
            finally:
                NixRunner.run = original  # type: ignore[method-assign]
            nix_inside.append(sum(waited))

            hand = base / f"hand{round_}"
            fresh_project(hand, count)
            ref = flake_ref(hand)

            def by_hand(ref: str = ref) -> None:
                out = subprocess.run(
                    [
                        *nixcmd,
                        "eval",
                        "--json",
                        f"{ref}#nixosConfigurations",
                        "--apply",
                        f"({expr}).describe null",
                        *overrides,
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                guests = json.loads(out.stdout)
                subprocess.run(
                    [
                        *nixcmd,
                        "build",
                        "--json",
                        "--no-link",
                        *(
                            f"{ref}#nixosConfigurations.{n}.config.microvm.declaredRunner"
                            for n in guests
                        ),
                        *overrides,
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )

            hand_times.append(timed(by_hand))
            bare = base / f"bare{round_}"
            names = fresh_project(bare, count)
            bare_ref = flake_ref(bare)
            bare_times.append(
                timed(
                    lambda bare_ref=bare_ref, names=names: subprocess.run(
                        [
                            *nixcmd,
                            "build",
                            "--no-link",
                            *(f"{bare_ref}#packages.x86_64-linux.{n}" for n in names),
                            *overrides,
                        ],
                        capture_output=True,
                        check=True,
                    )
                )
            )
        t_nixgen, t_hand, t_bare = (
            statistics.median(t) for t in (nixgen_times, hand_times, bare_times)
        )
        python_side = statistics.median(
            a - b for a, b in zip(nixgen_times, nix_inside, strict=True)
        )
        print(
            f"nixgen build (median of 5):   {t_nixgen:.3f} s, of which nixgen itself {python_side * 1000:.0f} ms"
        )
        print(
            f"same nix commands by hand:    {t_hand:.3f} s  -> overhead "
            f"{(t_nixgen / t_hand - 1) * 100:+.0f}% wall, "
            f"{python_side / t_nixgen * 100:.1f}% in nixgen's own code  (target < 10%)"
        )
        print(
            f"bare nix build of runners:    {t_bare:.3f} s  -> nixgen takes "
            f"{t_nixgen / t_bare:.2f}x (one extra evaluation, for the artifacts)"
        )


if __name__ == "__main__":
    main()
