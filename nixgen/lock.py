"""One lock per project folder, held from reading the files to writing them.

Every call that changes project files (``render``, ``init``, the edit
commands, :meth:`FlakeFile.save <nixgen.flake.FlakeFile.save>`) runs
inside :func:`project_lock`, so two nixgen processes (or threads) never
interleave a read-check-write: the second waits, then reads what the first
wrote.  Without it, two ``nixgen set`` at once both succeed and one change is
lost.

The lock is an ``flock`` (:func:`nixgen.files.hold_lock`) on a file in
``.nixgen/``, which also holds the guests' run state; a ``.gitignore`` in that
folder keeps it out of git even in a flake that is not a nixgen project.  Taking the lock again in the same thread
(``Project.render`` calls ``write_project``) nests instead of deadlocking.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from nixgen.errors import ProjectError
from nixgen.files import file_error, hold_lock
from nixgen.flake.errors import ProjectLockedError

__all__ = ["DEFAULT_TIMEOUT", "LOCK_NAME", "ProjectLockedError", "project_lock"]

STATE_DIR = ".nixgen"
LOCK_NAME = "project.lock"
DEFAULT_TIMEOUT = 60.0
# Ignores everything in .nixgen/, the state folder included, wherever it is.
_STATE_GITIGNORE = "# nixgen's state and locks: never committed\n*\n"

_held = threading.local()


def default_timeout() -> float:
    """``NIXGEN_LOCK_TIMEOUT`` seconds, else :data:`DEFAULT_TIMEOUT`."""
    text = os.environ.get("NIXGEN_LOCK_TIMEOUT", "")
    try:
        value = float(text)
    except ValueError:
        return DEFAULT_TIMEOUT
    return value if value >= 0 else DEFAULT_TIMEOUT


@contextlib.contextmanager
def project_lock(root: Path | str, timeout: float | None = None) -> Iterator[Path]:
    """Hold the project lock of folder ``root``; yields the lock file's path.

    Waits at most ``timeout`` seconds (default: :func:`default_timeout`), then
    raises :class:`ProjectLockedError`.  Re-entrant within one thread.
    """
    folder = Path(root).resolve()
    held: dict[Path, int] = _held.__dict__.setdefault("depth", {})
    lock_file = folder / STATE_DIR / LOCK_NAME
    if held.get(folder):
        held[folder] += 1
        try:
            yield lock_file
        finally:
            held[folder] -= 1
        return
    wait = default_timeout() if timeout is None else timeout
    _make_state_dir(folder)
    lock = contextlib.ExitStack()
    try:
        lock.enter_context(hold_lock(lock_file, wait))
    except TimeoutError:  # (only the wait: the body's own timeouts pass as they are)
        raise ProjectLockedError(folder, lock_file, wait) from None
    except OSError as err:
        raise file_error(err, lock_file, "cannot take the project lock") from None
    held[folder] = 1
    with lock:
        try:
            yield lock_file
        finally:
            held.pop(folder, None)


def _make_state_dir(folder: Path) -> None:
    if not folder.is_dir():
        raise ProjectError(
            f"{folder}: is not a folder" if folder.exists() else f"{folder}: no such folder",
            hint="pass the project folder (it holds flake.nix or nixgen.toml)",
        )
    state = folder / STATE_DIR
    try:
        state.mkdir(mode=0o700, exist_ok=True)
        ignore = state / ".gitignore"
        if not ignore.exists():
            ignore.write_text(_STATE_GITIGNORE, encoding="utf-8")
    except OSError as err:
        raise file_error(err, state, "cannot create nixgen's state folder") from None
