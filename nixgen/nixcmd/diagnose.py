"""From a failed nix run to a typed error that says what, where and what to do.

Nix reports errors as text on stderr (or as ``msg`` events with internal-json
logging).  :func:`parse_errors` reads that text into :class:`ErrorReport`
values, whatever the version: Nix 2.8 prints the message first and the
"… while" trace after it; Nix 2.13+ and Lix print the trace first and the
message last (``error:`` alone on the first line).  :func:`diagnose` then
picks the error class and maps ``/nix/store/<hash>-source/<file>`` back into
the user's flake folder.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from nixgen.nixcmd.errors import (
    BuildFailure,
    EvalPosition,
    FlakesDisabledError,
    NixBuildError,
    NixCommandError,
    NixEvalError,
    NixInputError,
    NixOptionError,
    OptionKind,
    OptionRejection,
)
from nixgen.nixcmd.events import Message, TraceFrame, strip_ansi

if TYPE_CHECKING:
    from nixgen.nixcmd.run import NixResult

__all__ = [
    "ErrorReport",
    "Location",
    "diagnose",
    "diagnose_result",
    "map_source_path",
    "parse_errors",
    "report_from_message",
]

_EMPTY_TAILS: Mapping[str, Sequence[str]] = {}


@attrs.frozen
class Location:
    """A position as nix printed it."""

    file: str
    line: int | None = None
    column: int | None = None


@attrs.frozen
class ErrorReport:
    """One ``error:`` of nix, read into parts.

    ``message`` is the error itself (multi-line for module-system errors),
    ``location`` the position nix gives for it, ``trace`` the "while …"
    frames innermost first, ``suggestion`` a "Did you mean …?" line,
    ``log_lines`` the builder's last lines for build failures.
    """

    message: str
    location: Location | None = None
    trace: tuple[TraceFrame, ...] = ()
    suggestion: str | None = None
    log_lines: tuple[str, ...] = ()
    has_trace_hint: bool = False


# ------------------------------------------------------------------ parsing text

_TOP_ERROR = re.compile(r"^error:(?: (?P<rest>.*))?$")
_NESTED_ERROR = re.compile(r"^\s*error:(?: (?P<rest>.*))?$")
_AT = re.compile(r"^\s*at (?P<file>.+?):(?P<line>\d+)(?::(?P<column>\d+))?:?\s*$")
_CODE = re.compile(r"^\s*\d*\s*\|")
_FRAME = re.compile(r"^\s*… (?P<text>.*)$")
_TRACE_HINTS = ("(use '--show-trace'", "(stack trace truncated")
_SUGGESTION = re.compile(r"^\s*Did you mean (?P<what>.+)\?\s*$")
_LOG_HEADER = re.compile(r"^\s*[Ll]ast \d+ log lines:\s*$")
_LOG_LINE = re.compile(r"^\s*> ?(?P<line>.*)$")
_INDENT = 7  # nix indents continuation lines of an error by 7 spaces


def _dedent(line: str) -> str:
    stripped = len(line) - len(line.lstrip(" "))
    return line[min(stripped, _INDENT) :]


def _blocks(lines: list[str]) -> list[list[str]]:
    """Top-level ``error:`` blocks: the error line and the indented lines after it."""
    blocks: list[list[str]] = []
    current: list[str] | None = None
    for line in lines:
        if _TOP_ERROR.match(line):
            current = [line]
            blocks.append(current)
        elif current is not None and (not line.strip() or line.startswith(" ")):
            current.append(line)
        elif current is not None and line.startswith(_TRACE_HINTS):
            current.append(line)
            current = None
        else:
            current = None
    return blocks


def _location(match: re.Match[str]) -> Location:
    column = match["column"]
    return Location(match["file"], int(match["line"]), int(column) if column else None)


def _parse_block(block: list[str]) -> ErrorReport:
    first = _TOP_ERROR.match(block[0])
    assert first is not None
    body = [_dedent(line) for line in block[1:]]
    has_hint = any(line.lstrip().startswith(_TRACE_HINTS) for line in body)
    body = [line for line in body if not line.lstrip().startswith(_TRACE_HINTS)]
    frames: list[TraceFrame] = []
    message_lines: list[str] = []
    location: Location | None = None
    suggestion: str | None = None
    log_lines: list[str] = []

    i = 0
    if first["rest"]:
        message_lines.append(first["rest"])  # 2.8 order: message, position, trace
    else:
        # `error:` alone: the trace comes first (2.13+, Lix) and the message after
        # a nested `error:`; or (2.8) a message that starts with a newline.
        trace_first = any(_FRAME.match(line) for line in body) and any(
            _NESTED_ERROR.match(line) for line in body
        )
        if trace_first:
            while i < len(body) and not _NESTED_ERROR.match(body[i]):
                i = _read_frame(body, i, frames)
            nested = _NESTED_ERROR.match(body[i]) if i < len(body) else None
            if nested is not None:
                if nested["rest"]:
                    message_lines.append(nested["rest"])
                i += 1
            frames.reverse()  # printed outermost first; keep innermost first
    # the message runs until its position, a trace frame, or a build log
    while i < len(body):
        line = body[i]
        if _AT.match(line) or _FRAME.match(line) or _LOG_HEADER.match(line):
            break
        if (m := _SUGGESTION.match(line)) and message_lines:
            suggestion = f"Did you mean {m['what']}?"
            if not _is_option_message("\n".join(message_lines)):
                i += 1
                continue
        message_lines.append(line.strip() if not message_lines else line)
        i += 1
    if i < len(body) and (m := _AT.match(body[i])):
        location = _location(m)
        i += 1
    if i < len(body) and _LOG_HEADER.match(body[i]):
        i += 1
        while i < len(body) and (m := _LOG_LINE.match(body[i])):
            log_lines.append(m["line"])
            i += 1
    # after the position: the code excerpt, maybe a suggestion, then (2.8) the trace
    while i < len(body):
        line = body[i]
        if _FRAME.match(line):
            i = _read_frame(body, i, frames)
            continue
        if (m := _SUGGESTION.match(line)) and suggestion is None:
            suggestion = f"Did you mean {m['what']}?"
        i += 1
    message = "\n".join(message_lines).strip("\n")
    return ErrorReport(
        message=_trim_message(message),
        location=location,
        trace=tuple(frames),
        suggestion=suggestion,
        log_lines=tuple(log_lines),
        has_trace_hint=has_hint or bool(frames),
    )


def _trim_message(message: str) -> str:
    lines = [line.rstrip() for line in message.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def _read_frame(body: list[str], i: int, frames: list[TraceFrame]) -> int:
    """Read one "… while …" frame starting at ``body[i]``; return the next index."""
    m = _FRAME.match(body[i])
    if m is None:
        return i + 1
    text = [m["text"]]
    i += 1
    location: Location | None = None
    while i < len(body):
        line = body[i]
        if _FRAME.match(line) or _NESTED_ERROR.match(line):
            break
        if (at := _AT.match(line)) and location is None:
            location = _location(at)
        elif location is None and line.strip() and not _CODE.match(line):
            text.append(line.strip())  # e.g. "whose name attribute is located at …"
        i += 1
    frames.append(
        TraceFrame(
            message=" ".join(text),
            file=location.file if location else None,
            line=location.line if location else None,
            column=location.column if location else None,
        )
    )
    return i


def parse_errors(stderr: str) -> list[ErrorReport]:
    """Every top-level ``error:`` in ``stderr`` (colours stripped), in order."""
    lines = strip_ansi(stderr).splitlines()
    return [_parse_block(block) for block in _blocks(lines)]


def report_from_message(message: Message) -> ErrorReport:
    """An internal-json error message as an :class:`ErrorReport`.

    Its ``raw`` text is the bare message and ``file``/``line``/``column`` its
    position; the rendered ``text`` is parsed only for what JSON lacks (the
    suggestion and, from 2.8 on, builder log lines are not in ``raw``).
    """
    from_text = parse_errors(message.text)
    parsed = from_text[0] if from_text else None
    location = None
    if message.file:
        location = Location(message.file, message.line, message.column)
    elif parsed is not None:
        location = parsed.location
    trace = message.trace or (parsed.trace if parsed else ())
    return ErrorReport(
        message=_trim_message(message.raw or (parsed.message if parsed else message.text)),
        location=location,
        trace=tuple(trace),
        suggestion=parsed.suggestion if parsed else None,
        log_lines=parsed.log_lines if parsed else (),
        has_trace_hint=bool(trace) or (parsed.has_trace_hint if parsed else False),
    )


# ------------------------------------------------------------ mapping positions

_STORE_SOURCE = re.compile(r"^/nix/store/[0-9a-df-np-sv-z]{32}-[^/]+/(?P<rel>.+)$")
_LAZY = re.compile(r"^«(?P<ref>[^»]+)»/(?P<rel>.+)$")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.read_bytes() == b.read_bytes()
    except OSError:
        return False


def map_source_path(printed: str, source_root: str | os.PathLike[str] | None) -> Path | None:
    """The file in the user's folder that ``printed`` (a position nix gave) refers to.

    ``/nix/store/<hash>-source/<rel>`` maps to ``source_root/<rel>`` when that
    file exists and, if the store copy is readable, has the same content (so
    an error inside nixpkgs' own ``lib/…`` never maps onto a user file of the
    same name).  ``«path:/dir»/<rel>`` (lazy trees) maps to ``/dir/<rel>``; a
    plain path under ``source_root`` is returned as is.  None otherwise.
    """
    root = Path(source_root) if source_root is not None else None
    m = _STORE_SOURCE.match(printed)
    if m is not None:
        if root is None:
            return None
        candidate = root / m["rel"]
        if not candidate.is_file():
            return None
        store = Path(printed)
        if store.exists() and not _same_file(store, candidate):
            return None
        return candidate
    m = _LAZY.match(printed)
    if m is not None:
        ref = m["ref"].split("?", 1)[0]
        for prefix in ("path:", "git+file://", "file://"):
            if ref.startswith(prefix):
                local = Path(ref[len(prefix) :]) / m["rel"]
                if local.is_file():
                    return local
        local_ref = ref.startswith(("path:", "git+file:", "/"))
        if root is not None and local_ref and (root / m["rel"]).is_file():
            return root / m["rel"]
        return None
    if printed.startswith("/") and not printed.startswith("/nix/store/"):
        path = Path(printed)
        if root is None or path.is_relative_to(root):
            return path
    return None


def _best_location(
    report: ErrorReport, source_root: str | os.PathLike[str] | None
) -> tuple[Path | str | None, int | None, int | None, str | None]:
    """(file, line, column, printed file): the error's own position if it lies in
    the user's folder, else the innermost trace frame that does, else the raw one."""
    candidates: list[tuple[str, int | None, int | None]] = []
    if report.location is not None:
        loc = report.location
        candidates.append((loc.file, loc.line, loc.column))
    candidates += [(f.file, f.line, f.column) for f in report.trace if f.file]
    # `<nix/derivation-internal.nix>` and the like are Nix's own code (Nix 2.26
    # shows their frames where 2.8 showed none): no place for the user to look.
    candidates = [c for c in candidates if not c[0].startswith("<nix/")]
    for printed, line, column in candidates:
        mapped = map_source_path(printed, source_root)
        if mapped is not None:
            return mapped, line, column, printed
    if candidates:
        printed, line, column = candidates[0]
        return printed, line, column, printed
    return None, None, None, None


