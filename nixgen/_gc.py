"""Python's cycle collector: paused while a fleet's model objects are made,
and while a command line starts.

Reading a 1,000-guest ``nixgen.toml`` makes some 100,000 dicts, tuples and
model objects that all live on; each collection on the way walks the ones
made so far again, and found nothing to free (model objects are values: they
form no cycles).  That was a tenth of ``nixgen render``.  Reference counting
still frees everything as usual; only the search for cycles waits.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["pause_for_start_up", "paused_gc", "start_up_done"]


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """No cycle collection inside (it runs again after, unless it was off before).

    Nests; a thread that finds the collector off leaves it to the one that
    turned it off (at worst a collection comes early: nothing breaks).
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


#: whether :func:`pause_for_start_up` turned the collector off
_start_up_paused = False


def pause_for_start_up() -> None:
    """No collection while a command loads: importing it (modules, attrs classes
    and their generated methods) allocates much and frees almost nothing, and the
    collector would walk it all some forty times for nothing (~10 % of
    ``nixgen list``), and again at exit.  :func:`start_up_done` ends it."""
    global _start_up_paused
    if gc.isenabled():
        gc.disable()
        _start_up_paused = True


def start_up_done() -> None:
    """The command is loaded: what the start-up made lives until the process
    ends, so it is frozen (left out of every later collection, the one at exit
    included) and the collector resumes for the command's own work."""
    global _start_up_paused
    if _start_up_paused:
        _start_up_paused = False
        gc.freeze()
        gc.enable()
