"""The model as data: dicts, TOML and JSON, both ways, and the errors of reading."""

from __future__ import annotations

import json
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import attrs
import pytest
import tomli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nixgen.errors import Problem, ValidationError
from nixgen.model import (
    DEFAULT_INPUTS,
    Device,
    Flake,
    ForwardPort,
    Input,
    Interface,
    MicroVM,
    Nix,
    PortEnd,
    QemuOptions,
    Share,
    User,
    VfkitOptions,
    VirtiofsdOptions,
    Volume,
    Vsock,
)
from nixgen.model.convert import (
    NIX_KEY,
    NULL,
    dumps_json,
    dumps_toml,
    flake_from_dict,
    flake_to_dict,
    from_dict,
    load_flake_file,
    loads_flake,
    to_dict,
)
from nixgen.model.fields import is_always, option_name

# ----------------------------------------------------------------- strategies
#
# Built from the attrs fields and their annotations, so a field added to the
# model is covered without touching this file.

# What Nix can hold: 64-bit integers (a literal cannot be -2**63), strings without NUL.
INT64 = st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1)
CHARS = st.characters(codec="utf-8", exclude_characters="\x00")
TEXT = st.text(CHARS, max_size=8)
KEYS = st.text(CHARS, min_size=1, max_size=6).filter(lambda k: k != NIX_KEY)
NIX = st.text(CHARS, min_size=1, max_size=12).filter(str.strip).map(Nix)
HOSTNAMES = st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True)

FREE: st.SearchStrategy[Any] = st.recursive(
    st.booleans() | INT64 | st.floats(allow_nan=False, allow_infinity=False) | TEXT | NIX,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=6,
)


def _members(typ: Any) -> tuple[Any, ...]:
    if typing.get_origin(typ) in (types.UnionType, typing.Union):
        return typing.get_args(typ)
    return (typ,)


def _default(field: attrs.Attribute[Any]) -> Any:
    default: Any = field.default
    factory = getattr(default, "factory", None)
    if callable(factory) and hasattr(default, "takes_self"):
        default = factory()
        converter: Any = field.converter
        if converter is not None:
            default = converter(default)
    return default


def for_type(typ: Any) -> st.SearchStrategy[Any]:
    origin = typing.get_origin(typ)
    args = typing.get_args(typ)
    if typ is Any:
        return FREE
    if origin is typing.Literal:
        return st.sampled_from(args)
    if origin in (types.UnionType, typing.Union):
        return st.one_of([for_type(a) for a in args])
    if typ is type(None):
        return st.none()
    if isinstance(origin, type) and issubclass(origin, Sequence):  # tuple[X, ...], Sequence[X]
        return st.lists(for_type(args[0]), max_size=2).map(tuple)
    if origin is not None and issubclass(origin, Mapping):
        return st.dictionaries(KEYS, for_type(args[1]), max_size=2)
    if typ is Nix:
        return NIX
    if typ is PurePosixPath:
        return TEXT.map(PurePosixPath)
    if isinstance(typ, type) and attrs.has(typ):
        return for_class(typ)
    if typ is bool:
        return st.booleans()
    if typ is int:
        return INT64
    if typ is str:
        return TEXT
    raise TypeError(f"no strategy for {typ!r}")


def _field_strategy(cls: type, field: attrs.Attribute[Any]) -> st.SearchStrategy[Any]:
    if (cls, field.name) == (MicroVM, "name"):
        return HOSTNAMES
    # None where the default is not None is Nix's null, written as {_nix = "null"}.
    return for_type(field.type)


def for_class(cls: type) -> st.SearchStrategy[Any]:
    attrs.resolve_types(cls)
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for field in attrs.fields(cls):
        strategy = _field_strategy(cls, field)
        if field.default is attrs.NOTHING:
            required[field.name] = strategy
        else:
            optional[field.name] = strategy
    return st.fixed_dictionaries(required, optional=optional).map(lambda kw: cls(**kw))


GUESTS: st.SearchStrategy[MicroVM] = for_class(MicroVM)
INPUTS: st.SearchStrategy[Input] = for_class(Input)


