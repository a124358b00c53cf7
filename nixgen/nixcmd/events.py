"""Nix's ``--log-format internal-json`` as typed events, and a progress fold.

With that log format nix writes one ``@nix {json}`` line per event on stderr:
activities start and stop (a build, a download, copying a path), report
results (a build log line, progress counts, the phase) and messages (errors
with file/line/column).  :class:`EventParser` turns the lines into the event
classes below; :class:`ProgressTracker` folds them into counts a progress bar
or a ``--json`` status can show.  Nothing here prints.
"""

from __future__ import annotations

import enum
import json
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from nixgen.ansi import strip_ansi as strip_ansi  # (its home: the runtime reads consoles too)
from nixgen.nixcmd.version import message_file

__all__ = [
    "ActivityStarted",
    "ActivityStopped",
    "ActivityType",
    "BuildFinished",
    "BuildStarted",
    "DownloadStarted",
    "Event",
    "EventParser",
    "LogLine",
    "Message",
    "PhaseChanged",
    "PlainLine",
    "Progress",
    "ProgressSnapshot",
    "ProgressTracker",
    "ResultType",
    "SetExpected",
    "TraceFrame",
    "Verbosity",
    "derivation_name",
    "strip_ansi",
]


def derivation_name(drv_path: str) -> str:
    """``/nix/store/<hash>-microvm-run.drv`` → ``microvm-run``."""
    base = drv_path.rsplit("/", 1)[-1].removesuffix(".drv")
    _, sep, name = base.partition("-")
    return name if sep else base


class Verbosity(enum.IntEnum):
    """Nix's log levels, as the ``level`` field carries them."""

    ERROR = 0
    WARN = 1
    NOTICE = 2
    INFO = 3
    TALKATIVE = 4
    CHATTY = 5
    DEBUG = 6
    VOMIT = 7


class ActivityType(enum.IntEnum):
    """The ``type`` of an activity ``start`` (Nix's ActivityType)."""

    UNKNOWN = 0
    COPY_PATH = 100
    FILE_TRANSFER = 101
    REALISE = 102
    COPY_PATHS = 103
    BUILDS = 104
    BUILD = 105
    OPTIMISE_STORE = 106
    VERIFY_PATHS = 107
    SUBSTITUTE = 108
    QUERY_PATH_INFO = 109
    POST_BUILD_HOOK = 110
    BUILD_WAITING = 111
    FETCH_TREE = 112


class ResultType(enum.IntEnum):
    """The ``type`` of a ``result`` (Nix's ResultType)."""

    FILE_LINKED = 100
    BUILD_LOG_LINE = 101
    UNTRUSTED_PATH = 102
    CORRUPTED_PATH = 103
    SET_PHASE = 104
    PROGRESS = 105
    SET_EXPECTED = 106
    POST_BUILD_LOG_LINE = 107
    FETCH_STATUS = 108


@attrs.frozen
class PlainLine:
    """A stderr line that is not an ``@nix`` event (git's output, a plain-format run)."""

    text: str


@attrs.frozen
class ActivityStarted:
    """An activity other than a build or a download began (copying a flake, …)."""

    id: int
    type: int
    text: str
    level: int
    parent: int = 0


@attrs.frozen
class BuildStarted:
    """A derivation's builder started."""

    id: int
    drv_path: str
    name: str
    machine: str = ""


@attrs.frozen
class DownloadStarted:
    """A download or substitution began (``what`` is the URL or store path)."""

    id: int
    type: int
    what: str
    text: str


@attrs.frozen
class ActivityStopped:
    """An activity ended (for builds, :class:`BuildFinished` is sent instead)."""

    id: int
    type: int | None


@attrs.frozen
class BuildFinished:
    """A builder ended, successfully or not (failures come as a :class:`Message`)."""

    id: int
    drv_path: str
    name: str


@attrs.frozen
class LogLine:
    """One line a builder (or a post-build hook) wrote."""

    id: int
    line: str
    drv_path: str | None


@attrs.frozen
class PhaseChanged:
    """A stdenv builder entered a phase (``buildPhase``, …)."""

    id: int
    phase: str
    drv_path: str | None


@attrs.frozen
class Progress:
    """Counts of an activity: for BUILDS and COPY_PATHS items, for transfers bytes."""

    id: int
    activity_type: int | None
    done: int
    expected: int
    running: int
    failed: int


@attrs.frozen
class SetExpected:
    """How many of ``activity_type`` (items or bytes) an activity expects in total."""

    id: int
    activity_type: int
    expected: int


@attrs.frozen
class TraceFrame:
    """One "while evaluating…" frame of an error."""

    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None


