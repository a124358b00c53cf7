"""A guest's state folder: the files nixgen (and microvm.nix's host module) keep per guest.

Layout of ``<state root>/<name>/`` (default root ``<project>/.nixgen/vms``;
microvm.nix's host module uses ``/var/lib/microvms``)::

    current      → the runner to start (symlink into the Nix store; a GC root)
    booted       → the runner that booted last (symlink; a GC root)
    flake        the flake the guest comes from (one line, as upstream writes it)
    pid          the running guest, JSON (see RunRecord); absent when stopped
    exit.json    how the last run ended, JSON (see ExitRecord)
    console.log  the console (stdout and stderr) of the current or last run
    console.log.1  the console of the run before
    console.in   the console's input (a FIFO the runner reads; ``nixgen console --attach``)
    lock         file lock serialising nixgen processes acting on this guest
    stopping     present while nixgen stops the guest
    daemons.json the guest's daemons (virtiofsd) while it runs: pids, restarts, how they ended
    *.sock, *.img, …  what the runner creates: it runs with this folder as its
                 working directory, so relative sockets and volumes land here

``current``, ``booted`` and ``flake`` are what microvm.nix's host module and
its ``microvm`` command keep in ``/var/lib/microvms/<name>``; the rest is
nixgen's own (systemd keeps the equivalent for ``microvm@<name>``).
"""

from __future__ import annotations

import contextlib
import json
import os
import stat as stat_mod
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from nixgen._repr import attrs_repr
from nixgen.files import hold_lock
from nixgen.process import proc
from nixgen.runtime.errors import GuestLockedError

__all__ = [
    "BOOTED",
    "CONSOLE",
    "CONSOLE_IN",
    "CURRENT",
    "DAEMONS",
    "DaemonRecord",
    "ExitRecord",
    "RunRecord",
    "StateDir",
]

CURRENT = "current"
BOOTED = "booted"
FLAKE = "flake"
PID = "pid"
EXIT = "exit.json"
CONSOLE = "console.log"
#: The serial console's input while a background guest runs (a FIFO).
CONSOLE_IN = "console.in"
LOCK = "lock"
STOPPING = "stopping"
DAEMONS = "daemons.json"

#: Files that make a folder under the state root a guest's.
_MARKERS = (CURRENT, BOOTED, PID, EXIT, CONSOLE, FLAKE)


def _opt_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _opt_float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@attrs.frozen
class RunRecord:
    """The ``pid`` file: which process is the guest, told apart from a later one
    with the same pid by its start time and the boot it ran in."""

    pid: int
    start_ticks: int | None
    supervisor: int | None
    supervisor_ticks: int | None
    #: the process group (= session) of the guest; None for foreground runs,
    #: which share nixgen's group with the terminal
    pgid: int | None
    boot_id: str | None
    started_at: float
    runner: str | None
    foreground: bool = False

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunRecord | None:
        pid = _opt_int(data.get("pid"))
        started = _opt_float(data.get("started_at"))
        if pid is None or started is None:
            return None
        return cls(
            pid=pid,
            start_ticks=_opt_int(data.get("start_ticks")),
            supervisor=_opt_int(data.get("supervisor")),
            supervisor_ticks=_opt_int(data.get("supervisor_ticks")),
            pgid=_opt_int(data.get("pgid")),
            boot_id=_opt_str(data.get("boot_id")),
            started_at=started,
            runner=_opt_str(data.get("runner")),
            foreground=data.get("foreground") is True,
        )

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @property
    def same_boot(self) -> bool:
        """Whether the guest ran under this boot of the host (unknown counts as yes)."""
        now = proc.boot_id()
        return self.boot_id is None or now is None or self.boot_id == now

    def alive(self) -> bool:
        """Whether the runner still runs: same boot, same pid, same start time."""
        return self.same_boot and proc.alive(self.pid, self.start_ticks)

    def supervisor_alive(self) -> bool:
        if self.supervisor is None:
            return False
        return self.same_boot and proc.alive(self.supervisor, self.supervisor_ticks)

    __repr__ = attrs_repr


