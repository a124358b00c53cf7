"""The errors of Nix text (:mod:`nixgen.nix`): read, located, edited.

:class:`~nixgen.errors.NixEmitError` (no Nix spelling for a value) stays in
:mod:`nixgen.errors`: the model's attribute paths raise it too.
"""

from __future__ import annotations

from pathlib import Path

from nixgen.errors import NixgenError

__all__ = ["NixEditError", "NixPathError", "NixSyntaxError", "UnsupportedSyntaxError"]


class NixSyntaxError(NixgenError):
    """Nix text could not be read (or could not be written safely)."""

    def __init__(
        self,
        message: str,
        *,
        file: Path | str | None = None,
        line: int | None = None,
        column: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.column = column
        where = ""
        if file is not None:
            where = str(file)
            if line is not None:
                where += f":{line}"
                if column is not None:
                    where += f":{column}"
            where += ": "
        super().__init__(f"{where}{message}", hint=hint)


class UnsupportedSyntaxError(NixSyntaxError):
    """Valid Nix that nixgen's parser reads wrongly, so nixgen refuses to touch it."""


class NixPathError(NixgenError):
    """A locator or attribute path does not lead where it was asked to go."""


class NixEditError(NixgenError):
    """An edit cannot be made safely (nothing was changed)."""
