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
import json
import os
import select
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import attrs

from nixgen import process
from nixgen._repr import attrs_repr
from nixgen.errors import NixgenError
from nixgen.process import proc
from nixgen.process.errors import CommandError
from nixgen.runtime.builder import Builder, NixgenBuild
from nixgen.runtime.console import (
    DEFAULT_BOOT_MARKER,
    ConsoleInput,
    ConsoleReader,
    ConsoleWakeup,
    MarkerWatch,
    follow,
    tail,
)
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
from nixgen.runtime.runner import RunnerInfo, qmp_socket_from_args
from nixgen.runtime.state import (
    BOOTED,
    CONSOLE_IN,
    CURRENT,
    DAEMONS,
    EXIT,
    DaemonRecord,
    ExitRecord,
    RunRecord,
    StateDir,
)

if TYPE_CHECKING:
    from subprocess import Popen

    from nixgen.nixcmd import Event, NixRunner
    from nixgen.runtime.helpers import Helper, Prestart
    from nixgen.runtime.qmp import QMP

__all__ = [
    "DEFAULT_BOOT_TIMEOUT",
    "DEFAULT_LOCK_TIMEOUT",
    "DEFAULT_STOP_TIMEOUT",
    "DestroyResult",
    "GuestRuntime",
    "GuestState",
    "GuestStatus",
    "SshCommand",
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

    __repr__ = attrs_repr


@attrs.frozen
class StopResult:
    name: str
    was_running: bool
    #: what ended it: ``microvm-shutdown``, ``qmp`` (Ctrl-Alt-Del or the power
    #: button over QMP), ``quit`` (QMP ``quit``: QEMU ends at once), ``SIGTERM``
    #: or ``SIGKILL``
    method: str | None = None
    seconds: float = 0.0
    exit: ExitRecord | None = None
    #: output of ``bin/microvm-shutdown``, when it ran
    output: str = ""
    #: where the guest was when asked: ``booting`` (no boot marker yet),
    #: ``booted``, ``hung`` (booted, but it did not react to a clean shutdown),
    #: ``share-lost`` (a virtiofsd of the guest died while it ran: a clean
    #: shutdown would hang on the share), or QEMU's run state when not running
    #: (``paused``, ``internal-error``, …)
    phase: str | None = None
    #: what was tried, in order, with what the guest did
    steps: tuple[str, ...] = ()
    #: seconds of ``seconds`` the reaction windows grew by because the guest's
    #: processes waited for a busy CPU (0 on an idle machine)
    cpu_wait: float = 0.0

    __repr__ = attrs_repr


@attrs.frozen
class DestroyResult:
    name: str
    #: what was removed: files outside the state folder, then the state folder
    removed: tuple[Path, ...]
    #: how it was stopped first, when it ran
    stopped: StopResult | None = None

    __repr__ = attrs_repr


def _forget_gc_roots(links: Sequence[Path], auto: Path = Path("/nix/var/nix/gcroots/auto")) -> None:
    """Drop nix's registrations (``gcroots/auto/*``) of indirect GC roots at ``links``."""
    wanted = {str(link.absolute()) for link in links}
    try:
        entries = list(auto.iterdir())
    except OSError:
        return
    for entry in entries:
        with contextlib.suppress(OSError):
            if str(entry.readlink()) in wanted:
                entry.unlink()


@attrs.frozen
class SshCommand:
    """How ``nixgen ssh`` reaches a guest: ``via`` says which way, ``argv`` is the ssh command."""

    via: str
    argv: tuple[str, ...]

    __repr__ = attrs_repr


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
    #: the daemons serving the guest (virtiofsd) while it runs, and whether they died
    daemons: tuple[DaemonRecord, ...] = ()

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
            if isinstance(value, DaemonRecord):
                return value.to_json()
            if isinstance(value, tuple):
                return [plain(item) for item in value]
            return value

        data = {k: plain(v) for k, v in attrs.asdict(self, recurse=False).items()}
        data["state"] = str(self.state)
        data["uptime"] = self.uptime
        data["freshness"] = self.freshness
        return data

    __repr__ = attrs_repr


def _default_builder() -> Builder:
    # nixgen.build, imported when something is built: listing or starting
    # a built runner needs none of it
    return NixgenBuild()


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
    #: tap id → the bridge the model puts it on (asked only for guests with tap interfaces)
    tap_bridges: Callable[[], Mapping[str, str]] | None = None
    #: the guest's static addresses on the model's networks (asked only by :meth:`ssh_command`)
    network_addresses: Callable[[], Sequence[str]] | None = None

    #: set by _prepare (the helpers are imported when a guest starts: `nixgen list` needs none)
    _prestart: Prestart | None = attrs.field(default=None, init=False, repr=False)

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
            from nixgen.nixcmd import NixRunner  # (only to register a GC root)

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
        self._prestart = self.prestart(runner)
        self.state.remove(EXIT, DAEMONS)
        self.set_current(runner)
        if self.project is not None:
            from nixgen.build import flake_ref

            self.state.set_flake_ref(flake_ref(self.project))
        self.state.rotate_console()
        return program

    def prestart(self, runner: Path) -> Prestart:
        """What must run around the hypervisor: virtiofsd per share, tap and macvtap
        interfaces.

        Raises :class:`StartError` before anything starts when it cannot be
        done (no virtiofsd, no right to create a tap, a missing share folder).
        """
        from nixgen.runtime.helpers import (
            Prestart,
            macvtap_commands,
            tap_commands,
            virtiofs_daemons,
        )

        info = RunnerInfo.read(runner)
        daemons = virtiofs_daemons(self.name, info, self.state.path)
        bridges = self.tap_bridges() if info.tap_interfaces and self.tap_bridges else {}
        before, after = tap_commands(self.name, info, bridges)
        macvtap_before, macvtap_after = macvtap_commands(self.name, info)
        return Prestart(
            before=before + macvtap_before, daemons=daemons, after=after + macvtap_after
        )

    def _spawn(self, runner: Path, *, foreground: bool) -> tuple[Popen[bytes], RunRecord]:
        program = self._prepare(runner)
        prestart = self._prestart
        spec = "-" if prestart is None or prestart.empty else json.dumps(prestart.to_json())
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
            spec,
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
            if message.startswith("error "):
                _read_to_end(read_fd, _SUPERVISOR_GRACE)  # until the supervisor has exited
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
        # (the QMP client is imported where QEMU is asked: `nixgen list` never asks)
        from nixgen.runtime.qmp import socket_accepts

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
        with (
            ConsoleReader(self.state.console) as reader,
            ConsoleWakeup(self.state.console, record.pid) as wakeup,
        ):
            # The pidfd may name a later process of the same pid: the first alive()
            # tells; after that the pidfd says when the runner ends.
            check_alive = True
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
                if check_alive and not record.alive():
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
                if until != "marker":
                    time.sleep(poll)  # a socket that starts to listen makes no event
                    continue
                # until the next write, the end of the runner, or the next QMP check
                wake = started + timeout
                if qemu:
                    wake = min(wake, max(next_qmp, last_output + _QUIET))
                check_alive = wakeup.wait(max(wake - now, poll), poll)

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
        from nixgen.runtime.qmp import QMP

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

    def _qmp_state(self, record: RunRecord, timeout: float = 2.0) -> str | None:
        from nixgen.runtime.qmp import execute_once

        sock = self.control_socket(record)
        if sock is None or not sock.exists():
            return None
        try:
            result = execute_once(sock, "query-status", timeout=timeout)
        except (QMPConnectionError, QMPCommandError):
            return None
        return str(result.get("status")) if isinstance(result, dict) else "unknown"

    # ================================================================ stop

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> StopResult:
        """Stop the guest, cleanly when it can, escalating on what the guest shows.

        A booted guest is asked cleanly (``bin/microvm-shutdown`` where the
        runner has one, else Ctrl-Alt-Del and the power button over QMP) and
        waited for while it reacts, up to two thirds of ``timeout``; a guest
        still booting, paused, failed or not reacting is ended with QMP
        ``quit`` (qemu) or SIGTERM, and SIGKILL after that.  The result says
        where the guest was (``phase``) and what was tried (``steps``).
        Helpers the runner started go with it.  Stopping a stopped guest only
        cleans up.
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
            shutdown = _Shutdown(self, record, started, timeout)
            method = shutdown.run()
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
            output=shutdown.output,
            phase=shutdown.phase,
            steps=tuple(shutdown.steps),
            cpu_wait=shutdown.cpu_wait,
        )

    def _gone(self, record: RunRecord, until: float) -> bool:
        return proc.wait_gone(record.pid, record.start_ticks, until - time.monotonic())

    def has_booted(self) -> bool:
        """Whether the boot marker is on this run's console."""
        return bool(MarkerWatch(self.boot_marker).feed(_read(self.state.console)))

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

    # ================================================================ destroy

    def destroy(
        self,
        *,
        extra: Sequence[Path] = (),
        stop: bool = False,
        timeout: float = DEFAULT_STOP_TIMEOUT,
    ) -> DestroyResult:
        """Remove the guest's state: its state folder (volumes with relative
        paths, sockets, console logs, the ``current``/``booted`` GC roots) and
        ``extra`` files (volumes elsewhere, the build's GC root).

        Refused while it runs (:class:`GuestRunningError`) unless ``stop``.
        The GC roots' registrations in ``/nix/var/nix/gcroots/auto`` go too, so
        the next garbage collection may take the runner.
        """
        with self.state.lock(self.lock_timeout):
            stopped = None
            if self.is_running():
                if not stop:
                    self._refuse_if_running()
                stopped = self._stop_locked(timeout)
            removed: list[Path] = []
            links = [self.state.path / CURRENT, self.state.path / BOOTED, *extra]
            for path in extra:
                if path.is_symlink() or path.is_file():
                    path.unlink()
                    removed.append(path)
            if self.state.path.is_dir():
                # the lock file goes with the folder: another nixgen waiting on it
                # gets a lock on a file nobody will use again, and starts afresh
                import shutil

                shutil.rmtree(self.state.path)
                removed.append(self.state.path)
            _forget_gc_roots(links)
        return DestroyResult(self.name, tuple(removed), stopped)

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
        if managed_by == "nixgen" or state is GuestState.CRASHED:
            daemons = self.state.read_daemons()
            found_notes.extend(
                _daemon_notes(self.name, daemons, running=state is GuestState.RUNNING)
            )
            status = attrs.evolve(status, daemons=daemons)
        if live and state is GuestState.RUNNING and managed_by == "nixgen" and record is not None:
            status = self._live(status, record, found_notes)
        return attrs.evolve(status, notes=tuple(found_notes))

    def _live(self, status: GuestStatus, record: RunRecord, notes: list[str]) -> GuestStatus:
        from nixgen.runtime.qmp import QMP

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
        (``tail -f``); with ``until_stopped``, ends once the guest is not running
        and its supervisor has recorded the end and cleaned up after it."""
        if not until_stopped:
            return follow(self.state.console, lines=lines, poll=poll)
        # The supervisor outlives the runner (it records the exit, then ends
        # leftovers and removes the pid file): remember it while the record is there.
        record = self.state.read_run()

        def stopped() -> bool:
            if self.is_running():
                return False
            if record is not None and record.supervisor is not None:
                proc.wait_gone(record.supervisor, record.supervisor_ticks, _SUPERVISOR_GRACE)
            return True

        return follow(self.state.console, lines=lines, poll=poll, stop=stopped)

    def ssh_command(
        self,
        args: Sequence[str] = (),
        *,
        user: str = "root",
        options: Sequence[str] = (),
        ssh: str = "ssh",
    ) -> SshCommand:
        """The ``ssh`` command line into the running guest, and how it gets there.

        Over vsock where the guest has a vsock CID (as upstream's ``microvm
        -s``: port 22 through ``AF_VSOCK``, or cloud-hypervisor's
        ``notify.vsock`` socket, with nixgen's own ProxyCommand); else to a
        port qemu forwards to its port 22; else to its address on one of the
        model's networks.  ``options`` go right after ``ssh`` (``-i KEY``);
        ``args`` after the destination (a command to run).
        """
        record = self._record()
        if record is None:
            raise GuestNotRunningError(self.name, "ssh into it")
        runner = Path(record.runner) if record.runner else self.state.link(BOOTED)
        info = RunnerInfo.read(runner) if runner is not None else None
        # A guest's host key changes when it is rebuilt, and ports and CIDs are reused.
        throwaway = ("-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null")
        login = (*options, "-l", user)
        if info is not None and info.vsock_cid is not None:
            if info.hypervisor == "cloud-hypervisor":
                kind, where = "vsock-mux", str(self.state.path / "notify.vsock")
            else:
                kind, where = "vsock", str(info.vsock_cid)
            proxy = shlex.join([sys.executable, "-m", "nixgen.runtime.sshproxy", kind, where, "22"])
            argv = (ssh, *throwaway, "-o", f"ProxyCommand={proxy}", *login, f"{kind}/{where}")
            return SshCommand(f"{kind} {where}", (*argv, *args))
        forwarded = [p for p in (info.forwarded_ports if info else ()) if p.guest_port == 22]
        if forwarded:
            port = forwarded[0]
            host = port.host_address if port.host_address not in ("", "0.0.0.0") else "127.0.0.1"
            argv = (ssh, *throwaway, "-p", str(port.host_port), *login, host)
            return SshCommand(f"forwarded port {host}:{port.host_port}", (*argv, *args))
        addresses = list(self.network_addresses()) if self.network_addresses else []
        if addresses:
            return SshCommand(f"address {addresses[0]}", (ssh, *login, addresses[0], *args))
        raise UnsupportedError(
            self.name,
            f"guest {self.name!r} offers no way in for ssh: no vsock CID, no port forwarded "
            "to its port 22, and no address on a network of the project",
            hint="set microvm.vsock.cid (and services.openssh in the guest), forward a port "
            "(microvm.forwardPorts with a qemu user interface), or put it on a network; "
            f"`nixgen console {self.name} --attach` works without any of them",
        )

    def console_input(self) -> ConsoleInput:
        """Type into the running guest's serial console (see ``nixgen console --attach``).

        What is written goes to the runner's stdin, which for microvm.nix's
        runners is the guest's serial console; its output is in the console
        log (:meth:`follow_console`).
        """
        record = self._record()
        if record is None:
            raise GuestNotRunningError(self.name, "attach to its console")
        path = self.state.path / CONSOLE_IN
        try:
            return ConsoleInput(path)
        except OSError as err:
            how = "it runs in the foreground" if record.foreground else "no console input"
            raise UnsupportedError(
                self.name,
                f"cannot write to guest {self.name!r}'s console ({how}: {path}: {err.strerror})",
                hint=f"a guest nixgen started in the background has one; restart it "
                f"(`nixgen stop {self.name} && nixgen run {self.name}`)",
            ) from err

    def balloon(self, mib: int, *, timeout: float = 10.0) -> str:
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
        from nixgen.runtime.helpers import run_helper

        result = run_helper([script, str(mib)], cwd=self.state.path, timeout=timeout)
        if result.timed_out:
            raise GuestError(
                self.name,
                f"{script} did not finish within {timeout:g} s",
                hint="the guest's balloon driver may not be loaded yet; try again once it booted",
            )
        if not result.ok:
            raise GuestError(
                self.name,
                f"{script} failed with exit code {result.exit_code}: {result.output.strip()}",
            )
        return result.output

    __repr__ = attrs_repr


#: Seconds a guest gets to show (on its console, or by ending) that it heard a
#: clean shutdown request or SIGTERM; without a sign by then it counts as hung.
#: Counted in time the guest could run: the window grows by the time its
#: processes (and the helper asking it) waited for a busy CPU.
REACTION_WINDOW = 1.0
#: Seconds QEMU gets to end after QMP ``quit``.
QUIT_GRACE = 1.0
#: QEMU run states in which the guest cannot react to a shutdown request.
_DEAF_STATES = frozenset(
    {"paused", "internal-error", "guest-panicked", "shutdown", "io-error", "watchdog"}
)


class _Shutdown:
    """One stop of a running guest, escalating on what the guest shows.

    A guest that has not booted yet (no boot marker on its console) cannot
    shut down cleanly (a Ctrl-Alt-Del before its keyboard driver is up is
    lost), nor can one that QEMU reports paused or failed: those go straight
    to QMP ``quit`` (qemu) or SIGTERM.  A booted guest is asked cleanly
    (``bin/microvm-shutdown``, else Ctrl-Alt-Del and then the power button
    over QMP); it has :data:`REACTION_WINDOW` seconds to print something on its
    console, and as long as it does, two thirds of the timeout to end.
    SIGTERM gets a reaction window too (and the rest of the timeout while the
    guest keeps printing); then SIGKILL.  On a loaded machine each window
    grows by the time the guest waited for a CPU (:class:`_CpuWait`): a slow
    machine is not a hung guest.
    """

    def __init__(
        self, guest: GuestRuntime, record: RunRecord, started: float, timeout: float
    ) -> None:
        self.guest = guest
        self.record = record
        self.deadline = started + timeout
        self.clean_until = started + timeout * 2 / 3
        self.output = ""
        self.phase: str | None = None
        self.steps: list[str] = []
        #: seconds the reaction windows grew by while the guest waited for a CPU
        self.cpu_wait = 0.0
        self._silent = False

    def _console_size(self) -> int:
        try:
            return self.guest.state.console.stat().st_size
        except OSError:
            return 0

    def _watch(self, until: float, helper: Helper | None = None) -> tuple[bool, bool]:
        """Wait for the guest to end: (gone, reacted).  Gives up after the
        reaction window when the console stays silent, else at ``until``."""
        mark = self._console_size()
        window = time.monotonic() + REACTION_WINDOW
        waited = _CpuWait(self.record, helper.pid if helper is not None else None)
        reacted = False
        while True:
            now = time.monotonic()
            if self.guest._gone(self.record, min(until, now + 0.05)):
                if not reacted:  # (it may have ended within a window that grew)
                    self._grown(waited, window)
                return True, reacted
            if helper is not None and helper.exit_code not in (None, 0):
                return False, False  # the request never reached the guest (no socket, …)
            if not reacted and self._console_size() > mark:
                reacted = True
            now = time.monotonic()
            if now >= until:
                return False, reacted
            if reacted:
                continue
            if now < window:
                waited.note()
            elif now >= window + waited.seconds():
                self._grown(waited, window)
                return False, False

    def _grown(self, waited: _CpuWait, window: float) -> None:
        """Count what a window grew by (only once it outlasted its wall-clock second)."""
        beyond = time.monotonic() - window
        if beyond > 0:
            self.cpu_wait += min(beyond, waited.seconds())

    def run(self) -> str:
        guest, record = self.guest, self.record
        runner = Path(record.runner) if record.runner else None
        info = RunnerInfo.read(runner) if runner is not None else None
        sock = guest.control_socket(record)
        qmp_sock = sock if sock is not None and sock.exists() else None
        run_state = guest._qmp_state(record, timeout=0.5) if qmp_sock is not None else None
        lost = [d.name for d in guest.state.read_daemons() if d.died or not d.alive()]
        if run_state in _DEAF_STATES:
            self.phase = run_state
        elif lost:
            # The guest's processes hang on a virtiofs share whose daemon is gone
            # (the hypervisor does not reconnect): its shutdown would hang too.
            self.phase = "share-lost"
        else:
            self.phase = "booted" if guest.has_booted() else "booting"
        if self.phase == "booted":
            method = self._clean(info, qmp_sock)
            if method is not None:
                return method
            if self._silent:
                self.phase = "hung"
        elif self.phase == "share-lost":
            self.steps.append(
                f"{', '.join(lost)} died while the guest ran: a clean shutdown would hang "
                "on its virtiofs shares, skipped"
            )
        else:
            self.steps.append(f"{self.phase}: a clean shutdown cannot work yet, skipped")
        if qmp_sock is not None and self._quit(qmp_sock):
            return "quit"
        return self._signals()

    def _clean(self, info: RunnerInfo | None, qmp_sock: Path | None) -> str | None:
        from nixgen.runtime.qmp import ctrl_alt_del_events, execute_once

        script = info.shutdown_script if info else None
        if script is not None:
            from nixgen.runtime.helpers import Helper

            with Helper([script], cwd=self.guest.state.path) as helper:
                gone, reacted = self._watch(self.clean_until, helper)
                result = helper.end() if helper.running() else helper.finish(0)
            self.output = result.output
            if gone:
                self.steps.append("microvm-shutdown: the guest shut down")
                return "microvm-shutdown"
            if result.exit_code not in (None, 0):
                said = result.output.strip().splitlines()[-1:] or [""]
                self.steps.append(
                    f"microvm-shutdown failed (exit code {result.exit_code}) {said[0]}"
                )
                return None
            self._no_end("microvm-shutdown", reacted)
            return None
        if qmp_sock is None:
            return None
        presses = (
            ("Ctrl-Alt-Del", "input-send-event", ctrl_alt_del_events()),
            ("power button", "system_powerdown", None),
        )
        for name, command, arguments in presses:
            if time.monotonic() >= self.clean_until:
                break
            try:
                execute_once(qmp_sock, command, arguments, timeout=1.0)
            except (QMPConnectionError, QMPCommandError) as err:
                self.steps.append(f"{name} over QMP failed: {err}")
                continue
            gone, reacted = self._watch(self.clean_until)
            if gone:
                self.steps.append(f"{name} over QMP: the guest shut down")
                return "qmp"
            self._no_end(f"{name} over QMP", reacted)
        return None

    def _no_end(self, what: str, reacted: bool) -> None:
        self._silent = not reacted
        if reacted:
            self.steps.append(f"{what}: the guest reacted but did not end in time")
        else:
            self.steps.append(f"{what}: no sign from the guest within {REACTION_WINDOW:g} s")

    def _quit(self, qmp_sock: Path) -> bool:
        from nixgen.runtime.qmp import execute_once

        try:
            execute_once(qmp_sock, "quit", timeout=1.0)
        except QMPCommandError as err:
            self.steps.append(f"QMP quit failed: {err}")
            return False
        except QMPConnectionError as err:
            # QEMU may hang up before its reply: whether it ended tells
            if not self.guest._gone(self.record, time.monotonic() + QUIT_GRACE):
                self.steps.append(f"QMP quit failed: {err}")
                return False
        if self.guest._gone(self.record, time.monotonic() + QUIT_GRACE):
            self.steps.append("QMP quit: QEMU ended")
            return True
        self.steps.append(f"QMP quit: QEMU still ran after {QUIT_GRACE:g} s")
        return False

    def _signals(self) -> str:
        guest, record = self.guest, self.record
        guest._signal(record, signal.SIGTERM)
        gone, _ = self._watch(max(self.deadline, time.monotonic() + 0.1))
        if gone:
            self.steps.append("SIGTERM: it ended")
            return "SIGTERM"
        self.steps.append("SIGTERM: it did not end")
        guest._kill(record)
        if guest._gone(record, time.monotonic() + _KILL_WAIT):
            self.steps.append("SIGKILL: it ended")
            return "SIGKILL"
        raise StopError(
            guest.name,
            f"guest {guest.name!r} (pid {record.pid}) survived SIGKILL",
            hint="it is stuck in the kernel (uninterruptible I/O?); look at "
            f"/proc/{record.pid}/stack, or wait and try again",
        )


class _CpuWait:
    """How long the guest, or a helper asking it to stop, has waited for a CPU
    since this was made: the longest run-queue delay that any one of their
    threads gathered (see :func:`nixgen.process.proc.run_delays`).  Zero on an
    idle machine; on a loaded one, the time a reaction window must grow by for
    the guest to get its second.

    The longest single wait, not the sum: a QEMU has many threads that wait
    side by side, and their sum would outgrow the time that passed, so that a
    hung guest on a busy host would never count as hung.
    """

    def __init__(self, record: RunRecord, helper: int | None) -> None:
        self._runner = record.pid
        self._helper = helper
        self._pids: list[int] = []
        self._listed = 0.0
        #: each thread's (pid, tid) delay when first seen (0 for those started
        #: since) and at most
        self._first: dict[tuple[int, int], float] = {}
        self._most: dict[tuple[int, int], float] = {}
        self._look(started=True)

    def _look(self, *, started: bool = False) -> None:
        now = time.monotonic()
        if started or now - self._listed >= 0.5:  # one walk of /proc, now and then
            table = proc.processes()
            self._pids = [self._runner, *proc.descendants(self._runner, table)]
            if self._helper is not None:
                self._pids += [self._helper, *proc.descendants(self._helper, table)]
            self._listed = now
        for pid in self._pids:
            self._sample(pid, started)

    def _sample(self, pid: int, started: bool = False) -> None:
        for tid, delay in (proc.run_delays(pid) or {}).items():  # (gone: what it waited is kept)
            key = (pid, tid)
            self._first.setdefault(key, delay if started else 0.0)
            self._most[key] = max(self._most.get(key, 0.0), delay)

    def note(self) -> None:
        """A cheap look at the helper alone, which may not live to the next full look."""
        if self._helper is not None:
            self._sample(self._helper)

    def seconds(self) -> float:
        self._look()
        return max((self._most[key] - self._first[key] for key in self._most), default=0.0)


def _daemon_notes(name: str, daemons: Sequence[DaemonRecord], *, running: bool) -> list[str]:
    """What ``status`` says about daemons (virtiofsd) that died while the guest ran."""
    notes = []
    restart = f"restart the guest (`nixgen stop {name} && nixgen run {name}`)"
    for daemon in daemons:
        ago = f" {_ago(daemon.died_at)} ago" if daemon.died_at is not None else ""
        if running and daemon.state == "restarting":
            notes.append(
                f"{daemon.name} {daemon.last_exit}{ago} while the guest ran and is started "
                f"again shortly (as microvm.nix's unit restarts it); the guest's virtiofs "
                f"shares do not work: the hypervisor does not reconnect to a new virtiofsd, "
                f"{restart}"
            )
        elif running and not daemon.alive():
            notes.append(
                f"{daemon.name} (pid {daemon.pid}) is not running: the guest's virtiofs "
                f"shares do not work; {restart}"
            )
        elif daemon.died:
            times = "once" if daemon.restarts <= 1 else f"{daemon.restarts} times"
            what = (
                f"and was started again ({times}); the guest's virtiofs shares stopped "
                f"working then: the hypervisor does not reconnect to a new virtiofsd, {restart}"
                if running
                else "(its virtiofs shares stopped working then)"
            )
            notes.append(f"{daemon.name} {daemon.last_exit}{ago} while the guest ran {what}")
    return notes


def _ago(when: float) -> str:
    seconds = max(0, int(time.time() - when))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _read_to_end(fd: int, timeout: float) -> None:
    """Read a pipe until its writer closes it (or ``timeout`` seconds pass)."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], left)
        if not ready or not os.read(fd, 4096):
            return


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