# --------------------------------------------------------------- classification

_FEATURE = re.compile(r"experimental (?:Nix|Lix) feature '(?P<feature>[\w-]+)' is disabled")
_BUILDER = re.compile(
    r"builder for '(?P<drv>[^']+)' failed (?:with exit code (?P<code>\d+)|due to signal (?P<sig>\d+))"
)
_CANNOT_BUILD = re.compile(
    r"Cannot build '(?P<drv>[^']+)'\.\s*Reason: builder failed"
    r"(?: with exit code (?P<code>\d+)| due to signal (?P<sig>\d+))?"
)
_OPT_UNKNOWN = re.compile(r"The option `(?P<opt>[^']+)' does not exist\.")
_OPT_TYPE = re.compile(
    r"A definition for option `(?P<opt>[^']+)' is not of type `(?P<type>.*?)'\.(?:\s*Definition values:|\s*$)",
    re.S,
)
_OPT_CONFLICT = re.compile(r"The option `(?P<opt>[^']+)' has conflicting definition values")
_OPT_UNDEFINED = re.compile(
    r"The option `(?P<opt>[^']+)' (?:is used but not defined|was accessed but has no value defined)"
)
_ASSERTIONS = re.compile(r"^\s*Failed assertions:\s*$", re.M)
_DEFINITION = re.compile(r"^\s*- In `(?P<file>[^']+)'(?::\s*(?P<value>.*))?$", re.M)
_BACKTICKED = re.compile(r"`([^'`]+)'")

