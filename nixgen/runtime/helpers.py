"""Helper processes nixgen starts for a guest, in one place.

Two kinds:

- the runner's own scripts that nixgen calls while a guest runs
  (``bin/microvm-shutdown``, ``bin/microvm-balloon``): :class:`Helper`.  Each
  call has its own timeout, and a helper ends with the nixgen that started
  it: it stays in nixgen's process group (a Ctrl-C or ``timeout`` reaches
  both), and the kernel kills it when nixgen dies (``PR_SET_PDEATHSIG``).
  QEMU serves one QMP client at a time, so a shutdown helper left behind
  would block the next stop;
- what must run before the hypervisor starts and end after it (virtiofsd per
  virtiofs share, tap devices): :class:`Prestart`, carried out by the guest's
  supervisor (:mod:`nixgen.runtime._supervisor`) so that it lives exactly as
  long as the guest.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from nixgen.runtime import proc

__all__ = ["Daemon", "Helper", "HelperResult", "Prestart", "run_helper"]

_PR_SET_PDEATHSIG = 1
_libc: Any = None


def _die_with_parent() -> None:
    """In the child before exec: the kernel sends SIGKILL when nixgen dies."""
    global _libc
    with contextlib.suppress(Exception):  # not Linux: the process group still holds
        if _libc is None:
            _libc = ctypes.CDLL(None, use_errno=True)
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


@attrs.frozen
class HelperResult:
    argv: tuple[str, ...]
    #: None when it was ended (timed out or no longer needed)
    exit_code: int | None
    output: str
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


class Helper:
    """One helper process, started at once; read it with :meth:`finish` or end it with :meth:`end`."""

    def __init__(self, argv: Sequence[str | Path], *, cwd: Path) -> None:
        self.argv = tuple(str(a) for a in argv)
        self.started = time.monotonic()
        self._process = subprocess.Popen(
            self.argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,  # no threads start helpers
        )

    @property
    def pid(self) -> int:
        return self._process.pid

    def running(self) -> bool:
        return self._process.poll() is None

    def finish(self, timeout: float) -> HelperResult:
        """Wait up to ``timeout`` seconds for it to end by itself; end it after that."""
        try:
            out, _ = self._process.communicate(timeout=max(timeout, 0.01))
        except subprocess.TimeoutExpired:
            return self.end(timed_out=True)
        except BaseException:  # Ctrl-C while waiting: it goes with us
            self.end()
            raise
        return HelperResult(self.argv, self._process.returncode, _text(out))

    def end(self, *, timed_out: bool = False) -> HelperResult:
        """End it and whatever it started (SIGKILL: a helper holds no state worth saving)."""
        if self._process.poll() is None:
            proc.signal_pids([*proc.descendants(self.pid), self.pid], signal.SIGKILL)
        out, _ = self._process.communicate()
        return HelperResult(self.argv, None, _text(out), timed_out=timed_out)

    def __enter__(self) -> Helper:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.running():
            self.end()


def run_helper(argv: Sequence[str | Path], *, cwd: Path, timeout: float) -> HelperResult:
    """Run a helper to its end, or for ``timeout`` seconds at most."""
    with Helper(argv, cwd=cwd) as helper:
        return helper.finish(timeout)


def _text(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", "replace")


# ---------------------------------------------------------------------- before the hypervisor


@attrs.frozen
class Daemon:
    """A process that serves the guest while it runs (virtiofsd): started
    before the hypervisor, which may start once every one of ``sockets`` exists."""

    name: str
    argv: tuple[str, ...]
    sockets: tuple[str, ...] = ()


@attrs.frozen
class Prestart:
    """What the supervisor does around the hypervisor.

    ``before``: commands run to their end first (tap devices); ``daemons``
    started next; ``after``: commands run once the hypervisor has ended and
    the daemons are gone (removing the tap devices nixgen made), also when it
    crashed.
    """

    before: tuple[tuple[str, ...], ...] = ()
    daemons: tuple[Daemon, ...] = ()
    after: tuple[tuple[str, ...], ...] = ()
    #: how long the daemons may take to create their sockets
    timeout: float = 10.0

    @property
    def empty(self) -> bool:
        return not (self.before or self.daemons or self.after)

    def to_json(self) -> dict[str, Any]:
        return {
            "before": [list(c) for c in self.before],
            "daemons": [
                {"name": d.name, "argv": list(d.argv), "sockets": list(d.sockets)}
                for d in self.daemons
            ],
            "after": [list(c) for c in self.after],
            "timeout": self.timeout,
        }


def is_socket(path: Path) -> bool:
    with contextlib.suppress(OSError):
        import stat

        return stat.S_ISSOCK(os.lstat(path).st_mode)
    return False
