"""The model as plain data: dicts, JSON and TOML, in both directions.

Keys are microvm.nix's option names (``mountPoint``, ``deflateOnOOM``), so a
data file reads like the Nix it becomes.  Only values that differ from the
default are written, and reading them back gives an equal model.  Reading
checks every key and type and reports *all* problems at once, each with its
path (``guests["web"].shares[0].proto``).

Verbatim Nix is written as ``{"_nix": "pkgs.hello"}``.
"""

from __future__ import annotations

import difflib
import functools
import json
import math
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

import attrs
import tomli_w

from nixgen.errors import Problem, ValidationError
from nixgen.model.expr import Nix
from nixgen.model.fields import describe
from nixgen.model.flake import Flake, Input
from nixgen.model.guest import MicroVM

__all__ = [
    "NIX_KEY",
    "dumps_json",
    "dumps_toml",
    "flake_from_dict",
    "flake_to_dict",
    "from_dict",
    "load_flake_file",
    "loads_flake",
    "to_dict",
    "type_problems",
]

NIX_KEY = "_nix"
T = TypeVar("T")


# ----------------------------------------------------------------- to plain data


def to_dict(obj: Any, *, nulls: bool = False) -> dict[str, Any]:
    """An attrs model object as a dict of its non-default settings.

    ``nulls=True`` keeps ``None`` for fields that are always written (for
    Nix, where ``mountPoint = null`` means something); data files leave them out.
    """
    out: dict[str, Any] = {}
    for info in describe(type(obj)):
        value = getattr(obj, info.name)
        if value is None and not (nulls and info.always):
            continue
        if not info.always and not info.required and value == info.default:
            continue
        out[info.option] = _plain(value, nulls)
    return out


def _plain(value: Any, nulls: bool = False) -> Any:
    if isinstance(value, Nix):
        return {NIX_KEY: value.text}
    if isinstance(value, PurePosixPath):
        return str(value)
    if attrs.has(type(value)):
        return to_dict(value, nulls=nulls)
    if isinstance(value, Mapping):
        return {str(k): _plain(v, nulls) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, nulls) for v in value]
    return value


def flake_to_dict(flake: Flake) -> dict[str, Any]:
    """A flake as data: guests and inputs keyed by name."""
    data = to_dict(flake)
    data.pop("guests", None)
    data.pop("inputs", None)
    data["inputs"] = {
        i.name: (i.url if not i.follows and i.flake else _without_name(to_dict(i)))
        for i in flake.inputs
    }
    data["guests"] = {g.name: _without_name(to_dict(g)) for g in flake.guests}
    return data


def _without_name(data: dict[str, Any]) -> dict[str, Any]:
    data.pop("name", None)
    return data


def dumps_toml(flake: Flake) -> str:
    return tomli_w.dumps(flake_to_dict(flake))


def dumps_json(flake: Flake) -> str:
    return json.dumps(flake_to_dict(flake), indent=2, sort_keys=False) + "\n"


# ----------------------------------------------------------------- from plain data


