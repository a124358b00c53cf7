"""One guest: start, stop, status, boot detection, console and balloon.

A started guest runs ``<runner>/bin/microvm-run`` under a small supervisor
(:mod:`nixgen.runtime._supervisor`) in a session and process group of its
own, with the guest's state folder as working directory and its console
going to ``console.log``.  The supervisor records the pid (with its start
time) and, when the runner ends, how it ended; then it ends whatever the
runner left running.  Every action that changes a guest holds the guest's
file lock, so two nixgen processes never act on one guest at once.
"""

from __future__ import annotations

import contextlib
import enum
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from subprocess import Popen
from typing import Any, Literal

import attrs

from nixgen import process
from nixgen.errors import NixgenError
from nixgen.nixcmd import Event, NixRunner
from nixgen.process import proc
from nixgen.process.errors import CommandError, CommandTimeoutError
from nixgen.runtime.builder import Builder
from nixgen.runtime.console import DEFAULT_BOOT_MARKER, ConsoleReader, MarkerWatch, follow, tail
from nixgen.runtime.errors import (
    BootError,
    GuestError,
    GuestNotRunningError,
    GuestRunningError,
    KvmInternalError,
    NoRunnerError,
    QMPCommandError,
    QMPConnectionError,
    QMPError,
    StartError,
    StopError,
    UnsupportedError,
)
from nixgen.runtime.qmp import QMP, socket_accepts
from nixgen.runtime.runner import RunnerInfo, qmp_socket_from_args
from nixgen.runtime.state import (
    BOOTED,
    CURRENT,
    EXIT,
    ExitRecord,
    RunRecord,
    StateDir,
)

__all__ = [
    "DEFAULT_BOOT_TIMEOUT",
    "DEFAULT_LOCK_TIMEOUT",
    "DEFAULT_STOP_TIMEOUT",
    "GuestRuntime",
    "GuestState",
    "GuestStatus",
    "StartResult",
    "StopResult",
]

DEFAULT_STOP_TIMEOUT = 30.0
DEFAULT_BOOT_TIMEOUT = 300.0
DEFAULT_LOCK_TIMEOUT = 60.0
#: How long the supervisor may take to report that the runner started.
_READY_TIMEOUT = 15.0
#: After the runner is gone: how long the supervisor may take to record the
#: exit and end leftovers (it gives them 3 s after SIGTERM, then SIGKILL).
_SUPERVISOR_GRACE = 8.0
# How long the exit record may lag behind the end of the runner.
_EXIT_RECORD_GRACE = 2.0
_KILL_WAIT = 5.0
#: Seconds of console silence after which a booting qemu guest's run state is checked.
_QUIET = 1.0

_SUPERVISOR = Path(__file__).with_name("_supervisor.py")

WaitFor = Literal["marker", "socket", "either"]


class GuestState(enum.StrEnum):
    """What a guest is doing: ``running``, ``stopped`` (never started, stopped
    by nixgen, or ended with exit code 0) or ``crashed`` (ended on its own
    with another code or a signal, or vanished)."""

    RUNNING = "running"
    STOPPED = "stopped"
    CRASHED = "crashed"


@attrs.frozen
class StartResult:
    name: str
    pid: int
    runner: Path
    state_dir: Path
    console: Path
    #: seconds from the start of the runner to the boot marker (when waited for)
    boot_seconds: float | None = None


@attrs.frozen
class StopResult:
    name: str
    was_running: bool
    #: what ended it: ``microvm-shutdown``, ``qmp``, ``SIGTERM`` or ``SIGKILL``
    method: str | None = None
    seconds: float = 0.0
    exit: ExitRecord | None = None
    #: output of ``bin/microvm-shutdown``, when it ran
    output: str = ""


