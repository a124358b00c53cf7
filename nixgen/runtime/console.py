"""The console log of a guest: its last lines, new output as it comes, boot markers.

A background guest's stdout and stderr (its serial console, for the
runners microvm.nix builds) go to ``<state>/console.log``; each start begins
a new file and keeps the previous one as ``console.log.1``.
"""

from __future__ import annotations

import os
import re
import select
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from nixgen.ansi import strip_ansi

__all__ = [
    "DEFAULT_BOOT_MARKER",
    "DETACH_KEY",
    "ConsoleInput",
    "ConsoleReader",
    "ConsoleWakeup",
    "MarkerWatch",
    "follow",
    "reader_after_tail",
    "tail",
]

#: Ctrl-] leaves an attached console (as telnet and virsh console do).
DETACH_KEY = b"\x1d"

#: What a booted guest prints: NixOS's login prompt (``web login:``) or the
#: marker nixgen's test guests print.
DEFAULT_BOOT_MARKER = r"\S login: ?|NIXGEN-GUEST-BOOTED"

_TAIL_CHUNK = 64 * 1024


def _clean(line: str) -> str:
    return strip_ansi(line).replace("\r", "").rstrip()


def tail(path: Path, lines: int = 20) -> list[str]:
    """The last ``lines`` non-empty lines of a console log (ANSI codes removed)."""
    return _tail(path, lines)[0]


def _tail(path: Path, lines: int) -> tuple[list[str], int]:
    """The last lines and the offset they end at (where following must go on)."""
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            if lines <= 0:
                return [], size
            start = max(0, size - _TAIL_CHUNK)
            handle.seek(start)
            data = handle.read(size - start)
    except OSError:
        return [], 0
    text = data.decode("utf-8", "replace")
    if start > 0:
        text = text.split("\n", 1)[-1]  # drop the partial first line
    found = [_clean(line) for line in text.split("\n")]
    return [line for line in found if line][-lines:], size


class ConsoleReader:
    """Reads what a console log gained since the last call; follows a new file
    when the guest was started again (the log was replaced)."""

    def __init__(self, path: Path, *, from_end: bool = False, offset: int = 0) -> None:
        self.path = path
        self._fd: int | None = None
        self._inode: int | None = None
        self._offset = 0
        self._from_end = from_end
        self._start = offset  # where to begin in the first file opened

    def _open(self) -> bool:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return False
        self._fd = fd
        info = os.fstat(fd)
        self._inode = info.st_ino
        self._offset = info.st_size if self._from_end else min(self._start, info.st_size)
        self._from_end = False  # a replacement file is read from its start
        self._start = 0
        return True

    def read(self) -> str:
        """New text since the last call (empty when there is none)."""
        if self._fd is None and not self._open():
            return ""
        assert self._fd is not None
        chunks: list[bytes] = []
        while True:
            data = os.pread(self._fd, 1 << 16, self._offset)
            if not data:
                break
            self._offset += len(data)
            chunks.append(data)
        try:
            replaced = self.path.stat().st_ino != self._inode
        except OSError:
            replaced = False
        if replaced:
            self.close()
            if self._open():
                return b"".join(chunks).decode("utf-8", "replace") + self.read()
        return b"".join(chunks).decode("utf-8", "replace")

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> ConsoleReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: inotify(7): what the kernel reports when a file is written to.
_IN_MODIFY = 0x2