_DOWNLOAD = re.compile(r"unable to download '(?P<url>[^']*)': (?P<why>.+)")
_FETCH_INPUT = re.compile(r"(?:cannot|unable to|failed to) fetch (?:the )?input '(?P<url>[^']+)'")
_REGISTRY = re.compile(r"cannot find flake '(?P<url>[^']+)' in the flake registries")
_GIT_FATAL = re.compile(r"^fatal: (?:unable to access|repository) '(?P<url>[^']+)'")
_WHILE_FETCHING = re.compile(r"while fetching the input '(?P<url>[^']+)'")
_WHILE_INPUT = re.compile(r"while updating the flake input '(?P<name>[^']+)'")
# A path that is not there: Nix 2.8 says "getting status of 'P': No such file or
# directory", Nix 2.26 "path 'P' does not exist" (with '//' for a path: input).
_MISSING_PATH = re.compile(
    r"getting status of '(?P<status>[^']+)': No such file or directory"
    r"|path '(?P<path>[^']+)' does not exist"
)


def _missing_path(text: str) -> str | None:
    m = _MISSING_PATH.search(text)
    if m is None:
        return None
    path = m["status"] or m["path"]
    return "/" + path.lstrip("/") if path.startswith("//") else path


_NETWORK = (
    "Couldn't resolve host",
    "Could not resolve host",
    "Connection refused",
    "Connection timed out",
    "Timeout was reached",
    "Network is unreachable",
)