@attrs.frozen
class ExitRecord:
    """``exit.json``: how a run ended.

    ``requested`` is true when nixgen stopped the guest (``nixgen stop``); a
    run that ended by itself with a non-zero code or a signal crashed.
    """

    pid: int | None
    exit_code: int | None
    signal: int | None
    started_at: float | None
    ended_at: float | None
    requested: bool
    boot_id: str | None = None
    runner: str | None = None
    start_ticks: int | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ExitRecord:
        return cls(
            pid=_opt_int(data.get("pid")),
            exit_code=_opt_int(data.get("exit_code")),
            signal=_opt_int(data.get("signal")),
            started_at=_opt_float(data.get("started_at")),
            ended_at=_opt_float(data.get("ended_at")),
            requested=data.get("requested") is True,
            boot_id=_opt_str(data.get("boot_id")),
            runner=_opt_str(data.get("runner")),
            start_ticks=_opt_int(data.get("start_ticks")),
        )

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @property
    def crashed(self) -> bool:
        """Ended on its own, and not cleanly."""
        if self.requested:
            return False
        return self.signal is not None or self.exit_code != 0

    def describe(self) -> str:
        """``exit code 3``, ``killed by SIGKILL``, ``exit code unknown``."""
        if self.signal is not None:
            return f"killed by {proc.describe_signal(self.signal)}"
        if self.exit_code is not None:
            return f"exit code {self.exit_code}"
        return "exit code unknown"

    @property
    def returncode(self) -> int | None:
        """As a shell shows it: the exit code, or 128 + the signal."""
        if self.signal is not None:
            return 128 + self.signal
        return self.exit_code

    __repr__ = attrs_repr


