"""The errors of the flake files: rendering them (:mod:`nixgen.render`), the
project folder (:mod:`nixgen.project`) and editing flakes (:mod:`nixgen.flake`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from nixgen.errors import NixgenError

__all__ = ["FlakeEditError", "HandEditedError", "ProjectError", "RenderError"]


class RenderError(NixgenError):
    """Writing the generated files failed or was refused."""


class HandEditedError(RenderError):
    """Generated files were edited by hand; nixgen will not overwrite them unasked."""

    def __init__(self, files: Sequence[Path]) -> None:
        self.files = list(files)
        names = ", ".join(str(f) for f in self.files)
        super().__init__(
            f"refusing to overwrite hand-edited generated file(s): {names}",
            hint="move your edits into nixgen.toml (or a module listed in `modules`), "
            "or pass --force (Python: force=True) to overwrite them",
        )


class ProjectError(NixgenError):
    """A nixgen project folder is missing, incomplete or would be clobbered."""


class FlakeEditError(NixgenError):
    """An edit of an existing flake that nixgen refuses (nothing was changed)."""
