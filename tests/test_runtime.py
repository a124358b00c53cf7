"""Running guests: supervision, stop, status, crashes, locks, update.

Most tests use runner folders written here (``tests/fakerunner.py``): shell
scripts that print a boot marker and sleep, ignore SIGTERM, exit with code
3, …, and a tiny QMP server standing in for qemu.  The tests marked ``nix``
build the stand-in flake for real; tests/test_runtime_qemu.py boots a real
guest.  Every test ends with no process of its folder left (see ``clean``).
"""

from __future__ import annotations

import functools
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from nixgen import Flake, MicroVM, Volume
from nixgen.build import BuildResult
from nixgen.process import proc
from nixgen.project import Project
from nixgen.runtime import GuestRuntime, GuestState, Runtime
from nixgen.runtime.console import DEFAULT_BOOT_MARKER, ConsoleWakeup, MarkerWatch, tail
from nixgen.runtime.errors import (
    BootError,
    GuestError,
    GuestLockedError,
    GuestNotRunningError,
    GuestRunningError,
    KvmInternalError,
    NoRunnerError,
    QMPCommandError,
    QMPConnectionError,
    StartError,
    UnsupportedError,
)
from nixgen.runtime.qmp import ctrl_alt_del_events, execute_once
from nixgen.runtime.runner import RunnerInfo, qmp_socket_from_args
from nixgen.runtime.state import ExitRecord, RunRecord, write_json
from tests.clirunner import run_cli
from tests.fakerunner import (
    BOOTS,
    EXITS_3,
    HANGS,
    IGNORES_TERM,
    SHUTDOWN_USR1,
    fake_qemu_runner,
    favoured,
    kill_leftovers,
    leftovers,
    make_runner,
)


