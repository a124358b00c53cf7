"""The root of nixgen's errors, and the errors shared by every layer.

Every error says what went wrong, where (a field path, or ``file:line``) and
what to do about it.  Catch :class:`NixgenError` to catch them all; the tree
is drawn in docs/python-api.md ("Errors").  Every class is exported from
:mod:`nixgen`.

Here: :class:`NixgenError`, :class:`Problem` and :class:`ValidationError`
(the model's problems, reported by every layer), and the errors several layers
raise (:class:`OptionError`, :class:`NixEmitError`, :class:`GraphError`).  The
others live beside their domain: :mod:`nixgen.nix.errors` (Nix text),
:mod:`nixgen.flake.errors` (rendering, projects, the flake editor),
:mod:`nixgen.process.errors` (commands), :mod:`nixgen.nixcmd.errors` (nix),
:mod:`nixgen.build` (building), :mod:`nixgen.runtime.errors` (guests, QMP);
they stay importable from here too.

This module imports nothing else from nixgen, so every layer can raise its
errors without an import cycle.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from nixgen._lazy import export_lazily

if TYPE_CHECKING:  # the names below, for type checkers (explicit re-exports)
    from nixgen.build import (
        BuildError as BuildError,
    )
    from nixgen.build import (
        GuestEvalError as GuestEvalError,
    )
    from nixgen.flake.errors import (
        EvaluationError as EvaluationError,
    )
    from nixgen.flake.errors import (
        FlakeEditError as FlakeEditError,
    )
    from nixgen.flake.errors import (
        HandEditedError as HandEditedError,
    )
    from nixgen.flake.errors import (
        ProjectError as ProjectError,
    )
    from nixgen.flake.errors import (
        ProjectLockedError as ProjectLockedError,
    )
    from nixgen.flake.errors import (
        RenderError as RenderError,
    )
    from nixgen.hostcheck import (
        HostEvalError as HostEvalError,
    )
    from nixgen.lockschema import (
        LockSchemaError as LockSchemaError,
    )
    from nixgen.nix.errors import (
        NixEditError as NixEditError,
    )
    from nixgen.nix.errors import (
        NixPathError as NixPathError,
    )
    from nixgen.nix.errors import (
        NixSyntaxError as NixSyntaxError,
    )
    from nixgen.nix.errors import (
        UnsupportedSyntaxError as UnsupportedSyntaxError,
    )
    from nixgen.nixcmd.errors import (
        FlakesDisabledError as FlakesDisabledError,
    )
    from nixgen.nixcmd.errors import (
        NixBuildError as NixBuildError,
    )
    from nixgen.nixcmd.errors import (
        NixCommandError as NixCommandError,
    )
    from nixgen.nixcmd.errors import (
        NixEvalError as NixEvalError,
    )
    from nixgen.nixcmd.errors import (
        NixInputError as NixInputError,
    )
    from nixgen.nixcmd.errors import (
        NixNotFoundError as NixNotFoundError,
    )
    from nixgen.nixcmd.errors import (
        NixOptionError as NixOptionError,
    )
    from nixgen.nixcmd.errors import (
        NixTimeoutError as NixTimeoutError,
    )
    from nixgen.nixcmd.errors import (
        NixVersionError as NixVersionError,
    )
    from nixgen.process.errors import (
        CommandError as CommandError,
    )
    from nixgen.process.errors import (
        CommandNotFoundError as CommandNotFoundError,
    )
    from nixgen.process.errors import (
        CommandTimeoutError as CommandTimeoutError,
    )
    from nixgen.runtime.errors import (
        BootError as BootError,
    )
    from nixgen.runtime.errors import (
        GuestError as GuestError,
    )
    from nixgen.runtime.errors import (
        GuestLockedError as GuestLockedError,
    )
    from nixgen.runtime.errors import (
        GuestNotRunningError as GuestNotRunningError,
    )
    from nixgen.runtime.errors import (
        GuestRunningError as GuestRunningError,
    )
    from nixgen.runtime.errors import (
        KvmInternalError as KvmInternalError,
    )
    from nixgen.runtime.errors import (
        NoRunnerError as NoRunnerError,
    )
    from nixgen.runtime.errors import (
        QMPCommandError as QMPCommandError,
    )
    from nixgen.runtime.errors import (
        QMPConnectionError as QMPConnectionError,
    )
    from nixgen.runtime.errors import (
        QMPError as QMPError,
    )
    from nixgen.runtime.errors import (
        StartError as StartError,
    )
    from nixgen.runtime.errors import (
        StopError as StopError,
    )
    from nixgen.runtime.errors import (
        UnsupportedError as UnsupportedError,
    )


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


#: Errors defined beside their domain, still importable from here (code
#: written when every error lived in this module keeps working).
_ELSEWHERE = {
    **dict.fromkeys(
        ["CommandError", "CommandNotFoundError", "CommandTimeoutError"], "nixgen.process.errors"
    ),
    **dict.fromkeys(
        [
            "FlakesDisabledError",
            "NixBuildError",
            "NixCommandError",
            "NixEvalError",
            "NixInputError",
            "NixNotFoundError",
            "NixOptionError",
            "NixTimeoutError",
            "NixVersionError",
        ],
        "nixgen.nixcmd.errors",
    ),
    **dict.fromkeys(["BuildError", "GuestEvalError"], "nixgen.build"),
    "HostEvalError": "nixgen.hostcheck",
    **dict.fromkeys(
        ["NixEditError", "NixPathError", "NixSyntaxError", "UnsupportedSyntaxError"],
        "nixgen.nix.errors",
    ),
    **dict.fromkeys(
        [
            "EvaluationError",
            "FlakeEditError",
            "HandEditedError",
            "ProjectError",
            "ProjectLockedError",
            "RenderError",
        ],
        "nixgen.flake.errors",
    ),
    "LockSchemaError": "nixgen.lockschema",
    **dict.fromkeys(
        [
            "BootError",
            "GuestError",
            "GuestLockedError",
            "GuestNotRunningError",
            "GuestRunningError",
            "KvmInternalError",
            "NoRunnerError",
            "QMPCommandError",
            "QMPConnectionError",
            "QMPError",
            "StartError",
            "StopError",
            "UnsupportedError",
        ],
        "nixgen.runtime.errors",
    ),
}

export_lazily(__name__, _ELSEWHERE)
