"""The one door to the ``nix`` binary.

- :mod:`~nixgen.nixcmd.version`: find nix, read its version, and the
  :class:`Dialect` holding every difference between Nix versions/flavours.
- :mod:`~nixgen.nixcmd.run`: :func:`run` (argv only, own process group,
  streaming, timeouts, Ctrl-C) and the ``eval``/``build --json`` helpers.
- :mod:`~nixgen.nixcmd.events`: internal-json log lines as typed events, and
  :class:`ProgressTracker`.
- :mod:`~nixgen.nixcmd.diagnose`: a failed run → a typed error of
  :mod:`~nixgen.nixcmd.errors` (:class:`NixCommandError` and its children).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nixgen._lazy import export_lazily

if TYPE_CHECKING:
    from nixgen.nixcmd.diagnose import (
        ErrorReport,
        Location,
        diagnose,
        diagnose_result,
        map_source_path,
        parse_errors,
    )
    from nixgen.nixcmd.errors import BuildFailure, EvalPosition, OptionRejection
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
        NixResult,
        NixRunner,
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

#: Where each name lives; imported on first use (see :mod:`nixgen._lazy`).
_EXPORTS = {
    "BuildFailure": "nixgen.nixcmd.errors",
    "EvalPosition": "nixgen.nixcmd.errors",
    "OptionRejection": "nixgen.nixcmd.errors",
    "ActivityStarted": "nixgen.nixcmd.events",
    "ActivityStopped": "nixgen.nixcmd.events",
    "ActivityType": "nixgen.nixcmd.events",
    "BuildFinished": "nixgen.nixcmd.events",
    "BuildStarted": "nixgen.nixcmd.events",
    "BuiltDerivation": "nixgen.nixcmd.run",
    "Dialect": "nixgen.nixcmd.version",
    "DownloadStarted": "nixgen.nixcmd.events",
    "ErrorReport": "nixgen.nixcmd.diagnose",
    "Event": "nixgen.nixcmd.events",
    "EventHandler": "nixgen.nixcmd.run",
    "EventParser": "nixgen.nixcmd.events",
    "FLAKE_FEATURE_FLAGS": "nixgen.nixcmd.version",
    "Flavour": "nixgen.nixcmd.version",
    "Location": "nixgen.nixcmd.diagnose",
    "LogLine": "nixgen.nixcmd.events",
    "Message": "nixgen.nixcmd.events",
    "NixRunner": "nixgen.nixcmd.run",
    "NixResult": "nixgen.nixcmd.run",
    "NixVersion": "nixgen.nixcmd.version",
    "PhaseChanged": "nixgen.nixcmd.events",
    "PlainLine": "nixgen.nixcmd.events",
    "Progress": "nixgen.nixcmd.events",
    "ProgressSnapshot": "nixgen.nixcmd.events",
    "ProgressTracker": "nixgen.nixcmd.events",
    "ResultType": "nixgen.nixcmd.events",
    "SetExpected": "nixgen.nixcmd.events",
    "TraceFrame": "nixgen.nixcmd.events",
    "Verbosity": "nixgen.nixcmd.events",
    "build_argv": "nixgen.nixcmd.run",
    "clear_version_cache": "nixgen.nixcmd.version",
    "detect_dialect": "nixgen.nixcmd.version",
    "diagnose": "nixgen.nixcmd.diagnose",
    "diagnose_result": "nixgen.nixcmd.diagnose",
    "find_nix": "nixgen.nixcmd.version",
    "map_source_path": "nixgen.nixcmd.diagnose",
    "nix_build_json": "nixgen.nixcmd.run",
    "nix_eval_drv_paths": "nixgen.nixcmd.run",
    "nix_eval_json": "nixgen.nixcmd.run",
    "nix_version": "nixgen.nixcmd.version",
    "parse_build_json": "nixgen.nixcmd.run",
    "parse_errors": "nixgen.nixcmd.diagnose",
    "run": "nixgen.nixcmd.run",
    "strip_ansi": "nixgen.nixcmd.events",
}

__all__ = [
    "FLAKE_FEATURE_FLAGS",
    "ActivityStarted",
    "ActivityStopped",
    "ActivityType",
    "BuildFailure",
    "BuildFinished",
    "BuildStarted",
    "BuiltDerivation",
    "Dialect",
    "DownloadStarted",
    "ErrorReport",
    "EvalPosition",
    "Event",
    "EventHandler",
    "EventParser",
    "Flavour",
    "Location",
    "LogLine",
    "Message",
    "NixResult",
    "NixRunner",
    "NixVersion",
    "OptionRejection",
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

export_lazily(__name__, _EXPORTS)