class _Reader:
    """Collects problems while turning data into model objects."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def problem(self, path: str, message: str, hint: str, value: object = None) -> None:
        self.problems.append(Problem(path=path, message=message, hint=hint, value=value))

    def structure(self, cls: type[T], data: object, path: str) -> T | None:
        if not isinstance(data, Mapping):
            self.problem(
                path, f"expected a table of {cls.__name__} settings", "write a table", data
            )
            return None
        before = len(self.problems)
        fields = {info.option: info for info in describe(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            field = fields.get(key)
            if field is None:
                close = difflib.get_close_matches(str(key), list(fields), n=1)
                hint = (
                    f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(fields)}"
                )
                self.problem(f"{path}.{key}", "unknown setting", hint)
                continue
            converted = self.value(field.type, value, f"{path}.{key}")
            if converted is not _INVALID:
                kwargs[field.name] = converted
        missing = [
            name
            for name, f in fields.items()
            if f.required and f.name not in kwargs and name not in data
        ]
        for name in missing:
            self.problem(f"{path}.{name}", "is required", f"set {name}")
        if len(self.problems) > before:
            return None
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as err:
            self.problem(path, str(err), "fix the value named above")
            return None

    def value(self, typ: Any, data: object, path: str) -> Any:
        origin, args = _shape(typ)
        if typ is Any:
            return self.free(data, path)
        if origin is typing.Literal:
            if data in args:
                return data
            choices = ", ".join(repr(a) for a in args)
            self.problem(path, "is not one of the allowed values", f"use one of {choices}", data)
            return _INVALID
        if origin in (types.UnionType, typing.Union):
            return self.union(args, data, path)
        if origin in (tuple, Sequence):
            if not isinstance(data, list | tuple):
                self.problem(path, "expected a list", "write a list: [ ... ]", data)
                return _INVALID
            items = [self.value(args[0], item, f"{path}[{i}]") for i, item in enumerate(data)]
            return _INVALID if any(i is _INVALID for i in items) else tuple(items)
        if origin is not None and issubclass(origin, Mapping):
            if not isinstance(data, Mapping):
                self.problem(path, "expected a table", "write a table: { key = value }", data)
                return _INVALID
            out = {str(k): self.value(args[1], v, f"{path}[{k!r}]") for k, v in data.items()}
            return _INVALID if any(v is _INVALID for v in out.values()) else out
        if typ is Nix:
            if (
                isinstance(data, Mapping)
                and set(data) == {NIX_KEY}
                and isinstance(data[NIX_KEY], str)
            ):
                return Nix(data[NIX_KEY])
            self.problem(path, "expected a Nix expression", f'write {{ {NIX_KEY} = "..." }}', data)
            return _INVALID
        if typ is PurePosixPath:
            if isinstance(data, str):
                return PurePosixPath(data)
            self.problem(path, "expected a path", "write the path as a string", data)
            return _INVALID
        if _is_model(typ):
            result = self.structure(typ, data, path)
            return _INVALID if result is None else result
        if typ is bool:
            if isinstance(data, bool):
                return data
            self.problem(path, "expected true or false", "write true or false", data)
            return _INVALID
        if typ is int:
            if isinstance(data, int) and not isinstance(data, bool):
                return data
            self.problem(path, "expected a whole number", "write a number without quotes", data)
            return _INVALID
        if typ is str:
            if isinstance(data, str):
                return data
            self.problem(path, "expected a string", "put the value in quotes", data)
            return _INVALID
        raise TypeError(f"nixgen cannot read values of type {typ!r} (at {path})")

    def check_object(self, obj: Any, path: str) -> None:
        """Check a built model object in place (cheaper than a round trip through data)."""
        for info in describe(type(obj)):
            value = getattr(obj, info.name)
            if value is None and _allows_none(info.type):
                continue
            self.check_value(info.type, value, f"{path}.{info.option}")

    def check_value(self, typ: Any, value: Any, path: str) -> None:
        if _is_model(typ):
            if isinstance(value, typ):
                self.check_object(value, path)
            else:
                self.problem(path, f"expected {typ.__name__}", f"use {typ.__name__}(...)", value)
            return
        origin, args = _shape(typ)
        if origin in (tuple, Sequence) and isinstance(value, tuple | list) and _is_model(args[0]):
            for i, item in enumerate(value):
                self.check_value(args[0], item, f"{path}[{i}]")
            return
        if origin in (types.UnionType, typing.Union):
            members = [a for a in args if _is_model(a)]
            if len(members) == 1 and isinstance(value, members[0]):
                self.check_object(value, path)
                return
        # Everything else: the data-file rules, applied to the plain value.
        self.value(typ, _plain(value), path)

    def union(self, args: tuple[Any, ...], data: object, path: str) -> Any:
        if data is None and type(None) in args:
            return None
        candidates = [a for a in args if a is not type(None)]
        # Try each member quietly; report once if none fits.
        for candidate in candidates:
            probe = _Reader()
            result = probe.value(candidate, data, path)
            if result is not _INVALID and not probe.problems:
                return result
        if len(candidates) == 1:
            return self.value(candidates[0], data, path)
        names = " or ".join(_type_name(a) for a in candidates)
        self.problem(path, f"expected {names}", f"write {names}", data)
        return _INVALID

    def free(self, data: object, path: str) -> Any:
        """Free-form values (NixOS settings): JSON-like data plus ``{_nix = …}``."""
        if isinstance(data, Mapping):
            if set(data) == {NIX_KEY}:
                return self.value(Nix, data, path)
            return {str(k): self.free(v, f"{path}[{k!r}]") for k, v in data.items()}
        if isinstance(data, list | tuple):
            return [self.free(v, f"{path}[{i}]") for i, v in enumerate(data)]
        if isinstance(data, float) and not math.isfinite(data):
            self.problem(path, "Nix has no literal for this number", "use a finite number", data)
            return _INVALID
        if (
            isinstance(data, int)
            and not isinstance(data, bool)
            and not _INT64.start <= data < _INT64.stop
        ):
            self.problem(
                path, "does not fit in Nix's 64-bit integers", "use a smaller number", data
            )
            return _INVALID
        if isinstance(data, str) and "\x00" in data:
            self.problem(path, "a Nix string cannot hold a NUL character", "remove the \\x00", data)
            return _INVALID
        if data is None or isinstance(data, bool | int | float | str):
            return data
        self.problem(path, f"cannot be written as Nix: {type(data).__name__}", "use plain data")
        return _INVALID


@functools.cache
def _shape(typ: Any) -> tuple[Any, tuple[Any, ...]]:
    """``typing.get_origin`` and ``get_args``, computed once per annotation."""
    return typing.get_origin(typ), typing.get_args(typ)


@functools.cache
def _is_model(typ: Any) -> bool:
    return isinstance(typ, type) and attrs.has(typ)


def _allows_none(typ: Any) -> bool:
    return type(None) in _shape(typ)[1]


_INT64 = range(-(2**63) + 1, 2**63)


class _Invalid:
    pass


_INVALID: Any = _Invalid()


def _type_name(typ: Any) -> str:
    if isinstance(typ, type):
        return {"str": "a string", "int": "a number", "bool": "true/false"}.get(
            typ.__name__, typ.__name__
        )
    if typing.get_origin(typ) in (tuple, Sequence):
        return "a list"
    return str(typ)


def type_problems(obj: Any, path: str) -> list[Problem]:
    """Wrong types and values in an object built in Python (where nothing checked them).

    The same rules as reading a data file: a ``MicroVM(hypervisor="qmeu")``
    gets the same clear problem as ``hypervisor = "qmeu"`` in nixgen.toml.
    """
    reader = _Reader()
    reader.check_object(obj, path)
    return reader.problems


def from_dict(cls: type[T], data: Mapping[str, Any], *, path: str = "") -> T:
    """Read one model object; :class:`ValidationError` lists every problem."""
    reader = _Reader()
    result = reader.structure(cls, data, path or cls.__name__)
    if result is None or reader.problems:
        raise ValidationError(reader.problems)
    return result


def flake_from_dict(data: Mapping[str, Any], *, source: str | None = None) -> Flake:
    """Read a flake from data (as :func:`flake_to_dict` writes it)."""
    reader = _Reader()
    data = dict(data)
    guests_data = data.pop("guests", {})
    inputs_data = data.pop("inputs", None)
    guests: list[MicroVM] = []
    if not isinstance(guests_data, Mapping):
        reader.problem("guests", "expected a table of guests", "write [guests.NAME] tables")
        guests_data = {}
    for name, guest_data in guests_data.items():
        path = f"guests[{name!r}]".replace("'", '"')
        if isinstance(guest_data, Mapping):
            guest = reader.structure(MicroVM, {"name": name, **guest_data}, path)
            if guest is not None:
                guests.append(guest)
        else:
            reader.problem(path, "expected a table of settings", f"write [guests.{name}]")
    inputs: list[Input] = []
    if inputs_data is not None:
        if not isinstance(inputs_data, Mapping):
            reader.problem("inputs", "expected a table of inputs", "write [inputs]")
            inputs_data = {}
        for name, value in inputs_data.items():
            path = f'inputs["{name}"]'
            spec = {"url": value} if isinstance(value, str) else value
            if not isinstance(spec, Mapping):
                reader.problem(path, "expected a URL or a table", 'write name = "github:…"')
                continue
            parsed = reader.structure(Input, {"name": name, **spec}, path)
            if parsed is not None:
                inputs.append(parsed)
    top = reader.structure(Flake, data, "flake")
    if reader.problems or top is None:
        raise ValidationError(reader.problems, source=source)
    changes: dict[str, Any] = {"guests": tuple(guests)}
    if inputs_data is not None:
        changes["inputs"] = tuple(inputs)
    return attrs.evolve(top, **changes)


def loads_flake(text: str, *, format: str = "toml", source: str | None = None) -> Flake:
    """A flake from TOML or JSON text."""
    try:
        data = json.loads(text) if format == "json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as err:
        raise ValidationError(
            [
                Problem(
                    path=source or format,
                    message=f"cannot read {format}: {err}",
                    hint="fix the syntax",
                )
            ],
            source=source,
        ) from err
    if not isinstance(data, Mapping):
        raise ValidationError(
            [Problem(path=source or format, message="expected a table at the top", hint="")]
        )
    return flake_from_dict(data, source=source)


def load_flake_file(path: Path) -> Flake:
    """A flake from ``nixgen.toml`` (or a ``.json`` file)."""
    fmt = "json" if path.suffix == ".json" else "toml"
    return loads_flake(path.read_text(encoding="utf-8"), format=fmt, source=str(path))
