"""Files on disk: what an OS error means to a person, modes, atomic writes and their
left-over temp files, locks.

The bottom of the stack (it imports only :mod:`nixgen.errors`): every layer
that writes files turns an ``OSError`` into a :class:`FileError` through
:func:`file_error`, and the CLI shows any ``OSError`` that still escapes in
the same words.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import itertools
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

from nixgen.errors import FileError

__all__ = [
    "FileError",
    "clean_stale_temps",
    "explain_os_error",
    "file_error",
    "hold_lock",
    "new_file_mode",
    "new_temp_file",
    "umask",
    "write_all",
    "write_atomically",
]

# The temp files of atomic writes: `.NAME.XXXXXXXX.tmp`, 8 characters of [a-z0-9_]
# (what new_temp_file makes, and tempfile.mkstemp(prefix=".NAME.", suffix=".tmp") too).
_TEMP_NAME = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp\Z")
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
_temp_serial = itertools.count()  # next() on it is atomic: threads never share a number

_HINTS = {
    errno.EROFS: "the file system is read-only: work on a writable copy of the folder",
    errno.ENOSPC: "the disk is full: free some space and run the command again",
    errno.EDQUOT: "your disk quota is used up: free some space and run the command again",
    errno.EFBIG: "the file is larger than the file-size limit (`ulimit -f`): raise the limit",
    errno.EACCES: "you may not write there: check the folder's owner and permissions",
    errno.EPERM: "the operation is not permitted: check the file's owner and attributes",
    errno.ENOTDIR: "a part of the path is a file where a folder is needed: move that file away",
    errno.EISDIR: "a folder stands where a file is needed: move that folder away",
    errno.EEXIST: "a file stands where a folder is needed: move that file away",
    errno.ENOENT: "the file or its folder does not exist: check the path",
    errno.ENAMETOOLONG: "the path is too long: use a shorter folder name",
    errno.EMFILE: "too many files are open: raise `ulimit -n`",
    errno.EIO: "the disk reported an input/output error: check the device",
}


def explain_os_error(err: OSError) -> tuple[str, str]:
    """``(what happened, what to do)`` for an OS error, in a person's words."""
    what = err.strerror or str(err) or type(err).__name__
    hint = _HINTS.get(err.errno or 0, "check the path, the folder's permissions and free space")
    return what, hint


def file_error(
    err: OSError, path: Path | str | None = None, doing: str = "cannot write"
) -> FileError:
    """A :class:`FileError` for ``err`` (raised while working on ``path``)."""
    where = path if path is not None else (err.filename or "(file)")
    what, hint = explain_os_error(err)
    return FileError(where, f"{doing}: {what}", errno=err.errno, hint=hint)


def umask() -> int:
    """The process's umask, read without changing it where Linux tells it."""
    try:
        with Path("/proc/self/status").open(encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    current = os.umask(0o022)  # elsewhere: set and restore (not thread-safe, but rare)
    os.umask(current)
    return current


def _base36(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, digit = divmod(number, 36)
        digits.append(_DIGITS[digit])
    return "".join(reversed(digits))


@functools.lru_cache(maxsize=4)
def _pid_part(pid: int) -> str:
    return _base36(pid, 5)


def new_temp_file(path: Path | str) -> tuple[int, str]:
    """A new, empty file beside ``path`` to write its next text into: ``(fd, name)``,
    open for writing, mode 0600.  Rename it over ``path`` once written.

    Named ``.NAME.XXXXXXXX.tmp`` (:func:`clean_stale_temps` knows the form) from
    the process id and a counter: no random name to draw, and ``O_EXCL`` makes
    sure the file is new (a name taken, by another process in another pid
    namespace or left by a killed one, moves on to the next number).
    """
    folder, slash, name = os.fspath(path).rpartition("/")
    stem = f"{folder}{slash}.{name}.{_pid_part(os.getpid())}"
    for _ in range(10_000):
        temp = f"{stem}{_base36(next(_temp_serial), 3)}.tmp"
        try:
            return os.open(temp, _TEMP_FLAGS, 0o600), temp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary file name", f"{stem}….tmp")


def new_file_mode() -> int:
    """The mode ``open()`` would give a new file: 0666 less the umask."""
    return 0o666 & ~umask()


def clean_stale_temps(folder: Path, names: set[str] | None = None) -> list[Path]:
    """Remove temp files that a killed atomic write left in ``folder``.

    Only ``.NAME.xxxxxxxx.tmp`` files (of the given ``NAME``s when ``names``
    is set); call it while holding the project lock, when no other nixgen
    write can be in flight.
    """
    removed: list[Path] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        if not _TEMP_NAME.match(entry.name):
            continue
        if names is not None and not any(entry.name.startswith(f".{n}.") for n in names):
            continue
        try:
            if entry.is_file() and not entry.is_symlink():
                entry.unlink()
                removed.append(entry)
        except OSError:
            continue
    return removed


def write_all(fd: int, data: bytes) -> None:
    """All of ``data`` to the file ``fd`` (a write may take only part of it)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_atomically(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Write ``data`` so that readers see the old file or the new one, never a mix:
    into a new temporary file beside ``path``, flushed to disk, renamed over it.

    A replaced file keeps its mode; a new one gets ``mode``, or what ``open()``
    would give it (0666 less the umask).  The folder must exist.  Raises the
    ``OSError`` (callers say it in their words) and leaves no temporary file.
    """
    fd, tmp = new_temp_file(path)
    try:
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            kept: int | None = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            kept = None
        os.chmod(tmp, kept if kept is not None else new_file_mode() if mode is None else mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def hold_lock(path: Path, timeout: float) -> Iterator[None]:
    """Hold an exclusive ``flock`` on file ``path`` (created when missing).

    Waits at most ``timeout`` seconds for another holder (another process, or
    another open of the file in this one), then raises :class:`TimeoutError`.
    The lock goes with the process, however it ends.  (The standard library's
    ``fcntl``, as the ``filelock`` package does on Unix, whose import costs
    every command that acts on a guest some 20 ms of logging and secrets.)
    """
    import fcntl

    deadline = time.monotonic() + timeout
    pause = 0.001  # a lock held for a moment is seen free soon; a long one is polled slowly
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{path} is locked") from None
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, 0.05)
            continue
        except BaseException:
            os.close(fd)
            raise
        # The holder before may have removed the file (``nixgen destroy``): a
        # lock on a file no longer at ``path`` keeps out nobody who opens it anew.
        try:
            same = path.stat().st_ino == os.fstat(fd).st_ino
        except OSError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        yield
    finally:
        os.close(fd)  # (closing the only descriptor of the file releases its lock)
