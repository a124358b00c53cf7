"""The errors of nix commands (:mod:`nixgen.nixcmd`): a failed run, diagnosed.

:func:`nixgen.nixcmd.diagnose.diagnose` reads nix's error output and picks
the class; each keeps the command, exit code and stderr of
:class:`~nixgen.process.errors.CommandError` and adds what it understood.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import attrs

from nixgen.process.errors import CommandError

__all__ = [
    "BuildFailure",
    "EvalPosition",
    "FlakesDisabledError",
    "NixBuildError",
    "NixCommandError",
    "NixEvalError",
    "NixInputError",
    "NixNotFoundError",
    "NixOptionError",
    "NixTimeoutError",
    "NixVersionError",
    "OptionRejection",
]


class NixCommandError(CommandError):
    """A ``nix`` command failed.  Base of every error of :mod:`nixgen.nixcmd`.

    ``command`` is the argv that ran, ``exit_code`` its exit status (``None``
    when it never ran or was killed), ``stderr`` its error output as plain text.
    """


class NixNotFoundError(NixCommandError):
    """The ``nix`` binary is not installed, not on PATH, or not executable."""

    def __init__(self, searched: str | None = None, *, command: Sequence[str] = ()) -> None:
        self.searched = searched
        where = f"at {searched}" if searched else "on PATH"
        super().__init__(
            f"the nix command was not found {where}",
            command=command,
            hint="install Nix (Debian/Ubuntu: apt-get install nix-bin; elsewhere see "
            "https://nixos.org/download), or pass the full path of the nix binary",
        )

    def details(self) -> list[str]:
        return []


class NixVersionError(NixCommandError):
    """``nix --version`` printed something nixgen cannot read, or a Nix too old for flakes."""

    def details(self) -> list[str]:
        return []


class FlakesDisabledError(NixCommandError):
    """Nix refused a command because an experimental feature is switched off."""

    def __init__(
        self,
        feature: str,
        *,
        command: Sequence[str] = (),
        exit_code: int | None = None,
        stderr: str = "",
    ) -> None:
        self.feature = feature
        super().__init__(
            f"nix refused to run: its experimental feature '{feature}' is disabled",
            command=command,
            exit_code=exit_code,
            stderr=stderr,
            hint="set `experimental-features = nix-command flakes` in nix.conf "
            "(/etc/nix/nix.conf, or ~/.config/nix/nix.conf for one user), or pass "
            "--extra-experimental-features 'nix-command flakes' to nix",
        )

    def details(self) -> list[str]:
        return []


def _where(file: Path | str | None, line: int | None, column: int | None) -> str:
    if file is None:
        return ""
    where = str(file)
    if line is not None:
        where += f":{line}"
        if column is not None:
            where += f":{column}"
    return where


@attrs.frozen
class EvalPosition:
    """Where an evaluation error points: ``file``/``line``/``column`` in the
    user's flake folder when it lies there, ``store_file`` as Nix printed it."""

    file: Path | str | None = None
    line: int | None = None
    column: int | None = None
    store_file: str | None = None