@st.composite
def flakes(draw: st.DrawFn) -> Flake:
    guests = draw(st.lists(GUESTS, max_size=2, unique_by=lambda g: g.name))
    kwargs: dict[str, Any] = {"guests": guests}
    if draw(st.booleans()):
        kwargs["inputs"] = draw(st.lists(INPUTS, max_size=3, unique_by=lambda i: i.name))
    if draw(st.booleans()):
        kwargs["description"] = draw(TEXT)
    if draw(st.booleans()):
        kwargs["binary_cache"] = draw(st.booleans())
    if draw(st.booleans()):
        kwargs["default"] = draw(st.sampled_from([g.name for g in guests]) if guests else TEXT)
    return Flake(**kwargs)


ROUND_TRIP = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# ----------------------------------------------------------------- round trips


@ROUND_TRIP
@given(vm=GUESTS)
def test_guest_dict_round_trip(vm: MicroVM) -> None:
    assert from_dict(MicroVM, to_dict(vm)) == vm


@ROUND_TRIP
@given(flake=flakes())
def test_flake_dict_round_trip(flake: Flake) -> None:
    assert flake_from_dict(flake_to_dict(flake)) == flake


@ROUND_TRIP
@given(flake=flakes())
def test_flake_toml_round_trip(flake: Flake) -> None:
    text = dumps_toml(flake)
    assert loads_flake(text) == flake
    assert loads_flake(text, format="toml") == flake


@ROUND_TRIP
@given(flake=flakes())
def test_flake_json_round_trip(flake: Flake) -> None:
    text = dumps_json(flake)
    assert text.endswith("\n")
    assert loads_flake(text, format="json") == flake


@ROUND_TRIP
@given(flake=flakes())
def test_toml_and_json_carry_the_same_data(flake: Flake) -> None:
    assert tomllib.loads(dumps_toml(flake)) == json.loads(dumps_json(flake))


def _check_only_non_defaults(obj: Any, data: Mapping[str, Any], path: str) -> None:
    for field in attrs.fields(type(obj)):
        key = option_name(field)
        value = getattr(obj, field.name)
        written = key in data
        if value is None:
            # Unset is left out; null over a non-null default is written as NULL.
            assert written == (_default(field) is not None), f"{path}.{key}: None, {written=}"
            assert not written or data[key] == NULL, f"{path}.{key}: {data[key]!r}"
            continue
        if is_always(field):
            assert written, f"{path}.{key}: always written, missing"
        else:
            assert written == (value != _default(field)), (
                f"{path}.{key}: value {value!r}, default {_default(field)!r}, written={written}"
            )
        if not written:
            continue
        items = value if isinstance(value, tuple) else (value,)
        sub = data[key] if isinstance(value, tuple) else (data[key],)
        for i, (item, item_data) in enumerate(zip(items, sub, strict=True)):
            if attrs.has(type(item)) and not isinstance(item, Nix):
                _check_only_non_defaults(item, item_data, f"{path}.{key}[{i}]")


@ROUND_TRIP
@given(vm=GUESTS)
def test_only_non_default_values_are_written(vm: MicroVM) -> None:
    _check_only_non_defaults(vm, to_dict(vm), "vm")


def test_a_bare_guest_writes_only_what_readers_look_for() -> None:
    assert to_dict(MicroVM(name="web")) == {
        "name": "web",
        "hypervisor": "qemu",
        "vcpu": 1,
        "mem": 512,
        "system": "x86_64-linux",
        "stateVersion": "26.05",
    }


def test_keys_are_option_names() -> None:
    vm = MicroVM(
        name="web",
        deflate_on_oom=False,
        hotplug_mem=512,
        volumes=(Volume(image="v.img", mount_point="/var", size=64, fs_type="xfs"),),
        shares=(Share(tag="t", source="/s", mount_point="/m", security_model="mapped"),),
        forward_ports=(ForwardPort.tcp(2222, 22),),
        qemu=QemuOptions(machine="q35", serial_console=False),
    )
    data = to_dict(vm)
    assert data["deflateOnOOM"] is False
    assert data["hotplugMem"] == 512
    assert data["volumes"] == [
        {"image": "v.img", "mountPoint": "/var", "size": 64, "fsType": "xfs"}
    ]
    assert data["shares"] == [
        {"tag": "t", "source": "/s", "mountPoint": "/m", "proto": "9p", "securityModel": "mapped"}
    ]
    assert data["forwardPorts"] == [{"host": {"port": 2222}, "guest": {"port": 22}}]
    assert data["qemu"] == {"machine": "q35", "serialConsole": False}
    assert "from" in to_dict(ForwardPort(host=PortEnd(1), guest=PortEnd(2), from_="guest"))


