"""The error of a command that failed or could not run (:mod:`nixgen.process`).

:class:`CommandError` carries the command, its exit code and its stderr, and
shows the tail of it; nix's errors (:mod:`nixgen.nixcmd.errors`) are its children.
"""

from __future__ import annotations

from collections.abc import Sequence

from nixgen.errors import NixgenError

__all__ = ["CommandError", "CommandNotFoundError", "CommandTimeoutError", "shown_command"]


class CommandError(NixgenError):
    """A command failed, or could not run: nixos-rebuild and ssh directly, and
    ``nix`` through :class:`NixCommandError`.

    ``command`` is the argv, ``exit_code`` its exit status (``None`` when it
    never ran or was stopped), ``stderr`` its error output.
    """

    #: how many stderr lines ``str(err)`` shows when nothing more specific is known
    stderr_lines_shown = 15

    def __init__(
        self,
        message: str,
        *,
        command: Sequence[str] = (),
        exit_code: int | None = None,
        stderr: str = "",
        hint: str | None = None,
    ) -> None:
        self.command: tuple[str, ...] = tuple(command)
        self.exit_code = exit_code
        self.stderr = stderr
        super().__init__(message, hint=hint)

    def details(self) -> list[str]:
        """Lines shown between the message and the hint.

        The generic error shows the end of stderr, since nixgen could not say
        more; the typed children replace this with what they understood.
        """
        tail = _last_lines(self.stderr, self.stderr_lines_shown)
        if not tail:
            return []
        return ["  stderr (last lines):", *(f"    {line}" for line in tail)]

    def __str__(self) -> str:
        parts = [self.message]
        if self.command:
            # short: the full argv (nixgen's Nix expressions included) is self.command
            parts.append(f"  command: {shown_command(self.command)}")
        if self.exit_code is not None:
            parts.append(f"  exit code: {self.exit_code}")
        parts.extend(self.details())
        if self.hint:
            parts.append(f"  hint: {self.hint}")
        return "\n".join(parts)


class CommandNotFoundError(CommandError):
    """The program of a command is not installed (or not on PATH)."""


class CommandTimeoutError(CommandError):
    """A command ran longer than allowed and was stopped with what it started."""

    def __init__(
        self,
        message: str,
        *,
        timeout: float,
        command: Sequence[str] = (),
        stderr: str = "",
        hint: str | None = None,
    ) -> None:
        self.timeout = timeout
        super().__init__(message, command=command, exit_code=None, stderr=stderr, hint=hint)


def shown_command(argv: Sequence[str]) -> str:
    """``argv`` as a shell line, with a Nix expression of many lines shown by name.

    nixgen applies its own ``.nix`` files as ``(TEXT).FUNCTION ARGS``; such an
    argument is shown as ``<nixgen: FUNCTION ARGS>``, any other one of several
    lines as ``<Nix expression, N lines>``: the useful line of an error is not
    buried under 70 lines of nixgen's code.
    """
    import re
    import shlex  # local: only needed when an error is shown

    words = []
    for arg in argv:
        if "\n" not in arg:
            words.append(shlex.quote(arg))
            continue
        applied = re.fullmatch(r"\((.*)\)\.([A-Za-z_][\w'-]*)([^\n]*)", arg, re.DOTALL)
        if applied is not None:
            words.append(f"<nixgen: {applied[2]}{applied[3]}>")
        else:
            words.append(f"<Nix expression, {arg.count(chr(10)) + 1} lines>")
    return " ".join(words)


def _last_lines(text: str, count: int) -> list[str]:
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines[-count:]
