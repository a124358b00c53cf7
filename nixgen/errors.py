"""The one exception hierarchy of nixgen: every error class, of every layer.

Every error says what went wrong, where (a field path, or ``file:line``) and
what to do about it.  Catch :class:`NixgenError` to catch them all; the tree
is drawn in docs/python-api.md ("Errors").  Every class is re-exported from
:mod:`nixgen`.

This module imports nothing from nixgen, so every layer can raise its errors
without an import cycle (and the runtime's errors cost no ``filelock`` or
``qemu.qmp`` import).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

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


# --- the model and its data (nixgen.model, nixgen.validate, nixgen.options) ---


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


# --- Nix text: read, emitted, edited (nixgen.nix) ---


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


class NixEmitError(NixgenError):
    """A Python value has no faithful Nix spelling."""


class NixEditError(NixgenError):
    """An edit cannot be made safely (nothing was changed)."""


# --- files and projects (nixgen.render, nixgen.project, nixgen.flakefile) ---


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


# --- commands other than nix: nixos-rebuild, ssh (nixgen.deploy) ---


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


# --- errors of the nix command layer (nixgen.nixcmd) ---


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


class NixEvalError(NixCommandError):
    """Nix could not evaluate the flake: syntax error, ``throw``, failed ``assert``,
    missing attribute, untracked file...

    ``file``/``line``/``column`` point into the user's flake folder when the
    error lies there (``/nix/store/<hash>-source/…`` is mapped back);
    ``store_file`` keeps the path exactly as Nix printed it.  ``trace`` holds
    the "while evaluating…" context lines, innermost first.
    """

    def __init__(
        self,
        eval_message: str,
        *,
        file: Path | str | None = None,
        line: int | None = None,
        column: int | None = None,
        store_file: str | None = None,
        trace: Sequence[str] = (),
        suggestion: str | None = None,
        command: Sequence[str] = (),
        exit_code: int | None = None,
        stderr: str = "",
        hint: str | None = None,
        headline: str | None = None,
    ) -> None:
        self.eval_message = eval_message
        self.file = file
        self.line = line
        self.column = column
        self.store_file = store_file
        self.trace = tuple(trace)
        self.suggestion = suggestion
        where = _where(file, line, column)
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

    def details(self) -> list[str]:
        lines = self.eval_message.strip().splitlines()[1:]
        out = [f"    {line}" for line in lines[:20]]
        if self.suggestion and not (self.hint and self.suggestion in self.hint):
            out.append(f"  {self.suggestion}")
        return out


class NixOptionError(NixEvalError):
    """The NixOS module system rejected an option: unknown option, wrong type,
    conflicting definitions, or failed ``assertions``.

    ``option`` is the option path (``microvm.hypervisor``; ``None`` for failed
    assertions), ``kind`` one of ``"unknown"``, ``"type"``, ``"conflict"``,
    ``"undefined"``, ``"assertion"``; ``expected_type`` the type Nix names;
    ``suggestions`` upstream's "Did you mean" options; ``definitions`` the
    (file, value) pairs upstream lists; ``failed_assertions`` the messages.
    """

    def __init__(
        self,
        eval_message: str,
        *,
        option: str | None,
        kind: str,
        expected_type: str | None = None,
        suggestions: Sequence[str] = (),
        definitions: Sequence[tuple[str, str]] = (),
        failed_assertions: Sequence[str] = (),
        file: Path | str | None = None,
        line: int | None = None,
        column: int | None = None,
        store_file: str | None = None,
        trace: Sequence[str] = (),
        command: Sequence[str] = (),
        exit_code: int | None = None,
        stderr: str = "",
        hint: str | None = None,
    ) -> None:
        self.option = option
        self.kind = kind
        self.expected_type = expected_type
        self.suggestions = tuple(suggestions)
        self.definitions = tuple(definitions)
        self.failed_assertions = tuple(failed_assertions)
        super().__init__(
            eval_message,
            file=file,
            line=line,
            column=column,
            store_file=store_file,
            trace=trace,
            command=command,
            exit_code=exit_code,
            stderr=stderr,
            hint=hint,
            headline=self._headline(_where(file, line, column)),
        )

    def _headline(self, where: str) -> str:
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


# --- building guests (nixgen.build) ---


class BuildError(NixgenError):
    """A guest could not be built, or nix reported something nixgen cannot use."""


class GuestEvalError(BuildError):
    """Several guests failed to evaluate; ``errors`` maps each to its error."""

    def __init__(self, errors: Mapping[str, NixgenError]) -> None:
        self.errors = dict(errors)
        parts = [f"guest {name!r}: {err}" for name, err in self.errors.items()]
        super().__init__(
            f"{len(parts)} guest(s) failed to evaluate:\n" + "\n".join(parts),
            hint="fix the errors above, then run `nixgen check` again",
        )


# --- running guests (nixgen.runtime) ---


class GuestError(NixgenError):
    """Something about running guest ``name`` went wrong."""

    def __init__(self, name: str, message: str, *, hint: str | None = None) -> None:
        self.name = name
        super().__init__(message, hint=hint)


def _tail_block(lines: Sequence[str]) -> str:
    if not lines:
        return "\n  (the console is empty)"
    return "\n  console (last lines):\n" + "\n".join(f"    {line}" for line in lines)


class GuestRunningError(GuestError):
    """Start refused: the guest runs already."""

    def __init__(self, name: str, pid: int, *, by: str = "nixgen") -> None:
        self.pid = pid
        hint = (
            f"stop it first (`nixgen stop {name}`), or restart it with `nixgen update {name} --restart`"
            if by == "nixgen"
            else f"it was started by something else ({by}); stop it there, "
            f"e.g. `systemctl stop microvm@{name}`"
        )
        super().__init__(name, f"guest {name!r} is already running (pid {pid})", hint=hint)


class GuestNotRunningError(GuestError):
    """The guest must run for this."""

    def __init__(self, name: str, what: str) -> None:
        super().__init__(
            name,
            f"guest {name!r} is not running, so nixgen cannot {what}",
            hint=f"start it with `nixgen run {name}`",
        )


class GuestLockedError(GuestError):
    """Another nixgen process holds the guest's lock for too long."""

    def __init__(self, name: str, lock: Path, timeout: float) -> None:
        self.lock = lock
        super().__init__(
            name,
            f"another nixgen process is acting on guest {name!r} "
            f"(its lock {lock} stayed taken for {timeout:g} s)",
            hint="wait for it to finish and try again; a lock held by a process that "
            "died is released by the system, so there is nothing to delete",
        )


