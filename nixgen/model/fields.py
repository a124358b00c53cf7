"""How a model field maps onto a microvm.nix / NixOS option.

Every attrs field of the model carries, in its metadata, the option name it
stands for (``mountPoint`` for ``mount_point``) and whether it is always
written out.  The emitter, the dict/TOML converter and the schema tests all
read the same metadata, so a name is spelled in exactly one place.
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import attrs

from nixgen._repr import attrs_repr

T = TypeVar("T")

OPTION = "nixgen.option"
ALWAYS = "nixgen.always"


def camel(name: str) -> str:
    """``mount_point`` → ``mountPoint``: the usual spelling of microvm.nix options."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def option(
    default: Any = attrs.NOTHING,
    *,
    name: str | None = None,
    always: bool = False,
    factory: Any = None,
    converter: Any = None,
    validator: Any = None,
) -> Any:
    """An attrs field that stands for one option.

    ``name`` overrides the camelCase spelling (``deflateOnOOM``,
    ``cloud-hypervisor``); ``always`` writes the value even when it equals the
    upstream default, for settings a reader wants to see (hypervisor, mem).
    """
    metadata = {OPTION: name, ALWAYS: always}
    if factory is not None:
        return attrs.field(
            factory=factory, metadata=metadata, converter=converter, validator=validator
        )
    return attrs.field(default=default, metadata=metadata, converter=converter, validator=validator)


def to_tuple(items: Iterable[T]) -> tuple[T, ...]:
    """Converter for list fields: accept any iterable, keep an immutable tuple.

    A string, a mapping or a non-iterable is kept as it is: ``"quiet"`` is not
    the list ``["q", "u", …]``, and ``validate`` reports "expected a list".
    """
    if type(items) is tuple:  # most of them: a tuple read or made before
        return items
    if isinstance(items, str | bytes | Mapping) or not isinstance(items, Iterable):
        return items  # type: ignore[return-value]  # reported by validate
    return tuple(items)


def option_name(field: attrs.Attribute[Any]) -> str:
    """The option (or data-file key) a field stands for."""
    explicit = field.metadata.get(OPTION)
    return explicit if isinstance(explicit, str) else camel(field.name)


def is_always(field: attrs.Attribute[Any]) -> bool:
    return bool(field.metadata.get(ALWAYS, False))


@attrs.frozen
class FieldInfo:
    """What the converter and emitter need to know of one field, computed once."""

    name: str
    option: str
    always: bool
    required: bool
    default: Any
    type: Any
    # ``X | None``: None is a value of the field (unset, or Nix's null; see convert.to_dict)
    nullable: bool

    __repr__ = attrs_repr


def describe(cls: type[Any]) -> tuple[FieldInfo, ...]:
    """The fields of a model class with resolved types and evaluated defaults."""
    key: Any = cls  # a class is hashable; typeshed's type[Any] is not declared so
    return _describe(key)


@functools.cache
def _describe(model: Any) -> tuple[FieldInfo, ...]:
    attrs.resolve_types(model)
    infos = []
    for field in attrs.fields(model):
        default: Any = field.default
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            default = default.factory()
            if field.converter is not None:
                default = field.converter(default)
        infos.append(
            FieldInfo(
                name=field.name,
                option=option_name(field),
                always=is_always(field),
                required=default is attrs.NOTHING,
                default=default,
                type=field.type,
                nullable=type(None) in typing.get_args(field.type),
            )
        )
    return tuple(infos)


def group_class(typ: object) -> type | None:
    """The model class of an option group field (``X`` or ``X | None``), else None.

    A group (``microvm.qemu``, ``microvm.vfkit.rosetta``) is one model object
    whose fields are options of their own.
    """
    members = [m for m in typing.get_args(typ) or (typ,) if m is not type(None)]
    if typing.get_origin(typ) not in (None, typing.Union, types.UnionType) or len(members) != 1:
        return None
    (member,) = members
    return member if isinstance(member, type) and attrs.has(member) else None