_EVAL_SHAPES = re.compile(
    r"syntax error|undefined variable|attribute '.*' missing|does not provide attribute"
    r"|assertion .* failed|infinite recursion|while a .* was expected|called without required argument"
    r"|called with unexpected argument|access to (?:absolute )?path .* is forbidden|cached failure of attribute"
    r"|getting status of '/nix/store/|path '.*' does not exist|cannot coerce|is not a function"
    r"|value is (?:a|an) \w+ while"
)

_GENERIC_HINTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"cannot connect to socket at|daemon-socket"),
        "the nix daemon is not reachable: start it (systemctl start nix-daemon) or use a "
        "single-user store",
    ),
    (
        re.compile(r"interrupted by the user"),
        "nix was interrupted; run the command again",
    ),
    (
        re.compile(r"Permission denied|not allowed to|not a trusted user|untrusted"),
        "nix lacks a permission: check that your user may use the Nix store "
        "(trusted-users in nix.conf for options such as substituters)",
    ),
    (
        re.compile(r"No space left on device"),
        "the disk is full: free space or collect garbage with nix-collect-garbage",
    ),
)


def _flake_lock_inputs(source_root: Path | None) -> dict[str, list[str]]:
    """input name → the URLs/owner-repo strings its flake.lock entry mentions."""
    if source_root is None:
        return {}
    try:
        lock = json.loads((source_root / "flake.lock").read_text())
    except (OSError, ValueError):
        return {}
    nodes = lock.get("nodes") if isinstance(lock, dict) else None
    root_name = lock.get("root", "root") if isinstance(lock, dict) else "root"
    if not isinstance(nodes, dict) or not isinstance(nodes.get(root_name), dict):
        return {}
    found: dict[str, list[str]] = {}
    for name, target in (nodes[root_name].get("inputs") or {}).items():
        node = nodes.get(target) if isinstance(target, str) else None
        if not isinstance(node, dict):
            continue
        words: list[str] = []
        for key in ("original", "locked"):
            spec = node.get(key)
            if isinstance(spec, dict):
                if "owner" in spec and "repo" in spec:
                    words.append(f"{spec.get('type', 'github')}:{spec['owner']}/{spec['repo']}")
                for field in ("url", "path", "id"):
                    if isinstance(spec.get(field), str):
                        words.append(spec[field])
        found[name] = words
    return found


