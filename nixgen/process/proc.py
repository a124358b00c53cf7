"""Processes as Linux's ``/proc`` shows them.

A pid alone does not name a process for long: after it exits the kernel may
give the number to another one.  nixgen therefore names a process by its pid
*and* its start time (``/proc/PID/stat`` field 22, clock ticks since boot)
*and* the boot id of the kernel it ran under; a zombie counts as gone.

Everything here degrades to plain ``kill(pid, 0)`` where there is no
``/proc`` (macOS hosts), without pid-reuse detection.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import time
from collections.abc import Iterable
from pathlib import Path

import attrs

from nixgen._repr import attrs_repr

__all__ = [
    "ProcStat",
    "alive",
    "boot_id",
    "cmdline",
    "descendants",
    "describe_signal",
    "group_members",
    "processes",
    "processes_in",
    "run_delays",
    "signal_group",
    "signal_pids",
    "start_ticks",
    "started_at",
    "stat",
    "wait_gone",
]

_PROC = Path("/proc")


@attrs.frozen
class ProcStat:
    """The fields of ``/proc/PID/stat`` nixgen uses."""

    pid: int
    state: str
    ppid: int
    pgrp: int
    session: int
    start_ticks: int

    @property
    def gone(self) -> bool:
        """A zombie (or a dead task) has exited; only its parent has not reaped it yet."""
        return self.state in ("Z", "X", "x")

    __repr__ = attrs_repr


def stat(pid: int) -> ProcStat | None:
    """``/proc/PID/stat``, or None when there is no such process (or no /proc)."""
    # A plain path and read: nixgen asks this while it waits on a guest, and
    # pathlib would cost more than the read itself.
    try:
        fd = os.open(f"{_PROC}/{pid}/stat", os.O_RDONLY)
    except (OSError, ValueError):
        return None
    try:
        text = os.read(fd, 4096).decode("utf-8", "replace")
    except OSError:
        return None
    finally:
        os.close(fd)
    return _parse_stat(pid, text)


def _parse_stat(pid: int, text: str) -> ProcStat | None:
    # The command name may hold spaces and parentheses: the fields follow the last ')'.
    fields = text[text.rfind(")") + 2 :].split()
    try:
        return ProcStat(
            pid=pid,
            state=fields[0],
            ppid=int(fields[1]),
            pgrp=int(fields[2]),
            session=int(fields[3]),
            start_ticks=int(fields[19]),
        )
    except (IndexError, ValueError):
        return None


def start_ticks(pid: int) -> int | None:
    """The start time of a live process (clock ticks after boot); None if it is gone."""
    found = stat(pid)
    if found is None or found.gone:
        return None
    return found.start_ticks


_boot_id: str | None = None


def boot_id() -> str | None:
    """This boot's id (``/proc/sys/kernel/random/boot_id``); None without /proc."""
    global _boot_id
    if _boot_id is None:
        try:
            _boot_id = (_PROC / "sys/kernel/random/boot_id").read_text().strip() or None
        except OSError:
            return None
    return _boot_id


_proc_mounted: bool | None = None


def _have_proc() -> bool:
    global _proc_mounted
    if _proc_mounted is None:
        _proc_mounted = (_PROC / "self" / "stat").exists()
    return _proc_mounted


def alive(pid: int, ticks: int | None = None) -> bool:
    """Whether ``pid`` runs and, given ``ticks``, is the process that started then."""
    if pid <= 0:
        return False
    if _have_proc():
        now = start_ticks(pid)
        return now is not None and (ticks is None or now == ticks)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_delays(pid: int) -> dict[int, float] | None:
    """Seconds each thread of ``pid`` (by thread id) has spent runnable but
    waiting for a CPU (run-queue delay, ``/proc/PID/task/TID/schedstat``);
    None when the process is gone or the kernel does not say."""
    task = f"{_PROC}/{pid}/task"
    try:
        threads = os.listdir(task)  # noqa: PTH208 (plain names, as stat() reads plainly)
    except OSError:
        return None
    delays: dict[int, float] = {}
    for tid in threads:
        try:
            fd = os.open(f"{task}/{tid}/schedstat", os.O_RDONLY)
        except OSError:
            continue
        try:
            fields = os.read(fd, 256).split()
            # on the CPU, waiting for it (both ns), time slices
            delays[int(tid)] = int(fields[1]) / 1e9
        except (OSError, IndexError, ValueError):
            continue
        finally:
            os.close(fd)
    return delays or None