@pytest.fixture(autouse=True)
def clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test leaves a process behind: kill leftovers, and fail if there were any.

    (It also runs each test in its tmp_path, so the command line finds no project.)
    """
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.delenv("NIXGEN_STATE_DIR", raising=False)
    yield
    found = kill_leftovers(tmp_path)
    assert not found, f"processes left running: {found}"


@pytest.fixture
def favoured_cpu() -> Iterator[None]:
    """The tests that claim a time are timed apart from the machine's other load
    (see :func:`tests.fakerunner.favoured`)."""
    with favoured():
        yield


@pytest.fixture
def runtime(tmp_path: Path) -> Runtime:
    return Runtime(None, state_root=tmp_path / "vms")


def runner(tmp_path: Path, name: str, run: str = BOOTS, **kw: Any) -> Path:
    return make_runner(tmp_path / "runners" / name, run, **kw)


def wait_until(check: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# ----------------------------------------------------------------- start, status


@pytest.mark.usefixtures("favoured_cpu")
def test_start_waits_for_the_marker_and_reports_running(tmp_path: Path, runtime: Runtime) -> None:
    web = runtime.guest("web")
    image = runner(tmp_path, "r1", shutdown=SHUTDOWN_USR1)
    started = web.start(runner=image, wait=True, timeout=10)
    assert started.boot_seconds is not None and started.boot_seconds < 5
    status = web.status()
    assert status.state is GuestState.RUNNING and status.running
    assert status.pid == started.pid and proc.alive(started.pid)
    assert status.uptime is not None and status.uptime < 10
    assert status.hypervisor == "qemu" and status.managed_by == "nixgen"
    assert status.current == image and status.booted == image
    assert status.freshness == "unchecked" and not status.stale
    # the state folder, as documented
    state = tmp_path / "vms" / "web"
    assert (state / "current").readlink() == image
    assert (state / "booted").readlink() == image
    record = RunRecord.from_json(json.loads((state / "pid").read_text()))
    assert record is not None and record.pid == started.pid
    assert record.start_ticks == proc.start_ticks(started.pid)
    assert record.boot_id == proc.boot_id()
    # the runner runs in the state folder, in a session of its own
    assert (state / "runner.pid").read_text().strip() == str(started.pid)
    stat = proc.stat(started.pid)
    assert stat is not None and stat.session != os.getsid(0)
    assert "NIXGEN-GUEST-BOOTED" in (state / "console.log").read_text()
    web.stop(timeout=5)


def test_starting_a_running_guest_is_refused(tmp_path: Path, runtime: Runtime) -> None:
    web = runtime.guest("web")
    first = web.start(runner=runner(tmp_path, "r1"))
    with pytest.raises(GuestRunningError, match="already running") as err:
        web.start(runner=runner(tmp_path, "r1"))
    assert err.value.pid == first.pid
    assert "nixgen stop web" in str(err.value)
    assert web.pid == first.pid  # the first one is untouched
    web.stop(timeout=5)


def test_no_runner_and_no_project(runtime: Runtime) -> None:
    with pytest.raises(NoRunnerError, match="no runner"):
        runtime.guest("web").start()


def test_a_runner_without_microvm_run_is_refused(tmp_path: Path, runtime: Runtime) -> None:
    broken = tmp_path / "broken"
    (broken / "bin").mkdir(parents=True)
    with pytest.raises(StartError, match="microvm-run is missing"):
        runtime.guest("web").start(runner=broken)


# ----------------------------------------------------------------- stop


@pytest.mark.usefixtures("favoured_cpu")
def test_stop_uses_microvm_shutdown(tmp_path: Path, runtime: Runtime) -> None:
    web = runtime.guest("web")
    pid = web.start(runner=runner(tmp_path, "r1", shutdown=SHUTDOWN_USR1), wait=True).pid
    result = web.stop(timeout=10)
    assert result.was_running and result.method == "microvm-shutdown"
    assert result.seconds < 5
    assert result.exit is not None and result.exit.exit_code == 0 and result.exit.requested
    assert not proc.alive(pid)
    assert "clean-shutdown" in web.console_tail()
    status = web.status()
    assert status.state is GuestState.STOPPED and status.pid is None
    assert not (web.state.path / "pid").exists() and not (web.state.path / "stopping").exists()
    assert not leftovers(tmp_path)


@pytest.mark.usefixtures("favoured_cpu")
def test_stop_without_shutdown_script_sends_sigterm(tmp_path: Path, runtime: Runtime) -> None:
    web = runtime.guest("web")
    web.start(runner=runner(tmp_path, "r1"), wait=True)
    result = web.stop(timeout=5)
    assert result.method == "SIGTERM" and result.seconds < 2
    assert "got-term" in web.console_tail()
    assert web.status().state is GuestState.STOPPED


@pytest.mark.usefixtures("favoured_cpu")
def test_stop_timeout_escalates_to_sigkill(tmp_path: Path, runtime: Runtime) -> None:
    web = runtime.guest("web")
    pid = web.start(runner=runner(tmp_path, "stubborn", IGNORES_TERM), wait=True).pid
    started = time.monotonic()
    result = web.stop(timeout=1.0)
    took = time.monotonic() - started
    assert result.method == "SIGKILL"
    assert 0.9 < took < 4, took
    assert result.exit is not None and result.exit.signal == signal.SIGKILL
    assert result.exit.requested  # nixgen stopped it: not a crash
    assert not proc.alive(pid) and not leftovers(tmp_path)
    assert web.status().state is GuestState.STOPPED


@pytest.mark.usefixtures("favoured_cpu")
def test_a_booting_guest_is_not_asked_to_shut_down(tmp_path: Path, runtime: Runtime) -> None:
    """No boot marker yet: a clean request would be lost, so straight to SIGTERM."""
    web = runtime.guest("web")
    hangs_but_ends_on_term = "trap 'echo got-term; exit 0' TERM\n" + HANGS
    web.start(runner=runner(tmp_path, "r1", hangs_but_ends_on_term, shutdown=SHUTDOWN_USR1))
    wait_until(lambda: "stuck at 42%" in web.console_tail())
    result = web.stop(timeout=30)
    assert (result.method, result.phase) == ("SIGTERM", "booting"), result
    assert result.seconds < 1.5, result
    assert "got-term" in web.console_tail()


@pytest.mark.usefixtures("favoured_cpu")
def test_a_hung_guest_is_killed_on_evidence_not_after_the_timeout(
    tmp_path: Path, runtime: Runtime
) -> None:
    """Booted, but neither microvm-shutdown nor SIGTERM gets a word out of it."""
    web = runtime.guest("web")
    hung = runner(tmp_path, "r1", IGNORES_TERM, shutdown="exec sleep 300\n")
    pid = web.start(runner=hung, wait=True).pid
    result = invoke("stop", "web", "--state-dir", str(tmp_path / "vms"))
    assert result.exit_code == 0, result.output
    head, *steps = result.output.splitlines()
    assert head.startswith("stopped web with SIGKILL in ") and "(hung; " in head
    seconds = float(head.split(" in ")[1].split()[0])
    assert seconds < 3.0, head
    assert steps == [
        "  microvm-shutdown: no sign from the guest within 1 s",
        "  SIGTERM: it did not end",
        "  SIGKILL: it ended",
    ]
    assert not proc.alive(pid) and not leftovers(tmp_path)


@pytest.mark.usefixtures("favoured_cpu")
def test_a_guest_that_reacts_gets_its_time(tmp_path: Path, runtime: Runtime) -> None:
    """Printing while it shuts down buys a booted guest time beyond the reaction window."""
    slow = BOOTS.replace("echo clean-shutdown;", "echo stopping; sleep 1; echo more; sleep 1;")
    web = runtime.guest("web")
    web.start(runner=runner(tmp_path, "r1", slow, shutdown=SHUTDOWN_USR1), wait=True)
    result = web.stop(timeout=30)
    assert (result.method, result.phase) == ("microvm-shutdown", "booted"), result
    assert 1.8 < result.seconds < 5, result


@pytest.mark.parametrize("busy", [False, True])
def test_a_guest_waiting_for_a_busy_cpu_gets_its_window(
    tmp_path: Path, runtime: Runtime, monkeypatch: pytest.MonkeyPatch, busy: bool
) -> None:
    """The reaction window counts time the guest could run: one that takes 2.5 s
    to end is hung on an idle machine, and given its time when its processes
    waited 2 s for a CPU (as on a loaded machine; the wait is made up here)."""
    import nixgen.runtime.guest as guest_module

    if busy:
        monkeypatch.setattr(guest_module._CpuWait, "seconds", lambda self: 2.0)
    slow = BOOTS.replace("echo clean-shutdown; exit 0", "sleep 2.5; exit 0")
    web = runtime.guest("web")
    web.start(runner=runner(tmp_path, "r1", slow, shutdown=SHUTDOWN_USR1), wait=True)
    result = web.stop(timeout=30)
    if busy:
        assert (result.method, result.phase) == ("microvm-shutdown", "booted"), result
        assert 0.5 < result.cpu_wait <= 2.0, result  # what the window grew by
    else:
        assert (result.method, result.phase) == ("SIGTERM", "hung"), result
        assert result.cpu_wait < 0.5, result


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM", "Ctrl-C"])
def test_a_shutdown_helper_ends_with_nixgen(tmp_path: Path, runtime: Runtime, how: str) -> None:
    """A killed ``nixgen stop`` leaves no microvm-shutdown holding the QMP socket."""
    state = tmp_path / "vms"
    web = runtime.guest("web")
    helper_script = "echo $$ > helper.pid\nexec sleep 300\n"
    # A guest that keeps printing shows that it heard the request: the stop waits
    # for it (two thirds of its timeout), not one reaction window, so the stopper
    # is still inside microvm-shutdown however late this test gets to kill it.
    ticking = BOOTS.replace("while :; do sleep", "while :; do echo tick; sleep")
    pid = web.start(runner=runner(tmp_path, "r1", ticking, shutdown=helper_script), wait=True).pid
    command = [sys.executable, "-m", "nixgen", "stop", "web", "--state-dir", str(state)]
    # its own terminal group, and Ctrl-C's default action as at a terminal
    stopper = subprocess.Popen(command, start_new_session=True, preexec_fn=_sigint_default)
    helper_pid = web.state.path / "helper.pid"
    wait_until(lambda: helper_pid.exists() and helper_pid.read_text().strip() != "")
    helper = int(helper_pid.read_text())
    assert proc.alive(helper)
    if how == "Ctrl-C":
        os.killpg(stopper.pid, signal.SIGINT)  # what the terminal does
    else:
        os.kill(stopper.pid, getattr(signal, how))
    stopper.wait(timeout=10)
    wait_until(lambda: not proc.alive(helper), timeout=3)
    assert proc.alive(pid)  # the guest itself was not stopped
    web.stop(timeout=3)  # (it keeps printing: two thirds of this, then SIGTERM)


def test_a_busy_host_grows_the_reaction_window_by_no_more_than_the_time_passed(
    tmp_path: Path,
) -> None:
    """Four busy processes of a guest share one CPU, each waiting for it three
    quarters of the time: the window grows by the longest wait of one of them,
    which cannot outgrow the time that passed (their sum, three times as much,
    would keep a hung guest from ever counting as hung)."""
    import nixgen.runtime.guest as guest_module

    cpu = min(os.sched_getaffinity(0))
    busy = "import time\nend = time.monotonic() + 1.5\nwhile time.monotonic() < end: pass\n"
    loops = "\n".join(f"{sys.executable} -c '{busy}' &" for _ in range(4)) + "\nwait\n"
    guest = subprocess.Popen(["sh", "-c", loops], preexec_fn=lambda: os.sched_setaffinity(0, {cpu}))
    try:
        wait_until(lambda: len(proc.descendants(guest.pid)) >= 4)
        record = RunRecord(
            pid=guest.pid,
            start_ticks=None,
            supervisor=None,
            supervisor_ticks=None,
            pgid=None,
            boot_id=None,
            started_at=time.time(),
            runner=None,
        )
        began = time.monotonic()
        waited = guest_module._CpuWait(record, None)
        time.sleep(1.0)
        grown = waited.seconds()
        passed = time.monotonic() - began
        assert 0.2 < grown <= passed + 0.05, (grown, passed)
    finally:
        guest.wait()


def _sigint_default() -> None:
    """SIGINT back to its default in a child: where this test runs as a background
    job of a non-interactive shell, SIGINT is ignored, and a Python started with it
    ignored keeps ignoring it (no KeyboardInterrupt): Ctrl-C would never arrive."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_stopping_a_stopped_guest_is_fine(tmp_path: Path, runtime: Runtime) -> None:
    result = runtime.guest("web").stop()
    assert not result.was_running and result.method is None