@attrs.frozen
class Message:
    """A message: an error (``level`` 0 and ``is_error``), a warning, a ``trace:``.

    ``text`` is the full rendering nix shows, ``raw`` the bare message; both
    without colour codes.  ``file``/``line``/``column`` locate errors.
    """

    level: int
    text: str
    raw: str | None = None
    file: str | None = None
    line: int | None = None
    column: int | None = None
    trace: tuple[TraceFrame, ...] = ()

    @property
    def is_error(self) -> bool:
        """A structured error report (not a ``trace:`` printed at error level)."""
        return self.level == Verbosity.ERROR and self.raw is not None

    @property
    def is_warning(self) -> bool:
        return self.level == Verbosity.WARN or (
            self.raw is None and self.text.startswith(("warning:", "trace: warning:"))
        )


Event = (
    PlainLine
    | ActivityStarted
    | BuildStarted
    | DownloadStarted
    | ActivityStopped
    | BuildFinished
    | LogLine
    | PhaseChanged
    | Progress
    | SetExpected
    | Message
)

_PREFIX = "@nix "
_DOWNLOADS = {
    ActivityType.FILE_TRANSFER,
    ActivityType.COPY_PATH,
    ActivityType.SUBSTITUTE,
    ActivityType.FETCH_TREE,
}


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _opt_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _opt_str(value: Any) -> str | None:
    return strip_ansi(value) if isinstance(value, str) else None


def _fields(obj: Mapping[str, Any]) -> list[Any]:
    fields = obj.get("fields")
    return fields if isinstance(fields, list) else []


class EventParser:
    """Turns stderr lines into events; remembers activities so that a stop, a log
    line or a progress report can be tied to its build or download."""

    def __init__(self) -> None:
        self._types: dict[int, int] = {}
        self._drvs: dict[int, str] = {}

    def parse(self, line: str) -> Event | None:
        """The event of one stderr line (without its newline), or None for blank lines.

        Lines that are not ``@nix`` JSON, or are malformed, come back as
        :class:`PlainLine` so no text is ever lost.
        """
        if not line.strip():
            return None
        if not line.startswith(_PREFIX):
            return PlainLine(strip_ansi(line))
        try:
            obj = json.loads(line[len(_PREFIX) :])
        except ValueError:
            return PlainLine(strip_ansi(line))
        if not isinstance(obj, dict):
            return PlainLine(strip_ansi(line))
        action = obj.get("action")
        if action == "start":
            return self._start(obj)
        if action == "stop":
            return self._stop(obj)
        if action == "result":
            return self._result(obj)
        if action == "msg":
            return _message(obj)
        return PlainLine(strip_ansi(line))

    def _start(self, obj: Mapping[str, Any]) -> Event:
        ident = _int(obj.get("id"))
        kind = _int(obj.get("type"))
        text = strip_ansi(str(obj.get("text", "")))
        fields = _fields(obj)
        self._types[ident] = kind
        if kind == ActivityType.BUILD and fields and isinstance(fields[0], str):
            self._drvs[ident] = fields[0]
            machine = fields[1] if len(fields) > 1 and isinstance(fields[1], str) else ""
            return BuildStarted(ident, fields[0], derivation_name(fields[0]), machine)
        if kind in _DOWNLOADS:
            what = fields[0] if fields and isinstance(fields[0], str) else text
            return DownloadStarted(ident, kind, what, text)
        return ActivityStarted(
            ident, kind, text, _int(obj.get("level"), 0), _int(obj.get("parent"), 0)
        )

    def _stop(self, obj: Mapping[str, Any]) -> Event:
        ident = _int(obj.get("id"))
        kind = self._types.pop(ident, None)
        drv = self._drvs.pop(ident, None)
        if drv is not None:
            return BuildFinished(ident, drv, derivation_name(drv))
        return ActivityStopped(ident, kind)

    def _result(self, obj: Mapping[str, Any]) -> Event | None:
        ident = _int(obj.get("id"))
        kind = _int(obj.get("type"))
        fields = _fields(obj)
        if kind in (ResultType.BUILD_LOG_LINE, ResultType.POST_BUILD_LOG_LINE):
            text = fields[0] if fields and isinstance(fields[0], str) else ""
            return LogLine(ident, strip_ansi(text), self._drvs.get(ident))
        if kind == ResultType.SET_PHASE:
            phase = fields[0] if fields and isinstance(fields[0], str) else ""
            return PhaseChanged(ident, phase, self._drvs.get(ident))
        if kind == ResultType.PROGRESS:
            nums = [_int(f) for f in fields[:4]] + [0] * (4 - len(fields[:4]))
            return Progress(ident, self._types.get(ident), *nums)
        if kind == ResultType.SET_EXPECTED and len(fields) >= 2:
            return SetExpected(ident, _int(fields[0]), _int(fields[1]))
        return None  # results nixgen has no use for (file linked, fetch status…)

    def feed(self, lines: Iterable[str]) -> list[Event]:
        """Parse many lines at once (e.g. a recorded stderr)."""
        out: list[Event] = []
        for line in lines:
            event = self.parse(line.rstrip("\n"))
            if event is not None:
                out.append(event)
        return out


