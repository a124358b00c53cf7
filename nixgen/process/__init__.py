"""Running programs, and processes as Linux's ``/proc`` shows them.

- :mod:`~nixgen.process.run`: the one way nixgen starts a program
  (:func:`run` to completion, :func:`spawn` to supervise, :func:`terminate`).
- :mod:`~nixgen.process.proc`: the one ``/proc`` walker (pid + start time,
  descendants, process groups, waiting for a process to go).
"""

from nixgen.process.run import DEFAULT_GRACE, CmdOut, LineHandler, run, spawn, terminate

__all__ = ["DEFAULT_GRACE", "CmdOut", "LineHandler", "run", "spawn", "terminate"]