class NixEvalError(NixCommandError):
    """Nix could not evaluate the flake: syntax error, ``throw``, failed ``assert``,
    missing attribute, untracked file...

    ``position`` (also readable as ``file``, ``line``, ``column``,
    ``store_file``) points into the user's flake folder when the error lies
    there (``/nix/store/<hash>-source/…`` is mapped back).  ``trace`` holds
    the "while evaluating…" context lines, innermost first.
    """

    def __init__(
        self,
        eval_message: str,
        *,
        position: EvalPosition = EvalPosition(),
        trace: Sequence[str] = (),
        suggestion: str | None = None,
        command: Sequence[str] = (),
        exit_code: int | None = None,
        stderr: str = "",
        hint: str | None = None,
        headline: str | None = None,
    ) -> None:
        self.eval_message = eval_message
        self.position = position
        self.trace = tuple(trace)
        self.suggestion = suggestion
        where = _where(position.file, position.line, position.column)
        first = eval_message.strip().splitlines()[0] if eval_message.strip() else "error"
        head = (
            f"nix evaluation failed at {where}: {first}"
            if where
            else (f"nix evaluation failed: {first}")
        )
        super().__init__(
            headline or head,
            command=command,
            exit_code=exit_code,
            stderr=stderr,
            hint=hint
            or "fix the expression at the place shown; rerun the nix command with "
            "--show-trace for the full evaluation trace",
        )

    @property
    def file(self) -> Path | str | None:
        return self.position.file

    @property
    def line(self) -> int | None:
        return self.position.line

    @property
    def column(self) -> int | None:
        return self.position.column

    @property
    def store_file(self) -> str | None:
        return self.position.store_file

    def details(self) -> list[str]:
        lines = self.eval_message.strip().splitlines()[1:]
        out = [f"    {line}" for line in lines[:20]]
        if self.suggestion and not (self.hint and self.suggestion in self.hint):
            out.append(f"  {self.suggestion}")
        return out


OptionKind = Literal["unknown", "type", "conflict", "undefined", "assertion"]


@attrs.frozen
class OptionRejection:
    """What the NixOS module system refused, as :class:`NixOptionError` carries it.

    ``kind``: ``"unknown"``, ``"type"``, ``"conflict"``, ``"undefined"`` or
    ``"assertion"``; ``option`` the option path (``None`` for failed
    assertions); ``expected_type`` the type Nix names; ``suggestions``
    upstream's "Did you mean" options; ``definitions`` the (file, value)
    pairs upstream lists; ``failed_assertions`` the messages.
    """

    kind: OptionKind
    option: str | None = None
    expected_type: str | None = None
    suggestions: tuple[str, ...] = ()
    definitions: tuple[tuple[str, str], ...] = ()
    failed_assertions: tuple[str, ...] = ()

    def headline(self, where: str) -> str:
        at = f" (defined at {where})" if where else ""
        if self.kind == "unknown":
            return f"the option `{self.option}' does not exist{at}"
        if self.kind == "type":
            return f"the value of option `{self.option}' is not of type `{self.expected_type}'{at}"
        if self.kind == "conflict":
            return f"the option `{self.option}' has conflicting definitions{at}"
        if self.kind == "undefined":
            return f"the option `{self.option}' is used but not defined{at}"
        count = len(self.failed_assertions)
        return f"the NixOS configuration failed {count} assertion{'s' if count != 1 else ''}"


class NixOptionError(NixEvalError):
    """The NixOS module system rejected an option: unknown option, wrong type,
    conflicting definitions, or failed ``assertions`` (``rejection`` says which;
    its fields are also attributes of the error)."""

    def __init__(
        self,
        eval_message: str,
        rejection: OptionRejection,
        *,
        position: EvalPosition = EvalPosition(),
        trace: Sequence[str] = (),
        command: Sequence[str] = (),
        exit_code: int | None = None,
        stderr: str = "",
        hint: str | None = None,
    ) -> None:
        self.rejection = rejection
        super().__init__(
            eval_message,
            position=position,
            trace=trace,
            command=command,
            exit_code=exit_code,
            stderr=stderr,
            hint=hint,
            headline=rejection.headline(_where(position.file, position.line, position.column)),
        )

    @property
    def kind(self) -> OptionKind:
        return self.rejection.kind

    @property
    def option(self) -> str | None:
        return self.rejection.option

    @property
    def expected_type(self) -> str | None:
        return self.rejection.expected_type

    @property
    def suggestions(self) -> tuple[str, ...]:
        return self.rejection.suggestions

    @property
    def definitions(self) -> tuple[tuple[str, str], ...]:
        return self.rejection.definitions

    @property
    def failed_assertions(self) -> tuple[str, ...]:
        return self.rejection.failed_assertions

    def details(self) -> list[str]:
        out = [f"    - {a}" for a in self.failed_assertions]
        out += [f"    defined in {file}: {value}" for file, value in self.definitions]
        if self.suggestions:
            out.append("  did you mean: " + ", ".join(f"`{s}'" for s in self.suggestions) + "?")
        return out


