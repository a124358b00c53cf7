"""Verbatim Nix in a model that is not one whole Nix expression.

A ``Nix("…")`` value (``{ _nix = "…" }`` in ``nixgen.toml``) is written into
the flake as it is: text that does not parse on its own would break the file
it lands in, so rendering refuses it and ``nixgen check`` reports it with the
other problems.  A module of its own so that checking a project needs neither
the layouts, the settings mapping nor the network plan of rendering.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

import attrs

from nixgen.errors import NixEmitError, Problem, keyed
from nixgen.model import Flake, Host, MicroVM, Nix
from nixgen.model.convert import NIX_KEY
from nixgen.model.fields import describe
from nixgen.model.memo import ByIdentity

__all__ = ["verbatim_problems"]


def verbatim_problems(flake: Flake) -> list[Problem]:
    """Verbatim expressions (``Nix("…")``, ``{ _nix = "…" }``) that are not one
    whole Nix expression: written as they are, they would break the file."""
    found: list[Problem] = []
    for field, cls in (("hosts", Host), ("guests", MicroVM)):
        for item in reversed(getattr(flake, field)):  # the order of problems with one path
            if isinstance(item, cls):
                found += _verbatim_problems_of(item, keyed(field, item.name))
    return sorted(found, key=lambda p: p.path)


#: The problems of each guest and host, by the object (and the path it was seen at).
_VERBATIM: ByIdentity[object, tuple[str, list[Problem]]] = ByIdentity()


def _verbatim_problems_of(item: object, at: str) -> list[Problem]:
    """:func:`verbatim_problems` of one guest or host at path ``at``."""
    known = _VERBATIM.get(item)
    if known is not None and known[0] == at:
        return known[1]
    found: list[Problem] = []
    # (path, value); only fields whose type can hold Nix are followed.
    stack: list[tuple[str, object]] = [(at, item)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, Nix):
            problem = _expression_problem(path, value)
            if problem is not None:
                found.append(problem)
        elif isinstance(value, Mapping):
            if set(value) == {NIX_KEY} and isinstance(value[NIX_KEY], str):
                stack.append((path, Nix(value[NIX_KEY])))
            else:
                stack.extend((keyed(path, k), v) for k, v in value.items())
        elif isinstance(value, list | tuple):
            stack.extend((f"{path}[{i}]", v) for i, v in enumerate(value))
        elif not isinstance(value, str | int | float | PurePosixPath) and value is not None:
            model: Any = type(value)  # a class is hashable; typeshed does not say so
            for name, option in _verbatim_fields(model):
                stack.append((f"{path}.{option}", getattr(value, name)))
    _VERBATIM.put(item, (at, found))
    return found


def _expression_problem(path: str, value: Nix) -> Problem | None:
    """Why ``value`` is not one whole Nix expression, as the serializer says."""
    # The serializer's module only where a model holds verbatim Nix: a project
    # without any is checked without it.
    from nixgen.nix.emit import to_nix

    try:
        to_nix(value)
    except NixEmitError as err:
        message = err.message.split(": ", 1)[1]
        return Problem(path, message, err.hint or "", value=value.text)
    return None


@functools.cache
def _verbatim_fields(cls: Any) -> tuple[tuple[str, str], ...]:
    """The (attribute, option) of each field of a model class that can hold Nix."""
    if not attrs.has(cls):
        return ()
    return tuple((i.name, i.option) for i in describe(cls) if _may_hold_nix(i.type))


def _may_hold_nix(typ: object) -> bool:
    if typ is Nix or typ is Any:
        return True
    if isinstance(typ, type):
        return bool(_verbatim_fields(typ))
    return any(_may_hold_nix(arg) for arg in typing.get_args(typ))
