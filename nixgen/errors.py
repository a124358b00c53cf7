"""The root of nixgen's errors, and the errors shared by every layer.

Every error says what went wrong, where (a field path, or ``file:line``) and
what to do about it.  Catch :class:`NixgenError` to catch them all; the tree
is drawn in docs/python-api.md ("Errors").  Every class is exported from
:mod:`nixgen`.

Here: :class:`NixgenError`, :class:`Problem` and :class:`ValidationError`
(the model's problems, reported by every layer), and the errors several layers
raise (:class:`OptionError`, :class:`NixEmitError`, :class:`GraphError`,
:class:`FileError`, :class:`ProjectError`).  The others live beside their
domain: :mod:`nixgen.nix.errors` (Nix text), :mod:`nixgen.flake.errors`
(rendering, the project lock, the flake editor), :mod:`nixgen.process.errors`
(commands), :mod:`nixgen.nixcmd.errors` (nix), :mod:`nixgen.build`
(building), :mod:`nixgen.runtime.errors` (guests, QMP).  nixgen's own modules
import each from its home; for code written when every error lived here, this
module still hands them out (looked up in the package's one table of exports).

This module imports nothing else from nixgen, so every layer can raise its
errors without an import cycle.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import attrs


class NixgenError(Exception):
    """Base of every error nixgen raises on purpose.

    ``hint`` says what the person can do about it; it is part of ``str(err)``.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


def keyed(path: str, key: object) -> str:
    """``path`` followed by a mapping key, always in double quotes: ``guests["web"]``.

    The one spelling of keys in every path nixgen shows (reading data,
    validating, emitting Nix), so a setting has one path wherever it is reported.
    """
    text = str(key).replace("\\", "\\\\").replace('"', '\\"')
    return f'{path}["{text}"]'


@attrs.frozen
class Problem:
    """One thing wrong (or worth a warning) in a model, found before Nix runs.

    ``path`` points at the value in nixgen terms, e.g.
    ``guests["web"].shares[0].proto`` (keys of tables in double quotes, see
    :func:`keyed`; top-level keys without a prefix: ``default``).
    """

    path: str
    message: str
    hint: str
    value: object = None
    warning: bool = False

    def __str__(self) -> str:
        kind = "warning" if self.warning else "error"
        shown = "" if self.value is None else f" (got {self.value!r})"
        return f"{kind}: {self.path}: {self.message}{shown}\n  hint: {self.hint}"


# --- the model and its data (nixgen.model, nixgen.validate, nixgen.settings) ---


def _unique(problems: Sequence[Problem]) -> list[Problem]:
    """The problems in order, each once (two checks may find the same thing)."""
    seen: set[tuple[str, str, str, bool]] = set()
    out = []
    for problem in problems:
        key = (problem.path, problem.message, problem.hint, problem.warning)
        if key not in seen:
            seen.add(key)
            out.append(problem)
    return out


class ValidationError(NixgenError):
    """A model (or the data it was read from) is invalid; lists every problem."""

    def __init__(
        self,
        problems: Sequence[Problem],
        *,
        source: str | None = None,
        warnings: Sequence[Problem] = (),
    ) -> None:
        self.problems = _unique(problems)
        self.warnings = _unique(warnings)  # found alongside, so one run shows everything
        self.source = source
        where = f" in {source}" if source else ""
        count = len(self.problems)
        header = f"{count} problem{'s' if count != 1 else ''}{where}:"
        body = "\n".join(str(p) for p in self.problems)
        super().__init__(
            f"{header}\n{body}",
            hint=None,
        )


class OptionError(NixgenError):
    """An option path or value that nixgen cannot apply to a guest."""


# --- Nix values: the model's attribute paths and the serializer both raise it ---


class NixEmitError(NixgenError):
    """A Python value has no faithful Nix spelling."""


class GraphError(NixgenError):
    """A picture could not be drawn (nixgen.graph): Graphviz's ``dot`` is missing or failed."""


class FileError(NixgenError):
    """Reading or writing a file failed (read-only file system, disk full, …).

    ``path`` is the file, ``errno`` the operating system's error number
    (see :func:`nixgen.files.file_error`, which every layer that writes files uses).
    """

    def __init__(self, path: Path | str, message: str, *, errno: int | None, hint: str) -> None:
        self.path = Path(path)
        self.errno = errno
        super().__init__(f"{path}: {message}", hint=hint)


class ProjectError(NixgenError):
    """A nixgen project folder or its ``nixgen.toml`` is missing, incomplete or would
    be clobbered (raised from reading the data file up to the command line)."""


if not TYPE_CHECKING:  # type checkers send importers to each error's home

    def __getattr__(name: str) -> type[NixgenError]:
        """An error that lives beside its domain, asked for here (PEP 562).

        The package's table of exports (``nixgen/__init__.py``) says where each
        lives, so there is no second table to keep in step.
        """
        package = sys.modules["nixgen"]  # a submodule is imported after its package
        if name.endswith("Error") and name in package.__all__:
            found = getattr(package, name)
            if isinstance(found, type) and issubclass(found, NixgenError):
                return found
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