def test_helpers_end_with_the_guest(tmp_path: Path, runtime: Runtime) -> None:
    """A helper in the runner's group and one that left it (setsid) both end."""
    script = "sleep 300 & echo $! > helper.pid\nsetsid sleep 301 & echo $! > escaped.pid\n" + BOOTS
    web = runtime.guest("web")
    web.start(runner=runner(tmp_path, "r1", script), wait=True)
    helpers = [int((web.state.path / f).read_text()) for f in ("helper.pid", "escaped.pid")]
    wait_until(lambda: all(proc.alive(p) for p in helpers))
    web.stop(timeout=5)
    assert not any(proc.alive(p) for p in helpers)
    assert not leftovers(tmp_path)


def test_helpers_end_when_the_runner_crashes(tmp_path: Path, runtime: Runtime) -> None:
    script = "setsid sleep 302 & echo $! > escaped.pid\necho NIXGEN-GUEST-BOOTED\nexit 7\n"
    web = runtime.guest("web")
    web.start(runner=runner(tmp_path, "r1", script))
    wait_until(lambda: web.status().state is GuestState.CRASHED)
    helper = int((web.state.path / "escaped.pid").read_text())
    wait_until(lambda: not proc.alive(helper))
    assert web.status().exit is not None
    wait_until(lambda: not leftovers(tmp_path))


# ----------------------------------------------------------------- crashes


def test_kill_9_is_a_crash_and_the_guest_starts_again(tmp_path: Path, runtime: Runtime) -> None:
    web = runtime.guest("web")
    pid = web.start(runner=runner(tmp_path, "r1"), wait=True).pid
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not (web.state.path / "pid").exists())
    status = web.status()
    assert status.state is GuestState.CRASHED
    assert status.exit is not None and status.exit.signal == signal.SIGKILL
    assert status.exit.describe() == "killed by SIGKILL" and status.exit.returncode == 137
    assert "NIXGEN-GUEST-BOOTED" in status.console_tail
    again = web.start(runner=runner(tmp_path, "r1"), wait=True)
    assert again.pid != pid and web.status().state is GuestState.RUNNING
    # the crashed run's console is kept beside the new one
    assert "NIXGEN-GUEST-BOOTED" in (web.state.path / "console.log.1").read_text()
    web.stop(timeout=5)


def test_exit_code_3_fails_the_boot_wait_with_the_console(tmp_path: Path, runtime: Runtime) -> None:
    web = runtime.guest("web")
    with pytest.raises(BootError) as err:
        web.start(runner=runner(tmp_path, "r1", EXITS_3), wait=True, timeout=10)
    assert err.value.exit_code == 3
    assert "exit code 3" in str(err.value)
    assert "boom: no root file system" in str(err.value)
    status = web.status()
    assert status.state is GuestState.CRASHED and status.exit is not None
    assert status.exit.exit_code == 3 and not status.exit.requested
    assert status.console_tail[-1] == "boom: no root file system"


@pytest.mark.usefixtures("favoured_cpu")
def test_a_hanging_boot_times_out_with_the_console(tmp_path: Path, runtime: Runtime) -> None:
    web = runtime.guest("web")
    web.start(runner=runner(tmp_path, "r1", HANGS))
    started = time.monotonic()
    with pytest.raises(BootError, match=r"within 0\.5 s") as err:
        web.wait_booted(0.5)
    assert time.monotonic() - started < 2
    assert "stuck at 42%" in err.value.console
    assert web.is_running()
    web.stop(timeout=5)


def test_a_custom_marker(tmp_path: Path, runtime: Runtime) -> None:
    web = runtime.guest("web")
    web.start(runner=runner(tmp_path, "r1", HANGS))
    assert web.wait_booted(5, marker=r"stuck at \d+%") < 5
    web.stop(timeout=5)


# ----------------------------------------------------------------- stale files


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def _stale_record(guest: GuestRuntime, **changes: Any) -> None:
    guest.state.create()
    record: dict[str, Any] = {
        "pid": _dead_pid(),
        "start_ticks": 1,
        "supervisor": None,
        "supervisor_ticks": None,
        "pgid": None,
        "boot_id": proc.boot_id(),
        "started_at": time.time() - 100,
        "runner": None,
    }
    record.update(changes)
    write_json(guest.state.path / "pid", record)


def _stale_socket(path: Path) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.close()  # the file stays: what a killed qemu leaves


@pytest.mark.parametrize(
    "case",
    ["host restarted", "pid dead", "pid reused"],
)
def test_stale_pid_file_is_recognised_and_cleaned(
    tmp_path: Path, runtime: Runtime, case: str
) -> None:
    web = runtime.guest("web")
    if case == "host restarted":
        _stale_record(web, boot_id="00000000-0000-0000-0000-000000000000", pid=os.getpid())
    elif case == "pid dead":
        _stale_record(web)
    else:  # a live process got the number: its start time differs
        _stale_record(web, pid=os.getpid(), start_ticks=1)
    _stale_socket(web.state.path / "control.socket")
    status = web.status()
    assert not status.running and status.pid is None
    if case == "host restarted":
        assert status.state is GuestState.STOPPED
        assert any("host restarted" in n for n in status.notes)
    else:
        assert status.state is GuestState.CRASHED
        assert any("vanished" in n for n in status.notes)
    assert not web.is_running()
    started = web.start(runner=runner(tmp_path, "r1"), wait=True)
    assert not (web.state.path / "control.socket").exists()
    record = web.state.read_run()
    assert record is not None and record.pid == started.pid
    web.stop(timeout=5)
    assert os.getpid() == os.getpid()  # (the test process was never signalled)