def _flake_ref_of_url(url: str) -> str:
    """The flake reference a fetch URL came from, as users write it."""
    patterns = (
        (r"^https://api\.github\.com/repos/([^/]+)/([^/]+)/", "github:{}/{}"),
        (r"^https://github\.com/([^/]+)/([^/]+?)/archive/", "github:{}/{}"),
        (r"^https://gitlab\.com/api/v4/projects/([^/%]+)%2F([^/]+)/", "gitlab:{}/{}"),
        (r"^https://git\.sr\.ht/~([^/]+)/([^/]+)/", "sourcehut:~{}/{}"),
    )
    for pattern, form in patterns:
        m = re.match(pattern, url)
        if m:
            return form.format(*m.groups())
    if url.endswith((".git", ".git/")):
        return "git+" + url.rstrip("/")
    return url


def _input_name_from_flake(source_root: Path | None, ref: str) -> str | None:
    """The input of flake.nix whose url mentions ``ref`` (a plain text search)."""
    if source_root is None or not ref:
        return None
    try:
        lines = (source_root / "flake.nix").read_text().splitlines()
    except OSError:
        return None
    needle = ref.removeprefix("git+")
    for index, line in enumerate(lines):
        if needle not in line:
            continue
        m = re.match(r"\s*(?:inputs\.)?([A-Za-z_][\w'-]*)(?:\.url)?\s*=", line)
        if m and m.group(1) != "url":
            return m.group(1)
        for previous in reversed(lines[max(0, index - 5) : index]):  # `name = { url = …`
            m = re.match(r"\s*(?:inputs\.)?([A-Za-z_][\w'-]*)\s*=\s*\{", previous)
            if m:
                return m.group(1)
    return None


def _indirect_input(source_root: Path | None) -> tuple[str | None, str | None]:
    """The first input of flake.nix given as an indirect reference (``url = "nixpkgs"``)."""
    if source_root is None:
        return None, None
    try:
        text = (source_root / "flake.nix").read_text()
    except OSError:
        return None, None
    m = re.search(r"(?:inputs\.)?([A-Za-z_][\w'-]*)\.url\s*=\s*\"([A-Za-z][\w-]*)\"", text)
    return (m.group(1), m.group(2)) if m else (None, None)


