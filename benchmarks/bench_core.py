"""Core speed figures: rendering and validating many guests.

Targets (issue: nixgen core): render a 1,000-guest flake in under 1 s,
validate 1,000 guests in under 0.5 s.  Prints figures; asserts nothing.

    python benchmarks/bench_core.py [N]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from nixgen import Flake, Interface, MicroVM, Share, User, Volume, render_files, validate
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


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    flake = make_flake(count)
    best, median = best_of(5, lambda: validate(flake))
    print(
        f"validate {count} guests:         best {best:.3f} s  median {median:.3f} s  (target < 0.5 s)"
    )
    # microvm.* names and values the model does not type are checked against
    # microvm.nix's schema: the same guests with five such options each.
    tuned = flake.evolve(guests=[g.evolve(extra=TUNING) for g in flake.guests])
    best, median = best_of(5, lambda: validate(tuned))
    print(
        f"validate {count} guests, 5 extra options each: best {best:.3f} s  median {median:.3f} s  "
        "(target < 0.5 s)"
    )
    best, median = best_of(5, lambda: render_files(flake))
    print(
        f"render {count} guests (memory): best {best:.3f} s  median {median:.3f} s  (target < 1 s)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        best, median = best_of(1, lambda: write_project(flake, Path(tmp)))
        print(f"render {count} guests to disk: {best:.3f} s (first write)")
        best, median = best_of(3, lambda: write_project(flake, Path(tmp)))
        print(f"re-render {count} guests (no change): best {best:.3f} s  median {median:.3f} s")


if __name__ == "__main__":
    main()
