"""An immutable, hashable mapping for the model's table fields.

The model classes are frozen attrs classes, and attrs derives ``__hash__``
from every field.  A plain ``dict`` in a field (``nixos``, ``extra``,
``credential_files``, ``follows``) would make the whole guest unhashable and
mutable behind the frozen front.  Mapping fields therefore hold a
:class:`FrozenDict`, and free values inside them are frozen all the way
down (tables become :class:`FrozenDict`, lists become tuples, as list
fields already do).

A :class:`FrozenDict` reads like a dict and compares equal to a dict with
the same items; to_dict, the TOML/JSON writers and the emitter see it as
any other :class:`~collections.abc.Mapping`.
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from typing import Any, TypeVar

from nixgen.errors import Problem, ValidationError

K = TypeVar("K")
V = TypeVar("V", covariant=True)

__all__ = ["MAX_DEPTH", "FrozenDict", "freeze", "frozen_mapping", "optional_frozen_mapping"]

# How deep free values (lists and tables) may nest: data files, the model and
# the emitter refuse deeper values with a clear error instead of running into
# Python's recursion limit.
MAX_DEPTH = 100


class FrozenDict(Mapping[K, V]):
    """A read-only dict that can be hashed (when its values can)."""

    __slots__ = ("_data", "_hash")

    _data: dict[K, V]
    _hash: int | None

    def __init__(self, items: Mapping[K, V] | Iterable[tuple[K, V]] = (), /) -> None:
        object.__setattr__(self, "_data", dict(items))
        object.__setattr__(self, "_hash", None)

    def __getitem__(self, key: K) -> V:
        return self._data[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    # The dict's own views (read-only): Mapping's generic ones look up each key again.
    def keys(self) -> KeysView[K]:
        return self._data.keys()

    def values(self) -> ValuesView[V]:
        return self._data.values()

    def items(self) -> ItemsView[K, V]:
        return self._data.items()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrozenDict):
            return self._data == other._data
        if isinstance(other, Mapping):
            return self._data == dict(other.items())
        return NotImplemented

    def __hash__(self) -> int:
        cached = self._hash
        if cached is None:
            # Order-insensitive, like ``==``.
            cached = hash(frozenset(self._data.items()))
            object.__setattr__(self, "_hash", cached)
        return cached

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __reduce__(self) -> tuple[type[FrozenDict[K, V]], tuple[dict[K, V]]]:
        return (type(self), (self._data,))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._data!r})"


def freeze(value: Any) -> Any:
    """``value`` with every table made a :class:`FrozenDict` and every list a tuple."""
    if isinstance(value, Mapping):
        return FrozenDict({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value


def frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """Converter for table fields: ``None`` is an empty table, contents are frozen.

    A value that is not a mapping is kept as it is, so that ``validate``
    reports it ("expected a table") like a data file's mistake.
    """
    if value is None:
        return FrozenDict()
    if isinstance(value, Mapping):
        try:
            return FrozenDict({k: freeze(v) for k, v in value.items()})
        except RecursionError:
            raise ValidationError(
                [
                    Problem(
                        path="(a table setting)",
                        message="lists and tables are nested too deep to be read",
                        hint=f"nest values at most {MAX_DEPTH} levels deep",
                    )
                ]
            ) from None
    return value


def optional_frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """Converter for tables that may be unset (``None`` stays ``None``)."""
    return None if value is None else frozen_mapping(value)