def test_group_set_to_its_defaults_is_kept_as_an_empty_table() -> None:
    vm = MicroVM(name="a", qemu=QemuOptions(), vsock=Vsock())
    data = to_dict(vm)
    assert data["qemu"] == {} and data["vsock"] == {}
    assert from_dict(MicroVM, data) == vm


def test_nix_values_are_written_as_nix_tables() -> None:
    vm = MicroVM(
        name="a",
        packages=("htop", Nix("pkgs.hello")),
        nixos={"services.foo.package": Nix("pkgs.foo"), "list": [Nix("1 + 1"), "x"]},
        extra={"optimize.enable": Nix("lib.mkDefault false")},
    )
    data = to_dict(vm)
    assert data["packages"] == ["htop", {NIX_KEY: "pkgs.hello"}]
    assert data["nixos"] == {
        "services.foo.package": {NIX_KEY: "pkgs.foo"},
        "list": [{NIX_KEY: "1 + 1"}, "x"],
    }
    assert data["extra"] == {"optimize.enable": {NIX_KEY: "lib.mkDefault false"}}
    flake = Flake(guests=(vm,))
    assert 'packages = [\n    "htop",\n    { _nix = "pkgs.hello" },' in dumps_toml(flake)
    assert loads_flake(dumps_toml(flake)).guest("a") == vm
    assert loads_flake(dumps_json(flake), format="json").guest("a") == vm


def test_a_table_with_more_than_nix_is_plain_data() -> None:
    data = {NIX_KEY: "pkgs.x", "other": 1}
    vm = from_dict(MicroVM, {"name": "a", "nixos": {"k": data}})
    assert vm.nixos["k"] == data


def test_module_paths_and_nix_modules() -> None:
    vm = MicroVM(
        name="a",
        modules=(PurePosixPath("modules/web.nix"), Nix("{ ... }: { }"), PurePosixPath("/abs.nix")),
    )
    data = to_dict(vm)
    assert data["modules"] == ["modules/web.nix", {NIX_KEY: "{ ... }: { }"}, "/abs.nix"]
    back = from_dict(MicroVM, data)
    assert back == vm
    assert isinstance(back.modules[0], PurePosixPath) and isinstance(back.modules[1], Nix)


def test_json_keeps_null_in_free_settings() -> None:
    vm = MicroVM(name="a", nixos={"some.option": None})
    assert loads_flake(dumps_json(Flake(guests=(vm,))), format="json").guest("a") == vm


def test_flake_to_dict_shape() -> None:
    flake = Flake(
        guests=(MicroVM(name="web"),),
        inputs=(
            *DEFAULT_INPUTS,
            Input(name="data", url="path:./data", flake=False),
        ),
        default="web",
    )
    data = flake_to_dict(flake)
    assert list(data) == ["description", "default", "inputs", "guests"]
    assert data["inputs"] == {
        "nixpkgs": {"url": "github:NixOS/nixpkgs/nixos-unstable"},
        "microvm": {"url": "github:microvm-nix/microvm.nix", "follows": {"nixpkgs": "nixpkgs"}},
        "data": {"url": "path:./data", "flake": False},
    }
    assert "name" not in data["guests"]["web"]
    assert flake_from_dict(data) == flake


def test_missing_inputs_mean_the_default_inputs() -> None:
    flake = flake_from_dict({"guests": {"web": {}}})
    assert flake.inputs == DEFAULT_INPUTS
    assert flake.guest("web") == MicroVM(name="web")
    assert flake_from_dict({"inputs": {}}).inputs == ()


