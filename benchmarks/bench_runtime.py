"""What nixgen adds to starting and stopping a guest (target: < 0.2 s each).

Times, for the same runner:
- start: from ``GuestRuntime.start()`` (the library call ``nixgen run`` makes, build
  cache check included) to the boot marker on the console, against
  ``bin/microvm-run`` started by hand and its stdout read until the marker;
- the command: ``nixgen run NAME --wait`` as a user types it (Python start-up
  and imports included), from its start to its exit (it exits once the
  marker is there), against the same by hand;
- stop: from ``GuestRuntime.stop()`` to the runner's exit, against running
  ``bin/microvm-shutdown`` by hand (or SIGTERM where there is none) and
  waiting for the runner to exit.

A TCG boot on a busy machine varies by seconds from one run to the next,
which drowns a difference of a tenth of a second.  So the start is also
split into what is nixgen's own, which a loaded machine disturbs far less:
*launch*, from the call to the moment the supervisor forks the runner (build
cache check, lock, state folder, supervisor; for the command also Python's
start-up and imports), and *notice*, from the console's last write (the
marker line) to the return (for the command, to its exit).

With nix, qemu and the test guest image (tests/guestimage.py) the runner is
the stand-in qemu runner booting a real tiny guest under TCG; otherwise a
runner that prints the marker at once and sleeps.

    python benchmarks/bench_runtime.py [ROUNDS] [--fake]
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nixgen import Flake, MicroVM, write_project
from nixgen.nixcmd import NixRunner
from nixgen.process import proc
from nixgen.project import Project
from nixgen.runtime import GuestRuntime, Runtime
from tests.fakerunner import kill_leftovers, make_runner

MARKER = "NIXGEN-GUEST-BOOTED"
INSTANT = f"echo {MARKER}\nexec sleep 1000\n"


def real_guest(base: Path) -> tuple[GuestRuntime, Path] | None:
    """The stand-in qemu guest with the real image, built; None when it can't be had."""
    try:
        from tests.guestimage import cached_guest_image, qemu_available
        from tests.standin import nix_available, offline_nix_env, prepare_inputs
    except ImportError:
        return None
    image = cached_guest_image()
    if not (nix_available() and qemu_available()) or image is None:
        return None
    os.environ.update(offline_nix_env(base))
    inputs = prepare_inputs(base / "inputs", guest=image)
    nix = NixRunner(override_inputs={n: f"path:{p}" for n, p in inputs.items()})
    folder = base / "project"
    flake = Flake(guests=[MicroVM(name="bench", mem=256)])
    write_project(flake, folder)
    Project(folder).save(flake)
    guest = Runtime(folder, nix=nix).guest("bench")
    runner = Runtime(folder, nix=nix).build(["bench"])["bench"].runner
    return guest, runner


def by_hand(runner: Path, cwd: Path) -> tuple[float, float]:
    """Start the runner, read its stdout until the marker; stop it, wait for its exit."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(runner / "bin" / "microvm-run")],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    assert process.stdout is not None
    seen = b""
    while MARKER.encode() not in seen:
        chunk = process.stdout.read1(4096)  # type: ignore[attr-defined]
        if not chunk:
            raise RuntimeError(f"the runner exited before its marker: {seen[-500:]!r}")
        seen += chunk
    booted = time.perf_counter() - started
    started = time.perf_counter()
    shutdown = runner / "bin" / "microvm-shutdown"
    if shutdown.exists():
        subprocess.run([str(shutdown)], cwd=cwd, check=False, capture_output=True)
    else:
        os.killpg(process.pid, signal.SIGTERM)
    process.communicate()
    return booted, time.perf_counter() - started


LAUNCH: list[float] = []
#: (launch, notice) of each start, by how it was started
OWN: dict[str, list[tuple[float, float]]] = {"nixgen": [], "command": []}


def own_time(kind: str, guest: GuestRuntime, called: float, returned: float) -> None:
    """Record nixgen's own part of a start that began at ``called`` and returned at
    ``returned`` (``time.time()``): until the runner was forked, and from the
    console's last write to the return."""
    record = guest.state.read_run()
    assert record is not None
    written = guest.state.console.stat().st_mtime
    OWN[kind].append((record.started_at - called, max(0.0, returned - written)))


def with_command(guest: GuestRuntime, command: list[str]) -> tuple[float, float]:
    """``nixgen run NAME --wait`` from its start to its exit; then ``nixgen stop NAME``."""
    called = time.time()
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    booted = time.perf_counter() - started
    own_time("command", guest, called, time.time())
    stop = [*command[: command.index("run")], "stop", *command[command.index("run") + 1 :]]
    stop = [a for a in stop if a not in ("--wait", "--no-build")]
    record = guest.state.read_run()
    started = time.perf_counter()
    subprocess.run(_without_nix_options(stop), check=True, capture_output=True)
    assert record is not None and not proc.alive(record.pid, record.start_ticks)
    return booted, time.perf_counter() - started


