"""The one way nixgen starts a program: :func:`run` to completion, :func:`spawn` to supervise.

:func:`run` takes an argv (never a shell string), starts the program in a
session of its own (so a Ctrl-C in the terminal reaches nixgen only, and
nixgen stops the program with everything it started), reads its output,
optionally hands each stderr line to a callback as it comes, stops it after
``timeout`` seconds, and turns a failure into :class:`CommandError` (the
command, its exit code and the tail of its stderr).  nix, git, ssh,
nixos-rebuild and the runners' helper scripts all go through it.

:func:`spawn` starts a long-lived program (a guest's supervisor) and returns
the :class:`subprocess.Popen`; :func:`terminate` is the one place that ends a
process group: SIGTERM, ``grace`` seconds, then SIGKILL to the group and to
every descendant that left it.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

import attrs

from nixgen.process import proc
from nixgen.process.errors import CommandError, CommandNotFoundError, CommandTimeoutError

__all__ = ["DEFAULT_GRACE", "CmdOut", "LineHandler", "run", "spawn", "terminate"]

#: Seconds a program gets after SIGTERM to stop its children and exit before SIGKILL.
DEFAULT_GRACE = 5.0

LineHandler = Callable[[str], None]
#: A hint for a failed command, fixed or chosen from what it printed.
Hint = str | Callable[["CmdOut"], str] | None

_EOF = object()  # end-of-stream marker on the stderr queue


@attrs.frozen
class CmdOut:
    """What one finished command did (``stderr`` is empty when it was merged into stdout)."""

    argv: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str
    duration: float

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def _argv(argv: Sequence[str | os.PathLike[str]]) -> list[str]:
    if isinstance(argv, str):
        raise TypeError("commands are lists of arguments, not one string")
    return [os.fspath(part) for part in argv]


def _merged_env(env: Mapping[str, str] | None) -> dict[str, str] | None:
    return None if env is None else {**os.environ, **env}


def _program(argv: Sequence[str]) -> str:
    return Path(argv[0]).name if argv else "the command"


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    grace: float = DEFAULT_GRACE,
    on_stderr_line: LineHandler | None = None,
    merge_stderr: bool = False,
    check: bool = True,
    hint: Hint = None,
    not_found_hint: str | None = None,
    timeout_hint: str | None = None,
) -> CmdOut:
    """Run ``argv`` to its end and return what it did.

    - ``env``: variables set on top of the current environment.
    - ``timeout``: seconds; then the program and its process group are stopped
      (:func:`terminate`) and :class:`CommandTimeoutError` raised.  On Ctrl-C,
      or any exception from ``on_stderr_line``, the same happens and the
      exception propagates.
    - ``on_stderr_line``: called with each stderr line (without its newline),
      in this thread, as the program prints it.
    - ``merge_stderr``: stderr goes into stdout, in the order printed.
    - ``check``: raise :class:`CommandError` when the exit code is not 0
      (``hint`` says what to do; a callable gets the :class:`CmdOut`).
    - ``not_found_hint``: the hint of :class:`CommandNotFoundError` when the
      program does not exist; ``timeout_hint`` that of :class:`CommandTimeoutError`.
    """
    args = _argv(argv)
    started = time.monotonic()
    try:
        process = subprocess.Popen(
            args,
            cwd=cwd,
            env=_merged_env(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
            # a session of its own: nixgen stops it with its helpers, and a
            # Ctrl-C in the terminal reaches nixgen only, which decides how to stop
            start_new_session=True,
        )
    except OSError as err:
        raise _start_error(err, args, cwd, not_found_hint) from err

    lines: queue.Queue[object] = queue.Queue()
    out_chunks: list[bytes] = []
    err_lines: list[str] = []
    assert process.stdout is not None
    readers = [threading.Thread(target=_read_all, args=(process.stdout, out_chunks), daemon=True)]
    if process.stderr is not None:
        readers.append(
            threading.Thread(target=_pump_lines, args=(process.stderr, lines), daemon=True)
        )
    else:
        lines.put(_EOF)
    for reader in readers:
        reader.start()
    deadline = None if timeout is None else started + timeout

    def left() -> float | None:
        return None if deadline is None else deadline - time.monotonic()

    def follow() -> int | None:
        """Hand stderr lines on until the program ends: its exit code, or
        None once the deadline has passed."""
        while True:
            remaining = left()
            if remaining is not None and remaining <= 0:
                return None
            # short waits keep Ctrl-C responsive on every platform
            wait = 0.2 if remaining is None else min(0.2, remaining)
            try:
                item = lines.get(timeout=wait)
            except queue.Empty:
                continue
            if item is _EOF:
                break
            assert isinstance(item, str)
            err_lines.append(item)
            if on_stderr_line is not None:
                on_stderr_line(item)
        remaining = left()
        try:
            return process.wait(timeout=None if remaining is None else max(remaining, 0.0))
        except subprocess.TimeoutExpired:
            return None

    try:
        exit_code = follow()
    except BaseException:
        terminate(process, grace)
        _join(readers)
        raise
    if exit_code is None:
        terminate(process, grace)
        _join(readers)
        _drain(lines, err_lines)
        raise CommandTimeoutError(
            f"{args[0]} did not finish within {timeout or 0:g} s and was stopped",
            timeout=timeout or 0.0,
            command=args,
            stderr=_text(err_lines) or b"".join(out_chunks).decode("utf-8", "replace"),
            hint=timeout_hint or "allow more time, or check what the command waits for",
        ) from None
    _join(readers)
    result = CmdOut(
        argv=tuple(args),
        exit_code=exit_code,
        stdout=b"".join(out_chunks).decode("utf-8", "replace"),
        stderr=_text(err_lines),
        duration=time.monotonic() - started,
    )
    if check and not result.ok:
        raise CommandError(
            f"{args[0]} failed",
            command=args,
            exit_code=exit_code,
            stderr=result.stderr or result.stdout,
            hint=hint(result) if callable(hint) else hint,
        )
    return result


def _start_error(
    err: OSError, args: Sequence[str], cwd: str | os.PathLike[str] | None, not_found: str | None
) -> CommandError:
    """Why a program could not start: its working folder, the program, or the system."""
    if cwd is not None and not Path(cwd).is_dir():
        return CommandError(
            f"{args[0]} could not be started: its working folder {os.fspath(cwd)} does not exist",
            command=args,
            hint="create the folder, or run the command from another one",
        )
    if isinstance(err, FileNotFoundError):
        return CommandNotFoundError(
            f"{args[0]} was not found",
            command=args,
            hint=not_found or f"install {_program(args)}, or put it on PATH",
        )
    return CommandError(
        f"{args[0]} could not be started: {err.strerror or err}",
        command=args,
        hint=f"check that {args[0]} is an executable program",
    )


def spawn(
    argv: Sequence[str | os.PathLike[str]],
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    quiet: bool = True,
    pass_fds: Sequence[int] = (),
    new_session: bool = False,
    output: bool = False,
    die_with_parent: bool = False,
) -> subprocess.Popen[bytes]:
    """Start a long-lived program and return it; the caller supervises it.

    ``quiet`` connects its stdin/stdout/stderr to /dev/null; otherwise it
    shares this terminal.  ``output``: its stdout and stderr go to one pipe
    (``.stdout``) instead.  ``pass_fds`` stay open in it (every other
    descriptor is closed).  ``die_with_parent``: the kernel sends it SIGKILL
    when nixgen dies, however it dies (Linux ``PR_SET_PDEATHSIG``; a helper
    must never outlive the command that started it).  A program that cannot
    start raises :class:`CommandError`.
    """
    args = _argv(argv)
    stream = subprocess.DEVNULL if quiet else None
    try:
        return subprocess.Popen(
            args,
            cwd=cwd,
            env=_merged_env(env),
            stdin=stream,
            stdout=subprocess.PIPE if output else stream,
            stderr=subprocess.STDOUT if output else stream,
            pass_fds=tuple(pass_fds),
            close_fds=True,
            start_new_session=new_session,
            preexec_fn=_die_with_parent if die_with_parent else None,
        )
    except OSError as err:
        raise _start_error(err, args, cwd, None) from err


_PR_SET_PDEATHSIG = 1
_libc: object = None


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL when the parent dies."""
    global _libc
    with contextlib.suppress(Exception):  # not Linux: the caller still ends it itself
        import ctypes

        if _libc is None:
            _libc = ctypes.CDLL(None, use_errno=True)
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # type: ignore[attr-defined]


