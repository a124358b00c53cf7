"""Run and manage guests: start, stop, status, update, console, balloon.

The library behind ``nixgen run/stop/status/list/update/console/balloon``::

    from nixgen.runtime import Runtime

    rt = Runtime("my-vms")                  # project folder; state in my-vms/.nixgen/vms/
    web = rt.guest("web")
    web.start(wait=True)                    # build if needed, start, wait for the login prompt
    print(web.status().state)               # GuestState.RUNNING
    rt.update(["web"], restart=True)        # rebuild, switch `current`, restart if changed
    web.stop()                              # microvm-shutdown / QMP, then SIGTERM, SIGKILL

The state folder of each guest follows microvm.nix's host module
(``/var/lib/microvms/<name>`` with ``current`` and ``booted``); see
:mod:`nixgen.runtime.state` and docs/running-guests.md.  Its errors are in
:mod:`nixgen.runtime.errors` (:class:`~nixgen.runtime.errors.GuestError` and below).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nixgen._lazy import export_lazily

if TYPE_CHECKING:
    from nixgen.runtime.builder import Builder
    from nixgen.runtime.console import DEFAULT_BOOT_MARKER
    from nixgen.runtime.guest import (
        DEFAULT_BOOT_TIMEOUT,
        DEFAULT_LOCK_TIMEOUT,
        DEFAULT_STOP_TIMEOUT,
        GuestRuntime,
        GuestState,
        GuestStatus,
        StartResult,
        StopResult,
    )
    from nixgen.runtime.manager import Runtime, UpdateResult, default_state_root
    from nixgen.runtime.qmp import QMP
    from nixgen.runtime.runner import RunnerInfo
    from nixgen.runtime.state import ExitRecord, RunRecord, StateDir

#: Where each name lives; imported on first use (see :mod:`nixgen._lazy`).
_EXPORTS = {
    "Builder": "nixgen.runtime.builder",
    "DEFAULT_BOOT_MARKER": "nixgen.runtime.console",
    "DEFAULT_BOOT_TIMEOUT": "nixgen.runtime.guest",
    "DEFAULT_LOCK_TIMEOUT": "nixgen.runtime.guest",
    "DEFAULT_STOP_TIMEOUT": "nixgen.runtime.guest",
    "ExitRecord": "nixgen.runtime.state",
    "GuestRuntime": "nixgen.runtime.guest",
    "GuestState": "nixgen.runtime.guest",
    "GuestStatus": "nixgen.runtime.guest",
    "QMP": "nixgen.runtime.qmp",
    "RunRecord": "nixgen.runtime.state",
    "RunnerInfo": "nixgen.runtime.runner",
    "Runtime": "nixgen.runtime.manager",
    "StartResult": "nixgen.runtime.guest",
    "StateDir": "nixgen.runtime.state",
    "StopResult": "nixgen.runtime.guest",
    "UpdateResult": "nixgen.runtime.manager",
    "default_state_root": "nixgen.runtime.manager",
}

__all__ = [
    "DEFAULT_BOOT_MARKER",
    "DEFAULT_BOOT_TIMEOUT",
    "DEFAULT_LOCK_TIMEOUT",
    "DEFAULT_STOP_TIMEOUT",
    "QMP",
    "Builder",
    "ExitRecord",
    "GuestRuntime",
    "GuestState",
    "GuestStatus",
    "RunRecord",
    "RunnerInfo",
    "Runtime",
    "StartResult",
    "StateDir",
    "StopResult",
    "UpdateResult",
    "default_state_root",
]

export_lazily(__name__, _EXPORTS)