def _without_nix_options(args: list[str]) -> list[str]:
    """`nixgen stop` takes no --override-input."""
    out: list[str] = []
    skip = 0
    for arg in args:
        if skip:
            skip -= 1
        elif arg == "--override-input":
            skip = 2
        else:
            out.append(arg)
    return out


def with_nixgen(guest: GuestRuntime, runner: Path | None) -> tuple[float, float]:
    called = time.time()
    started = time.perf_counter()
    guest.start(runner=runner, wait=True, timeout=120)
    booted = time.perf_counter() - started
    own_time("nixgen", guest, called, time.time())
    launched = guest.state.read_run()
    assert launched is not None
    LAUNCH.append(launched.started_at - called)  # build check, lock, supervisor: until the fork
    started = time.perf_counter()
    record = guest.state.read_run()
    guest.stop(timeout=30)
    assert record is not None and not proc.alive(record.pid, record.start_ticks)
    return booted, time.perf_counter() - started


def median(runs: list[tuple[float, float]], index: int) -> float:
    return statistics.median(r[index] for r in runs)


def main() -> None:
    args = [a for a in sys.argv[1:] if a != "--fake"]
    rounds = int(args[0]) if args else 5
    with tempfile.TemporaryDirectory(prefix="nixgen-bench-") as tmp:
        base = Path(tmp)
        os.environ["XDG_STATE_HOME"] = str(base / "state")
        try:
            real = None if "--fake" in sys.argv else real_guest(base)
            nixgen = [sys.executable, "-m", "nixgen", "run", "bench", "--wait"]
            if real is not None:
                guest, runner = real
                label = "real qemu guest (TCG)"
                start_runner: Path | None = None  # nixgen builds (cached) and starts it
                assert guest.project is not None and guest.nix is not None
                overrides = guest.nix.override_inputs.items()
                nixgen += ["-f", str(guest.project)]
                nixgen += [w for name, url in overrides for w in ("--override-input", name, url)]
            else:
                runner = make_runner(base / "runner", INSTANT)
                guest = Runtime(None, state_root=base / "vms").guest("bench")
                label = "fake runner (marker at once)"
                start_runner = runner
                guest.set_current(runner)
                nixgen += ["--state-dir", str(base / "vms"), "--no-build"]
            hand_dir = base / "by-hand"
            hand_dir.mkdir()
            measure: list[tuple[str, Callable[[], tuple[float, float]]]] = [
                ("by hand", lambda: by_hand(runner, hand_dir)),
                ("nixgen", lambda: with_nixgen(guest, start_runner)),
                ("command", lambda: with_command(guest, nixgen)),
            ]
            results: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in measure}
            for _name, work in measure:  # one warm-up round each
                work()
            for _ in range(rounds):
                for name, work in measure:
                    results[name].append(work())
            print(f"{label}, median (fastest) of {rounds} rounds:")
            for name, runs in results.items():
                print(
                    f"  {name:8} start→marker {median(runs, 0):.3f} s ({min(r[0] for r in runs):.3f})"
                    f"   stop→exit {median(runs, 1):.3f} s ({min(r[1] for r in runs):.3f})"
                )

            # Boot times under TCG on a shared machine vary by seconds from run
            # to run: the fastest runs compare best.
            def fastest(name: str, index: int) -> float:
                return min(r[index] for r in results[name])

            start_extra = fastest("nixgen", 0) - fastest("by hand", 0)
            stop_extra = fastest("nixgen", 1) - fastest("by hand", 1)
            command_extra = fastest("command", 0) - fastest("by hand", 0)
            print(
                f"  nixgen's own part of a start (build cache check, lock, state folder, "
                f"supervisor) until the runner is forked: median {statistics.median(LAUNCH):.3f} s"
            )
            verdict = "ok" if max(start_extra, stop_extra) < 0.2 else "OVER TARGET"
            print(
                f"  nixgen adds {start_extra:+.3f} s to start, {stop_extra:+.3f} s to stop (fastest runs) "
                f"(target < 0.2 s): {verdict}"
            )
            verdict = "ok" if command_extra < 0.2 else "OVER TARGET"
            print(
                f"  `nixgen run --wait` adds {command_extra:+.3f} s to the start (fastest runs, "
                f"Python start-up included) (target < 0.2 s): {verdict}"
            )
            print("  nixgen's own time in a start (launch + notice; median, fastest):")
            for kind, label in (
                ("nixgen", "GuestRuntime.start()"),
                ("command", "nixgen run --wait"),
            ):
                runs = OWN[kind][1:]  # without the warm-up round
                totals = [a + b for a, b in runs]
                launch = statistics.median(a for a, _ in runs)
                notice = statistics.median(b for _, b in runs)
                verdict = "ok" if min(totals) < 0.2 else "OVER TARGET"
                print(
                    f"    {label:21} launch {launch:.3f} s + notice {notice:.3f} s = "
                    f"{statistics.median(totals):.3f} s ({min(totals):.3f}) (target < 0.2 s): {verdict}"
                )
            print(f"  load average while measuring: {os.getloadavg()[0]:.1f} (2 cores)")
        finally:
            kill_leftovers(base)


if __name__ == "__main__":
    main()