def _owns_group(process: subprocess.Popen[bytes]) -> bool:
    """Whether ``process`` leads a process group of its own (and so can be
    signalled as one): never signal pid 0 (our own group) or a stranger."""
    pid = process.pid
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        return os.getpgid(pid) == pid and pid != os.getpgrp()
    except OSError:
        return False


def _signal(process: subprocess.Popen[bytes], sig: int, group: bool) -> None:
    if group:
        proc.signal_group(process.pid, sig)
    else:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            process.send_signal(sig)


def terminate(process: subprocess.Popen[bytes], grace: float = DEFAULT_GRACE) -> None:
    """Stop a program nixgen started and everything it started: SIGTERM to its
    group, SIGKILL after ``grace`` seconds to the group and to descendants that
    left it (nix's builders run in sessions of their own: nix stops them on
    SIGTERM, but not when SIGKILLed)."""
    if process.poll() is not None:
        return
    group = _owns_group(process)
    _signal(process, signal.SIGTERM, group)
    try:
        process.wait(timeout=grace)
        return
    except subprocess.TimeoutExpired:
        pass
    strays = proc.descendants(process.pid) if group else []
    _signal(process, signal.SIGKILL, group)
    for pid in strays:
        try:
            leads_a_group = os.getpgid(pid) == pid
        except OSError:
            continue  # gone already
        # a stray that leads a group of its own takes its helpers with it
        if leads_a_group:
            proc.signal_group(pid, signal.SIGKILL)
        else:
            proc.signal_pids([pid], signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)


def _pump_lines(stream: IO[bytes], out: queue.Queue[object]) -> None:
    try:
        for raw in iter(stream.readline, b""):
            out.put(raw.decode("utf-8", "replace").rstrip("\r\n"))
    except (OSError, ValueError):
        pass  # the pipe was closed under us while stopping the program
    finally:
        out.put(_EOF)


def _read_all(stream: IO[bytes], out: list[bytes]) -> None:
    with contextlib.suppress(OSError, ValueError):  # closed while stopping the program
        out.append(stream.read())


def _drain(lines: queue.Queue[object], into: list[str]) -> None:
    """The stderr lines read but not yet handed on (after a timeout)."""
    while True:
        try:
            item = lines.get_nowait()
        except queue.Empty:
            return
        if isinstance(item, str):
            into.append(item)


def _text(lines: Sequence[str]) -> str:
    return "\n".join(lines) + ("\n" if lines else "")


def _join(threads: Sequence[threading.Thread]) -> None:
    for thread in threads:
        thread.join(timeout=5.0)