@attrs.frozen
class BuildFailure:
    """One derivation whose builder failed."""

    drv_path: str
    exit_code: int | None
    log_lines: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The derivation's name: ``/nix/store/<hash>-<name>.drv`` → ``<name>``."""
        base = self.drv_path.rsplit("/", 1)[-1]
        base = base.removesuffix(".drv")
        return base.split("-", 1)[1] if "-" in base else base


class NixBuildError(NixCommandError):
    """A builder failed.  ``failures`` lists every failed derivation (one unless
    ``--keep-going``); ``drv_path``, ``builder_exit_code`` and ``log_lines`` are
    those of the first."""

    def __init__(
        self,
        failures: Sequence[BuildFailure],
        *,
        command: Sequence[str] = (),
        exit_code: int | None = None,
        stderr: str = "",
    ) -> None:
        self.failures = tuple(failures)
        first = self.failures[0] if self.failures else BuildFailure("", None)
        self.drv_path = first.drv_path
        self.builder_exit_code = first.exit_code
        self.log_lines = first.log_lines
        names = ", ".join(f"'{f.name}'" for f in self.failures) or "a derivation"
        if len(self.failures) > 1:
            what = f"the builders of {names} failed"
        else:
            code = f" with exit code {first.exit_code}" if first.exit_code is not None else ""
            what = f"the builder of {names} failed{code}"
        super().__init__(
            f"nix build failed: {what}",
            command=command,
            exit_code=exit_code,
            stderr=stderr,
            hint=f"read the full build log with: nix log {first.drv_path}"
            if first.drv_path
            else "rerun the build with -L to see the build log",
        )

    def details(self) -> list[str]:
        out: list[str] = []
        for failure in self.failures:
            code = "" if failure.exit_code is None else f" (exit code {failure.exit_code})"
            out.append(f"  {failure.drv_path}{code}, last log lines:")
            out.extend(f"    > {line}" for line in failure.log_lines[-10:])
        return out


class NixInputError(NixCommandError):
    """A flake input could not be fetched (offline, wrong URL, missing path)."""

    def __init__(
        self,
        reason: str,
        *,
        input_name: str | None = None,
        url: str | None = None,
        command: Sequence[str] = (),
        exit_code: int | None = None,
        stderr: str = "",
        hint: str | None = None,
    ) -> None:
        self.reason = reason
        self.input_name = input_name
        self.url = url
        what = f"input '{input_name}'" if input_name else "a flake input"
        if url:
            what += f" ({url})"
        name = input_name or "NAME"
        super().__init__(
            f"could not fetch {what}: {reason}",
            command=command,
            exit_code=exit_code,
            stderr=stderr,
            hint=hint
            or f"use --override-input {name} path:/local/dir to use a local copy, or go online",
        )

    @property
    def offline(self) -> bool:
        """Whether the network, not the input, is the problem (no DNS, no route)."""
        text = f"{self.reason}\n{self.stderr}".lower()
        return any(
            sign in text
            for sign in (
                "resolve host",
                "network is unreachable",
                "could not resolve",
                "temporary failure in name resolution",
            )
        )

    def details(self) -> list[str]:
        return []


class NixTimeoutError(NixCommandError):
    """A nix command ran longer than allowed and was stopped (with its builders)."""

    def __init__(self, timeout: float, *, command: Sequence[str] = (), stderr: str = "") -> None:
        self.timeout = timeout
        super().__init__(
            f"nix did not finish within {timeout:g} s and was stopped",
            command=command,
            exit_code=None,
            stderr=stderr,
            hint="allow more time (timeout=...), or build fewer things at once; "
            "a first build of a guest can take long when little is cached",
        )
