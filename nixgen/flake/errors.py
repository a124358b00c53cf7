"""The errors of the flake files: rendering them (:mod:`nixgen.render`), the
project lock (:mod:`nixgen.lock`) and editing flakes (:mod:`nixgen.flake`).

:class:`~nixgen.errors.ProjectError` lives in the root, since reading
``nixgen.toml`` (the model layer) raises it too; it is importable from here as well."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from nixgen.errors import NixgenError, ProjectError

__all__ = [
    "EvaluationError",
    "FlakeEditError",
    "HandEditedError",
    "ProjectError",
    "ProjectLockedError",
    "RenderError",
]


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


class ProjectLockedError(ProjectError):
    """Another nixgen command held the project lock for longer than the timeout."""

    def __init__(self, root: Path, lock_file: Path, timeout: float) -> None:
        self.root = root
        self.lock_file = lock_file
        self.timeout = timeout
        super().__init__(
            f"{root}: another nixgen command is changing this project's files and held its "
            f"lock ({lock_file}) for more than {timeout:g} s; nothing was written",
            hint="wait for the other command to finish and run this one again "
            "(NIXGEN_LOCK_TIMEOUT=SECONDS waits longer)",
        )


class FlakeEditError(NixgenError):
    """An edit of an existing flake that nixgen refuses (nothing was changed)."""


class EvaluationError(NixgenError):
    """nix could not evaluate the flake's nixosConfigurations (an input it cannot
    fetch, an evaluation error), or an edit checked by evaluating again did not do
    what was asked (then every file is as it was)."""