def _inotify(path: Path) -> int:
    """An inotify descriptor watching ``path`` for writes; -1 where there is none."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fd = int(libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC))
    except (OSError, AttributeError):  # not Linux
        return -1
    if fd < 0:
        return -1
    if libc.inotify_add_watch(fd, os.fsencode(path), _IN_MODIFY) < 0:
        os.close(fd)
        return -1
    return fd


class ConsoleWakeup:
    """Sleeps until the console log is written to or the guest's process ends.

    Waiting for a boot marker by polling costs CPU every few milliseconds,
    taken from a guest that boots on the same cores, and notices the marker a
    poll late.  This blocks in ``select`` on an inotify watch of the log and
    a pidfd of the runner (Linux); without them it sleeps ``fallback`` seconds.
    """

    def __init__(self, console: Path, pid: int | None) -> None:
        self._inotify = _inotify(console)
        self._pidfd = -1
        if pid is not None and self._inotify >= 0 and hasattr(os, "pidfd_open"):
            try:
                self._pidfd = os.pidfd_open(pid)
            except OSError:  # gone already (the caller sees that), or an old kernel
                self._pidfd = -1

    def wait(self, timeout: float, fallback: float) -> bool:
        """Return on a write to the log, the end of the process, or after ``timeout``
        seconds (``fallback`` seconds at most without inotify).  False when its
        pidfd did not wake it: the process was running a moment ago, so the
        caller need not check it (an end that races a write wakes the next
        wait at once)."""
        if self._inotify < 0:
            time.sleep(min(timeout, fallback))
            return True
        # without a pidfd the end of the process is noticed at the next check
        limit = timeout if self._pidfd >= 0 else min(timeout, 0.25)
        fds = [fd for fd in (self._inotify, self._pidfd) if fd >= 0]
        ready, _, _ = select.select(fds, [], [], max(0.0, limit))
        if self._inotify in ready:
            try:
                while os.read(self._inotify, 4096):
                    pass
            except BlockingIOError:
                pass
        return self._pidfd < 0 or self._pidfd in ready

    def close(self) -> None:
        for fd in (self._inotify, self._pidfd):
            if fd >= 0:
                os.close(fd)
        self._inotify = self._pidfd = -1

    def __enter__(self) -> ConsoleWakeup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def follow(
    path: Path,
    *,
    lines: int = 10,
    poll: float = 0.1,
    stop: Callable[[], bool] | None = None,
) -> Iterator[str]:
    """Yield the last ``lines`` lines, then new console text as it arrives (like
    ``tail -f``), until ``stop()`` returns true after a quiet poll."""
    # Go on exactly where the tail ended: nothing written in between is lost,
    # and a log that does not exist yet is read from its start.
    start, offset = _tail(path, lines)
    if start:
        yield "\n".join(start) + "\n"
    with ConsoleReader(path, offset=offset) as reader:
        while True:
            text = reader.read()
            if text:
                yield text
                continue
            if stop is not None and stop():
                text = reader.read()
                if text:
                    yield text
                return
            time.sleep(poll)


def reader_after_tail(path: Path, lines: int) -> tuple[list[str], ConsoleReader]:
    """The last ``lines`` lines, and a reader that goes on exactly after them."""
    start, offset = _tail(path, lines)
    return start, ConsoleReader(path, offset=offset)


#: Console text kept to look for a marker in, and how far back into text
#: already searched a marker may begin.
_WINDOW = 8192
_STRADDLE = 1024


class MarkerWatch:
    """Looks for a regex in console text arriving in pieces (matches may straddle pieces)."""

    def __init__(self, pattern: str | re.Pattern[str]) -> None:
        self.pattern = re.compile(pattern) if isinstance(pattern, str) else pattern
        self._window = ""

    def feed(self, text: str) -> re.Match[str] | None:
        if not text:
            return None
        joined = self._window + strip_ansi(text).replace("\r", "")
        # What came before was searched already: a match straddling the pieces
        # begins in its last part (a boot arrives in many small writes).
        searched = len(self._window) - max(0, len(joined) - _WINDOW)
        self._window = joined[-_WINDOW:]
        return self.pattern.search(self._window, max(0, searched - _STRADDLE))


class ConsoleInput:
    """Types into a running guest's serial console: writes to the FIFO its
    runner reads as stdin (``<state>/console.in``).  Several may be open at
    once; closing one leaves the guest as it was."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # O_NONBLOCK: fails at once (ENXIO) when no runner reads it, never hangs
        self._fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        os.set_blocking(self._fd, True)

    def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> ConsoleInput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