# ----------------------------------------------------------------- locking


def test_the_lock_serialises_nixgen_processes(tmp_path: Path, runtime: Runtime) -> None:
    web = runtime.guest("web")
    image = runner(tmp_path, "r1")
    impatient = Runtime(None, state_root=tmp_path / "vms", lock_timeout=0.3).guest("web")
    with web.state.lock():
        with pytest.raises(GuestLockedError, match="another nixgen process"):
            impatient.start(runner=image)
        assert not leftovers(tmp_path)
        # a patient one waits for the lock, then starts
        done: list[int] = []
        thread = threading.Thread(target=lambda: done.append(web.start(runner=image).pid))
        thread.start()
        time.sleep(0.3)
        assert not done
    thread.join(10)
    assert done and web.pid == done[0]
    web.stop(timeout=5)


_STARTER = """
import sys
from nixgen.runtime.errors import GuestRunningError
from nixgen.runtime import Runtime
guest = Runtime(None, state_root=sys.argv[1]).guest("web")
try:
    print("started", guest.start(runner=sys.argv[2]).pid)
except GuestRunningError as err:
    print("refused", err.pid)
"""


def test_two_starters_at_once_start_one_guest(tmp_path: Path, runtime: Runtime) -> None:
    image = runner(tmp_path, "r1")
    for _ in range(3):
        starters = [
            subprocess.Popen(
                [sys.executable, "-c", _STARTER, str(tmp_path / "vms"), str(image)],
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = sorted(p.communicate(timeout=30)[0].split()[0] for p in starters)
        assert outputs == ["refused", "started"]
        runners = [p for p in leftovers(tmp_path) if _cmd(p).startswith("/bin/sh ")]
        assert len(runners) == 1
        runtime.guest("web").stop(timeout=5)


def _cmd(pid: int) -> str:
    return " ".join(proc.cmdline(pid))


# ----------------------------------------------------------------- QMP (fake qemu)


@pytest.mark.usefixtures("favoured_cpu")
def test_qmp_status_and_clean_stop_over_qmp(tmp_path: Path, runtime: Runtime) -> None:
    web = runtime.guest("web")
    web.start(runner=fake_qemu_runner(tmp_path / "q"), wait=True)
    assert web.control_socket() == web.state.path / "control.socket"
    status = web.status()
    assert status.run_state == "running"
    assert status.balloon_mib == 448 and status.vcpu == 2 and status.mem == 512
    with web.qmp() as qmp:
        assert qmp.status() == "running"
    result = web.stop(timeout=6)
    assert result.method == "qmp" and result.seconds < 3
    assert "fake-qemu: leaving after input-send-event" in web.console_tail()


@pytest.mark.usefixtures("favoured_cpu")
@pytest.mark.parametrize(
    ("ignored", "last", "method"),
    [("cad", "system_powerdown", "qmp"), ("cad,powerdown", "quit", "quit")],
)
def test_qmp_stop_falls_back_to_powerdown_then_quit(
    tmp_path: Path, runtime: Runtime, ignored: str, last: str, method: str
) -> None:
    web = runtime.guest("web")
    web.start(runner=fake_qemu_runner(tmp_path / "q", "--ignore", ignored), wait=True)
    result = web.stop(timeout=6)
    assert result.method == method
    # no word from the guest within the reaction window: on to the next step, not the timeout
    assert result.seconds < 3.5, result
    assert f"fake-qemu: leaving after {last}" in web.console_tail()
    assert result.phase == ("hung" if method == "quit" else "booted"), result


@pytest.mark.usefixtures("favoured_cpu")
def test_internal_error_fails_the_boot_fast(tmp_path: Path, runtime: Runtime) -> None:
    web = runtime.guest("web")
    image = fake_qemu_runner(tmp_path / "q", "--state", "internal-error", "--no-marker")
    web.start(runner=image)
    started = time.monotonic()
    with pytest.raises(KvmInternalError, match="internal-error") as err:
        web.wait_booted(60)
    assert time.monotonic() - started < 5
    assert "accel=tcg" in str(err.value)
    assert web.status().run_state == "internal-error"
    web.stop(timeout=3)


def test_wait_for_the_control_socket(tmp_path: Path, runtime: Runtime) -> None:
    web = runtime.guest("web")
    web.start(runner=fake_qemu_runner(tmp_path / "q", "--no-marker"))
    assert web.wait_booted(10, until="socket") < 10
    with pytest.raises(BootError):
        web.wait_booted(0.3)  # no marker ever comes
    web.stop(timeout=3)


def test_qmp_socket_paths_longer_than_a_socket_address(tmp_path: Path) -> None:
    deep = tmp_path / ("x" * 60) / ("y" * 60)
    runtime = Runtime(None, state_root=deep)
    web = runtime.guest("web")
    web.start(runner=fake_qemu_runner(tmp_path / "q"), wait=True)
    assert len(str(web.control_socket())) > 108
    assert web.status().run_state == "running"
    web.stop(timeout=3)


def test_a_guest_something_else_runs_in_the_state_folder(tmp_path: Path, runtime: Runtime) -> None:
    """As microvm.nix's microvm@ unit does: a process whose working directory
    is the state folder is the guest, and nixgen leaves it alone."""
    web = runtime.guest("web")
    web.state.create()
    unit = subprocess.Popen(["sleep", "60"], cwd=web.state.path)
    try:
        status = web.status(live=False)
        assert status.running and status.managed_by == "other" and status.pid == unit.pid
        with pytest.raises(GuestRunningError, match=f"pid {unit.pid}") as refused:
            web.start(runner=runner(tmp_path, "a"))
        assert "systemctl stop microvm@web" in str(refused.value)
        with pytest.raises(GuestError, match="nixgen did not start it"):
            web.stop(timeout=3)
    finally:
        unit.kill()
        unit.wait()
    assert not web.status(live=False).running


def test_a_boot_marker_found_across_the_pieces_of_console_text() -> None:
    """The console arrives in pieces; only new text (and the end of the old)
    is searched again, so a marker split between writes is still found."""
    watch = MarkerWatch(DEFAULT_BOOT_MARKER)
    assert not watch.feed("[    0.1] booting\n" * 700)  # more than the window keeps
    assert not watch.feed("web lo")
    assert watch.feed("gin: ")
    one_by_one = MarkerWatch("NIXGEN-GUEST-BOOTED")
    assert [bool(one_by_one.feed(c)) for c in "a NIXGEN-GUEST-BOOTED"][-1]
    long_first = MarkerWatch("NIXGEN-GUEST-BOOTED")
    assert not long_first.feed("y" * 9000 + "NIXGEN-GUEST")
    assert long_first.feed("-BOOTED fs")


def test_waiting_for_the_marker_wakes_on_console_writes(tmp_path: Path) -> None:
    """inotify and a pidfd: the wait sleeps until the log is written to or
    the process ends, not for a fixed poll."""
    log = tmp_path / "console.log"
    log.write_text("")
    sleeper = subprocess.Popen(["sleep", "30"])
    with ConsoleWakeup(log, sleeper.pid) as wakeup:
        began = time.monotonic()
        assert not wakeup.wait(0.3, 0.3)  # the process runs: no need to look
        assert time.monotonic() - began >= 0.25  # nothing happened: it slept

        def append_marker() -> None:
            with log.open("a") as console:  # one write, one event (no truncation)
                console.write("NIXGEN-GUEST-BOOTED\n")

        writer = threading.Timer(0.2, append_marker)
        writer.start()
        began = time.monotonic()
        assert not wakeup.wait(20, 20)
        assert time.monotonic() - began < 10  # woken by the write
        writer.join()
        sleeper.kill()
        began = time.monotonic()
        # A write may still wake a wait first (False: look at the log); the
        # end of the process must wake one soon after, not at the timeout.
        while not wakeup.wait(20, 20):
            assert time.monotonic() - began < 10
        assert time.monotonic() - began < 10  # the process ended
    sleeper.wait()


def test_one_shot_qmp_skips_events_and_maps_errors(tmp_path: Path) -> None:
    """The plain-socket QMP call of the boot wait and of stop: greeting,
    capabilities, the command; events before a reply are skipped."""
    path = tmp_path / "qmp.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(4)
    seen: list[dict[str, Any]] = []

    def serve() -> None:
        for _ in range(2):
            conn, _ = server.accept()
            with conn, conn.makefile("rb") as lines:
                conn.sendall(b'{"QMP": {"version": {}, "capabilities": []}}\r\n')
                for line in lines:
                    seen.append(json.loads(line))
                    conn.sendall(b'{"event": "RTC_CHANGE", "data": {}}\r\n')
                    if seen[-1]["execute"] == "query-status":
                        conn.sendall(b'{"return": {"status": "paused"}}\r\n')
                    elif seen[-1]["execute"] == "qmp_capabilities":
                        conn.sendall(b'{"return": {}}\r\n')
                    else:
                        conn.sendall(b'{"error": {"class": "GenericError", "desc": "no"}}\r\n')

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert execute_once(path, "query-status") == {"status": "paused"}
    with pytest.raises(QMPCommandError, match="no"):
        execute_once(path, "input-send-event", ctrl_alt_del_events())
    thread.join(5)
    server.close()
    assert [m["execute"] for m in seen] == [
        "qmp_capabilities",
        "query-status",
        "qmp_capabilities",
        "input-send-event",
    ]
    assert seen[-1]["arguments"]["events"][0]["data"]["key"]["data"] == "ctrl"
    with pytest.raises(QMPConnectionError):
        execute_once(tmp_path / "nobody.sock", "query-status", timeout=0.5)


def test_runner_facts() -> None:
    argv = ["qemu", "-m", "512", "-qmp", "unix:control.socket,server,nowait"]
    assert qmp_socket_from_args(argv) == "control.socket"
    assert qmp_socket_from_args(["qemu", "-qmp", "tcp:1234"]) is None


def test_runner_info_reads_quoted_and_plain_scripts(tmp_path: Path) -> None:
    quoted = make_runner(
        tmp_path / "a", "exec qemu '-m' '384M' '-smp' '2' '-qmp' 'unix:boot.sock,server,nowait'\n"
    )
    info = RunnerInfo.read(quoted)
    assert (info.vcpu, info.mem, info.qmp_socket, info.hypervisor) == (2, 384, "boot.sock", "qemu")
    stub = make_runner(
        tmp_path / "b",
        "echo 'microvm-run web hypervisor=firecracker vcpu=3 mem=1024'\n",
        hypervisor="firecracker",
    )
    info = RunnerInfo.read(stub)
    assert (info.vcpu, info.mem, info.qmp_socket) == (3, 1024, None)
    assert info.shutdown_script is None and info.balloon_script is None


# ----------------------------------------------------------------- console, balloon, foreground


def test_follow_console_until_the_guest_stops(tmp_path: Path, runtime: Runtime) -> None:
    script = "echo line-1\nsleep 0.2\necho line-2\nsleep 0.2\necho line-3\n"
    web = runtime.guest("web")
    web.start(runner=runner(tmp_path, "r1", script))
    text = "".join(web.follow_console(lines=5, poll=0.02, until_stopped=True))
    assert [line for line in text.splitlines() if line] == ["line-1", "line-2", "line-3"]
    assert tail(web.state.console, 2) == ["line-2", "line-3"]
    # it ended after the supervisor had finished (its last act removes the pid file)
    assert web.state.read_run() is None and not leftovers(tmp_path)


def test_balloon(tmp_path: Path, runtime: Runtime) -> None:
    web = runtime.guest("web")
    with pytest.raises(GuestNotRunningError):
        web.balloon(256)
    web.start(runner=runner(tmp_path, "r1", balloon='echo "balloon to $1 in $(pwd)"\n'))
    assert web.balloon(256).strip() == f"balloon to 256 in {web.state.path}"
    web.stop(timeout=5)
    other = runtime.guest("fc")
    other.start(runner=runner(tmp_path, "r2", hypervisor="firecracker"))
    with pytest.raises(UnsupportedError, match="no bin/microvm-balloon"):
        other.balloon(256)
    other.stop(timeout=5)


def test_run_in_the_foreground(tmp_path: Path, runtime: Runtime) -> None:
    web = runtime.guest("web")
    ended = web.run_foreground(runner=runner(tmp_path, "r1", EXITS_3))
    assert ended is not None and ended.exit_code == 3
    assert web.status().state is GuestState.CRASHED
    assert not (web.state.path / "pid").exists()


# ----------------------------------------------------------------- update, outdated, stale


class FakeFlake:
    """Stands in for nix as the Runtime's builder: which runner each guest of the
    flake builds to now."""

    def __init__(self, runners: Mapping[str, Path]) -> None:
        self.runners = dict(runners)
        self.builds: list[list[str]] = []
        self.evals: list[list[str] | None] = []

    def result(self, name: str) -> BuildResult:
        out = self.runners[name]
        return BuildResult(
            name=name,
            hypervisor="qemu",
            system="x86_64-linux",
            runner=out,
            kernel=out / "kernel",
            initrd=out / "initrd",
            reg_info=None,
            toplevel=out,
            store_disk=None,
            drv_path=f"/nix/store/{name}.drv",
        )

    def build(self, directory: Any, names: Sequence[str] | None = None, **kw: Any) -> Any:
        wanted = list(names) if names is not None else list(self.runners)
        self.builds.append(wanted)
        return {n: self.result(n) for n in wanted}

    def cached(self, *args: Any, **kw: Any) -> None:
        return None

    def evaluate(self, directory: Any, names: Sequence[str] | None = None, **kw: Any) -> Any:
        self.evals.append(None if names is None else list(names))
        wanted = list(names) if names is not None else list(self.runners)
        return {n: {"runnerOut": str(self.runners[n])} for n in wanted}


@pytest.fixture
def flake(tmp_path: Path) -> FakeFlake:
    fake = FakeFlake(
        {
            "a": runner(tmp_path, "a-1", shutdown=SHUTDOWN_USR1),
            "b": runner(tmp_path, "b-1", shutdown=SHUTDOWN_USR1),
        }
    )
    (tmp_path / "project").mkdir()
    return fake


def test_update_restarts_only_the_guest_that_changed(tmp_path: Path, flake: FakeFlake) -> None:
    rt = Runtime(tmp_path / "project", state_root=tmp_path / "vms", builder=flake)
    a, b = rt.guest("a"), rt.guest("b")
    pid_a = a.start(wait=True).pid  # builds (fake) and starts
    pid_b = b.start(wait=True).pid
    assert flake.builds == [["a"], ["b"]]
    assert [s.freshness for s in rt.status(["a", "b"])] == ["current", "current"]

    flake.runners["b"] = runner(tmp_path, "b-2", shutdown=SHUTDOWN_USR1)  # the flake changed
    status = {s.name: s for s in rt.status(["a", "b"])}
    assert status["b"].outdated and status["b"].freshness == "outdated"
    assert status["b"].expected == flake.runners["b"]
    assert not status["a"].outdated

    results = {r.name: r for r in rt.update(["a", "b"], restart=True)}
    assert flake.builds[-1] == ["a", "b"]  # one build for both
    assert not results["a"].changed and not results["a"].restarted
    assert results["b"].changed and results["b"].restarted
    assert results["b"].old == tmp_path / "runners" / "b-1"
    assert results["b"].new == flake.runners["b"]
    assert a.pid == pid_a  # untouched
    assert b.pid not in (None, pid_b)
    after = {s.name: s for s in rt.status(["a", "b"])}
    assert after["b"].booted == flake.runners["b"] == after["b"].current
    assert [after[n].freshness for n in "ab"] == ["current", "current"]
    assert "clean-shutdown" in (b.state.path / "console.log.1").read_text()
    a.stop(timeout=5)
    b.stop(timeout=5)


def test_update_without_restart_leaves_the_guest_stale(tmp_path: Path, flake: FakeFlake) -> None:
    rt = Runtime(tmp_path / "project", state_root=tmp_path / "vms", builder=flake)
    a = rt.guest("a")
    pid = a.start(wait=True).pid
    flake.runners["a"] = runner(tmp_path, "a-2")
    [result] = rt.update(["a"])
    assert result.changed and result.running and not result.restarted
    assert result.diff is None  # not store paths: nothing for nix to compare
    status = a.status()
    assert status.pid == pid and status.stale and status.freshness == "stale"
    assert status.booted == tmp_path / "runners" / "a-1"
    assert status.current == flake.runners["a"]
    # a stopped guest is never stale: the next start boots `current`
    a.stop(timeout=5)
    assert not a.status().stale
    a.start(build=False, wait=True)
    assert a.status().booted == flake.runners["a"]
    a.stop(timeout=5)


def test_cli_update_restart_says_it_restarted_a_stale_guest(
    tmp_path: Path, flake: FakeFlake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Updated earlier without --restart: unchanged now, but stale, so restarted, and said so."""
    import nixgen.cli.run as cli_run

    monkeypatch.setattr(cli_run, "_runtime", functools.partial(cli_run._runtime, builder=flake))
    rt = Runtime(tmp_path / "project", state_root=tmp_path / "vms", builder=flake)
    a = rt.guest("a")
    pid = a.start(wait=True).pid
    flake.runners["a"] = runner(tmp_path, "a-2", shutdown=SHUTDOWN_USR1)
    rt.update(["a"])
    args = ["update", "a", "-f", str(tmp_path / "project"), "--state-dir", str(tmp_path / "vms")]
    result = invoke(*args, "--restart")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-2:] == [
        f"a: unchanged ({flake.runners['a']})",
        "  restarted: it was running an older runner",
    ]
    assert a.pid not in (None, pid) and not a.status().stale
    [data] = json.loads(invoke(*args, "--restart", "--json").output)
    assert data["restarted"] is False  # current now: nothing to restart, and the text agrees
    assert invoke(*args, "--restart").output.splitlines()[-1].startswith("a: unchanged")
    a.stop(timeout=5)


def test_destroy_removes_state_volumes_and_gc_roots(tmp_path: Path, flake: FakeFlake) -> None:
    project = tmp_path / "project"
    volume = tmp_path / "elsewhere" / "data.img"
    volume.parent.mkdir()
    volume.write_bytes(b"\0" * 4096)
    guests = [MicroVM(name="a", volumes=[Volume(image=str(volume), size=1, mount_point="/d")])]
    Project(project).save(Flake(guests=guests))
    build_root = project / ".nixgen" / "gcroots" / "a"
    build_root.parent.mkdir(parents=True)
    build_root.symlink_to(flake.runners["a"])
    rt = Runtime(project, state_root=tmp_path / "vms", builder=flake)
    a = rt.guest("a")
    a.start(wait=True)
    (a.state.path / "var.img").write_bytes(b"\0" * 4096)  # a volume with a relative path
    with pytest.raises(GuestRunningError):
        rt.destroy("a")
    assert volume.exists() and a.state.path.is_dir() and a.is_running()
    args = ["destroy", "a", "-f", str(project), "--state-dir", str(tmp_path / "vms")]
    refused = invoke(*args)  # no terminal to ask on, and no --yes
    assert refused.exit_code == 1 and "pass --yes" in refused.output
    assert rt.destroy_plan("a") == [volume, build_root, a.state.path]
    result = invoke(*args, "--yes", "--stop")
    assert result.exit_code == 0, result.output
    assert f"  {volume}" in result.output and f"  {a.state.path}" in result.output
    assert "stopped a with microvm-shutdown" in result.output
    assert "destroyed a (3 removed)" in result.output
    assert not volume.exists() and not build_root.exists() and not a.state.path.exists()
    assert flake.runners["a"].is_dir()  # the runner itself is nix's to collect
    assert invoke(*args, "--yes").output.strip() == "nothing to remove"
    a.start(build=False, runner=flake.runners["a"], wait=True)  # a fresh start works
    a.stop(timeout=5)


def test_status_without_evaluation(tmp_path: Path, flake: FakeFlake) -> None:
    rt = Runtime(tmp_path / "project", state_root=tmp_path / "vms", builder=flake)
    rt.guest("a").start(wait=True)
    [status] = rt.status(["a"], evaluate=False)
    assert status.outdated is None and status.freshness == "unchecked"
    assert flake.evals == []
    assert rt.names() == ["a"]
    rt.guest("a").stop(timeout=5)


# ----------------------------------------------------------------- command line


def invoke(*args: str) -> Any:
    return run_cli(list(args))


def test_cli_run_status_list_console_stop(tmp_path: Path) -> None:
    state = str(tmp_path / "vms")
    image = runner(tmp_path, "r1", shutdown=SHUTDOWN_USR1)
    Runtime(None, state_root=state).guest("web").set_current(image)

    result = invoke("run", "web", "--state-dir", state, "--no-build", "--wait", "--timeout", "10")
    assert result.exit_code == 0, result.output
    assert "started web (pid " in result.output and "web booted in" in result.output

    result = invoke("run", "web", "--state-dir", state, "--no-build")
    assert result.exit_code == 1 and "already running" in result.output

    result = invoke("status", "web", "--state-dir", state, "--json")
    assert result.exit_code == 0, result.output
    [data] = json.loads(result.output)
    assert data["state"] == "running" and data["hypervisor"] == "qemu"
    assert data["current"] == str(image) and data["freshness"] == "unchecked"

    result = invoke("status", "--state-dir", state)
    assert result.output.startswith("web: running, pid ")

    result = invoke("list", "--state-dir", state)
    header, row = result.output.splitlines()
    assert header.split() == [
        "NAME",
        "STATE",
        "PID",
        "UPTIME",
        "HYPERVISOR",
        "VCPU",
        "MEM",
        "RUNNER",
    ]
    assert row.split()[:2] == ["web", "running"]

    result = invoke("console", "web", "--state-dir", state, "--no-follow")
    assert "NIXGEN-GUEST-BOOTED" in result.output

    result = invoke("stop", "web", "--state-dir", state)
    assert result.exit_code == 0
    assert "stopped web with microvm-shutdown" in result.output and "exit code 0" in result.output
    result = invoke("stop", "web", "--state-dir", state)
    assert "web was not running" in result.output


def test_cli_reports_a_crash(tmp_path: Path) -> None:
    state = str(tmp_path / "vms")
    Runtime(None, state_root=state).guest("web").set_current(runner(tmp_path, "r1", EXITS_3))
    result = invoke("run", "web", "--state-dir", state, "--no-build", "--wait", "--timeout", "10")
    assert result.exit_code == 1
    assert "did not boot: it exited before booting (exit code 3)" in result.output
    assert "boom: no root file system" in result.output
    result = invoke("status", "web", "--state-dir", state)
    assert "web: crashed (exit code 3" in result.output
    assert "boom: no root file system" in result.output
    result = invoke("list", "--state-dir", state)
    assert "crashed (3)" in result.output


def test_cli_run_wait_stops_a_guest_that_does_not_boot(tmp_path: Path) -> None:
    state = str(tmp_path / "vms")
    Runtime(None, state_root=state).guest("web").set_current(runner(tmp_path, "r1", HANGS))
    result = invoke("run", "web", "--state-dir", state, "--no-build", "--wait", "--timeout", "0.5")
    assert result.exit_code == 1 and "stuck at 42%" in result.output
    assert "stopped web, which did not boot" in result.output
    assert not Runtime(None, state_root=state).guest("web").is_running()


def test_cli_foreground_exit_code(tmp_path: Path) -> None:
    state = str(tmp_path / "vms")
    Runtime(None, state_root=state).guest("web").set_current(runner(tmp_path, "r1", EXITS_3))
    result = invoke("run", "web", "--state-dir", state, "--no-build", "--foreground")
    assert result.exit_code == 3


def test_cli_balloon(tmp_path: Path) -> None:
    state = str(tmp_path / "vms")
    web = Runtime(None, state_root=state).guest("web")
    web.set_current(runner(tmp_path, "r1", balloon='echo "target $1"\n'))
    web.start(build=False)
    result = invoke("balloon", "web", "200", "--state-dir", state)
    assert result.exit_code == 0 and result.output.strip() == "target 200"
    web.stop(timeout=5)


def test_cli_needs_a_project_or_a_state_dir() -> None:
    result = invoke("list")
    assert result.exit_code == 1 and "not a project" in result.output


def test_exit_record_descriptions() -> None:
    assert ExitRecord(1, 3, None, None, None, False).describe() == "exit code 3"
    assert ExitRecord(1, None, 15, None, None, False).describe() == "killed by SIGTERM"
    assert ExitRecord(1, 0, None, None, None, False).crashed is False
    assert ExitRecord(1, None, 9, None, None, True).crashed is False


# ----------------------------------------------------------------- with nix (stand-in flake)

nix_test = pytest.mark.nix


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    from tests.standin import (
        NIX_SKIP_REASON,
        nix_available,
        offline_nix_env,
        prepare_inputs,
    )

    if not nix_available():
        pytest.skip(NIX_SKIP_REASON)
    base = tmp_path_factory.mktemp("inputs")
    os.environ.update(offline_nix_env(base))  # NIX_CONF_DIR for every nix call below
    return {name: f"path:{path}" for name, path in prepare_inputs(base).items()}


def _project(folder: Path, **mems: int) -> Path:
    from nixgen import Flake, Interface, MicroVM, write_project
    from nixgen.project import Project

    flake = Flake(
        guests=[
            MicroVM(name=name, mem=mem, interfaces=[Interface.user()]) for name, mem in mems.items()
        ]
    )
    write_project(flake, folder)
    Project(folder).save(flake)
    return folder


def _count_builds(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    from nixgen.nixcmd import NixRunner

    seen: list[list[str]] = []
    original = NixRunner.run

    def spy(self: NixRunner, args: Any, **kw: Any) -> Any:
        seen.append(list(args))
        return original(self, args, **kw)

    monkeypatch.setattr(NixRunner, "run", spy)
    return seen


@nix_test
def test_run_builds_the_guest_and_keeps_gc_roots(tmp_path: Path, inputs: dict[str, str]) -> None:
    from nixgen.nixcmd import NixRunner

    folder = _project(tmp_path / "project", web=768)
    rt = Runtime(folder, nix=NixRunner(override_inputs=inputs))
    web = rt.guest("web")
    started = web.start()  # the stand-in runner prints one line and exits 0
    assert str(started.runner).startswith("/nix/store/") and started.runner.name.endswith("-web")
    wait_until(lambda: web.status(live=False).exit is not None, 10)
    status = rt.status(["web"])[0]
    assert status.state is GuestState.STOPPED and status.exit is not None
    assert status.exit.exit_code == 0
    assert (status.hypervisor, status.vcpu, status.mem) == ("qemu", 1, 768)
    assert status.current == started.runner and status.freshness == "current"
    assert web.console_tail() == ["microvm-run web hypervisor=qemu vcpu=1 mem=768"]
    assert (web.state.path / "flake").read_text().strip().endswith(str(folder))
    # outside git, nix copies the folder whole: the state lives elsewhere, behind a link
    link = folder / ".nixgen" / "vms"
    assert link.is_symlink()
    assert link.resolve().is_relative_to(tmp_path / "xdg-state" / "nixgen")
    auto = Path("/nix/var/nix/gcroots/auto")
    if auto.is_dir():  # current and booted are indirect GC roots
        links = {p.readlink() for p in auto.iterdir() if p.is_symlink()}
        assert web.state.path / "current" in links and web.state.path / "booted" in links
    # destroy takes the GC roots with the state: the runner is free for garbage collection
    build_root = folder / ".nixgen" / "gcroots" / "web"
    assert build_root.is_symlink()
    result = rt.destroy("web")
    assert result.removed == (build_root, web.state.path)
    assert not web.state.path.exists() and not build_root.exists()
    if auto.is_dir():
        gone = {web.state.path / "current", web.state.path / "booted", build_root}
        assert not gone & {p.readlink() for p in auto.iterdir() if p.is_symlink()}


@nix_test
def test_update_builds_once_and_switches_only_the_changed_guest(
    tmp_path: Path, inputs: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from nixgen.nixcmd import NixRunner

    folder = _project(tmp_path / "project", a=512, b=512)
    rt = Runtime(folder, nix=NixRunner(override_inputs=inputs))
    first = {r.name: r for r in rt.update()}
    assert all(r.changed and r.old is None for r in first.values())

    _project(folder, a=512, b=640)  # b changes in nixgen.toml (and the rendered flake)
    status = {s.name: s for s in rt.status()}
    assert status["b"].freshness == "outdated" and status["a"].freshness == "current"
    assert status["b"].expected is not None and status["b"].expected != status["b"].current

    calls = _count_builds(monkeypatch)
    result = invoke(
        "update",
        "a",
        "b",
        "-f",
        str(folder),
        *[arg for name, url in inputs.items() for arg in ("--override-input", name, url)],
    )
    assert result.exit_code == 0, result.output
    builds = [c for c in calls if c[0] == "build" and "--json" in c]
    assert len(builds) == 1, calls  # both guests in one nix build (the others: GC roots)
    # stdout only: a cold store also prints "building …" progress on stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("a: unchanged")
    assert lines[1].startswith(f"b: {first['b'].new} → /nix/store/")
    assert "stopped" in lines[2]
    assert any("diff-closures" in c for c in map(" ".join, calls))
    after = {s.name: s for s in rt.status()}
    assert after["b"].current == status["b"].expected
    assert [after[n].freshness for n in "ab"] == ["current", "current"]


# ----------------------------------------------------------------- console --attach

#: Answers each line of its console input.
ECHOES = 'echo NIXGEN-GUEST-BOOTED\nwhile IFS= read -r line; do echo "got: $line"; done\n'


def nixgen_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "nixgen", *args]


def read_pty_until(fd: int, text: bytes, timeout: float = 20.0) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while text not in seen:
        assert time.monotonic() < deadline, seen
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                seen += os.read(fd, 4096)
            except OSError:  # the other side closed
                break
    return seen


def test_console_attach_from_a_pipe_sends_and_detaches(tmp_path: Path, runtime: Runtime) -> None:
    web = runtime.guest("web")
    pid = web.start(runner=runner(tmp_path, "r1", ECHOES), wait=True).pid
    state = str(tmp_path / "vms")
    args = nixgen_command("console", "web", "--attach", "--state-dir", state, "-n", "0")
    done = subprocess.run(args, input=b"hello\nworld\n", capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert b"got: hello" in done.stdout and b"got: world" in done.stdout
    assert b"detached; web keeps running" in done.stderr
    assert web.pid == pid
    web.stop(timeout=5)


def test_console_attach_on_a_terminal_detaches_with_ctrl_close_bracket(
    tmp_path: Path, runtime: Runtime
) -> None:
    web = runtime.guest("web")
    pid = web.start(runner=runner(tmp_path, "r1", ECHOES), wait=True).pid
    state = str(tmp_path / "vms")
    for word in ("first", "second"):  # attach, detach, and attach again
        main, sub = os.openpty()
        args = nixgen_command("console", "web", "--attach", "--state-dir", state)
        attached = subprocess.Popen(args, stdin=sub, stdout=sub, stderr=sub)
        os.close(sub)
        try:
            read_pty_until(main, b"Ctrl-] detaches")
            os.write(main, word.encode() + b"\n")
            read_pty_until(main, f"got: {word}".encode())
            os.write(main, b"\x1d")
            assert b"detached; web keeps running" in read_pty_until(main, b"keeps running")
            assert attached.wait(timeout=10) == 0
        finally:
            attached.kill()
            os.close(main)
    assert web.pid == pid
    web.stop(timeout=5)


def test_console_input_needs_a_running_guest(runtime: Runtime) -> None:
    with pytest.raises(GuestNotRunningError):
        runtime.guest("web").console_input()
