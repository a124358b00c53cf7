"""The model as plain data: dicts, JSON and TOML, in both directions.

Keys are microvm.nix's option names (``mountPoint``, ``deflateOnOOM``), so a
data file reads like the Nix it becomes.  Only values that differ from the
default are written, and reading them back gives an equal model.  Reading
checks every key and type and reports *all* problems at once, each with its
path (``guests["web"].shares[0].proto``).

Verbatim Nix is written as ``{"_nix": "pkgs.hello"}``.  Nix's ``null``, for a
setting whose default is not null (``VfkitOptions(log_level=None)``: upstream's
``logLevel = null``), is written the same way: ``{"_nix": "null"}``, since
TOML has no null.
"""

from __future__ import annotations

import functools
import json
import math
import operator
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, TypeGuard, TypeVar

import attrs
import tomli

from nixgen._gc import paused_gc
from nixgen.errors import Problem, ProjectError, ValidationError, keyed
from nixgen.model.expr import Nix
from nixgen.model.fields import describe
from nixgen.model.flake import Flake, Input
from nixgen.model.frozen import MAX_DEPTH
from nixgen.model.guest import MicroVM
from nixgen.model.host import Host, HostVM, Network
from nixgen.model.memo import ByIdentity

__all__ = [
    "NIX_KEY",
    "NULL",
    "check_types",
    "dumps_json",
    "dumps_toml",
    "flake_from_dict",
    "flake_to_dict",
    "from_dict",
    "host_from_dict",
    "host_to_dict",
    "load_flake_file",
    "loads_flake",
    "nix_values",
    "option_values",
    "to_dict",
    "type_problems",
    "update_toml",
]

NIX_KEY = "_nix"
# Nix's null where TOML has none: a setting whose default is not null, set to null.
NULL: Mapping[str, str] = types.MappingProxyType({NIX_KEY: "null"})
T = TypeVar("T")


def _join(path: str, name: str) -> str:
    """``path.name``; at the top level (empty path) just ``name``."""
    return f"{path}.{name}" if path else name


# ----------------------------------------------------------------- to plain data


def to_dict(obj: Any, *, nulls: bool = False) -> dict[str, Any]:
    """An attrs model object as a dict of its non-default settings.

    ``None`` where the default is ``None`` means "unset" and is left out.
    ``None`` where the default is something else is Nix's ``null`` (upstream's
    "do not pass this flag"): data files get :data:`NULL` (``{"_nix":
    "null"}``), ``nulls=True`` (for Nix) gets ``None``.  ``nulls=True`` also
    keeps ``None`` for fields that are always written, where ``mountPoint =
    null`` means something.
    """
    return _to_dict(obj, nulls, False)


def _to_dict(obj: Any, nulls: bool, nix: bool) -> dict[str, Any]:
    """:func:`to_dict`; ``nix``: verbatim Nix as :class:`Nix` (see :func:`option_values`)."""
    out: dict[str, Any] = {}
    model: Any = type(obj)  # a class is hashable; typeshed does not say so
    values, plan = _dict_plan(model)
    for value, (option, default, skips_default, null_is_nix, always) in zip(
        values(obj), plan, strict=True
    ):
        if value is None:
            if null_is_nix:
                out[option] = None if nulls else dict(NULL)
            elif nulls and always:
                out[option] = None
            continue
        if skips_default and value == default:
            continue
        out[option] = _plain(value, nulls, nix)
    return out


@functools.cache
def _dict_plan(
    cls: Any,
) -> tuple[Callable[[Any], tuple[Any, ...]], tuple[tuple[str, Any, bool, bool, bool], ...]]:
    """What :func:`_to_dict` asks of each field, worked out once a class: the
    values of all fields at once, and for each field (option, default, whether the
    default is left out, whether None is Nix's null, whether it is always written)."""
    infos = describe(cls)
    values: Callable[[Any], tuple[Any, ...]]
    if len(infos) > 1:
        values = operator.attrgetter(*(info.name for info in infos))
    else:  # attrgetter of one name gives the value itself, not a tuple
        values = lambda obj: tuple(getattr(obj, info.name) for info in infos)  # noqa: E731
    plan = tuple(
        (
            info.option,
            info.default,
            not info.always and not info.required,
            info.nullable and not info.required and info.default is not None,
            info.always,
        )
        for info in infos
    )
    return values, plan


