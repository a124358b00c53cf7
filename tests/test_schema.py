"""The model against microvm.nix's own option schema.

nixgen's packaged schema (``nixgen/data/microvm-options.json``, written by
``scripts/microvm-options.py`` from upstream's option declarations) is the
oracle for option names, their place (top level, ``group`` namespaces,
submodule options of list elements), enum values and plain defaults.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import attrs
import pytest

from nixgen.hypervisors import TABLE
from nixgen.model import (
    CloudHypervisorOptions,
    CrosvmOptions,
    Device,
    FirecrackerOptions,
    ForwardPort,
    Graphics,
    Interface,
    MacvtapOptions,
    MicroVM,
    Nix,
    PcieRootPort,
    PortEnd,
    QemuDeviceOptions,
    QemuOptions,
    RosettaOptions,
    Share,
    TapOptions,
    VfkitOptions,
    VirtiofsdOptions,
    Volume,
    Vsock,
)
from nixgen.model.fields import is_always, option_name
from nixgen.model.guest import HYPERVISORS, NON_MICROVM_FIELDS
from nixgen.schema import packaged_schema

Options = Mapping[str, Any]


@pytest.fixture(scope="module")
def schema() -> Options:
    return packaged_schema().guest


# ----------------------------------------------------------------- walking the model


@attrs.frozen
class Pair:
    """One model field and the schema option it stands for."""

    path: str  # dotted option path, e.g. "shares.*.proto"
    owner: type
    field: attrs.Attribute[Any]
    option: Options


def _members(typ: Any) -> tuple[Any, ...]:
    """The members of a union (``X | None``), or the type itself."""
    if typing.get_origin(typ) in (types.UnionType, typing.Union):
        return typing.get_args(typ)
    return (typ,)


def _is_list(typ: Any) -> bool:
    """``tuple[X, ...]`` or ``Sequence[X]``: how the model spells a list option."""
    origin = typing.get_origin(typ)
    return isinstance(origin, type) and issubclass(origin, Sequence) and origin is not str


def _model_class(typ: Any) -> tuple[type | None, bool]:
    """(attrs class the field holds, whether as ``tuple[C, ...]`` list elements)."""
    for member in _members(typ):
        if member is Nix:  # a verbatim expression is a value (socket = null), not a group
            continue
        if isinstance(member, type) and attrs.has(member):
            return member, False
        if _is_list(member):
            (elem, *_rest) = typing.get_args(member)
            if isinstance(elem, type) and attrs.has(elem):
                return elem, True
    return None, False


def _fields(cls: type) -> tuple[attrs.Attribute[Any], ...]:
    attrs.resolve_types(cls)
    return tuple(attrs.fields(cls))


def _walk(
    cls: type, options: Options, prefix: str, missing: list[str], skip: frozenset[str]
) -> Iterator[Pair]:
    for field in _fields(cls):
        if field.name in skip:
            continue
        name = option_name(field)
        path = f"{prefix}{name}"
        option = options.get(name)
        if option is None:
            missing.append(f"{path} (field {cls.__name__}.{field.name})")
            continue
        yield Pair(path=path, owner=cls, field=field, option=option)
        sub, as_list = _model_class(field.type)
        if sub is None:
            continue
        if as_list:
            elem = option.get("type", {}).get("nested", {}).get("elemType", {})
            assert option["type"]["name"] == "listOf" and elem.get("name") == "submodule", (
                f"{path}: the model holds a list of {sub.__name__}, upstream has "
                f"{option.get('type', {}).get('description')!r}"
            )
            yield from _walk(sub, elem["options"], f"{path}.*.", missing, frozenset())
        else:
            assert "group" in option, (
                f"{path}: the model holds a {sub.__name__} group, upstream has no "
                "option namespace there"
            )
            yield from _walk(sub, option["group"], f"{path}.", missing, frozenset())


@pytest.fixture(scope="module")
def pairs(schema: Options) -> list[Pair]:
    missing: list[str] = []
    found = list(_walk(MicroVM, schema, "", missing, NON_MICROVM_FIELDS))
    assert not missing, "model fields whose option upstream does not have:\n" + "\n".join(missing)
    return found


# Every class the brief names must be reached through MicroVM, so that none of
# them escapes the checks below.
COVERED_CLASSES = (
    MicroVM,
    Interface,
    Volume,
    Share,
    Device,
    ForwardPort,
    PortEnd,
    Vsock,
    Graphics,
    QemuOptions,
    CloudHypervisorOptions,
    FirecrackerOptions,
    CrosvmOptions,
    VfkitOptions,
    RosettaOptions,
    VirtiofsdOptions,
    MacvtapOptions,
    TapOptions,
    QemuDeviceOptions,
    PcieRootPort,
)


def test_every_option_field_names_an_upstream_option(pairs: list[Pair]) -> None:
    # The fixture asserts that nothing is missing; here: the walk reached every class
    # and every one of their fields.
    owners = {p.owner for p in pairs}
    for cls in COVERED_CLASSES:
        assert cls in owners, f"{cls.__name__} was not reached from MicroVM"
        expected = {f.name for f in _fields(cls)}
        if cls is MicroVM:
            expected -= NON_MICROVM_FIELDS
        reached = {p.field.name for p in pairs if p.owner is cls}
        assert reached == expected, cls.__name__


def test_option_paths_sit_where_upstream_declares_them(schema: Options) -> None:
    # A few spot checks of the places the walk reads, spelled out.
    assert "deflateOnOOM" in schema
    assert "platformOEMStrings" in schema["cloud-hypervisor"]["group"]
    shares = schema["shares"]["type"]["nested"]["elemType"]["options"]
    assert {"mountPoint", "posixAcl", "securityModel"} <= set(shares)
    ports = schema["forwardPorts"]["type"]["nested"]["elemType"]["options"]
    assert "from" in ports
    assert set(ports["host"]["group"]) == {"address", "port"}
    devices = schema["devices"]["type"]["nested"]["elemType"]["options"]
    assert "deviceExtraArgs" in devices["qemu"]["group"]
    roots = schema["qemu"]["group"]["pcieRootPorts"]["type"]["nested"]["elemType"]["options"]
    assert "chassis" in roots
    assert "ignoreIfMissing" in schema["vfkit"]["group"]["rosetta"]["group"]


def test_non_microvm_fields_are_not_microvm_options(schema: Options) -> None:
    names = {f.name: option_name(f) for f in _fields(MicroVM)}
    for field_name in NON_MICROVM_FIELDS:
        assert field_name in names, f"NON_MICROVM_FIELDS names no field {field_name!r}"
        assert names[field_name] not in schema, (
            f"{field_name} is kept out of microvm.* but upstream has microvm.{names[field_name]}"
        )


def test_no_field_stands_for_a_read_only_or_internal_option(pairs: list[Pair]) -> None:
    for pair in pairs:
        assert not pair.option.get("readOnly", False), pair.path
        assert not pair.option.get("internal", False), pair.path


# ----------------------------------------------------------------- enums


def _literal_values(typ: Any) -> tuple[set[str] | None, bool]:
    """(values of the Literal inside the type, whether the type admits None)."""
    values: set[str] | None = None
    nullable = False
    for member in _members(typ):
        if member is type(None):
            nullable = True
        elif typing.get_origin(member) is typing.Literal:
            values = set(typing.get_args(member))
    return values, nullable


def _schema_enum(option: Options) -> tuple[set[str] | None, bool]:
    """(enum values upstream allows, whether it is ``nullOr enum``)."""
    typ = option.get("type", {})
    if typ.get("name") == "enum":
        return set(typ["values"]), False
    if typ.get("name") == "nullOr":
        elem = typ.get("nested", {}).get("elemType", {})
        if elem.get("name") == "enum":
            return set(elem["values"]), True
    return None, False


ENUM_OPTIONS = {
    "hypervisor",
    "storeDiskType",
    "interfaces.*.type",
    "interfaces.*.macvtap.mode",
    "shares.*.proto",
    "shares.*.cache",
    "shares.*.securityModel",
    "volumes.*.imageType",
    "devices.*.bus",
    "forwardPorts.*.proto",
    "forwardPorts.*.from",
    "firecracker.driveIoEngine",
    "graphics.backend",
    "graphics.vulkan",
    "vfkit.logLevel",
    "virtiofsd.inodeFileHandles",
}


def test_literal_types_have_exactly_the_upstream_enum_values(pairs: list[Pair]) -> None:
    checked: set[str] = set()
    for pair in pairs:
        ours, ours_nullable = _literal_values(pair.field.type)
        theirs, theirs_nullable = _schema_enum(pair.option)
        if ours is None and theirs is None:
            continue
        assert ours is not None, f"{pair.path}: upstream is an enum {theirs}, the model is not"
        assert theirs is not None, f"{pair.path}: the model is a Literal, upstream no enum"
        assert ours == theirs, f"{pair.path}: model {sorted(ours)} vs upstream {sorted(theirs)}"
        if theirs_nullable:
            assert ours_nullable, f"{pair.path}: upstream allows null, the model does not"
        checked.add(pair.path)
    assert checked == ENUM_OPTIONS


def test_nullable_enums_are_nullable_in_the_model(pairs: list[Pair]) -> None:
    nullable = {p.path for p in pairs if _schema_enum(p.option)[1]}
    assert nullable == {"graphics.vulkan", "vfkit.logLevel", "virtiofsd.inodeFileHandles"}
    for pair in pairs:
        if pair.path in nullable:
            assert _literal_values(pair.field.type)[1], pair.path


def test_hypervisor_enum_matches_the_model_and_the_table(schema: Options) -> None:
    upstream = schema["hypervisor"]["type"]["values"]
    for name in upstream:
        assert name in TABLE, f"hypervisor {name!r} of microvm.nix has no row in TABLE"
    assert set(upstream) == set(HYPERVISORS) == set(TABLE)


# ----------------------------------------------------------------- kinds of values


_INT_TYPES = {"int", "positiveInt", "unsignedInt", "unsignedInt16", "ints.unsigned"}
_STR_TYPES = {"str", "nonEmptyStr", "path", "separatedString", "string", "enum"}
_ATTRS_TYPES = {"attrsOf", "attrs", "submodule", "lazyAttrsOf"}


def _schema_kinds(typ: Options) -> set[str]:
    name = typ.get("name")
    nested = typ.get("nested", {})
    if name == "bool":
        return {"bool"}
    if name in _INT_TYPES:
        return {"int"}
    if name in _STR_TYPES:
        return {"str"}
    if name == "listOf":
        return {"list"}
    if name in _ATTRS_TYPES:
        return {"attrs"}
    if name == "nullOr":
        return {"null", *_schema_kinds(nested["elemType"])}
    if name == "either":
        return _schema_kinds(nested["left"]) | _schema_kinds(nested["right"])
    return {"any"}


def _model_kinds(typ: Any) -> set[str]:
    out: set[str] = set()
    for member in _members(typ):
        origin = typing.get_origin(member)
        if member is Nix:
            continue  # a verbatim expression: whatever upstream's type takes (socket = null)
        if member is type(None):
            out.add("null")
        elif member is bool:
            out.add("bool")
        elif member is int:
            out.add("int")
        elif member is str or origin is typing.Literal:
            out.add("str")
        elif _is_list(member):
            out.add("list")
        elif (origin is not None and issubclass(origin, Mapping)) or (
            isinstance(member, type) and attrs.has(member)
        ):
            out.add("attrs")
        else:
            out.add("any")
    return out


def test_value_kinds_match_upstream_types(pairs: list[Pair]) -> None:
    for pair in pairs:
        theirs = {"attrs"} if "group" in pair.option else _schema_kinds(pair.option.get("type", {}))
        if "any" in theirs:
            continue
        # None in the model means "not written: upstream's default applies", so a
        # nullable model field is fine for a non-nullable option.
        ours = _model_kinds(pair.field.type) - {"null"}
        assert ours, pair.path
        assert ours <= theirs, f"{pair.path}: model takes {sorted(ours)}, upstream {sorted(theirs)}"


def test_options_upstream_lets_be_null_are_nullable_in_the_model(pairs: list[Pair]) -> None:
    for pair in pairs:
        typ = pair.option.get("type", {})
        if typ.get("name") != "nullOr":
            continue
        assert "null" in _model_kinds(pair.field.type), (
            f"{pair.path}: upstream takes null ({typ.get('description')}), the model cannot"
        )


# ----------------------------------------------------------------- defaults


def _model_default(field: attrs.Attribute[Any]) -> Any:
    """The default a field takes, with factories called and converters applied."""
    default: Any = field.default
    factory = getattr(default, "factory", None)
    if callable(factory) and hasattr(default, "takes_self"):
        default = factory()
        converter: Any = field.converter
        if converter is not None:
            default = converter(default)
    return default


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


# Fields whose default differs from upstream's plain default on purpose.  (Fields
# whose upstream default is a Nix expression ("text") or absent are not compared.)
# None today: the model leaves at None every option whose default it does not want
# to spell out, and spells out the others with upstream's value.
DEFAULT_EXCEPTIONS: dict[str, str] = {}

# Justified: the model has a default where upstream declares none.
MODEL_DEFAULT_WITHOUT_UPSTREAM_VALUE: dict[str, str] = {
    # upstream requires a mode for macvtap; nixgen picks "bridge" (guests on one
    # link see each other) and always writes it
    "interfaces.*.macvtap.mode": "bridge",
    # upstream computes the list from other options; () adds nothing to it
    "kernelParams": "()",
}

# Justified: the model defaults to None ("not written, upstream decides") where
# upstream has a plain default.
NONE_FOR_UPSTREAM_VALUE: dict[str, str] = {
    # upstream defaults to true but turns it off when /nix/store is shared;
    # MicroVM.effective_store_on_disk() mirrors that decision
    "storeOnDisk": "true",
    # the graphics details only matter with graphics.enable; left to upstream
    "graphics.socket": "$HOSTNAME-gpu.sock",
    "graphics.hostmem": "256M",
}


def _upstream_value(pair: Pair) -> tuple[bool, Any]:
    upstream = pair.option.get("default")
    if isinstance(upstream, Mapping) and "value" in upstream:
        return True, upstream["value"]
    return False, None


def test_defaults_equal_upstream_plain_defaults(pairs: list[Pair]) -> None:
    compared = 0
    wrong: list[str] = []
    for pair in pairs:
        default = _model_default(pair.field)
        if default is attrs.NOTHING or default is None:
            continue  # required, or "not written: upstream decides"
        plain, upstream = _upstream_value(pair)
        if not plain or pair.path in DEFAULT_EXCEPTIONS:
            continue  # no default upstream, or a Nix expression
        compared += 1
        if _plain(default) != upstream:
            wrong.append(f"{pair.path}: model {default!r}, upstream {upstream!r}")
    assert not wrong, "\n".join(wrong)
    assert compared >= 50


def test_default_exceptions_are_exactly_the_listed_ones(pairs: list[Pair]) -> None:
    without_upstream: set[str] = set()
    none_for_value: set[str] = set()
    for pair in pairs:
        default = _model_default(pair.field)
        plain, upstream = _upstream_value(pair)
        if default is not attrs.NOTHING and default is not None and not plain:
            without_upstream.add(pair.path)
        if default is None and plain and upstream is not None:
            none_for_value.add(pair.path)
        if pair.path in DEFAULT_EXCEPTIONS:
            assert plain and _plain(default) != upstream, f"{pair.path} no longer differs"
    assert without_upstream == set(MODEL_DEFAULT_WITHOUT_UPSTREAM_VALUE)
    assert none_for_value == set(NONE_FOR_UPSTREAM_VALUE)


def test_required_model_fields_have_no_upstream_default(pairs: list[Pair]) -> None:
    """A field the model requires must be one upstream requires too (or defaults by
    expression), or users would have to spell out what upstream fills in."""
    for pair in pairs:
        if pair.field.default is not attrs.NOTHING:
            continue
        upstream = pair.option.get("default")
        assert not (isinstance(upstream, Mapping) and "value" in upstream), (
            f"{pair.path}: the model requires it, upstream defaults it to {upstream}"
        )


def test_upstream_required_list_element_options_are_required_or_always_written(
    schema: Options,
) -> None:
    """Options of list elements that upstream gives no default (``id`` of an
    interface, ``image`` of a volume) must be required in the model."""
    classes: dict[str, type] = {
        "interfaces": Interface,
        "volumes": Volume,
        "shares": Share,
        "devices": Device,
    }
    for option, cls in classes.items():
        sub = schema[option]["type"]["nested"]["elemType"]["options"]
        fields = {option_name(f): f for f in _fields(cls)}
        for name, spec in sub.items():
            if "group" in spec or spec.get("default") is not None:
                continue
            field = fields[name]
            # Interface.mac: upstream requires it; nixgen fills it in with
            # stable_mac() when left None, so it is optional in the model.
            # Volume.mountPoint: upstream requires the attribute but takes null
            # (not mounted); the model defaults to None and always writes it.
            if (cls, name) in ((Interface, "mac"), (Volume, "mountPoint")):
                assert field.default is None
                if cls is Volume:
                    assert is_always(field)
                continue
            assert field.default is attrs.NOTHING, f"{option}.*.{name} has a default in the model"