def _message(obj: Mapping[str, Any]) -> Message:
    trace: list[TraceFrame] = []
    raw_trace = obj.get("trace")
    if isinstance(raw_trace, list):
        for frame in raw_trace:
            if isinstance(frame, dict):
                line, column = _opt_int(frame.get("line")), _opt_int(frame.get("column"))
                trace.append(
                    TraceFrame(
                        message=strip_ansi(str(frame.get("raw_msg", ""))),
                        file=message_file(_opt_str(frame.get("file")), line, column),
                        line=line,
                        column=column,
                    )
                )
    line, column = _opt_int(obj.get("line")), _opt_int(obj.get("column"))
    return Message(
        level=_int(obj.get("level"), 0),
        text=strip_ansi(str(obj.get("msg", ""))),
        raw=_opt_str(obj.get("raw_msg")),
        file=message_file(_opt_str(obj.get("file")), line, column),
        line=line,
        column=column,
        trace=tuple(trace),
    )


@attrs.frozen
class ProgressSnapshot:
    """Where a nix run stands, as a progress display needs it."""

    builds_done: int
    builds_expected: int
    builds_running: int
    builds_failed: int
    #: names of the derivations building right now, in start order
    building: tuple[str, ...]
    downloads_done: int
    downloads_expected: int
    bytes_done: int
    bytes_expected: int
    errors: int
    warnings: int

    @property
    def done(self) -> int:
        return self.builds_done + self.downloads_done

    @property
    def total(self) -> int:
        return self.builds_expected + self.downloads_expected


class ProgressTracker:
    """Folds events into counts; also keeps the last log lines of every build so a
    failure can be shown even though internal-json error messages omit them."""

    def __init__(self, log_tail: int = 25) -> None:
        self._log_tail = log_tail
        self._progress: dict[int, Progress] = {}
        self._expected_bytes: dict[int, int] = {}
        self._building: dict[int, str] = {}
        self._phase: dict[str, str] = {}
        self._logs: dict[str, deque[str]] = {}
        self.messages: list[Message] = []

    def __call__(self, event: Event) -> None:
        """Same as :meth:`update`, so a tracker can be passed as ``on_event``."""
        self.update(event)

    def update(self, event: Event) -> None:
        """Take one event into account."""
        if isinstance(event, BuildStarted):
            self._building[event.id] = event.name
            self._logs.setdefault(event.drv_path, deque(maxlen=self._log_tail))
        elif isinstance(event, BuildFinished):
            self._building.pop(event.id, None)
        elif isinstance(event, LogLine) and event.drv_path is not None:
            self._logs.setdefault(event.drv_path, deque(maxlen=self._log_tail)).append(event.line)
        elif isinstance(event, PhaseChanged) and event.drv_path is not None:
            self._phase[event.drv_path] = event.phase
        elif isinstance(event, Progress):
            self._progress[event.id] = event
        elif isinstance(event, SetExpected) and event.activity_type == ActivityType.FILE_TRANSFER:
            self._expected_bytes[event.id] = event.expected
        elif isinstance(event, Message) and (event.is_error or event.is_warning):
            self.messages.append(event)

    def _sum(self, kinds: set[int], attr: str) -> int:
        return sum(
            int(getattr(p, attr)) for p in self._progress.values() if p.activity_type in kinds
        )

    def snapshot(self) -> ProgressSnapshot:
        """The counts now."""
        builds = {ActivityType.BUILDS.value}
        copies = {ActivityType.COPY_PATHS.value}
        transfers = {ActivityType.FILE_TRANSFER.value, ActivityType.COPY_PATH.value}
        return ProgressSnapshot(
            builds_done=self._sum(builds, "done"),
            builds_expected=self._sum(builds, "expected"),
            builds_running=self._sum(builds, "running"),
            builds_failed=self._sum(builds, "failed"),
            building=tuple(self._building.values()),
            downloads_done=self._sum(copies, "done"),
            downloads_expected=self._sum(copies, "expected"),
            bytes_done=self._sum(transfers, "done"),
            bytes_expected=max(
                sum(self._expected_bytes.values()), self._sum(transfers, "expected")
            ),
            errors=sum(1 for m in self.messages if m.is_error),
            warnings=sum(1 for m in self.messages if m.is_warning),
        )

    def phase(self, drv_path: str) -> str | None:
        """The stdenv phase ``drv_path`` is (or was last) in."""
        return self._phase.get(drv_path)

    def log_tail(self, drv_path: str) -> tuple[str, ...]:
        """The last log lines of ``drv_path`` (up to ``log_tail`` of them)."""
        return tuple(self._logs.get(drv_path, ()))

    def log_tails(self) -> dict[str, tuple[str, ...]]:
        """The last log lines of every build seen."""
        return {drv: tuple(lines) for drv, lines in self._logs.items()}
