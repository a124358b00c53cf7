"""The one door to the ``nix`` binary.

- :mod:`~nixgen.nixcmd.version`: find nix, read its version, and the
  :class:`Dialect` holding every difference between Nix versions/flavours.
- :mod:`~nixgen.nixcmd.run`: :func:`run` (argv only, own process group,
  streaming, timeouts, Ctrl-C) and the ``eval``/``build --json`` helpers.
- :mod:`~nixgen.nixcmd.events`: internal-json log lines as typed events, and
  :class:`ProgressTracker`.
- :mod:`~nixgen.nixcmd.diagnose`: a failed run → a typed error
  (:class:`~nixgen.errors.NixCommandError` and its children).
"""

from nixgen.nixcmd.diagnose import (
    ErrorReport,
    Location,
    diagnose,
    diagnose_result,
    map_source_path,
    parse_errors,
)
from nixgen.nixcmd.events import (
    ActivityStarted,
    ActivityStopped,
    ActivityType,
    BuildFinished,
    BuildStarted,
    DownloadStarted,
    Event,
    EventParser,
    LogLine,
    Message,
    PhaseChanged,
    PlainLine,
    Progress,
    ProgressSnapshot,
    ProgressTracker,
    ResultType,
    SetExpected,
    TraceFrame,
    Verbosity,
    strip_ansi,
)
from nixgen.nixcmd.run import (
    BuiltDerivation,
    EventHandler,
    Nix,
    NixResult,
    build_argv,
    nix_build_json,
    nix_eval_drv_paths,
    nix_eval_json,
    parse_build_json,
    run,
)
from nixgen.nixcmd.version import (
    FLAKE_FEATURE_FLAGS,
    Dialect,
    Flavour,
    NixVersion,
    clear_version_cache,
    detect_dialect,
    find_nix,
    nix_version,
)

__all__ = [
    "FLAKE_FEATURE_FLAGS",
    "ActivityStarted",
    "ActivityStopped",
    "ActivityType",
    "BuildFinished",
    "BuildStarted",
    "BuiltDerivation",
    "Dialect",
    "DownloadStarted",
    "ErrorReport",
    "Event",
    "EventHandler",
    "EventParser",
    "Flavour",
    "Location",
    "LogLine",
    "Message",
    "Nix",
    "NixResult",
    "NixVersion",
    "PhaseChanged",
    "PlainLine",
    "Progress",
    "ProgressSnapshot",
    "ProgressTracker",
    "ResultType",
    "SetExpected",
    "TraceFrame",
    "Verbosity",
    "build_argv",
    "clear_version_cache",
    "detect_dialect",
    "diagnose",
    "diagnose_result",
    "find_nix",
    "map_source_path",
    "nix_build_json",
    "nix_eval_drv_paths",
    "nix_eval_json",
    "nix_version",
    "parse_build_json",
    "parse_errors",
    "run",
    "strip_ansi",
]
