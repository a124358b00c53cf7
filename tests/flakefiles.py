"""Corpus flakes copied for a test to edit, and the bytes of a flake's files.

The corpus (``tests/corpus/``) holds flakes as single files (``flakes/x.nix``)
or folders (``split/``); tests edit copies, and compare :func:`snapshot` before
and after to show what an edit wrote, or that a refusal wrote nothing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

CORPUS = Path(__file__).parent / "corpus"


def copy_flake(tmp_path: Path, name: str) -> Path:
    """A corpus flake (a file, or a folder such as split/) copied to a folder of its own."""
    source = CORPUS / name
    target = tmp_path / name.replace("/", "_").removesuffix(".nix")
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        target.mkdir(parents=True)
        shutil.copyfile(source, target / "flake.nix")
    return target


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder``; .nixgen/ is nixgen's own state (the project lock)."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and ".nixgen" not in p.relative_to(folder).parts
    }