def _input_error(
    report: ErrorReport, stderr: str, source_root: Path | None
) -> tuple[str, str | None, str | None, str | None] | None:
    """(reason, input name, url, hint) when ``report`` is a failure to fetch an input."""
    text = report.message
    trace_text = "\n".join(f.message for f in report.trace)
    url: str | None = None
    reason: str | None = None
    hint: str | None = None
    if m := _DOWNLOAD.search(text):
        url, reason = m["url"], m["why"].strip()
        if not url:  # 2.8 with an empty flake registry looks up '' for indirect refs
            reason = "an indirect flake reference (like `nixpkgs`) needs the flake registry"
            hint = "write the input's full URL, e.g. github:NixOS/nixpkgs/nixos-unstable"
    elif m := _REGISTRY.search(text):
        url, reason = m["url"], "it is an indirect reference and no registry knows it"
        hint = "write the input's full URL, e.g. github:NixOS/nixpkgs/nixos-unstable"
    elif m := _FETCH_INPUT.search(text):
        url, reason = m["url"], text.splitlines()[0]
    elif "program 'git' failed" in text or any(n in text for n in _NETWORK):
        fatal = next((g for g in map(_GIT_FATAL.match, strip_ansi(stderr).splitlines()) if g), None)
        url = fatal["url"] if fatal else None
        reason = text.splitlines()[0]
        for line in strip_ansi(stderr).splitlines():
            if line.startswith("fatal:"):
                reason = line.removeprefix("fatal: ")
                break
    elif (missing := _missing_path(text)) and not missing.startswith("/nix/store/"):
        if "while fetching the input" in trace_text or "flake input" in trace_text:
            url, reason = "path:" + missing, f"{missing} does not exist"
            hint = "point the input (or its --override-input) at an existing folder"
        else:
            return None
    elif _WHILE_FETCHING.search(trace_text):
        # Nix 2.26 reports a git input it cannot reach as "resolving Git
        # reference 'master': …" under "while fetching the input"; git's own
        # fatal line says why.
        reason = text.splitlines()[0]
        fatal = next((g for g in map(_GIT_FATAL.match, strip_ansi(stderr).splitlines()) if g), None)
        if fatal is not None:
            url, reason = fatal["url"], fatal.string.removeprefix("fatal: ")
    else:
        return None
    name: str | None = None
    for frame in report.trace:
        if (w := _WHILE_INPUT.search(frame.message)) and name is None:
            name = w["name"]
        if (f := _WHILE_FETCHING.search(frame.message)) and url is None:
            url = f["url"]
    ref = _flake_ref_of_url(url) if url else None
    if name is None and ref:
        for input_name, words in _flake_lock_inputs(source_root).items():
            if any(ref == w or ref.endswith(w) or w.endswith(ref) for w in words if w):
                name = input_name
                break
    if name is None and ref:
        name = _input_name_from_flake(source_root, ref)
    if name is None and url == "":
        name, ref = _indirect_input(source_root)
    return reason or text, name, ref or None, hint


def _split_defs(message: str, source_root: Path | None) -> list[tuple[str, str]]:
    defs: list[tuple[str, str]] = []
    for m in _DEFINITION.finditer(message):
        mapped = map_source_path(m["file"], source_root)
        defs.append((str(mapped) if mapped else m["file"], (m["value"] or "").strip()))
    return defs


def _definition_line(file: Path, option: str, value: str = "") -> int | None:
    """Line of ``<last part of option> = <value>`` in ``file`` (module errors name the
    file but no line): the first line with both, else the first with the name."""
    last = option.rsplit(".", 1)[-1]
    try:
        lines = file.read_text().splitlines()
    except OSError:
        return None
    # `hypervisor =`, `microvm.hypervisor =`, `"microvm.hypervisor" =`
    pattern = re.compile(rf"(?:^|[\s.{{\"]){re.escape(last)}\"?\s*=")
    named = [n for n, line in enumerate(lines, start=1) if pattern.search(line)]
    value = value.strip()
    with_value = [n for n in named if value and value in lines[n - 1]]
    best = with_value or named
    return best[0] if best else None


def _is_option_message(message: str) -> bool:
    return bool(_OPT_UNKNOWN.search(message) or _OPT_TYPE.search(message))


@attrs.frozen
class _Run:
    """The facts of the failed command every error carries."""

    command: tuple[str, ...]
    exit_code: int | None
    stderr: str


