"""The one door every ``nix`` subprocess of nixgen goes through.

:func:`run` builds the argv (flakes switched on, ``--option``,
``--override-input``) and runs nix through :func:`nixgen.process.run` (own
process group, stopped with its builders on Ctrl-C or timeout), turning each
stderr line into an event as it comes (``@nix`` internal-json lines) and a
failure into a typed error (see :mod:`nixgen.nixcmd.diagnose`).  The helpers below it wrap the few
commands nixgen needs: ``nix eval --json``, ``nix build --json`` matched by
drvPath, and drvPath look-ups.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Literal

import attrs

from nixgen import process
from nixgen.nixcmd.errors import NixCommandError, NixNotFoundError, NixTimeoutError
from nixgen.nixcmd.events import Event, EventParser, Message, PlainLine, ProgressTracker
from nixgen.nixcmd.version import FLAKE_FEATURE_FLAGS, Dialect, detect_dialect, find_nix
from nixgen.process.errors import CommandNotFoundError, CommandTimeoutError

__all__ = [
    "DEFAULT_GRACE",
    "BuiltDerivation",
    "EventHandler",
    "NixResult",
    "NixRunner",
    "build_argv",
    "nix_build_json",
    "nix_eval_drv_paths",
    "nix_eval_json",
    "parse_build_json",
    "run",
]

EventHandler = Callable[[Event], None]

#: Seconds nix gets after SIGTERM to stop its builders and exit before SIGKILL.
DEFAULT_GRACE = process.DEFAULT_GRACE

_EMPTY: Mapping[str, str] = MappingProxyType({})


@attrs.frozen
class NixResult:
    """What one nix command did.

    ``stderr`` is plain text as a person would read it: with internal-json
    logging it is rebuilt from the non-JSON lines and the error/warning
    messages (build logs are in ``log_tails``, per derivation).
    """

    argv: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str
    duration: float
    messages: tuple[Message, ...] = ()
    log_tails: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def warnings(self) -> tuple[str, ...]:
        """Warning lines nix printed (``warning: …``, ``trace: warning: …``)."""
        found = [m.text for m in self.messages if m.is_warning]
        if not found:
            found = [
                line
                for line in self.stderr.splitlines()
                if line.startswith(("warning:", "trace: warning:", "evaluation warning:"))
            ]
        return tuple(found)


def build_argv(
    args: Sequence[str],
    *,
    nix: str | os.PathLike[str] = "nix",
    options: Mapping[str, str] = _EMPTY,
    override_inputs: Mapping[str, str] = _EMPTY,
    extra_args: Sequence[str] = (),
    structured: bool = False,
) -> list[str]:
    """The full argv of a nix call: ``nix <flakes on> ARGS [--option…] [--override-input…]
    [--log-format internal-json] EXTRA [-- REST]``.

    The feature flag goes first so it is in force before nix looks at the
    subcommand; everything nixgen adds goes before a ``--`` so that
    ``nix run … -- ARGS`` keeps its program arguments intact.
    """
    if isinstance(args, str):
        raise TypeError("nix arguments must be a list of strings, not one string")
    args = list(args)
    rest: list[str] = []
    if "--" in args:
        cut = args.index("--")
        args, rest = args[:cut], args[cut:]
    argv = [os.fspath(nix), *FLAKE_FEATURE_FLAGS, *args]
    for name, value in options.items():
        argv += ["--option", name, value]
    for name, url in override_inputs.items():
        argv += ["--override-input", name, url]
    if structured:
        argv += ["--log-format", "internal-json"]
    argv += list(extra_args)
    return argv + rest


class _Collector:
    """Turns stderr lines into events, plain text and per-build log tails."""

    def __init__(self, on_event: EventHandler | None) -> None:
        self.parser = EventParser()
        self.tracker = ProgressTracker()
        self.on_event = on_event
        self.plain: list[str] = []
        self.messages: list[Message] = []

    def line(self, text: str) -> None:
        event = self.parser.parse(text)
        if event is None:
            return
        if isinstance(event, PlainLine):
            self.plain.append(event.text)
        elif isinstance(event, Message):
            self.messages.append(event)
            # what nix would have printed at its default verbosity
            if event.level <= 1 or event.text.startswith("trace:") or event.is_error:
                self.plain.extend(event.text.splitlines())
        self.tracker.update(event)
        if self.on_event is not None:
            self.on_event(event)

    def stderr(self) -> str:
        return "\n".join(self.plain) + ("\n" if self.plain else "")


def run(
    args: Sequence[str],
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    options: Mapping[str, str] = _EMPTY,
    override_inputs: Mapping[str, str] = _EMPTY,
    extra_args: Sequence[str] = (),
    on_event: EventHandler | None = None,
    check: bool = True,
    structured: bool | None = None,
    source_root: str | os.PathLike[str] | None = None,
    nix: str | os.PathLike[str] | None = None,
    grace: float = DEFAULT_GRACE,
) -> NixResult:
    """Run ``nix ARGS`` and return what it did.

    - ``args``: the arguments after ``nix`` (a list; never a shell string).
    - ``env``: variables set on top of the current environment.
    - ``timeout``: seconds; then the whole process group is stopped and
      :class:`NixTimeoutError` raised.  On Ctrl-C (KeyboardInterrupt), or any
      exception from ``on_event``, the group is stopped the same way and the
      exception propagates.
    - ``options``: ``--option NAME VALUE`` each; ``override_inputs``:
      ``--override-input NAME URL`` each (only for commands taking a flake).
    - ``on_event``: called with each parsed event, in this thread.  Giving it
      turns on ``--log-format internal-json`` unless ``structured`` says otherwise.
    - ``check``: raise the typed error of a failure (see
      :func:`nixgen.nixcmd.diagnose.diagnose`) instead of returning it.
    - ``source_root``: the user's flake folder, to map ``/nix/store/…-source``
      positions of errors back to it (default: ``cwd``).
    - ``nix``: the nix binary (default: ``nix`` on PATH).
    - ``grace``: seconds between SIGTERM and SIGKILL when stopping nix.
    """
    binary = find_nix(nix)
    if structured is None:
        structured = on_event is not None
    argv = build_argv(
        args,
        nix=binary,
        options=options,
        override_inputs=override_inputs,
        extra_args=extra_args,
        structured=structured,
    )
    collector = _Collector(on_event)
    try:
        done = process.run(
            argv,
            cwd=cwd,
            env=env,
            timeout=timeout,
            grace=grace,
            on_stderr_line=collector.line,
            check=False,
        )
    except CommandNotFoundError as err:
        raise NixNotFoundError(str(binary), command=argv) from err
    except CommandTimeoutError:
        raise NixTimeoutError(timeout or 0.0, command=argv, stderr=collector.stderr()) from None
    result = NixResult(
        argv=done.argv,
        exit_code=done.exit_code,
        stdout=done.stdout,
        stderr=collector.stderr(),
        duration=done.duration,
        messages=tuple(collector.messages),
        log_tails=collector.tracker.log_tails(),
    )
    if check and not result.ok:
        from nixgen.nixcmd.diagnose import diagnose_result  # diagnose imports this module

        raise diagnose_result(result, source_root=source_root if source_root is not None else cwd)
    return result


# ---------------------------------------------------------------- helpers


@attrs.frozen
class BuiltDerivation:
    """One entry of ``nix build --json``."""

    drv_path: str
    outputs: Mapping[str, str]
    #: Unix seconds; only Nix 2.18+ reports them
    start_time: int | None = None
    stop_time: int | None = None

    @property
    def out(self) -> str:
        """The ``out`` output (or the only one)."""
        if "out" in self.outputs:
            return self.outputs["out"]
        return next(iter(self.outputs.values()))


def parse_build_json(stdout: str, *, command: Sequence[str] = ()) -> dict[str, BuiltDerivation]:
    """``nix build --json`` output, indexed by drvPath (its order means nothing)."""
    text = stdout.strip()
    try:
        data = json.loads(text.splitlines()[-1] if text else "")
    except ValueError as err:
        raise NixCommandError(
            "nix build --json printed something that is not JSON",
            command=command,
            stderr=stdout[-2000:],
            hint="this is a bug in nixgen or an unexpected nix version; please report it",
        ) from err
    if not isinstance(data, list):
        raise NixCommandError(
            "nix build --json did not print a list",
            command=command,
            stderr=stdout[-2000:],
            hint="this is a bug in nixgen or an unexpected nix version; please report it",
        )
    built: dict[str, BuiltDerivation] = {}
    for entry in data:
        if not isinstance(entry, dict) or not isinstance(entry.get("drvPath"), str):
            continue  # e.g. a plain store path given as installable: no drvPath
        outputs = entry.get("outputs")
        built[entry["drvPath"]] = BuiltDerivation(
            drv_path=entry["drvPath"],
            outputs={k: v for k, v in outputs.items() if isinstance(v, str)}
            if isinstance(outputs, dict)
            else {},
            start_time=entry.get("startTime") if isinstance(entry.get("startTime"), int) else None,
            stop_time=entry.get("stopTime") if isinstance(entry.get("stopTime"), int) else None,
        )
    return built


def _split_fragment(fragment: str) -> list[str] | None:
    """``a."b.c".d`` → ``["a", "b.c", "d"]``; None if it cannot be read safely."""
    parts: list[str] = []
    current = ""
    quoted = False
    i = 0
    while i < len(fragment):
        char = fragment[i]
        if quoted:
            if char == "\\" and i + 1 < len(fragment):
                current += fragment[i + 1]
                i += 1
            elif char == '"':
                quoted = False
            else:
                current += char
        elif char == '"':
            quoted = True
        elif char == ".":
            parts.append(current)
            current = ""
        else:
            current += char
        i += 1
    if quoted or not all(parts) or not current:
        return None
    return [*parts, current]


def _nix_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${")
    return f'"{escaped}"'


_PLAIN_ATTR = re.compile(r"[A-Za-z_][A-Za-z0-9_'-]*")


def _attr_name(name: str) -> str:
    """An attribute name as a flake fragment or Nix code needs it (quoted if unusual)."""
    return name if _PLAIN_ATTR.fullmatch(name) else _nix_string(name)


def _opt_path(value: str | os.PathLike[str] | None) -> str | None:
    return None if value is None else os.fspath(value)


@attrs.frozen
class NixRunner:
    """Settings shared by a series of nix calls (flake folder, overrides, options,
    timeout, event handler), with the helpers nixgen needs as methods.

    ``NixRunner(cwd=folder, override_inputs={"nixpkgs": "path:/src/nixpkgs"}).build_json([...])``
    """

    binary: str | None = None
    cwd: str | None = attrs.field(default=None, converter=_opt_path)
    env: Mapping[str, str] | None = None
    timeout: float | None = None
    options: Mapping[str, str] = attrs.field(factory=dict)
    override_inputs: Mapping[str, str] = attrs.field(factory=dict)
    extra_args: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    on_event: EventHandler | None = None
    structured: bool | None = None
    source_root: str | None = attrs.field(default=None, converter=_opt_path)
    grace: float = DEFAULT_GRACE

    def run(
        self,
        args: Sequence[str],
        *,
        check: bool = True,
        timeout: float | None = None,
        extra_args: Sequence[str] = (),
        overrides: bool = True,
    ) -> NixResult:
        """:func:`run` with these settings; ``overrides=False`` leaves out
        ``--override-input`` (for commands that take no flake)."""
        return run(
            args,
            cwd=self.cwd,
            env=self.env,
            timeout=timeout if timeout is not None else self.timeout,
            options=self.options,
            override_inputs=self.override_inputs if overrides else _EMPTY,
            extra_args=(*self.extra_args, *extra_args),
            on_event=self.on_event,
            check=check,
            structured=self.structured,
            source_root=self.source_root,
            nix=self.binary,
            grace=self.grace,
        )

    def dialect(self) -> Dialect:
        """The dialect of this nix (one cached ``nix --version``)."""
        return detect_dialect(self.binary)

    def eval_json(self, installable: str, *, apply: str | None = None) -> Any:
        """``nix eval --json INSTALLABLE [--apply FN]``, parsed."""
        args = ["eval", "--json", installable]
        if apply is not None:
            args += ["--apply", apply]
        result = self.run(args)
        try:
            return json.loads(result.stdout)
        except ValueError as err:
            raise NixCommandError(
                f"nix eval --json {installable} printed something that is not JSON",
                command=result.argv,
                exit_code=result.exit_code,
                stderr=result.stderr,
                hint="this is a bug in nixgen or an unexpected nix version; please report it",
            ) from err

    def eval_drv_paths(self, installables: Sequence[str]) -> dict[str, str]:
        """The ``.drv`` path of each installable, as ``{installable: drv_path}``.

        Installables of one flake that share their first attribute
        (``.#nixosConfigurations.a.config…``, ``.#nixosConfigurations.b.config…``)
        are looked up in one ``nix eval``; the rest one call each.
        """
        found: dict[str, str] = {}
        groups: dict[tuple[str, str], list[tuple[str, list[str]]]] = {}
        singles: list[str] = []
        for installable in dict.fromkeys(installables):  # unique, in order
            ref, sep, fragment = installable.partition("#")
            path = _split_fragment(fragment) if sep else None
            if path is not None and len(path) >= 2:
                groups.setdefault((ref, path[0]), []).append((installable, path[1:]))
            else:
                singles.append(installable)
        for (ref, head), members in groups.items():
            if len(members) == 1:
                singles.append(members[0][0])
                continue
            picks = " ".join(
                "(x." + ".".join(_nix_string(p) for p in rest) + ").drvPath" for _, rest in members
            )
            value = self.eval_json(f"{ref}#{_attr_name(head)}", apply=f"x: [ {picks} ]")
            if not isinstance(value, list) or len(value) != len(members):
                raise NixCommandError(
                    f"nix eval returned {value!r} where nixgen expected {len(members)} drv paths",
                    hint="this is a bug in nixgen; please report it",
                )
            for (installable, _), drv in zip(members, value, strict=True):
                found[installable] = str(drv)
        for installable in singles:
            if "#" in installable:
                result = self.run(["eval", "--raw", f"{installable}.drvPath"])
                found[installable] = result.stdout.strip()
            else:
                # no attribute: let nix pick the default package the way build does
                result = self.run(["build", "--dry-run", "--json", installable])
                built = parse_build_json(result.stdout, command=result.argv)
                if len(built) != 1:
                    raise NixCommandError(
                        f"{installable} does not name exactly one derivation",
                        command=result.argv,
                        hint="name the attribute: FLAKE#packages.SYSTEM.NAME",
                    )
                found[installable] = next(iter(built))
        return {i: found[i] for i in installables}

    def build_json(
        self,
        installables: Sequence[str],
        *,
        drv_paths: Mapping[str, str] | None = None,
        keep_going: bool = False,
        jobs: int | Literal["auto"] | None = None,
        out_link: bool = False,
    ) -> dict[str, BuiltDerivation]:
        """Build all ``installables`` in one ``nix build --json --no-link`` and
        return ``{installable: BuiltDerivation}``.

        Nix does not keep the order of its arguments in ``--json`` output (2.8
        sorts by drv path), so every result is matched by drvPath: given in
        ``drv_paths`` or looked up with :meth:`eval_drv_paths` first.
        """
        if not installables:
            return {}
        wanted = dict(drv_paths) if drv_paths is not None else self.eval_drv_paths(installables)
        args = ["build", "--json", *installables]
        if not out_link:
            args.insert(1, "--no-link")
        if keep_going:
            args.insert(1, "--keep-going")
        if jobs is not None:
            args[1:1] = ["--max-jobs", str(jobs)]
        result = self.run(args)
        built = parse_build_json(result.stdout, command=result.argv)
        matched: dict[str, BuiltDerivation] = {}
        for installable in installables:
            drv = wanted.get(installable)
            if drv is None or drv not in built:
                raise NixCommandError(
                    f"nix build --json did not report {installable} (drv {drv})",
                    command=result.argv,
                    exit_code=result.exit_code,
                    stderr=result.stdout[-2000:],
                    hint="the drv path given for it may be stale: let nixgen look it up "
                    "(drv_paths=None)",
                )
            matched[installable] = built[drv]
        return matched


def nix_eval_json(
    installable: str, *, apply: str | None = None, nix: NixRunner | None = None
) -> Any:
    """``nix eval --json`` of one installable, parsed (settings from ``nix``)."""
    return (nix or NixRunner()).eval_json(installable, apply=apply)


def nix_eval_drv_paths(
    installables: Sequence[str], *, nix: NixRunner | None = None
) -> dict[str, str]:
    """``{installable: drv path}`` with as few nix calls as possible."""
    return (nix or NixRunner()).eval_drv_paths(installables)


def nix_build_json(
    installables: Sequence[str],
    *,
    drv_paths: Mapping[str, str] | None = None,
    keep_going: bool = False,
    jobs: int | Literal["auto"] | None = None,
    nix: NixRunner | None = None,
) -> dict[str, BuiltDerivation]:
    """Build in one call, results matched by drvPath: ``{installable: BuiltDerivation}``."""
    return (nix or NixRunner()).build_json(
        installables, drv_paths=drv_paths, keep_going=keep_going, jobs=jobs
    )
