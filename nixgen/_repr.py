"""One ``__repr__`` for attrs classes, giving the text attrs gives.

attrs writes each class a ``__repr__`` of its own as Python source (an
f-string of every field) and compiles it when the class is made, at every
start of nixgen: for the model that was a fifth of what importing it costs
(``benchmarks/bench_startup.py``).  :func:`attrs_repr` is compiled once, with
nixgen, and shows an object as attrs would: ``MicroVM(name='web',
hypervisor='qemu', …)``, and ``...`` for an object met again inside itself.
A class takes it by defining ``__repr__ = attrs_repr``: attrs then writes none.
"""

from __future__ import annotations

import threading

__all__ = ["attrs_repr"]

#: the objects each thread is showing now (a cycle shows as ``...``)
_showing = threading.local()


def attrs_repr(self: object) -> str:
    """``ClassName(field=value, …)`` of an attrs object, every field by its repr."""
    try:
        showing: set[int] = _showing.ids
    except AttributeError:
        showing = _showing.ids = set()
    if id(self) in showing:
        return "..."
    showing.add(id(self))
    try:
        cls = self.__class__
        shown = []
        for field in cls.__attrs_attrs__:  # type: ignore[attr-defined]
            if field.repr:  # False: left out; a function: its own way to show the value
                value = getattr(self, field.name)
                text = repr(value) if field.repr is True else field.repr(value)
                shown.append(f"{field.name}={text}")
        return f"{cls.__qualname__.rsplit('>.', 1)[-1]}({', '.join(shown)})"
    finally:
        showing.discard(id(self))
