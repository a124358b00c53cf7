"""The errors of running guests (:mod:`nixgen.runtime`) and of QEMU's monitor."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from nixgen.errors import NixgenError

__all__ = [
    "BootError",
    "GuestError",
    "GuestLockedError",
    "GuestNotRunningError",
    "GuestRunningError",
    "KvmInternalError",
    "NoRunnerError",
    "QMPCommandError",
    "QMPConnectionError",
    "QMPError",
    "StartError",
    "StopError",
    "UnsupportedError",
]


class GuestError(NixgenError):
    """Something about running guest ``name`` went wrong."""

    def __init__(self, name: str, message: str, *, hint: str | None = None) -> None:
        self.name = name
        super().__init__(message, hint=hint)


def _tail_block(lines: Sequence[str]) -> str:
    if not lines:
        return "\n  (the console is empty)"
    return "\n  console (last lines):\n" + "\n".join(f"    {line}" for line in lines)


class GuestRunningError(GuestError):
    """Start refused: the guest runs already."""

    def __init__(self, name: str, pid: int, *, by: str = "nixgen") -> None:
        self.pid = pid
        hint = (
            f"stop it first (`nixgen stop {name}`), or restart it with `nixgen update {name} --restart`"
            if by == "nixgen"
            else f"it was started by something else ({by}); stop it there, "
            f"e.g. `systemctl stop microvm@{name}`"
        )
        super().__init__(name, f"guest {name!r} is already running (pid {pid})", hint=hint)


class GuestNotRunningError(GuestError):
    """The guest must run for this."""

    def __init__(self, name: str, what: str) -> None:
        super().__init__(
            name,
            f"guest {name!r} is not running, so nixgen cannot {what}",
            hint=f"start it with `nixgen run {name}`",
        )


class GuestLockedError(GuestError):
    """Another nixgen process holds the guest's lock for too long."""

    def __init__(self, name: str, lock: Path, timeout: float) -> None:
        self.lock = lock
        super().__init__(
            name,
            f"another nixgen process is acting on guest {name!r} "
            f"(its lock {lock} stayed taken for {timeout:g} s)",
            hint="wait for it to finish and try again; a lock held by a process that "
            "died is released by the system, so there is nothing to delete",
        )


class NoRunnerError(GuestError):
    """Nothing says which runner to start."""

    def __init__(self, name: str, state: Path) -> None:
        super().__init__(
            name,
            f"guest {name!r} has no runner: {state}/current does not exist and there is "
            "no project to build it from",
            hint="run nixgen in the project folder (or pass --flake DIR), or build it "
            "first with `nixgen update NAME`",
        )


class StartError(GuestError):
    """The runner could not be started at all."""

    def __init__(
        self, name: str, reason: str, *, console: Sequence[str] = (), hint: str | None = None
    ) -> None:
        self.reason = reason
        self.console = tuple(console)
        super().__init__(
            name,
            f"guest {name!r} could not be started: {reason}" + _tail_block(console),
            hint=hint or "check the runner (bin/microvm-run) and the state folder's permissions",
        )


class BootError(GuestError):
    """The guest did not reach its boot marker: it died, hung or timed out.

    ``console`` holds the last console lines; ``exit_code``/``signal`` how
    it ended when it did.
    """

    def __init__(
        self,
        name: str,
        reason: str,
        *,
        console: Sequence[str] = (),
        console_file: Path | None = None,
        exit_code: int | None = None,
        signal: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.reason = reason
        self.console = tuple(console)
        self.console_file = console_file
        self.exit_code = exit_code
        self.signal = signal
        where = f" (full console: {console_file})" if console_file else ""
        super().__init__(
            name,
            f"guest {name!r} did not boot: {reason}{where}" + _tail_block(console),
            hint=hint
            or "read the console above; `nixgen status NAME` shows the state, "
            "`nixgen run NAME --foreground` runs it attached to this terminal",
        )


class KvmInternalError(BootError):
    """QEMU reports the run state ``internal-error``: KVM cannot run this guest."""

    def __init__(
        self, name: str, *, console: Sequence[str] = (), console_file: Path | None = None
    ) -> None:
        super().__init__(
            name,
            "QEMU stopped the guest with a KVM internal error (QMP run state 'internal-error')",
            console=console,
            console_file=console_file,
            hint="this machine's /dev/kvm cannot run the guest: use TCG "
            "(microvm.qemu.machineOpts with accel=tcg, and `-cpu max` instead of `-cpu host`)",
        )


class StopError(GuestError):
    """The guest's processes survived SIGKILL (e.g. stuck in uninterruptible I/O)."""


class QMPError(GuestError):
    """The QEMU monitor (QMP) could not be reached or refused a command."""


class UnsupportedError(GuestError):
    """The guest's runner cannot do this (e.g. no ``bin/microvm-balloon``)."""


# --- QEMU's monitor protocol, below the guests (nixgen.runtime.qmp) ---


class QMPConnectionError(NixgenError, OSError):
    """No QMP server answered at the socket (still an :class:`OSError`, as it always was)."""


class QMPCommandError(NixgenError):
    """QEMU answered a command with an error (``error_class``: QMP's error class)."""

    def __init__(self, command: str, error_class: str, description: str) -> None:
        self.command = command
        self.error_class = error_class
        self.description = description
        super().__init__(f"{command}: {error_class}: {description}")