class NoRunnerError(GuestError):
    """Nothing says which runner to start."""

    def __init__(self, name: str, state: Path) -> None:
        super().__init__(
            name,
            f"guest {name!r} has no runner: {state}/current does not exist and there is "
            "no project to build it from",
            hint="run nixgen in the project folder (or pass --flake DIR), or build it "
            "first with `nixgen update NAME`",
        )


class StartError(GuestError):
    """The runner could not be started at all."""

    def __init__(
        self, name: str, reason: str, *, console: Sequence[str] = (), hint: str | None = None
    ) -> None:
        self.reason = reason
        self.console = tuple(console)
        super().__init__(
            name,
            f"guest {name!r} could not be started: {reason}" + _tail_block(console),
            hint=hint or "check the runner (bin/microvm-run) and the state folder's permissions",
        )


class BootError(GuestError):
    """The guest did not reach its boot marker: it died, hung or timed out.

    ``console`` holds the last console lines; ``exit_code``/``signal`` how
    it ended when it did.
    """

    def __init__(
        self,
        name: str,
        reason: str,
        *,
        console: Sequence[str] = (),
        console_file: Path | None = None,
        exit_code: int | None = None,
        signal: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.reason = reason
        self.console = tuple(console)
        self.console_file = console_file
        self.exit_code = exit_code
        self.signal = signal
        where = f" (full console: {console_file})" if console_file else ""
        super().__init__(
            name,
            f"guest {name!r} did not boot: {reason}{where}" + _tail_block(console),
            hint=hint
            or "read the console above; `nixgen status NAME` shows the state, "
            "`nixgen run NAME --foreground` runs it attached to this terminal",
        )


class KvmInternalError(BootError):
    """QEMU reports the run state ``internal-error``: KVM cannot run this guest."""

    def __init__(
        self, name: str, *, console: Sequence[str] = (), console_file: Path | None = None
    ) -> None:
        super().__init__(
            name,
            "QEMU stopped the guest with a KVM internal error (QMP run state 'internal-error')",
            console=console,
            console_file=console_file,
            hint="this machine's /dev/kvm cannot run the guest: use TCG "
            "(microvm.qemu.machineOpts with accel=tcg, and `-cpu max` instead of `-cpu host`)",
        )


class StopError(GuestError):
    """The guest's processes survived SIGKILL (e.g. stuck in uninterruptible I/O)."""


class QMPError(GuestError):
    """The QEMU monitor (QMP) could not be reached or refused a command."""


class UnsupportedError(GuestError):
    """The guest's runner cannot do this (e.g. no ``bin/microvm-balloon``)."""


# --- QEMU's monitor protocol, below the guests (nixgen.runtime.qmp) ---


class QMPConnectionError(NixgenError, OSError):
    """No QMP server answered at the socket (still an :class:`OSError`, as it always was)."""


class QMPCommandError(NixgenError):
    """QEMU answered a command with an error (``error_class``: QMP's error class)."""

    def __init__(self, command: str, error_class: str, description: str) -> None:
        self.command = command
        self.error_class = error_class
        self.description = description
        super().__init__(f"{command}: {error_class}: {description}")
