"""What was worked out for one model object, remembered for as long as it lives.

The model is immutable, so what a guest's type check, validation or module
text came to stays true for that object.  Remembering it lets a second look
(``render_files`` after ``validate``, the flake editor checking the whole
flake after changing one guest) cost a dictionary look-up a guest instead of
the work again.

Objects are told apart by identity, not equality: ``MicroVM(vcpu=True)``
equals (and hashes like) ``MicroVM(vcpu=1)``, but only one is well typed.
Entries go when their object does (a weak reference), so nothing grows with
objects that are gone.
"""

from __future__ import annotations

import contextlib
import weakref
from typing import Generic, TypeVar

__all__ = ["ByIdentity"]

K = TypeVar("K")
V = TypeVar("V")


class ByIdentity(Generic[K, V]):
    """A map from live objects (by identity) to what was worked out for them."""

    def __init__(self) -> None:
        self._entries: dict[int, tuple[weakref.ref[K], V]] = {}

    def get(self, obj: K) -> V | None:
        entry = self._entries.get(id(obj))
        if entry is None or entry[0]() is not obj:
            return None
        return entry[1]

    def __contains__(self, obj: object) -> bool:
        entry = self._entries.get(id(obj))
        return entry is not None and entry[0]() is obj

    def put(self, obj: K, value: V) -> None:
        """Remember ``value`` for ``obj`` while it lives (objects without weak
        references, such as ints, are not remembered: :meth:`get` gives None)."""
        key = id(obj)
        entries = self._entries

        def forget(ref: weakref.ref[K]) -> None:
            # The object is gone; its id may already name a newer entry.
            entry = entries.get(key)
            if entry is not None and entry[0] is ref:
                entries.pop(key, None)

        # An object that cannot be referred to weakly is not remembered.
        with contextlib.suppress(TypeError):
            entries[key] = (weakref.ref(obj, forget), value)

    def pop(self, obj: K) -> V | None:
        """Forget what was remembered for ``obj``, and give it (None: nothing was)."""
        entry = self._entries.get(id(obj))
        if entry is None or entry[0]() is not obj:
            return None
        del self._entries[id(obj)]
        return entry[1]

    def __len__(self) -> int:
        return len(self._entries)
