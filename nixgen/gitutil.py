"""Keeping git's index in step with the files nixgen writes.

A flake inside a git work tree only sees the files git tracks, so a module
nixgen creates must be added and one it deletes must leave the index, as
``nix flake init`` does.  Outside a work tree (or without git) nothing happens.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from nixgen import process

__all__ = ["track"]

_ADD_HINT = (
    "the files are written: stage them yourself (`git add`), or fix what git says "
    "(a file ignored by .gitignore is invisible to the flake)"
)
_RM_HINT = "the files are removed: unstage them yourself (`git rm --cached`)"


def track(root: Path, created: Sequence[Path] = (), removed: Sequence[Path] = ()) -> None:
    """Stage ``created`` files and unstage ``removed`` ones, inside a git work tree.

    Raises :class:`~nixgen.process.errors.CommandError` when git refuses (the files
    stay written): a flake in a work tree would not see an unstaged module.
    """
    if not (created or removed) or not _may_be_in_work_tree(root):
        return
    import shutil  # (with bz2, lzma and zlib: `nixgen check` imports this module, writes nothing)

    git = shutil.which("git")
    if git is None:
        return
    inside = process.run([git, "-C", str(root), "rev-parse", "--is-inside-work-tree"], check=False)
    if inside.exit_code != 0 or inside.stdout.strip() != "true":
        return  # not a work tree: nothing to keep in step
    if created:
        process.run(
            [git, "-C", str(root), "add", "--", *(str(p.resolve()) for p in created)],
            hint=_ADD_HINT,
        )
    if removed:
        process.run(
            [git, "-C", str(root), "rm", "--cached", "--quiet", "--ignore-unmatch", "--"]
            + [str(p.resolve()) for p in removed],
            hint=_RM_HINT,
        )


def _may_be_in_work_tree(root: Path) -> bool:
    """Whether git could find a work tree at ``root``: a ``.git`` (folder or file)
    there or above, or one named by the environment.  Where there is none, git
    is not asked (starting it took a tenth of rendering a fleet's project)."""
    if "GIT_DIR" in os.environ or "GIT_WORK_TREE" in os.environ:
        return True
    folder = root.resolve()
    return any((parent / ".git").exists() for parent in (folder, *folder.parents))