def _option_error(
    report: ErrorReport, source_root: Path | None, run: _Run
) -> NixOptionError | None:
    message = report.message
    option: str | None = None
    kind: OptionKind
    expected: str | None = None
    suggestions: list[str] = []
    assertions: list[str] = []
    hint: str
    if m := _OPT_UNKNOWN.search(message):
        option, kind = m["opt"], "unknown"
        said = report.suggestion or next(
            (line for line in message.splitlines() if "Did you mean" in line), ""
        )
        suggestions = _BACKTICKED.findall(said)
        hint = (
            f"did you mean {', '.join(suggestions)}? " if suggestions else ""
        ) + "check the option's name against microvm.nix's options"
    elif m := _OPT_TYPE.search(message):
        option, kind, expected = m["opt"], "type", m["type"]
        hint = f"give `{option}' a value of type {expected}"
    elif m := _OPT_CONFLICT.search(message):
        option, kind = m["opt"], "conflict"
        hint = "define the option once, or raise one definition's priority with lib.mkForce"
    elif m := _OPT_UNDEFINED.search(message):
        option, kind = m["opt"], "undefined"
        hint = f"give `{option}' a value"
    elif _ASSERTIONS.search(message):
        kind = "assertion"
        after = _ASSERTIONS.split(message, maxsplit=1)[1]
        for line in after.splitlines():
            if line.lstrip().startswith("- "):
                assertions.append(line.lstrip()[2:].strip())
            elif line.strip() and assertions:
                assertions[-1] += " " + line.strip()
        hint = "change the settings each failed assertion names"
    else:
        return None
    definitions = _split_defs(message, source_root)
    file: Path | str | None
    file, line, column, printed = _best_location(report, source_root)
    # Where the user defined the option beats where the module system threw
    # (Nix 2.26 positions the throw; it maps into the folder when the module
    # system's code lives there, as in tests).
    if definitions:
        first_file = definitions[0][0]
        mapped = Path(first_file) if Path(first_file).is_file() else None
        printed = next(iter(_DEFINITION.finditer(message)))["file"]
        file = mapped if mapped else first_file
        line, column = None, None
        if mapped is not None and option:
            line = _definition_line(mapped, option, definitions[0][1])
    return NixOptionError(
        message,
        OptionRejection(
            kind=kind,
            option=option,
            expected_type=expected,
            suggestions=tuple(suggestions),
            definitions=tuple(definitions),
            failed_assertions=tuple(assertions),
        ),
        position=EvalPosition(file=file, line=line, column=column, store_file=printed),
        trace=[f.message for f in report.trace],
        hint=hint,
        command=run.command,
        exit_code=run.exit_code,
        stderr=run.stderr,
    )


def _eval_hint(report: ErrorReport, file: Path | str | None, printed: str | None) -> str | None:
    message = report.message
    if (missing := _missing_path(message)) and missing.startswith("/nix/store/"):
        rel = _STORE_SOURCE.match(missing)
        name = rel["rel"] if rel else missing
        return (
            f"{name} exists in your folder but not in the copy nix evaluated: a flake in a "
            f"git work tree sees only files git knows. Run `git add {name}`, or refer to the "
            "flake as path:/abs/dir"
        )
    if "does not provide attribute" in message:
        return (
            "the flake has no output of that name: check the attribute path "
            "(`nix flake show FLAKE` lists the outputs)"
        )
    if message.startswith("syntax error"):
        return "fix the Nix syntax at the place shown"
    if report.suggestion:
        return f"{report.suggestion} Fix the name at the place shown"
    if file is None:
        return "rerun the nix command with --show-trace to see where the error comes from"
    return None


def _build_failures(
    reports: Sequence[ErrorReport], log_tails: Mapping[str, Sequence[str]]
) -> list[BuildFailure]:
    failures: list[BuildFailure] = []
    seen: set[str] = set()
    for report in reports:
        m = _BUILDER.search(report.message) or _CANNOT_BUILD.search(report.message)
        if m is None or m["drv"] in seen:
            continue
        seen.add(m["drv"])
        code = int(m["code"]) if m["code"] else None
        lines = report.log_lines or tuple(log_tails.get(m["drv"], ()))
        failures.append(BuildFailure(m["drv"], code, tuple(lines)))
    return failures