def processes() -> list[ProcStat]:
    """Every process now (one walk of /proc): a table that :func:`descendants` and
    :func:`group_members` may share."""
    found: list[ProcStat] = []
    try:
        entries = [e.name for e in _PROC.iterdir() if e.name.isdigit()]
    except OSError:
        return found
    for entry in entries:
        item = stat(int(entry))
        if item is not None:
            found.append(item)
    return found


def descendants(pid: int, table: Iterable[ProcStat] | None = None) -> list[int]:
    """Every live process below ``pid`` (children first)."""
    children: dict[int, list[int]] = {}
    for item in processes() if table is None else table:
        if not item.gone:
            children.setdefault(item.ppid, []).append(item.pid)
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(0), []):
            if child not in found:
                found.append(child)
                todo.append(child)
    return found


def group_members(pgid: int, table: Iterable[ProcStat] | None = None) -> list[int]:
    """Live processes of process group ``pgid`` or of session ``pgid``.

    A session leader's helpers may have moved to process groups of their own
    (job control, daemons that call setpgid); they stay in the session.
    """
    return [
        item.pid
        for item in (processes() if table is None else table)
        if not item.gone and (item.pgrp == pgid or item.session == pgid)
    ]


def cmdline(pid: int) -> list[str]:
    """The argv of ``pid`` (empty when it is gone or hidden)."""
    try:
        raw = (_PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


def processes_in(directory: Path) -> list[int]:
    """Live processes whose working directory is ``directory``.

    microvm.nix's ``microvm@NAME`` unit starts the runner in
    ``/var/lib/microvms/NAME``, so this finds a guest that something other
    than nixgen started.
    """
    try:
        wanted = str(directory.resolve())
        entries = os.listdir(_PROC)  # noqa: PTH208 (plain names: no Path per process)
    except OSError:
        return []
    found: list[int] = []
    own = str(os.getpid())
    # One readlink per process, and /proc/PID/stat only for those found there:
    # every start asks, and a host runs hundreds of processes.
    for entry in entries:
        if not entry.isdigit() or entry == own:
            continue
        try:
            where = os.readlink(f"{_PROC}/{entry}/cwd")  # noqa: PTH115
        except OSError:
            continue
        if where == wanted:
            item = stat(int(entry))
            if item is not None and not item.gone:
                found.append(item.pid)
    return sorted(found)


def signal_pids(pids: Iterable[int], sig: int) -> None:
    """Send ``sig`` to each pid, ignoring those already gone."""
    for pid in pids:
        if pid <= 0 or pid == os.getpid():
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def signal_group(pgid: int, sig: int) -> None:
    """Send ``sig`` to process group ``pgid`` (never to our own group)."""
    if pgid <= 1 or pgid == os.getpgrp():
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def wait_gone(pid: int, ticks: int | None, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for a process (not necessarily our child) to exit.

    Uses a pidfd where Linux has one (no polling), else polls.  True when
    the process has gone.
    """
    deadline = time.monotonic() + max(timeout, 0.0)
    fd: int | None = None
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is not None:
        try:
            fd = pidfd_open(pid)
        except OSError as err:
            if err.errno == errno.ESRCH:
                return True
            fd = None
    try:
        # Checked after opening the pidfd: the fd cannot refer to a reused pid.
        if not alive(pid, ticks):
            return True
        if fd is not None:
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return not alive(pid, ticks)
                if poller.poll(min(left, 0.5) * 1000):
                    return True
                if not alive(pid, ticks):
                    return True
        delay = 0.005
        while alive(pid, ticks):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(delay, left))
            delay = min(delay * 2, 0.05)
        return True
    finally:
        if fd is not None:
            os.close(fd)


def started_at(ticks: int) -> float | None:
    """The wall-clock time of a start time in clock ticks after boot."""
    try:
        for line in (_PROC / "stat").read_text().splitlines():
            if line.startswith("btime "):
                return int(line.split()[1]) + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return None
    return None


def describe_signal(number: int) -> str:
    """``9`` → ``SIGKILL``."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
