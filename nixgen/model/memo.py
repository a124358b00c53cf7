"""What was worked out for one model object, remembered for as long as it lives.

The model is immutable, so what a guest's type check, validation or module
text came to stays true for that object.  Remembering it lets a second look
(``render_files`` after ``validate``, the flake editor checking the whole
flake after changing one guest) cost a dictionary look-up a guest instead of
the work again.  The same holds for any immutable value: the flake reader
keeps, for each guest an edit moved, the guest it was moved from.

Objects are told apart by identity, not equality: ``MicroVM(vcpu=True)``
equals (and hashes like) ``MicroVM(vcpu=1)``, but only one is well typed.
Entries go when their object does (a weak reference), so nothing grows with
objects that are gone.
"""

from __future__ import annotations

import weakref
from typing import Generic, TypeVar

__all__ = ["ByIdentity"]

K = TypeVar("K")
V = TypeVar("V")


class _Ref(weakref.ref[object]):
    """A weak reference that knows the id it is filed under: one callback serves every
    entry of a map (a closure for each would cost more than the entry itself)."""

    __slots__ = ("key",)
    key: int


class ByIdentity(Generic[K, V]):
    """A map from live objects (by identity) to what was worked out for them."""

    def __init__(self) -> None:
        entries: dict[int, tuple[_Ref, V]] = {}
        self._entries = entries

        def forget(ref: _Ref) -> None:
            # The object is gone; its id may already name a newer entry.
            entry = entries.get(ref.key)
            if entry is not None and entry[0] is ref:
                del entries[ref.key]

        self._forget = forget

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
        try:
            ref = _Ref(obj, self._forget)
        except TypeError:  # an object that cannot be referred to weakly
            return
        ref.key = key = id(obj)
        self._entries[key] = (ref, value)

    def pop(self, obj: K) -> V | None:
        """Forget what was remembered for ``obj``, and give it (None: nothing was)."""
        entry = self._entries.get(id(obj))
        if entry is None or entry[0]() is not obj:
            return None
        del self._entries[id(obj)]
        return entry[1]

    def __len__(self) -> int:
        return len(self._entries)