def option_values(obj: Any) -> dict[str, Any]:
    """An attrs value as the Nix attrset it stands for: its non-default
    settings, ``None`` kept where the option is always written, verbatim Nix
    as :class:`Nix` (not its data-file spelling ``{_nix = …}``).

    The same as ``nix_values`` of each value of ``to_dict(obj, nulls=True)``,
    in one walk (rendering asks it of every guest)."""
    return _to_dict(obj, True, True)


def nix_values(value: Any) -> Any:
    """Undo the data-file spelling of verbatim Nix (``{_nix = …}``), recursively."""
    if isinstance(value, Mapping):
        if set(value) == {NIX_KEY}:
            return Nix(value[NIX_KEY])
        return {k: nix_values(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [nix_values(v) for v in value]
    return value


def _plain(value: Any, nulls: bool = False, nix: bool = False) -> Any:
    kind = type(value)
    if kind is str or kind is int or kind is bool:
        return value
    if kind is tuple or kind is list:  # (the exact types: a model class is neither)
        return [_plain(v, nulls, nix) for v in value]
    if isinstance(value, Nix):
        return value if nix else {NIX_KEY: value.text}
    if isinstance(value, PurePosixPath):
        return str(value)
    if _is_model(kind):
        return _to_dict(value, nulls, nix)
    if isinstance(value, Mapping):
        if nix and len(value) == 1 and NIX_KEY in value:
            return Nix(value[NIX_KEY])  # the data-file spelling, as nix_values reads it
        # Keys are kept as they are: a key that is not a string is for the
        # type check to report, not to turn silently into one.
        return {k: _plain(v, nulls, nix) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, nulls, nix) for v in value]
    return value


def flake_to_dict(flake: Flake) -> dict[str, Any]:
    """A flake as data: guests and inputs keyed by name."""
    data = to_dict(flake)
    data.pop("guests", None)
    data.pop("inputs", None)
    # Every input as a table, even a bare URL: TOML writes plain keys before
    # tables, so mixing `name = "url"` with tables would reorder the inputs.
    data["inputs"] = {i.name: _without_name(to_dict(i)) for i in flake.inputs}
    data["guests"] = {g.name: _without_name(to_dict(g)) for g in flake.guests}
    data.pop("hosts", None)
    if flake.hosts:
        data["hosts"] = {h.name: host_to_dict(h) for h in flake.hosts}
    return data


def host_to_dict(host: Host) -> dict[str, Any]:
    """A host as data: its guests (``vms``) and ``networks`` as tables keyed by name
    (``vms`` as a list of names when no guest has settings)."""
    data = _without_name(to_dict(host))
    data.pop("vms", None)
    data.pop("networks", None)
    vms = {vm.name: _without_name(to_dict(vm)) for vm in host.vms}
    if vms and not any(vms.values()):
        data["vms"] = list(vms)  # nothing but names: `vms = ["web", "db"]`
    elif vms:
        data["vms"] = vms
    if host.networks:
        data["networks"] = {n.name: _without_name(to_dict(n)) for n in host.networks}
    return data


def _without_name(data: dict[str, Any]) -> dict[str, Any]:
    data.pop("name", None)
    return data


def dumps_toml(flake: Flake) -> str:
    """The flake as TOML; :class:`ValidationError` names every ``None`` TOML cannot hold.

    Typed settings never need one (see :func:`to_dict`); a ``None`` inside a
    free value (``nixos``, ``extra``) does.
    """
    import tomli_w  # the writers: imported to write (reading is tomli's, 10 ms cheaper)

    _refuse_nulls(flake)
    return tomli_w.dumps(flake_to_dict(flake))


def update_toml(text: str, flake: Flake, *, renamed: Mapping[str, str] = {}) -> str | None:
    """``text`` (a ``nixgen.toml``) changed in place to declare ``flake``.

    The file is the user's: only the settings that differ are touched, so its
    comments, key order, blank lines and quoting stay as they were (a comment
    at the end of a changed line stays too).  ``renamed`` maps each renamed
    guest's new name to its old one: its tables keep their comments under the
    new name.  None when ``text`` does not read as a flake,
    or when the edited text would not read back as ``flake``: then only a
    fresh file can say it.
    """
    _refuse_nulls(flake)
    try:
        before = flake_to_dict(loads_flake(text))
    except ValidationError:
        return None
    after = flake_to_dict(flake)
    renames = _renamed_tables(before, after, renamed)
    for keep_renames in (True, False):
        attempt = _edited(text, before, after, renames if keep_renames else [])
        if attempt is not None:
            return attempt
    return None


def _edited(
    text: str,
    before: dict[str, Any],
    after: dict[str, Any],
    renames: list[tuple[tuple[str, ...], str, str]],
) -> str | None:
    import tomlkit

    for parents, old, new in renames:
        text = _rename_headers(text, parents, old, new)
        before = _with_renamed_key(before, parents, old, new)
    try:
        doc = tomlkit.parse(text)
        _update_table(doc, before, after)
        edited = tomlkit.dumps(doc)
        read_back = flake_to_dict(loads_flake(edited))
    except (ValidationError, tomlkit.exceptions.TOMLKitError):
        return None
    return edited if read_back == after else None


def _update_table(table: Any, before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
    """Change the tomlkit ``table`` that reads as ``before`` so that it reads as ``after``."""
    import tomlkit.items

    for key in before:
        if key not in after and key in table:
            del table[key]
    for key, value in after.items():
        if key in before and before[key] == value:
            continue  # untouched: its text (and comments) stay as written
        current = table.get(key)
        if (
            isinstance(value, Mapping)
            and isinstance(before.get(key), Mapping)
            and isinstance(current, tomlkit.items.Table | tomlkit.items.InlineTable)
        ):
            _update_table(current, before[key], value)
        else:
            table[key] = value


def _renamed_tables(
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    renamed: Mapping[str, str],
    parents: tuple[str, ...] = (),
) -> list[tuple[tuple[str, ...], str, str]]:
    """Where a renamed guest is a table's key (``guests.NAME``, ``hosts.H.vms.NAME``):
    ``(parents, old, new)`` for each."""
    found = []
    for new, old in renamed.items():
        if (
            old != new
            and isinstance(before.get(old), Mapping)
            and isinstance(after.get(new), Mapping)
            and old not in after
            and new not in before
        ):
            found.append((parents, old, new))
    for key, value in after.items():
        if isinstance(value, Mapping) and isinstance(before.get(key), Mapping):
            found += _renamed_tables(before[key], value, renamed, (*parents, key))
    return found


def _toml_key_pattern(key: str) -> str:
    return "(?:" + "|".join(re.escape(s) for s in (key, json.dumps(key), f"'{key}'")) + ")"


def _rename_headers(text: str, parents: tuple[str, ...], old: str, new: str) -> str:
    """``[guests.old]``, ``[guests.old.qemu]``, ``[[guests.old.users]]`` under the new name."""
    dotted = r"\s*\.\s*".join(_toml_key_pattern(k) for k in parents)
    prefix = r"^(\s*\[\[?\s*" + (dotted + r"\s*\.\s*" if parents else "") + ")"
    header = re.compile(prefix + _toml_key_pattern(old) + r"(?=\s*[\].])", re.MULTILINE)
    spelled = new if re.fullmatch(r"[A-Za-z0-9_-]+", new) else json.dumps(new)
    return header.sub(lambda m: m.group(1) + spelled, text)


def _with_renamed_key(
    data: dict[str, Any], parents: tuple[str, ...], old: str, new: str
) -> dict[str, Any]:
    if not parents:
        return {new if k == old else k: v for k, v in data.items()}
    first, *rest = parents
    return {**data, first: _with_renamed_key(data[first], tuple(rest), old, new)}


def _refuse_nulls(flake: Flake) -> None:
    found: list[Problem] = []
    for guest in flake.guests:
        _find_nulls(guest, keyed("guests", guest.name), found)
    for inp in flake.inputs:
        _find_nulls(inp, keyed("inputs", inp.name), found)
    for host in flake.hosts:
        _find_nulls(host, keyed("hosts", host.name), found)
    if found:
        raise ValidationError(found)


def _find_nulls(value: Any, path: str, found: list[Problem]) -> None:
    """Every ``None`` below a typed setting: those are free values TOML cannot hold."""
    if isinstance(value, Nix):
        return
    if attrs.has(type(value)):
        for info in describe(type(value)):
            inner = getattr(value, info.name)
            if inner is not None:  # a typed None is written as NULL or left out
                _find_nulls(inner, _join(path, info.option), found)
        return
    if isinstance(value, Mapping):
        items: list[tuple[str, Any]] = [(keyed(path, k), v) for k, v in value.items()]
    elif isinstance(value, list | tuple):
        items = [(f"{path}[{i}]", v) for i, v in enumerate(value)]
    else:
        return
    for where, inner in items:
        if inner is None:
            found.append(
                Problem(
                    path=where,
                    message="TOML has no null",
                    hint=f'use Nix("null") (written {{ {NIX_KEY} = "null" }}), '
                    "or save the flake as JSON",
                )
            )
        else:
            _find_nulls(inner, where, found)


def dumps_json(flake: Flake) -> str:
    return json.dumps(flake_to_dict(flake), indent=2, sort_keys=False) + "\n"


# ----------------------------------------------------------------- from plain data


class _Reader:
    """Collects problems while turning data into model objects."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        # A value of the wrong type or shape (as opposed to a value of the right
        # type that Nix cannot hold: a NUL, an integer beyond 64 bits).
        self.mistyped = False
        self.depth = 0  # how many free lists and tables enclose the value being read

    def problem(
        self, path: str, message: str, hint: str, value: object = None, *, limit: bool = False
    ) -> None:
        self.problems.append(Problem(path=path, message=message, hint=hint, value=value))
        self.mistyped = self.mistyped or not limit

    def structure(self, cls: type[T], data: object, path: str) -> T | None:
        if not _is_table(data):
            self.problem(
                path, f"expected a table of {cls.__name__} settings", "write a table", data
            )
            return None
        before = len(self.problems)
        model: Any = cls  # a class is hashable; typeshed does not say so
        fields = _fields_by_option(model)
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            field = fields.get(key)
            where = f"{path}.{key}" if path else str(key)
            if field is None:
                import difflib  # (only once a key is wrong)

                close = difflib.get_close_matches(str(key), list(fields), n=1)
                hint = (
                    f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(fields)}"
                )
                self.problem(where, "unknown setting", hint)
                continue
            # A field that takes Nix expressions keeps an explicit null as Nix("null"):
            # e.g. microvm.socket, whose default is a path but whose type is nullOr str.
            if (
                field.nullable
                and _is_null(value)
                and not (_is_nix(value) and Nix in _shape(field.type)[1])
            ):
                # null is nixgen's own spelling of a None that is always written
                # (a volume's mountPoint); elsewhere it only hides the default.
                if field.required or (field.default is None and not field.always):
                    self.problem(
                        where,
                        "cannot be null: leaving it out keeps microvm.nix's own default",
                        "remove the key",
                        value,
                    )
                else:
                    kwargs[field.name] = None
                continue
            converted = self.value(field.type, value, where)
            if converted is not _INVALID:
                kwargs[field.name] = converted
        missing = [
            name
            for name, attr in _required_fields(model)
            if attr not in kwargs and name not in data
        ]
        for name in missing:
            self.problem(_join(path, name), "is required", f"set {name}")
        if len(self.problems) > before:
            return None
        try:
            built = cls(**kwargs)
        except (TypeError, ValueError) as err:
            self.problem(path or cls.__name__, str(err), "fix the value named above")
            return None
        return built

    def keyed_table(
        self, cls: type[T], name: str, data: Mapping[str, Any], path: str, hint: str
    ) -> T | None:
        """A table whose key is the object's name (``[guests.web]``, ``[inputs.x]``)."""
        if "name" in data:
            self.problem(
                _join(path, "name"),
                f"the name is the table's key ({name!r}); a name inside would rename it",
                hint,
                data["name"],
            )
            data = {k: v for k, v in data.items() if k != "name"}
        built = self.structure(cls, {"name": name, **data}, path)
        if built is not None:
            # Every value was checked on the way in: check_types will not look
            # again.  (Only named objects, those the validator asks about.)
            _WELL_TYPED.put(built, True)
        return built

    def named_tables(
        self, cls: type[T], data: object, path: str, *, bare_names: bool = False
    ) -> list[T]:
        """A table of tables keyed by name (``[hosts.h.vms.web]``); with
        ``bare_names`` a list of names stands for objects with nothing else set."""
        if bare_names and isinstance(data, list | tuple):
            names: dict[str, Any] = {}
            for i, item in enumerate(data):
                if not isinstance(item, str):
                    self.problem(
                        f"{path}[{i}]", "expected a name", "write the name as a string", item
                    )
                elif item in names:
                    self.problem(f"{path}[{i}]", "is listed twice", "list each name once", item)
                names[str(item)] = {}
            data = names
        if not isinstance(data, Mapping):
            self.problem(path, "expected a table keyed by name", f"write [{path}.NAME] tables")
            return []
        out: list[T] = []
        for name, entry in data.items():
            where = keyed(path, name)
            if not isinstance(entry, Mapping):
                self.problem(where, "expected a table of settings", "write a table", entry)
                continue
            hint = f"remove name: the table key ({name!r}) is the name"
            parsed = self.keyed_table(cls, str(name), entry, where, hint)
            if parsed is not None:
                out.append(parsed)
        return out

    def host(self, name: str, data: Mapping[str, Any], path: str) -> Host | None:
        """``[hosts.NAME]`` with its ``vms`` and ``networks`` tables."""
        data = dict(data)
        vms = self.named_tables(HostVM, data.pop("vms", {}), f"{path}.vms", bare_names=True)
        networks = self.named_tables(Network, data.pop("networks", {}), f"{path}.networks")
        host = self.keyed_table(
            Host,
            name,
            data,
            path,
            f"remove name: the table key names the host ([hosts.{name}])",
        )
        if host is None:
            return None
        return attrs.evolve(host, vms=tuple(vms), networks=tuple(networks))

    def value(self, typ: Any, data: object, path: str) -> Any:
        if typ is str or typ is int or typ is bool:  # most values: no type to take apart
            return self.scalar(typ, data, path)
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
            if not _is_table(data):
                self.problem(path, "expected a table", "write a table: { key = value }", data)
                return _INVALID
            return self.table(data, path, lambda v, where: self.value(args[1], v, where))
        if typ is Nix:
            if not _is_nix(data):
                self.problem(
                    path, "expected a Nix expression", f'write {{ {NIX_KEY} = "..." }}', data
                )
                return _INVALID
            text = data[NIX_KEY]
            if not text.strip():
                self.problem(
                    path,
                    "is an empty Nix expression",
                    f'write the expression, e.g. {{ {NIX_KEY} = "pkgs.hello" }}',
                    data,
                    limit=True,
                )
                return _INVALID
            return Nix(text) if self.text(text, path, "a Nix expression") else _INVALID
        if typ is PurePosixPath:
            if isinstance(data, str):
                return PurePosixPath(data) if self.text(data, path, "a path") else _INVALID
            self.problem(path, "expected a path", "write the path as a string", data)
            return _INVALID
        if _is_model(typ):
            result = self.structure(typ, data, path)
            return _INVALID if result is None else result
        raise TypeError(f"nixgen cannot read values of type {typ!r} (at {path})")

    def scalar(self, typ: type, data: object, path: str) -> Any:
        """A value of a field typed ``bool``, ``int`` or ``str``."""
        if typ is bool:
            if isinstance(data, bool):
                return data
            self.problem(path, "expected true or false", "write true or false", data)
            return _INVALID
        if typ is int:
            if isinstance(data, int) and not isinstance(data, bool):
                return data if self.integer(data, path) else _INVALID
            self.problem(path, "expected a whole number", "write a number without quotes", data)
            return _INVALID
        if isinstance(data, str):
            return data if self.text(data, path) else _INVALID
        self.problem(path, "expected a string", "put the value in quotes", data)
        return _INVALID

    # The limits of what Nix can hold, shared by typed settings and free values.

    def text(self, data: str, path: str, what: str = "a Nix string") -> bool:
        if "\x00" in data:
            self.problem(
                path, f"{what} cannot hold a NUL character", "remove the \\x00", data, limit=True
            )
            return False
        try:
            data.encode("utf-8")
        except UnicodeEncodeError:
            self.problem(
                path,
                f"{what} holds UTF-8 text; this one has a lone surrogate",
                "decode the text properly before handing it to nixgen",
                data,
                limit=True,
            )
            return False
        return True

    def integer(self, data: int, path: str) -> bool:
        if _INT64.start <= data < _INT64.stop:
            return True
        self.problem(
            path, "does not fit in Nix's 64-bit integers", "use a smaller number", data, limit=True
        )
        return False

    def table(self, data: Mapping[Any, Any], path: str, read: Callable[[Any, str], Any]) -> Any:
        """A table's values through ``read``; its keys are attribute names, checked too."""
        out: dict[str, Any] = {}
        valid = True
        for key, value in data.items():
            name = str(key)
            where = keyed(path, name)
            if not isinstance(key, str):
                self.problem(
                    where,
                    f"attribute names are strings, not {type(key).__name__}",
                    f"write the key as a string: {name!r}",
                    key,
                )
                valid = False
                continue
            valid = self.text(name, where, "an attribute name") and valid
            out[name] = read(value, where)
            valid = valid and out[name] is not _INVALID
        return out if valid else _INVALID

    def check_object(self, obj: Any, path: str) -> None:
        """Check a built model object in place (cheaper than a round trip through data)."""
        for info in describe(type(obj)):
            value = getattr(obj, info.name)
            if value is None and info.nullable:
                continue
            self.check_value(info.type, value, _join(path, info.option))

    def check_value(self, typ: Any, value: Any, path: str) -> None:
        if _is_model(typ):
            if isinstance(value, typ):
                self.check_object(value, path)
            else:
                name = typ.__name__
                self.problem(path, f"expected {name}", f"use {name}(...)", _shown(value))
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
            if members and (isinstance(value, Mapping) or attrs.has(type(value))):
                # A table is data-file spelling; in Python the model object is needed.
                name = members[0].__name__
                self.problem(path, f"expected {name}", f"use {name}(...)", _shown(value))
                return
        if attrs.has(type(value)) and not isinstance(value, Nix):
            # A model object where none belongs (_plain would make a table of it).
            self.problem(
                path, f"expected {_type_name(typ)}, not {type(value).__name__}", "fix the value"
            )
            return
        # Everything else: the data-file rules, applied to the plain value.
        self.value(typ, _plain(value), path)

    def union(self, args: tuple[Any, ...], data: object, path: str) -> Any:
        if data is None and type(None) in args:
            return None
        candidates = [a for a in args if a is not type(None)]
        if Nix in candidates and _is_nix(data):
            # Clearly meant as Nix: its own problems (an empty expression, …) say most.
            return self.value(Nix, data, path)
        # Try each member quietly; report once if none fits.
        for candidate in candidates:
            probe = _Reader()
            result = probe.value(candidate, data, path)
            if not probe.problems:
                return result
            if not probe.mistyped:
                # The right type, but beyond what Nix holds: that is the problem to show.
                self.problems.extend(probe.problems)
                return _INVALID
        if len(candidates) == 1:
            return self.value(candidates[0], data, path)
        names = " or ".join(_type_name(a) for a in candidates)
        self.problem(path, f"expected {names}", f"write {names}", data)
        return _INVALID

    def free(self, data: object, path: str) -> Any:
        """Free-form values (NixOS settings): JSON-like data plus ``{_nix = …}``."""
        if isinstance(data, Mapping | list | tuple):
            if self.depth >= MAX_DEPTH:
                self.problem(
                    path,
                    f"lists and tables are nested more than {MAX_DEPTH} levels deep",
                    "flatten the value, or write it as Nix code",
                    limit=True,
                )
                return _INVALID
            self.depth += 1
            try:
                return self._collection(data, path)
            finally:
                self.depth -= 1
        if isinstance(data, float) and not math.isfinite(data):
            self.problem(
                path, "Nix has no literal for this number", "use a finite number", data, limit=True
            )
            return _INVALID
        if isinstance(data, int) and not isinstance(data, bool):
            return data if self.integer(data, path) else _INVALID
        if isinstance(data, str):
            return data if self.text(data, path) else _INVALID
        if data is None or isinstance(data, bool | float):
            return data
        self.problem(path, f"cannot be written as Nix: {type(data).__name__}", "use plain data")
        return _INVALID

    def _collection(self, data: Mapping[Any, Any] | list[Any] | tuple[Any, ...], path: str) -> Any:
        if isinstance(data, Mapping):
            if set(data) == {NIX_KEY}:
                return self.value(Nix, data, path)
            return self.table(data, path, self.free)
        items = [self.free(v, f"{path}[{i}]") for i, v in enumerate(data)]
        return _INVALID if any(v is _INVALID for v in items) else items


def _shown(value: object) -> object:
    """A value for "(got …)": plain values as they are, others by their type."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return type(value).__name__


def _shape(typ: Any) -> tuple[Any, tuple[Any, ...]]:
    """``typing.get_origin`` and ``get_args``, computed once per annotation."""
    known = _SHAPES.get(id(typ))
    if known is None or known[0] is not typ:
        known = (typ, typing.get_origin(typ), typing.get_args(typ))
        _SHAPES[id(typ)] = known
    return known[1], known[2]


# By the annotation's identity (each entry keeps its annotation alive, so an id is
# never reused): functools.cache would hash a Literal[…] or a union, walking its
# arguments, at every look-up, and a fleet's nixgen.toml makes 20,000 of them.
_SHAPES: dict[int, tuple[Any, Any, tuple[Any, ...]]] = {}


@functools.cache
def _fields_by_option(cls: Any) -> dict[str, Any]:
    """The fields of a model class by the key a data file spells them with."""
    return {info.option: info for info in describe(cls)}


def _is_model(typ: Any) -> bool:
    known = _MODELS.get(id(typ))
    if known is None or known[0] is not typ:
        known = (typ, isinstance(typ, type) and attrs.has(typ))
        _MODELS[id(typ)] = known
    return known[1]


_MODELS: dict[int, tuple[Any, bool]] = {}  # by identity, as _SHAPES


def _is_nix(data: object) -> TypeGuard[Mapping[str, str]]:
    """``{ _nix = "…" }``: a table whose only key is ``_nix``, holding a string."""
    return _is_table(data) and set(data) == {NIX_KEY} and isinstance(data[NIX_KEY], str)


def _is_table(data: object) -> TypeGuard[Mapping[Any, Any]]:
    """A Mapping: what TOML and JSON read is a dict, and most values are not tables."""
    kind = type(data)
    return kind is dict or (kind not in _NOT_TABLES and isinstance(data, Mapping))


_NOT_TABLES = frozenset({str, int, bool, float, list, tuple, type(None)})


@functools.cache
def _required_fields(cls: Any) -> tuple[tuple[str, str], ...]:
    """(option, attribute) of each field that has no default."""
    return tuple((info.option, info.name) for info in describe(cls) if info.required)


def _is_null(data: object) -> bool:
    """How data files spell Nix's null: ``{ _nix = "null" }`` (or JSON's null)."""
    return data is None or (_is_nix(data) and data[NIX_KEY].strip() == "null")


_INT64 = range(-(2**63) + 1, 2**63)


class _Invalid:
    pass


_INVALID: Any = _Invalid()


def _type_name(typ: Any) -> str:
    """A type as a data file spells it, for "expected …" messages."""
    if typ is Nix:
        return f'a Nix expression ({{ {NIX_KEY} = "…" }})'
    if typ is PurePosixPath:
        return "a path string"
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
    return check_types(obj, path)[0]


#: Model objects with no type problem at all: read from data (each value checked
#: on the way in) or checked here once.  Validating and then rendering a flake,
#: or checking a whole flake after an edit of one guest, checks each object once.
_WELL_TYPED: ByIdentity[Any, bool] = ByIdentity()


def check_types(obj: Any, path: str) -> tuple[list[Problem], bool]:
    """:func:`type_problems`, and whether every value has its field's type.

    Values of the right type that Nix cannot hold (a NUL in a string, an
    integer beyond 64 bits) are problems, but leave the object well-typed:
    the validator's rules can still read it.
    """
    if obj in _WELL_TYPED:
        return [], True
    reader = _Reader()
    reader.check_object(obj, path)
    if not reader.problems:
        _WELL_TYPED.put(obj, True)
    return reader.problems, not reader.mistyped


def from_dict(cls: type[T], data: Mapping[str, Any], *, path: str = "") -> T:
    """Read one model object; :class:`ValidationError` lists every problem."""
    reader = _Reader()
    result = reader.structure(cls, data, path or cls.__name__)
    if result is None or reader.problems:
        raise ValidationError(reader.problems)
    _WELL_TYPED.put(result, True)  # every value was checked on the way in
    return result


def host_from_dict(name: str, data: Mapping[str, Any], *, path: str | None = None) -> Host:
    """Read one host (as :func:`host_to_dict` writes it); every problem at once."""
    reader = _Reader()
    host = reader.host(name, data, path or keyed("hosts", name))
    if host is None or reader.problems:
        raise ValidationError(reader.problems)
    return host


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
        path = keyed("guests", name)
        if isinstance(guest_data, Mapping):
            guest = reader.keyed_table(
                MicroVM,
                name,
                guest_data,
                path,
                f"remove name: the table key names the guest ([guests.{name}]); "
                "rename the table to rename the guest",
            )
            if guest is not None:
                guests.append(guest)
        else:
            reader.problem(path, "expected a table of settings", f"write [guests.{name}]")
    hosts: list[Host] = []
    hosts_data = data.pop("hosts", {})
    if not isinstance(hosts_data, Mapping):
        reader.problem("hosts", "expected a table of hosts", "write [hosts.NAME] tables")
        hosts_data = {}
    for name, host_data in hosts_data.items():
        path = keyed("hosts", name)
        if not isinstance(host_data, Mapping):
            reader.problem(path, "expected a table of settings", f"write [hosts.{name}]")
            continue
        host = reader.host(str(name), host_data, path)
        if host is not None:
            hosts.append(host)
    inputs: list[Input] = []
    if inputs_data is not None:
        if not isinstance(inputs_data, Mapping):
            reader.problem("inputs", "expected a table of inputs", "write [inputs]")
            inputs_data = {}
        for name, value in inputs_data.items():
            path = keyed("inputs", name)
            spec = {"url": value} if isinstance(value, str) else value
            if not isinstance(spec, Mapping):
                reader.problem(
                    path, "expected a URL or a table", f'write [inputs.{name}] with url = "…"'
                )
                continue
            parsed = reader.keyed_table(
                Input, name, spec, path, "remove name: the key in [inputs] is the input's name"
            )
            if parsed is not None:
                inputs.append(parsed)
    # Top-level keys have no prefix in paths (`binaryCache`, like `guests`, `default`).
    top = reader.structure(Flake, data, "")
    if reader.problems or top is None:
        raise ValidationError(reader.problems, source=source)
    changes: dict[str, Any] = {"guests": tuple(guests), "hosts": tuple(hosts)}
    if inputs_data is not None:
        changes["inputs"] = tuple(inputs)
    return attrs.evolve(top, **changes)


def _toml(text: str) -> dict[str, Any]:
    """TOML text as data: read by tomli, the standard library's parser compiled
    (twice as fast on a fleet's nixgen.toml).  What it refuses is read again by
    tomllib itself, so errors, limits and their types are the standard library's."""
    try:
        return tomli.loads(text)
    except (tomli.TOMLDecodeError, RecursionError):
        import tomllib  # (pure Python: ~8 ms at import, for the files it refuses)

        return tomllib.loads(text)


def loads_flake(text: str, *, format: str = "toml", source: str | None = None) -> Flake:
    """A flake from TOML or JSON text."""
    with paused_gc():  # a fleet's objects all live on: no cycles to look for
        return _loads_flake(text, format, source)


def _loads_flake(text: str, format: str, source: str | None) -> Flake:
    try:
        data = json.loads(text) if format == "json" else _toml(text)
    except RecursionError:
        raise ValidationError(
            [
                Problem(
                    path=source or format,
                    message=f"cannot read {format}: values are nested too deep",
                    hint=f"nest lists and tables at most {MAX_DEPTH} levels deep",
                )
            ],
            source=source,
        ) from None
    except ValueError as err:  # json's JSONDecodeError, tomllib's TOMLDecodeError
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
            [
                Problem(
                    path=source or format,
                    message="expected a table at the top",
                    hint='write one object with the flake\'s keys: { "guests": { "web": { … } } }',
                    value=type(data).__name__,
                )
            ],
            source=source,
        )
    return flake_from_dict(data, source=source)


def load_flake_file(path: Path | str) -> Flake:
    """A flake from ``nixgen.toml`` (or a ``.json`` file).

    A missing or unreadable file is a :class:`ProjectError`; a file that is
    not UTF-8 text, or does not read as TOML (JSON), a :class:`ValidationError`.
    """
    path = Path(path)
    fmt = "json" if path.suffix == ".json" else "toml"
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ProjectError(
            f"{path}: no such file", hint="create it with `nixgen init`, or check the path"
        ) from None
    except OSError as err:
        raise ProjectError(
            f"{path}: cannot be read: {err.strerror or err}",
            hint="check that it is a readable file (not a folder) and its permissions",
        ) from None
    try:
        # A byte-order mark (some editors write one) is not part of the TOML.
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise ValidationError(
            [
                Problem(
                    path=f"{path}:{line}",
                    message=f"is not UTF-8 text (byte {raw[err.start]:#04x} at offset {err.start})",
                    hint=f"save {path.name} as UTF-8; nixgen reads nothing else",
                )
            ],
            source=str(path),
        ) from None
    return loads_flake(text, format=fmt, source=str(path))