def test_load_flake_file(tmp_path: Path) -> None:
    flake = Flake(guests=(MicroVM(name="web", mem=1024),))
    toml_file = tmp_path / "nixgen.toml"
    toml_file.write_text(dumps_toml(flake), encoding="utf-8")
    json_file = tmp_path / "nixgen.json"
    json_file.write_text(dumps_json(flake), encoding="utf-8")
    assert load_flake_file(toml_file) == flake
    assert load_flake_file(json_file) == flake
    toml_file.write_text('[guests.web]\nmem = "lots"\n', encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        load_flake_file(toml_file)
    assert info.value.source == str(toml_file)
    assert str(toml_file) in str(info.value)


def test_unmounted_volume_round_trips() -> None:
    vm = MicroVM(name="a", volumes=(Volume(image="swap.img", mount_point=None, size=64),))
    assert to_dict(vm)["volumes"] == [{"image": "swap.img", "size": 64}]
    assert to_dict(vm, nulls=True)["volumes"] == [
        {"image": "swap.img", "mountPoint": None, "size": 64}
    ]
    assert flake_from_dict(flake_to_dict(Flake(guests=(vm,)))) == Flake(guests=(vm,))
    assert loads_flake(dumps_toml(Flake(guests=(vm,)))).guest("a") == vm


# ----------------------------------------------------------------- known round-trip bugs


@pytest.mark.parametrize(
    "vm",
    [
        MicroVM(name="a", vfkit=VfkitOptions(log_level=None)),
        MicroVM(name="a", virtiofsd=VirtiofsdOptions(group=None)),
        MicroVM(name="a", virtiofsd=VirtiofsdOptions(inode_file_handles=None)),
    ],
    ids=["vfkit.logLevel", "virtiofsd.group", "virtiofsd.inodeFileHandles"],
)
def test_none_over_a_non_none_default_round_trips(vm: MicroVM) -> None:
    assert from_dict(MicroVM, json.loads(json.dumps(to_dict(vm)))) == vm


def test_toml_keeps_the_order_of_inputs() -> None:
    flake = Flake(
        inputs=(
            Input(
                name="microvm", url="github:microvm-nix/microvm.nix", follows={"nixpkgs": "nixpkgs"}
            ),
            Input(name="nixpkgs", url="github:NixOS/nixpkgs/nixos-unstable"),
        )
    )
    assert flake_from_dict(flake_to_dict(flake)) == flake  # the dict keeps it
    assert [i.name for i in loads_flake(dumps_toml(flake)).inputs] == ["microvm", "nixpkgs"]


# ----------------------------------------------------------------- reading errors


def _problems(text: str, fmt: str = "toml") -> list[Problem]:
    with pytest.raises(ValidationError) as info:
        loads_flake(text, format=fmt)
    return info.value.problems


def _by_path(problems: list[Problem]) -> dict[str, Problem]:
    out = {p.path: p for p in problems}
    assert len(out) == len(problems), f"two problems share a path: {problems}"
    return out


MANY_MISTAKES = """\
description = "test"
binaryCash = true

[inputs]
nixpkgs = 3

[guests.web]
hypervisor = "qemuu"
memm = 512
vcpu = "2"
balloon = "yes"
interfaces = [{ type = "tap" }]

[[guests.web.shares]]
tag = "data"
source = "/srv"
mountPoint = "/srv"
proto = "nfs"

[[guests.web.volumes]]
image = "var.img"
mountPoint = "/var"

[guests.db]
kernelParams = "quiet"
qemu = { machine = 35, serialConsol = false }
"""


def test_one_error_lists_every_problem_with_its_path() -> None:
    with pytest.raises(ValidationError) as info:
        loads_flake(MANY_MISTAKES, source="nixgen.toml")
    err = info.value
    problems = _by_path(err.problems)
    assert set(problems) == {
        "binaryCash",
        'inputs["nixpkgs"]',
        'guests["web"].hypervisor',
        'guests["web"].memm',
        'guests["web"].vcpu',
        'guests["web"].balloon',
        'guests["web"].interfaces[0].id',
        'guests["web"].shares[0].proto',
        'guests["web"].volumes[0].size',
        'guests["db"].kernelParams',
        'guests["db"].qemu.machine',
        'guests["db"].qemu.serialConsol',
    }
    assert all(not p.warning for p in err.problems)
    assert err.source == "nixgen.toml"
    text = str(err)
    assert text.startswith("12 problems in nixgen.toml:")
    for path in problems:
        assert path in text


def test_unknown_keys_suggest_the_closest_name() -> None:
    problems = _by_path(_problems(MANY_MISTAKES))
    assert problems['guests["web"].memm'].message == "unknown setting"
    assert problems['guests["web"].memm'].hint == "did you mean 'mem'?"
    assert problems["binaryCash"].hint == "did you mean 'binaryCache'?"
    assert problems['guests["db"].qemu.serialConsol'].hint == "did you mean 'serialConsole'?"


def test_unknown_key_without_close_match_lists_the_known_keys() -> None:
    problems = _by_path(_problems("[guests.web.vsock]\nzzzzzz = 1\n"))
    hint = problems['guests["web"].vsock.zzzzzz'].hint
    assert hint == "known keys: cid"


def test_snake_case_keys_are_pointed_at_the_option_name() -> None:
    problems = _by_path(_problems("[[guests.web.volumes]]\nimage='v'\nmount_point='/v'\nsize=1\n"))
    assert problems['guests["web"].volumes[0].mount_point'].hint == "did you mean 'mountPoint'?"


def test_wrong_types_say_what_to_write() -> None:
    problems = _by_path(_problems(MANY_MISTAKES))
    enum = problems['guests["web"].hypervisor']
    assert enum.message == "is not one of the allowed values"
    assert enum.value == "qemuu"
    assert "'qemu'" in enum.hint and "'cloud-hypervisor'" in enum.hint
    proto = problems['guests["web"].shares[0].proto']
    assert proto.value == "nfs" and "'9p'" in proto.hint and "'virtiofs'" in proto.hint
    number = problems['guests["web"].vcpu']
    assert (number.message, number.value) == ("expected a whole number", "2")
    assert "without quotes" in number.hint
    flag = problems['guests["web"].balloon']
    assert (flag.message, flag.value) == ("expected true or false", "yes")
    assert problems['guests["db"].kernelParams'].message == "expected a list"
    machine = problems['guests["db"].qemu.machine']
    assert (machine.message, machine.value) == ("expected a string", 35)
    assert "quotes" in machine.hint
    assert problems['inputs["nixpkgs"]'].message == "expected a URL or a table"


def test_missing_required_keys() -> None:
    problems = _by_path(_problems(MANY_MISTAKES))
    for path, key in (
        ('guests["web"].interfaces[0].id', "id"),
        ('guests["web"].volumes[0].size', "size"),
    ):
        assert problems[path].message == "is required"
        assert problems[path].hint == f"set {key}"


def test_booleans_are_not_numbers_and_numbers_not_booleans() -> None:
    problems = _by_path(_problems("[guests.web]\nmem = true\nballoon = 1\n"))
    assert problems['guests["web"].mem'].message == "expected a whole number"
    assert problems['guests["web"].balloon'].message == "expected true or false"


def test_union_and_mapping_errors() -> None:
    text = """\
[guests.web]
packages = [3, { _nix = 1 }]
nixos = { a = { _nix = 2 } }
credentialFiles = { token = 7 }

[guests.web.virtiofsd]
threadPoolSize = true
"""
    problems = _by_path(_problems(text))
    assert problems['guests["web"].packages[0]'].value == 3
    assert problems['guests["web"].packages[1]'].value == {NIX_KEY: 1}
    assert problems['guests["web"].virtiofsd.threadPoolSize'].message == (
        "expected a string or a number"
    )
    nix = problems['guests["web"].nixos["a"]']
    assert nix.message == "expected a Nix expression"
    assert NIX_KEY in nix.hint
    assert problems['guests["web"].credentialFiles["token"]'].message == "expected a string"


def test_lists_of_tables_must_hold_tables() -> None:
    problems = _by_path(_problems('[guests.web]\ninterfaces = ["eth0"]\n'))
    assert (
        problems['guests["web"].interfaces[0]'].message == "expected a table of Interface settings"
    )


def test_shapes_of_the_top_level() -> None:
    problems = _by_path(_problems("guests = [1]\ninputs = 3\n"))
    assert set(problems) == {"guests", "inputs"}
    problems = _by_path(_problems("[guests]\nweb = 1\n"))
    assert problems['guests["web"]'].hint == "write [guests.web]"
    problems = _by_path(_problems("[1]", "json"))
    assert problems["json"].message == "expected a table at the top"


def test_toml_syntax_error() -> None:
    with pytest.raises(ValidationError) as info:
        loads_flake("[guests.web\nmem = 1\n", source="nixgen.toml")
    (problem,) = info.value.problems
    assert problem.path == "nixgen.toml"
    assert problem.message.startswith("cannot read toml:")
    assert "line 1" in problem.message
    assert problem.hint == "fix the syntax"
    assert isinstance(info.value.__cause__, tomllib.TOMLDecodeError)
    (problem,) = _problems("mem = ")
    assert problem.path == "toml"


def test_json_syntax_error() -> None:
    (problem,) = _problems('{"guests": ', "json")
    assert problem.path == "json"
    assert problem.message.startswith("cannot read json:")


def test_from_dict_collects_everything_for_one_object() -> None:
    with pytest.raises(ValidationError) as info:
        from_dict(Interface, {"type": "wifi", "idd": "x"})
    assert {p.path for p in info.value.problems} == {
        "Interface.type",
        "Interface.idd",
        "Interface.id",
    }
    with pytest.raises(ValidationError) as info:
        from_dict(Device, {"bus": "pci"}, path="devices[3]")
    assert [p.path for p in info.value.problems] == ["devices[3].path"]


def test_valid_documents_read_as_expected() -> None:
    text = """\
description = "two guests"
default = "db"

[inputs]
nixpkgs = "github:NixOS/nixpkgs/nixos-24.11"
microvm = { url = "github:microvm-nix/microvm.nix", follows = { nixpkgs = "nixpkgs" } }

[guests.web]
mem = 1024
interfaces = [{ type = "user", id = "eth0" }]
forwardPorts = [{ from = "host", host = { port = 8080 }, guest = { port = 80 } }]
users = [{ name = "root", sshKeys = ["ssh-ed25519 AAAA me"] }]

[[guests.web.shares]]
tag = "ro-store"
source = "/nix/store"
mountPoint = "/nix/.ro-store"

[guests.db]
hypervisor = "cloud-hypervisor"
"""
    flake = loads_flake(text)
    assert flake.description == "two guests" and flake.default == "db"
    assert flake.input("nixpkgs") == Input(name="nixpkgs", url="github:NixOS/nixpkgs/nixos-24.11")
    web = flake.guest("web")
    assert web.mem == 1024
    assert web.interfaces == (Interface.user(),)
    assert web.forward_ports == (ForwardPort.tcp(8080, 80),)
    assert web.users == (User(name="root", ssh_keys=("ssh-ed25519 AAAA me",)),)
    assert web.shares == (Share.ro_store(),)
    assert flake.guest("db").hypervisor == "cloud-hypervisor"
    assert [g.name for g in flake.guests] == ["web", "db"]


@pytest.mark.parametrize(
    "text",
    [
        '[guests.web]\npackages = [{ _nix = "" }]\n',
        '[guests.web]\nmodules = [{ _nix = " " }]\n',
        '[guests.web]\nnixos = { a = { _nix = "" } }\n',
    ],
    ids=["packages", "modules", "nixos"],
)
def test_blank_nix_expression_is_a_validation_problem(text: str) -> None:
    (problem,) = _problems(text)
    assert problem.path.startswith('guests["web"].')


def test_name_inside_a_guest_table_is_rejected() -> None:
    problems = _by_path(_problems('[guests.web]\nname = "db"\n'))
    assert 'guests["web"].name' in problems


def test_inputs_are_written_as_tables_in_their_order() -> None:
    text = dumps_toml(Flake())
    assert '[inputs.nixpkgs]\nurl = "github:NixOS/nixpkgs/nixos-unstable"\n' in text
    assert text.index("[inputs.nixpkgs]") < text.index("[inputs.microvm]")
    # The short form `name = "url"` is still read.
    flake = loads_flake('[inputs]\nnixpkgs = "github:a/b"\nmicrovm = "github:c/d"\n')
    assert [(i.name, i.url) for i in flake.inputs] == [
        ("nixpkgs", "github:a/b"),
        ("microvm", "github:c/d"),
    ]


def test_null_is_written_as_nix_null_in_both_formats() -> None:
    vm = MicroVM(name="a", vfkit=VfkitOptions(log_level=None))
    assert to_dict(vm)["vfkit"] == {"logLevel": {NIX_KEY: "null"}}
    assert to_dict(vm, nulls=True)["vfkit"] == {"logLevel": None}
    flake = Flake(guests=(vm,))
    assert '[guests.a.vfkit.logLevel]\n_nix = "null"\n' in dumps_toml(flake)
    assert loads_flake(dumps_toml(flake)) == flake
    assert loads_flake(dumps_json(flake), format="json") == flake
    text = '{"guests": {"a": {"vfkit": {"logLevel": null}}}}'
    assert loads_flake(text, format="json").guest("a") == vm


def test_socket_null_means_no_control_socket() -> None:
    """microvm.socket defaults to a path upstream, but its type is nullOr str."""
    flake = loads_flake('[guests.web]\nsocket = { _nix = "null" }\n')
    vm = flake.guest("web")
    assert vm.socket == Nix("null")
    assert to_dict(vm)["socket"] == {NIX_KEY: "null"}
    assert loads_flake(dumps_toml(flake)) == flake
    assert loads_flake(dumps_json(flake), format="json") == flake
    assert MicroVM(name="web").socket is None  # unset: upstream's default socket


def test_null_where_the_default_is_unset_is_a_problem() -> None:
    problems = _by_path(_problems('[guests.web]\ncpu = { _nix = "null" }\n'))
    problem = problems['guests["web"].cpu']
    assert "cannot be null" in problem.message and problem.hint == "remove the key"
    # Other Nix is not a value of a typed setting.
    problems = _by_path(
        _problems('[guests.web.vfkit]\nlogLevel = { _nix = "lib.mkDefault null" }\n')
    )
    assert problems['guests["web"].vfkit.logLevel'].message == "is not one of the allowed values"


def test_none_in_a_free_value_cannot_be_written_to_toml() -> None:
    vm = MicroVM(name="a", nixos={"x": None, "y": {"z": [1, None]}}, extra={"e": None})
    with pytest.raises(ValidationError) as info:
        dumps_toml(Flake(guests=(vm,)))
    paths = [p.path for p in info.value.problems]
    assert paths == [
        'guests["a"].extra["e"]',
        'guests["a"].nixos["x"]',
        'guests["a"].nixos["y"]["z"][1]',
    ]
    assert all(
        p.message == "TOML has no null" and 'Nix("null")' in p.hint for p in info.value.problems
    )
    assert loads_flake(dumps_json(Flake(guests=(vm,))), format="json").guest("a") == vm


def test_expected_types_are_named_as_a_data_file_writes_them() -> None:
    problems = _by_path(_problems("[guests.web]\nmodules = [3]\n"))
    problem = problems['guests["web"].modules[0]']
    assert problem.message == 'expected a Nix expression ({ _nix = "…" }) or a path string'
    assert problem.hint == 'write a Nix expression ({ _nix = "…" }) or a path string'


def test_a_json_top_level_that_is_not_an_object() -> None:
    with pytest.raises(ValidationError) as info:
        loads_flake("[1]", format="json", source="x.json")
    (problem,) = info.value.problems
    assert problem.path == "x.json" and problem.value == "list"
    assert '{ "guests": ' in problem.hint
    assert info.value.source == "x.json"


def test_name_inside_an_input_table_is_rejected() -> None:
    text = '[inputs.nixpkgs]\nurl = "github:a/b"\nname = "other"\n'
    problem = _by_path(_problems(text))['inputs["nixpkgs"].name']
    assert problem.value == "other" and "remove name" in problem.hint


def test_values_nix_cannot_hold_are_problems_in_typed_settings() -> None:
    text = json.dumps(
        {"guests": {"web": {"mem": 2**64, "preStart": "a\x00b", "modules": ["m\x00.nix"]}}}
    )
    problems = _by_path(_problems(text, "json"))
    assert problems['guests["web"].mem'].message == "does not fit in Nix's 64-bit integers"
    assert "NUL" in problems['guests["web"].preStart'].message
    assert "NUL" in problems['guests["web"].modules[0]'].message
    problems = _by_path(
        _problems(json.dumps({"guests": {"web": {"virtiofsd": {"threadPoolSize": 2**64}}}}), "json")
    )
    # The number is a number; what is wrong is its size, not its type.
    assert problems['guests["web"].virtiofsd.threadPoolSize'].message.startswith("does not fit")


def test_keys_of_free_tables_are_checked_too() -> None:
    problems = _by_path(
        _problems(json.dumps({"guests": {"web": {"nixos": {"a": {"b\x00": 1}}}}}), "json")
    )
    assert "NUL" in problems['guests["web"].nixos["a"]["b\x00"]'].message


def test_toml_nested_deeper_than_the_compiled_parser_takes() -> None:
    """tomli stops at 400 levels where tomllib reads on: such a file is read again
    by tomllib, so what nixgen reports is what it always did (the nesting limit
    of free values), not a TOML error."""
    depth = 450
    text = f"[guests.vm.nixos]\nx = {'[' * depth}{']' * depth}\n"
    with pytest.raises(RecursionError):
        tomli.loads(text)
    with pytest.raises(ValidationError, match="nested more than 100 levels deep") as info:
        loads_flake(text)
    assert not any("cannot read toml" in p.message for p in info.value.problems)
