"""Running programs, and processes as Linux's ``/proc`` shows them.

- :mod:`~nixgen.process.run`: the one way nixgen starts a program
  (:func:`run` to completion, :func:`spawn` to supervise, :func:`terminate`).
- :mod:`~nixgen.process.proc`: the one ``/proc`` walker (pid + start time,
  descendants, process groups, waiting for a process to go).
- :mod:`~nixgen.process.errors`: :class:`CommandError` and its children.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nixgen._lazy import export_lazily

if TYPE_CHECKING:
    from nixgen.process.run import DEFAULT_GRACE, CmdOut, LineHandler, run, spawn, terminate

__all__ = ["DEFAULT_GRACE", "CmdOut", "LineHandler", "run", "spawn", "terminate"]

export_lazily(__name__, dict.fromkeys(__all__, "nixgen.process.run"))