def diagnose(
    *,
    command: Sequence[str] = (),
    exit_code: int | None = None,
    stderr: str = "",
    messages: Sequence[Message] = (),
    log_tails: Mapping[str, Sequence[str]] = _EMPTY_TAILS,
    source_root: str | os.PathLike[str] | None = None,
) -> NixCommandError:
    """The error a failed nix run stands for.

    ``messages`` are internal-json ``msg`` events (preferred over the text
    when given), ``log_tails`` the builders' last lines per drv path (from
    :class:`~nixgen.nixcmd.events.ProgressTracker`), ``source_root`` the
    user's flake folder for mapping positions.  Never raises; an error it
    cannot classify is a plain :class:`NixCommandError` showing stderr's end.
    """
    root = Path(source_root) if source_root is not None else None
    plain = strip_ansi(stderr)
    if not plain.strip() and messages:  # internal-json only: the messages are the text
        plain = "\n".join(m.text for m in messages if m.level <= 1) + "\n"
    run = _Run(tuple(command), exit_code, plain)
    reports = [report_from_message(m) for m in messages if m.is_error]
    if not reports:
        reports = parse_errors(plain)

    for report in reports:
        if m := _FEATURE.search(report.message):
            return FlakesDisabledError(
                m["feature"], command=command, exit_code=exit_code, stderr=plain
            )

    failures = _build_failures(reports, log_tails)
    if failures:
        return NixBuildError(failures, command=command, exit_code=exit_code, stderr=plain)

    for report in reports:
        option_error = _option_error(report, root, run)
        if option_error is not None:
            return option_error

    for report in reports:
        found = _input_error(report, plain, root)
        if found is not None:
            reason, name, url, hint = found
            return NixInputError(
                reason,
                input_name=name,
                url=url,
                hint=hint,
                command=run.command,
                exit_code=exit_code,
                stderr=plain,
            )

    for report in reports:
        if (
            report.location is not None
            or report.has_trace_hint
            or _EVAL_SHAPES.search(report.message)
        ):
            file, line, column, printed = _best_location(report, root)
            missing = _missing_path(report.message)
            untracked = map_source_path(missing, root) if missing else None
            if missing is not None and missing.startswith("/nix/store/") and untracked:
                # a file of the user's folder missing from nix's copy: name it,
                # not the import that reached for it (Nix 2.26 positions that)
                file, line, column, printed = untracked, None, None, missing
            elif file is None and missing is not None:
                printed = missing
                file = untracked or printed
            return NixEvalError(
                report.message,
                position=EvalPosition(file=file, line=line, column=column, store_file=printed),
                trace=[f.message for f in report.trace],
                suggestion=report.suggestion,
                hint=_eval_hint(report, file, printed),
                command=run.command,
                exit_code=exit_code,
                stderr=plain,
            )

    first = reports[0].message.splitlines()[0] if reports and reports[0].message else None
    hint = next((h for pattern, h in _GENERIC_HINTS if pattern.search(plain)), None)
    what = f"nix failed: {first}" if first else "nix failed"
    if exit_code is not None and exit_code < 0:
        what = f"nix was killed by signal {-exit_code}"
    return NixCommandError(
        what,
        hint=hint or "read nix's output above; rerun the command with -L --show-trace for more",
        command=run.command,
        exit_code=exit_code,
        stderr=plain,
    )


def diagnose_result(
    result: NixResult, *, source_root: str | os.PathLike[str] | None = None
) -> NixCommandError:
    """:func:`diagnose` of a :class:`~nixgen.nixcmd.run.NixResult`."""
    return diagnose(
        command=result.argv,
        exit_code=result.exit_code,
        stderr=result.stderr,
        messages=result.messages,
        log_tails=result.log_tails,
        source_root=source_root,
    )
