"""Keeping git's index in step with the files nixgen writes.

A flake inside a git work tree only sees the files git tracks, so a module
nixgen creates must be added and one it deletes must leave the index, as
``nix flake init`` does.  Outside a work tree (or without git) nothing happens.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

__all__ = ["track"]


def track(root: Path, created: Sequence[Path] = (), removed: Sequence[Path] = ()) -> None:
    """Stage ``created`` files and unstage ``removed`` ones, inside a git work tree."""
    git = shutil.which("git")
    if git is None or not (created or removed):
        return
    inside = subprocess.run(
        [git, "-C", str(root), "rev-parse", "--is-inside-work-tree"],
        capture_output=True,
        text=True,
        check=False,
    )
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        return
    if created:
        subprocess.run(
            [git, "-C", str(root), "add", "--", *(str(p.resolve()) for p in created)],
            capture_output=True,
            check=False,
        )
    if removed:
        subprocess.run(
            [git, "-C", str(root), "rm", "--cached", "--quiet", "--ignore-unmatch", "--"]
            + [str(p.resolve()) for p in removed],
            capture_output=True,
            check=False,
        )