@attrs.frozen
class GuestStatus:
    """Everything ``nixgen status`` shows about one guest.

    Freshness follows microvm.nix: *outdated* when the flake now evaluates to
    another runner than ``current`` (rebuild with ``nixgen update``), *stale*
    when the running guest booted another runner than ``current`` (restart
    needed), *current* otherwise.
    """

    name: str
    state: GuestState
    state_dir: Path
    pid: int | None = None
    started_at: float | None = None
    hypervisor: str | None = None
    vcpu: int | None = None
    mem: int | None = None
    current: Path | None = None
    booted: Path | None = None
    #: the runner the flake evaluates to now (None: not evaluated)
    expected: Path | None = None
    outdated: bool | None = None
    stale: bool = False
    exit: ExitRecord | None = None
    console_tail: tuple[str, ...] = ()
    #: QEMU's run state over QMP (``running``, ``paused``, ``internal-error``, …)
    run_state: str | None = None
    balloon_mib: int | None = None
    #: ``nixgen``, or ``other`` for a guest something else started (systemd's microvm@)
    managed_by: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def running(self) -> bool:
        return self.state is GuestState.RUNNING

    @property
    def uptime(self) -> float | None:
        if not self.running or self.started_at is None:
            return None
        return max(0.0, time.time() - self.started_at)

    @property
    def freshness(self) -> str:
        """``outdated``, ``stale``, ``current``, ``not built`` or ``unchecked``."""
        if self.current is None:
            return "not built"
        if self.outdated:
            return "outdated"
        if self.stale:
            return "stale"
        if self.outdated is None:
            return "unchecked"
        return "current"

    def to_json(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            if isinstance(value, Path):
                return str(value)
            if isinstance(value, ExitRecord):
                return value.to_json() | {"description": value.describe()}
            if isinstance(value, tuple):
                return list(value)
            return value

        data = {k: plain(v) for k, v in attrs.asdict(self, recurse=False).items()}
        data["state"] = str(self.state)
        data["uptime"] = self.uptime
        data["freshness"] = self.freshness
        return data


def _default_builder() -> Builder:
    import nixgen.build  # building costs imports that starting a built runner does not need

    return nixgen.build


def _store_path(path: Path) -> bool:
    return str(path).startswith("/nix/store/")


@attrs.define
class GuestRuntime:
    """One guest and its state folder.

    ``project`` is the flake folder the guest is built from (None: only the
    runner ``current`` points at, or one passed to :meth:`start`);
    ``nix`` carries the settings of nix calls (override inputs, options).
    """

    name: str
    state: StateDir
    project: Path | None = None
    nix: NixRunner | None = None
    boot_marker: str = DEFAULT_BOOT_MARKER
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    on_event: Callable[[Event], None] | None = None
    #: register ``current``/``booted`` as GC roots through nix when they point into the store
    gc_roots: bool = True
    #: how the guest is built from ``project`` (default: :mod:`nixgen.build`)
    builder: Builder = attrs.field(factory=_default_builder)

    @classmethod
    def at(cls, state_dir: Path | str, name: str | None = None, **kw: Any) -> GuestRuntime:
        """The guest whose state folder is ``state_dir`` (its name: the folder's)."""
        path = Path(state_dir).absolute()
        return cls(name or path.name, StateDir(path, name or path.name), **kw)

    # ================================================================ reading

    def _record(self) -> RunRecord | None:
        """The run record of the running guest, or None when it does not run."""
        record = self.state.read_run()
        return record if record is not None and record.alive() else None

    def _foreign(self) -> list[int]:
        """Processes running in the state folder that nixgen did not start."""
        if not self.state.path.is_dir():
            return []
        return proc.processes_in(self.state.path)

    def is_running(self) -> bool:
        return self._record() is not None or bool(self._foreign())

    @property
    def pid(self) -> int | None:
        record = self._record()
        return record.pid if record else None

    def runner(self) -> Path | None:
        """What ``current`` points at."""
        return self.state.link(CURRENT)

    def console_tail(self, lines: int = 20) -> list[str]:
        return tail(self.state.console, lines)

    # ================================================================ start

    def _register_root(self, link: Path, target: Path) -> None:
        """Make ``link`` an indirect GC root for ``target`` (``nix build --out-link``)."""
        if not (self.gc_roots and _store_path(target)):
            return
        with contextlib.suppress(NixgenError, OSError):
            (self.nix or NixRunner()).run(
                ["build", "--out-link", str(link), str(target)], overrides=False
            )

    def set_current(self, runner: Path) -> bool:
        """Point ``current`` at ``runner`` (True when it changed)."""
        return self.state.set_link(CURRENT, runner, register=self._register_root)

    def build(self) -> Path:
        """Build this guest from the project (a no-op when nothing changed); its runner."""
        if self.project is None:
            raise NoRunnerError(self.name, self.state.path)
        results = self.builder.build(
            self.project, [self.name], nix=self.nix, on_event=self.on_event
        )
        return results[self.name].runner

    def _choose_runner(self, build: bool, runner: Path | str | None) -> Path:
        if runner is not None:
            return Path(runner)
        if build and self.project is not None:
            return self.build()
        current = self.runner()
        if current is None:
            raise NoRunnerError(self.name, self.state.path)
        return current

    def start(
        self,
        *,
        build: bool = True,
        runner: Path | str | None = None,
        wait: bool = False,
        timeout: float = DEFAULT_BOOT_TIMEOUT,
        marker: str | None = None,
        until: WaitFor = "marker",
    ) -> StartResult:
        """Start the guest in the background (building it first when needed).

        The runner is ``runner`` if given, else the project's build of this
        guest (a no-op when nothing changed), else what ``current`` points
        at.  Refused (:class:`GuestRunningError`) when the guest runs.  With
        ``wait``, returns once the guest has booted (see :meth:`wait_booted`).
        """
        chosen = self._choose_runner(build, runner)
        with self.state.lock(self.lock_timeout):
            record = self._launch(chosen)
        result = StartResult(
            name=self.name,
            pid=record.pid,
            runner=chosen,
            state_dir=self.state.path,
            console=self.state.console,
        )
        if wait:
            seconds = self.wait_booted(timeout, marker=marker, until=until)
            result = attrs.evolve(result, boot_seconds=seconds)
        return result

    def run_foreground(
        self, *, build: bool = True, runner: Path | str | None = None
    ) -> ExitRecord | None:
        """Run the guest attached to this terminal until it exits; how it ended.

        Ctrl-C goes to the runner (qemu passes it to the guest), not to nixgen.
        The console is not logged.
        """
        chosen = self._choose_runner(build, runner)
        with self.state.lock(self.lock_timeout):
            supervisor, _ = self._spawn(chosen, foreground=True)
        restore: list[tuple[signal.Signals, Any]] = []
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGQUIT):
                restore.append((number, signal.signal(number, signal.SIG_IGN)))
        try:
            supervisor.wait()
        finally:
            for number, handler in restore:
                signal.signal(number, handler)
        return self.state.read_exit()

    def _refuse_if_running(self) -> None:
        record = self._record()
        if record is not None:
            raise GuestRunningError(self.name, record.pid)
        foreign = self._foreign()
        if foreign:
            raise GuestRunningError(self.name, min(foreign), by="not nixgen")

    def _prepare(self, runner: Path) -> Path:
        """Checks and state folder set-up before a start (the lock is held)."""
        self._refuse_if_running()
        program = runner / "bin" / "microvm-run"
        if not (program.is_file() and os.access(program, os.X_OK)):
            raise StartError(
                self.name,
                f"{program} is missing or not executable",
                hint="a microvm.nix runner has bin/microvm-run; build the guest again "
                "(`nixgen update NAME`)",
            )
        self.state.create()
        self._settle(self.state.read_run())
        self.state.clean_stale()
        self.state.remove(EXIT)
        self.set_current(runner)
        if self.project is not None:
            from nixgen.build import flake_ref

            self.state.set_flake_ref(flake_ref(self.project))
        self.state.rotate_console()
        return program

    def _spawn(self, runner: Path, *, foreground: bool) -> tuple[Popen[bytes], RunRecord]:
        program = self._prepare(runner)
        read_fd, write_fd = os.pipe()
        argv = [
            sys.executable,
            "-I",
            "-S",
            str(_SUPERVISOR),
            "foreground" if foreground else "background",
            str(self.state.path),
            str(self.state.console),
            str(write_fd),
            str(program),
        ]
        try:
            supervisor = process.spawn(
                argv,
                cwd="/",  # not the state folder: only the guest's processes work there
                quiet=not foreground,
                pass_fds=(write_fd,),
            )
        except CommandError as err:
            os.close(read_fd)
            os.close(write_fd)
            raise StartError(self.name, f"cannot start the supervisor: {err.message}") from err
        os.close(write_fd)
        try:
            message = _read_line(read_fd, _READY_TIMEOUT)
        finally:
            os.close(read_fd)
        if not foreground:
            supervisor.wait()  # the supervisor's first process exits at once (detaching)
        if not message.startswith("ok "):
            if foreground:
                supervisor.wait()
            reason = message.removeprefix("error ").strip() or "the supervisor did not report"
            raise StartError(self.name, reason, console=self.console_tail())
        record = self.state.read_run()
        if record is None:
            record = self._ended_at_once(int(message.split()[1]), runner, foreground)
        if record is None:
            raise StartError(self.name, "the supervisor wrote no pid file")
        self.state.set_link(BOOTED, runner, register=self._register_root)
        return supervisor, record

    def _ended_at_once(self, pid: int, runner: Path, foreground: bool) -> RunRecord | None:
        """A runner that ended before nixgen read its pid file (the supervisor
        removes the file then): rebuild the record from the exit record, so
        the caller sees a run that ended rather than a start that failed."""
        ended = self.state.read_exit()
        if ended is None or ended.pid != pid:
            return None
        return RunRecord(
            pid=pid,
            start_ticks=ended.start_ticks,
            supervisor=None,
            supervisor_ticks=None,
            pgid=None,
            boot_id=ended.boot_id,
            started_at=ended.started_at or time.time(),
            runner=ended.runner or str(runner),
            foreground=foreground,
        )

    def _launch(self, runner: Path) -> RunRecord:
        _, record = self._spawn(runner, foreground=False)
        return record

    # ================================================================ waiting for boot

    def wait_booted(
        self,
        timeout: float = DEFAULT_BOOT_TIMEOUT,
        *,
        marker: str | None = None,
        until: WaitFor = "marker",
        poll: float = 0.01,
    ) -> float:
        """Wait until the guest has booted; seconds from its start to then.

        Booted means: the boot marker (a regex, default :data:`DEFAULT_BOOT_MARKER`)
        appeared on the console (``until="marker"``), its control socket
        accepts connections (``"socket"``), or either.  Raises
        :class:`BootError` with the console's last lines when the guest
        exits or does not boot within ``timeout`` seconds, and
        :class:`KvmInternalError` as soon as QEMU reports a KVM internal error.
        """
        started = time.monotonic()
        watch = MarkerWatch(marker or self.boot_marker)
        record = self.state.read_run()
        if record is None or not record.same_boot:
            # Not running; or it ran so briefly that it is over already.
            ended = self.state.read_exit()
            if ended is not None and until != "socket" and watch.feed(_read(self.state.console)):
                return (ended.ended_at or time.time()) - (ended.started_at or time.time())
            self._raise_ended(None, "it exited before booting")
        assert record is not None
        info = RunnerInfo.read(Path(record.runner)) if record.runner else None
        qemu = info is not None and (info.hypervisor == "qemu" or info.qmp_socket is not None)
        # QEMU is asked for its run state only while the console is quiet: a
        # guest stopped by a KVM internal error prints nothing, and a QMP
        # session during a busy boot costs the (TCG) guest noticeable time.
        next_qmp = started + _QUIET
        last_output = started
        with ConsoleReader(self.state.console) as reader:
            while True:
                text = reader.read()
                if text:
                    last_output = time.monotonic()
                if until != "socket" and watch.feed(text):
                    return time.time() - record.started_at
                if until != "marker":
                    sock = self.control_socket(record)
                    if sock is not None and socket_accepts(sock):
                        return time.time() - record.started_at
                if not record.alive():
                    if until != "socket" and watch.feed(reader.read()):
                        return time.time() - record.started_at
                    self._raise_ended(record, "it exited before booting")
                now = time.monotonic()
                if qemu and now >= next_qmp and now - last_output >= _QUIET:
                    next_qmp = now + 2 * _QUIET
                    if self._qmp_state(record) == "internal-error":
                        raise KvmInternalError(
                            self.name,
                            console=self.console_tail(),
                            console_file=self.state.console,
                        )
                if now - started > timeout:
                    what = (
                        f"no boot marker /{watch.pattern.pattern}/ on its console"
                        if until != "socket"
                        else "its control socket did not answer"
                    )
                    raise BootError(
                        self.name,
                        f"{what} within {timeout:g} s (it is still running)",
                        console=self.console_tail(),
                        console_file=self.state.console,
                    )
                time.sleep(poll)

    def _raise_ended(self, record: RunRecord | None, reason: str) -> None:
        if record is not None and record.supervisor is not None:
            proc.wait_gone(record.supervisor, record.supervisor_ticks, _SUPERVISOR_GRACE)
        ended = self.state.read_exit()
        # The supervisor writes the exit record just after the runner ends: on
        # a busy machine it may not be there yet when the runner is seen gone.
        deadline = time.monotonic() + _EXIT_RECORD_GRACE
        while ended is None and time.monotonic() < deadline:
            time.sleep(0.05)
            ended = self.state.read_exit()
        if record is None and ended is None:
            raise GuestNotRunningError(self.name, "wait for it to boot")
        how = f" ({ended.describe()})" if ended is not None else ""
        raise BootError(
            self.name,
            reason + how,
            console=self.console_tail(),
            console_file=self.state.console,
            exit_code=ended.exit_code if ended else None,
            signal=ended.signal if ended else None,
        )

    # ================================================================ control socket / QMP

    def control_socket(self, record: RunRecord | None = None) -> Path | None:
        """The guest's QMP socket: from the running qemu's command line, else
        from the run script; relative paths are in the state folder."""
        record = record or self._record()
        found: str | None = None
        if record is not None:
            for pid in [record.pid, *proc.descendants(record.pid)]:
                found = qmp_socket_from_args(proc.cmdline(pid))
                if found:
                    break
        runner = (
            Path(record.runner) if record is not None and record.runner else self.state.link(BOOTED)
        )
        if found is None and runner is not None:
            found = RunnerInfo.read(runner).qmp_socket
        if found is None:
            return None
        return self.state.path / found

    @contextlib.contextmanager
    def qmp(self, timeout: float = 5.0) -> Iterator[QMP]:
        """A QMP session with the running guest (qemu only)."""
        record = self._record()
        if record is None:
            raise GuestNotRunningError(self.name, "talk to its QEMU monitor")
        sock = self.control_socket(record)
        if sock is None:
            raise UnsupportedError(
                self.name,
                f"guest {self.name!r} has no QMP socket (only qemu guests have one)",
                hint='set microvm.socket (e.g. "control.socket") for a qemu guest',
            )
        try:
            client = QMP(sock, timeout=timeout).connect()
        except QMPConnectionError as err:
            raise QMPError(
                self.name,
                str(err),
                hint="the guest may still be starting, or another client holds the monitor",
            ) from err
        try:
            yield client
        finally:
            client.close()

    def _qmp_state(self, record: RunRecord) -> str | None:
        sock = self.control_socket(record)
        if sock is None or not sock.exists():
            return None
        try:
            with QMP(sock, timeout=2.0) as client:
                return client.status()
        except (QMPConnectionError, QMPCommandError):
            return None

    # ================================================================ stop

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> StopResult:
        """Stop the guest, cleanly when it can be.

        ``bin/microvm-shutdown`` where the runner has one, else over QMP
        (Ctrl-Alt-Del, then ``system_powerdown``, then ``quit``): two thirds of
        ``timeout`` for that; then SIGTERM to the guest's process group, and
        SIGKILL to all of it when ``timeout`` has passed.  Helpers the runner
        started go with it.  Stopping a stopped guest only cleans up.
        """
        with self.state.lock(self.lock_timeout):
            return self._stop_locked(timeout)

    def restart(
        self,
        *,
        timeout: float = DEFAULT_STOP_TIMEOUT,
        build: bool = False,
        wait: bool = False,
        boot_timeout: float = DEFAULT_BOOT_TIMEOUT,
    ) -> StartResult:
        """Stop (if running) and start again; by default the runner ``current`` names."""
        chosen = self._choose_runner(build, None)
        with self.state.lock(self.lock_timeout):
            self._stop_locked(timeout)
            record = self._launch(chosen)
        result = StartResult(self.name, record.pid, chosen, self.state.path, self.state.console)
        if wait:
            result = attrs.evolve(result, boot_seconds=self.wait_booted(boot_timeout))
        return result

    def _stop_locked(self, timeout: float) -> StopResult:
        started = time.monotonic()
        record = self._record()
        if record is None:
            foreign = self._foreign()
            if foreign:
                raise GuestError(
                    self.name,
                    f"guest {self.name!r} runs (pid {min(foreign)}) but nixgen did not start it",
                    hint=f"stop it where it was started, e.g. `systemctl stop microvm@{self.name}`",
                )
            self._settle(self.state.read_run())
            self.state.clean_stale()
            return StopResult(self.name, was_running=False, exit=self.state.read_exit())
        self.state.mark_stopping()
        try:
            method, output = self._shut_down(record, started, timeout)
            self._settle(record, killed_by=method)
        finally:
            self.state.remove("stopping")
        self.state.clean_stale()
        return StopResult(
            self.name,
            was_running=True,
            method=method,
            seconds=time.monotonic() - started,
            exit=self.state.read_exit(),
            output=output,
        )

    def _gone(self, record: RunRecord, until: float) -> bool:
        return proc.wait_gone(record.pid, record.start_ticks, until - time.monotonic())

    def _shut_down(self, record: RunRecord, started: float, timeout: float) -> tuple[str, str]:
        clean_until = started + timeout * 2 / 3
        info = RunnerInfo.read(Path(record.runner)) if record.runner else None
        script = info.shutdown_script if info else None
        output = ""
        if script is not None:
            output = self._run_script(script, [], clean_until - time.monotonic())
            if self._gone(record, clean_until):
                return "microvm-shutdown", output
        else:
            sock = self.control_socket(record)
            if sock is not None and sock.exists():
                window = (clean_until - time.monotonic()) / 3
                steps: list[Callable[[QMP], None]] = [
                    QMP.ctrl_alt_del,
                    QMP.powerdown,
                    QMP.quit,
                ]
                for index, step in enumerate(steps, start=1):
                    try:
                        with QMP(sock, timeout=max(0.5, min(window, 5.0))) as client:
                            step(client)
                    except (QMPConnectionError, QMPCommandError):
                        continue
                    if self._gone(record, clean_until - window * (3 - index)):
                        return "qmp", output
        self._signal(record, signal.SIGTERM)
        if self._gone(record, started + timeout):
            return "SIGTERM", output
        self._kill(record)
        if self._gone(record, time.monotonic() + _KILL_WAIT):
            return "SIGKILL", output
        raise StopError(
            self.name,
            f"guest {self.name!r} (pid {record.pid}) survived SIGKILL",
            hint="it is stuck in the kernel (uninterruptible I/O?); look at "
            f"/proc/{record.pid}/stack, or wait and try again",
        )

    def _members(self, record: RunRecord) -> list[int]:
        """The guest's processes: its group and session, and the runner's descendants."""
        found = {record.pid, *proc.descendants(record.pid)}
        if record.pgid:
            found.update(proc.group_members(record.pgid))
        if record.supervisor:
            found.update(proc.descendants(record.supervisor))
            found.discard(record.supervisor)
        return sorted(found)

    def _signal(self, record: RunRecord, number: int) -> None:
        if record.pgid:
            proc.signal_group(record.pgid, number)  # the supervisor ignores it
        proc.signal_pids(self._members(record), number)

    def _kill(self, record: RunRecord) -> None:
        # Everything but the supervisor, which records the exit and reaps.
        proc.signal_pids(self._members(record), signal.SIGKILL)

    def _settle(self, record: RunRecord | None, *, killed_by: str | None = None) -> None:
        """After a run: let the supervisor finish (exit record, leftovers), or do its job."""
        if record is None:
            return
        ours = record.supervisor_alive() or killed_by is not None
        if record.supervisor_alive():
            assert record.supervisor is not None
            if not proc.wait_gone(record.supervisor, record.supervisor_ticks, _SUPERVISOR_GRACE):
                proc.signal_pids([record.supervisor], signal.SIGKILL)
                proc.wait_gone(record.supervisor, record.supervisor_ticks, _KILL_WAIT)
        if ours and record.pgid:
            # Only for a group known to be the guest's a moment ago: the number of
            # a group long gone may belong to someone else by now.
            leftovers = [p for p in proc.group_members(record.pgid) if p != os.getpid()]
            proc.signal_pids(leftovers, signal.SIGKILL)
        ended = self.state.read_exit()
        if ended is None or ended.pid != record.pid:
            self.state.write_exit(
                ExitRecord(
                    pid=record.pid,
                    exit_code=None,
                    signal=signal.SIGKILL if killed_by == "SIGKILL" else None,
                    started_at=record.started_at,
                    ended_at=time.time() if record.same_boot else None,
                    requested=killed_by is not None,
                    boot_id=record.boot_id,
                    runner=record.runner,
                    start_ticks=record.start_ticks,
                )
            )

    # ================================================================ status

    def status(
        self,
        *,
        expected: Path | None = None,
        live: bool = True,
        tail_lines: int = 10,
        notes: Sequence[str] = (),
    ) -> GuestStatus:
        """The guest's state and facts; ``expected`` is the runner the flake
        evaluates to now (see :meth:`nixgen.runtime.Runtime.status`), which
        decides *outdated*.  ``live`` asks a running qemu over QMP."""
        found_notes = list(notes)
        record = self.state.read_run()
        if record is not None and not record.alive() and record.supervisor_alive():
            # The runner just ended: give the supervisor a moment to record how.
            assert record.supervisor is not None
            proc.wait_gone(record.supervisor, record.supervisor_ticks, 2.0)
            record = self.state.read_run()
        ended = self.state.read_exit()
        current = self.state.link(CURRENT)
        booted = self.state.link(BOOTED)
        pid: int | None = None
        started_at: float | None = None
        managed_by: str | None = None
        if record is not None and record.alive():
            state = GuestState.RUNNING
            pid, started_at, managed_by = record.pid, record.started_at, "nixgen"
            ended = None
        else:
            foreign = self._foreign() if record is None else []
            if foreign:
                state = GuestState.RUNNING
                pid, managed_by = min(foreign), "other"
                ticks = proc.start_ticks(pid)
                started_at = proc.started_at(ticks) if ticks is not None else None
                found_notes.append("started by something other than nixgen (microvm@ unit?)")
                ended = None
            elif record is not None and not record.same_boot:
                state = GuestState.STOPPED
                found_notes.append("the host restarted since the guest ran (stale pid file)")
            elif record is not None and (ended is None or ended.pid != record.pid):
                state = GuestState.CRASHED
                ended = None
                found_notes.append("its processes vanished without an exit record")
            elif ended is not None:
                state = GuestState.CRASHED if ended.crashed else GuestState.STOPPED
            else:
                state = GuestState.STOPPED
        shown = booted if state is GuestState.RUNNING and booted is not None else current
        info = RunnerInfo.read(shown) if shown is not None else None
        status = GuestStatus(
            name=self.name,
            state=state,
            state_dir=self.state.path,
            pid=pid,
            started_at=started_at,
            hypervisor=info.hypervisor if info else None,
            vcpu=info.vcpu if info else None,
            mem=info.mem if info else None,
            current=current,
            booted=booted,
            expected=expected,
            outdated=None if expected is None or current is None else expected != current,
            stale=state is GuestState.RUNNING
            and booted is not None
            and current is not None
            and booted != current,
            exit=ended,
            console_tail=tuple(self.console_tail(tail_lines))
            if state is GuestState.CRASHED
            else (),
            managed_by=managed_by,
        )
        if live and state is GuestState.RUNNING and managed_by == "nixgen" and record is not None:
            status = self._live(status, record, found_notes)
        return attrs.evolve(status, notes=tuple(found_notes))

    def _live(self, status: GuestStatus, record: RunRecord, notes: list[str]) -> GuestStatus:
        sock = self.control_socket(record)
        if sock is None or not sock.exists():
            return status
        try:
            with QMP(sock, timeout=2.0) as client:
                return attrs.evolve(
                    status,
                    run_state=client.status(),
                    balloon_mib=client.balloon_mib(),
                    vcpu=client.vcpus() or status.vcpu,
                    mem=client.memory_mib() or status.mem,
                )
        except (QMPConnectionError, QMPCommandError) as err:
            notes.append(f"QMP not available: {err}")
            return status

    # ================================================================ console, balloon

    def follow_console(
        self, *, lines: int = 10, poll: float = 0.1, until_stopped: bool = False
    ) -> Iterator[str]:
        """The console's last ``lines`` lines, then its new output as it comes
        (``tail -f``); with ``until_stopped``, ends once the guest is not running."""
        stop = (lambda: not self.is_running()) if until_stopped else None
        return follow(self.state.console, lines=lines, poll=poll, stop=stop)

    def balloon(self, mib: int, *, timeout: float = 30.0) -> str:
        """Set the guest's memory balloon target with ``bin/microvm-balloon``; its output."""
        record = self._record()
        if record is None:
            raise GuestNotRunningError(self.name, "change its memory balloon")
        runner = Path(record.runner) if record.runner else self.state.link(BOOTED)
        info = RunnerInfo.read(runner) if runner else None
        script = info.balloon_script if info else None
        if script is None:
            hv = info.hypervisor if info and info.hypervisor else "this hypervisor"
            raise UnsupportedError(
                self.name,
                f"guest {self.name!r}'s runner has no bin/microvm-balloon ({hv} has no balloon "
                "in microvm.nix, or the guest has no balloon device)",
                hint="qemu, cloud-hypervisor, crosvm (with a socket) and kvmtool guests can "
                "balloon; set microvm.balloon = true",
            )
        if mib < 0:
            raise GuestError(self.name, f"balloon target {mib} MiB is negative")
        return self._run_script(script, [str(mib)], timeout, check=True)

    def _run_script(
        self, script: Path, args: Sequence[str], timeout: float, *, check: bool = False
    ) -> str:
        """Run one of the runner's helper scripts in the state folder; its output."""
        try:
            done = process.run(
                [script, *args],
                cwd=self.state.path,
                timeout=max(timeout, 0.1),
                grace=0.0,  # a helper that overran its time gets no more
                merge_stderr=True,
                check=False,
            )
        except CommandTimeoutError as err:
            if check:
                raise GuestError(
                    self.name, f"{script} did not finish within {timeout:g} s"
                ) from None
            return err.stderr
        except CommandError as err:
            if check:
                raise GuestError(self.name, err.message, hint=err.hint) from err
            return ""
        if check and done.exit_code != 0:
            raise GuestError(
                self.name,
                f"{script} failed with exit code {done.exit_code}: {done.stdout.strip()}",
            )
        return done.stdout


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _read_line(fd: int, timeout: float) -> str:
    """One line from a pipe, or what came before EOF/timeout."""
    deadline = time.monotonic() + timeout
    data = b""
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data.decode("utf-8", "replace").split("\n", 1)[0]
