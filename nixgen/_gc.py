"""Python's cycle collector, paused while a fleet's model objects are made.

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

__all__ = ["paused_gc"]


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