@attrs.frozen
class DaemonRecord:
    """One entry of ``daemons.json``, which the supervisor keeps while the guest
    runs: a daemon serving the guest (virtiofsd) and whether it died meanwhile."""

    name: str
    pid: int | None
    start_ticks: int | None
    #: ``running``, or ``restarting`` while it is down and waits to be started again
    state: str
    restarts: int = 0
    #: how it ended the last time (``failed with exit code 1``, ``was killed by signal 9``)
    last_exit: str | None = None
    died_at: float | None = None
    log: str | None = None

    @classmethod
    def from_json(cls, name: str, data: Mapping[str, Any]) -> DaemonRecord:
        return cls(
            name=name,
            pid=_opt_int(data.get("pid")),
            start_ticks=_opt_int(data.get("start_ticks")),
            state=_opt_str(data.get("state")) or "running",
            restarts=_opt_int(data.get("restarts")) or 0,
            last_exit=_opt_str(data.get("last_exit")),
            died_at=_opt_float(data.get("died_at")),
            log=_opt_str(data.get("log")),
        )

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self) | {"alive": self.alive()}

    def alive(self) -> bool:
        """Whether the daemon the record names runs now."""
        return self.pid is not None and proc.alive(self.pid, self.start_ticks)

    @property
    def died(self) -> bool:
        """Whether it ended at least once while the guest ran."""
        return self.died_at is not None

    __repr__ = attrs_repr


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` as JSON, atomically (a reader never sees half a file)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(dict(data)) + "\n", encoding="utf-8")
    os.replace(tmp, path)


@attrs.frozen
class StateDir:
    """One guest's state folder (see the module docs for its layout)."""

    path: Path
    name: str

    @classmethod
    def under(cls, root: Path, name: str) -> StateDir:
        return cls(Path(root) / name, name)

    # ---------------------------------------------------------------- paths

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def console(self) -> Path:
        return self.path / CONSOLE

    @property
    def exists(self) -> bool:
        return any((self.path / m).exists() or (self.path / m).is_symlink() for m in _MARKERS)

    def create(self) -> None:
        """Make the folder, private (0700): it holds the console and the guest's disks."""
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.path.stat().st_mode & 0o077:
            self.path.chmod(0o700)

    # ---------------------------------------------------------------- records

    def read_run(self) -> RunRecord | None:
        data = _read_json(self.path / PID)
        return None if data is None else RunRecord.from_json(data)

    def read_exit(self) -> ExitRecord | None:
        data = _read_json(self.path / EXIT)
        return None if data is None else ExitRecord.from_json(data)

    def read_daemons(self) -> tuple[DaemonRecord, ...]:
        data = _read_json(self.path / DAEMONS) or {}
        return tuple(
            DaemonRecord.from_json(name, value)
            for name, value in data.items()
            if isinstance(value, dict)
        )

    def write_exit(self, record: ExitRecord) -> None:
        write_json(self.path / EXIT, record.to_json())

    def remove(self, *names: str) -> None:
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                (self.path / name).unlink()

    # ---------------------------------------------------------------- links

    def link(self, name: str) -> Path | None:
        """Where the ``current``/``booted`` link points (None when absent)."""
        try:
            return (self.path / name).readlink()
        except OSError:
            return None

    def set_link(
        self, name: str, target: Path, *, register: Callable[[Path, Path], None] | None = None
    ) -> bool:
        """Point link ``name`` at ``target``; False when it already did.

        ``register(link, target)`` makes the link a GC root (through nix) for
        store paths; other targets get a plain symlink, replaced atomically.
        """
        link = self.path / name
        if self.link(name) == target:
            return False
        self.create()
        if register is not None:
            register(link, target)
            if self.link(name) == target:
                return True
        tmp = link.with_name(f".{name}.{os.getpid()}.tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(target)
        os.replace(tmp, link)
        return True

    def flake_ref(self) -> str | None:
        try:
            return (self.path / FLAKE).read_text(encoding="utf-8").strip() or None
        except OSError:
            return None

    def set_flake_ref(self, ref: str) -> None:
        if self.flake_ref() != ref:
            self.create()
            tmp = self.path / f".{FLAKE}.{os.getpid()}.tmp"
            tmp.write_text(ref + "\n", encoding="utf-8")
            os.replace(tmp, self.path / FLAKE)

    # ---------------------------------------------------------------- locking

    @contextlib.contextmanager
    def lock(self, timeout: float = 60.0) -> Iterator[None]:
        """Hold this guest's file lock: one nixgen process acts on a guest at a time."""
        self.create()
        held = contextlib.ExitStack()
        try:
            held.enter_context(hold_lock(self.path / LOCK, timeout))
        except TimeoutError:  # (only the wait: the body's own timeouts pass as they are)
            raise GuestLockedError(self.name, self.path / LOCK, timeout) from None
        with held:
            yield

    # ---------------------------------------------------------------- clean-up

    def sockets(self) -> list[Path]:
        """Unix sockets in the folder (control sockets, virtiofsd sockets, …)."""
        found: list[Path] = []
        try:
            entries = list(self.path.iterdir())
        except OSError:
            return found
        for entry in entries:
            try:
                if stat_mod.S_ISSOCK(entry.lstat().st_mode):
                    found.append(entry)
            except OSError:
                continue
        return found

    def clean_stale(self) -> list[Path]:
        """Remove what a run that is over left behind: the pid file, sockets,
        the stop marker.  Call only when the guest does not run (and with the lock)."""
        removed: list[Path] = []
        for name in (PID, STOPPING):
            path = self.path / name
            if path.exists():
                path.unlink()
                removed.append(path)
        for sock in self.sockets():
            with contextlib.suppress(FileNotFoundError):
                sock.unlink()
                removed.append(sock)
        return removed

    def rotate_console(self) -> None:
        """Keep the last run's console as ``console.log.1``; start an empty one."""
        self.create()
        if self.console.exists():
            os.replace(self.console, self.path / f"{CONSOLE}.1")
        self.console.touch(mode=0o600)
        self.console.chmod(0o600)  # touch's mode is masked by the umask and skips old files

    def mark_stopping(self) -> None:
        write_json(self.path / STOPPING, {"pid": os.getpid(), "at": time.time()})

    __repr__ = attrs_repr
