"""The one mapping between a guest model and the NixOS settings that stand for it.

A flake written by hand says ``microvm.mem = 1024;``, ``microvm = { vcpu =
2; };`` or ``services.nginx.enable = true;``; :mod:`nixgen.nix.read` reads
each guest into *flat settings*, one per option, keyed by the dotted option
path as Nix writes it::

    {"networking.hostName": "web", "microvm.mem": 1024, "services.nginx.enable": True}

Both directions live here:

- :func:`guest_sections` is what a guest's module sets, as nested attribute
  sets (:func:`nixgen.render.guest_module` writes them); :func:`to_settings`
  is the same, flat, as reading the module back gives it;
- :func:`model_from_settings` reads flat settings into a
  :class:`~nixgen.model.MicroVM` and the settings it cannot hold;
  :func:`from_settings` is its strict form: ``from_settings(to_settings(vm))
  == vm`` for every guest without module files or unresolved MAC addresses;
- :func:`set_option` and :func:`unset_option` change one option of a model.

The key ``system`` stands for the ``system`` argument of ``nixosSystem``.
Where things go:

- ``networking.hostName`` is the guest's ``name``; ``system.stateVersion`` is
  ``state_version``; ``system`` is ``system``;
- ``microvm.<option>`` goes to the field standing for that option (groups
  such as ``microvm.qemu.machine`` included); other ``microvm.*`` options go
  to ``extra``;
- everything else goes to ``nixos``, except what nixgen writes itself from
  fields: ``users.users.root.password = ""`` (``allow_empty_root_password``),
  ``services.openssh.enable`` (``ssh``), ``environment.systemPackages`` of
  ``pkgs.*`` (``packages``) and ``users.users.<name>`` with keys, groups and
  a hashed password (``users``), each taken only when :func:`to_settings` of
  the result gives back exactly the settings they came from.

A value the model cannot hold in its field (an expression such as
``lib.mkDefault 1024`` for ``mem``, a float for an integer, a wrong type) is
not guessed at: it stays out of the model, in the ``unmodelled`` settings
with the reason.  Module files (``imports``) are modules, not settings.
Nothing here reads or writes files.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any

import attrs

from nixgen.errors import NixgenError, OptionError, Problem, ValidationError, keyed
from nixgen.flake.errors import RenderError
from nixgen.model import Interface, MicroVM, Nix
from nixgen.model.convert import NIX_KEY, from_dict, nix_values, option_values, to_dict
from nixgen.model.fields import describe, group_class, option_name
from nixgen.model.guest import NON_MICROVM_FIELDS
from nixgen.nix.emit import attr_path, parse_attr_path, selection, to_nix

__all__ = [
    "HOSTNAME",
    "SYSTEM",
    "UNSET",
    "Unmodelled",
    "check_path",
    "flatten",
    "from_settings",
    "guest_sections",
    "merge_free_settings",
    "microvm_options",
    "model_from_settings",
    "model_options",
    "plain",
    "set_option",
    "to_settings",
    "unset_option",
]

HOSTNAME = "networking.hostName"
SYSTEM = "system"
STATE_VERSION = "system.stateVersion"


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


#: Marks an option to remove (in lists of changes).
UNSET: Any = _Unset()


@attrs.frozen
class Unmodelled:
    """A setting kept as written because the model cannot hold it (and why)."""

    key: str
    value: object
    reason: str
    #: set when the value has the wrong type or shape for the option (not an expression)
    hint: str | None = None


# ----------------------------------------------------------------- model → settings


def microvm_options(vm: MicroVM, extra_interfaces: Sequence[Interface] = ()) -> dict[str, Any]:
    """The ``microvm = { … }`` attrset of a guest (``extra_interfaces``: from its networks)."""
    interfaces = (*vm.resolved_interfaces(), *extra_interfaces)
    if vm.interfaces or not interfaces:
        values = option_values(vm)
        if interfaces:  # in place, so the options keep the order of the fields
            values[_INTERFACES] = [option_values(i) for i in interfaces]
    else:  # only its networks give it interfaces: a new key, placed by rebuilding
        values = option_values(attrs.evolve(vm, interfaces=interfaces))
    out = {k: v for k, v in values.items() if k not in _NON_MICROVM_KEYS}
    for key, value in vm.extra.items():
        _set_dotted(out, parse_attr_path(key), nix_values(value))
    return out


_INTERFACES = option_name(attrs.fields(MicroVM).interfaces)
_NON_MICROVM_KEYS = frozenset(
    option_name(f) for f in attrs.fields(MicroVM) if f.name in NON_MICROVM_FIELDS
)


def guest_sections(
    vm: MicroVM,
    interfaces: Sequence[Interface] = (),
    network: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """What a guest's module sets, as nested attribute sets, in the order it is written:
    its identity, its ``microvm`` options, its NixOS settings (when it has any).

    ``interfaces`` and ``network``: what the guest's networks add (see
    :func:`nixgen.network.guest_side`).
    """
    sections: list[dict[str, Any]] = [
        {"networking": {"hostName": vm.name}, "system": {"stateVersion": vm.state_version}},
        {"microvm": microvm_options(vm, interfaces)},
    ]
    nixos = _nixos_settings(vm, network)
    if nixos:
        sections.append(nixos)
    return sections


def to_settings(vm: MicroVM) -> dict[str, object]:
    """The flat settings nixgen writes for ``vm``, as :mod:`nixgen.nix.read` reads them back."""
    out: dict[str, object] = {SYSTEM: vm.system}
    for section in guest_sections(vm):
        out.update(flatten(section))
    return out


def flatten(tree: Mapping[str, Any], path: tuple[str, ...] = ()) -> Iterator[tuple[str, object]]:
    """Nested attribute sets as flat settings: non-empty sets are entered, as the reader does."""
    for key, value in tree.items():
        inner = (*path, str(key))
        if isinstance(value, Mapping) and value:
            yield from flatten(value, inner)
        else:
            yield attr_path(inner), _as_read(value)


def _as_read(value: object) -> object:
    """A value as reading it back gives it: lists for tuples, dicts for mappings."""
    if isinstance(value, Mapping):
        return {str(k): _as_read(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_as_read(v) for v in value]
    return value


def _parent(target: dict[str, Any], path: Sequence[str]) -> dict[str, Any]:
    """The set that holds the last attribute of ``path``, created on the way."""
    node = target
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    return node


def _set_dotted(target: dict[str, Any], path: list[str], value: Any) -> None:
    _parent(target, path)[path[-1]] = value


def _nixos_settings(vm: MicroVM, network: Mapping[str, Any] | None = None) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    users: dict[str, Any] = {}
    for user in vm.users:
        entry: dict[str, Any] = {}
        if user.name != "root":
            entry["isNormalUser"] = True
        if user.groups:
            entry["extraGroups"] = list(user.groups)
        if user.hashed_password is not None:
            entry["hashedPassword"] = user.hashed_password
        if user.ssh_keys:
            entry["openssh"] = {"authorizedKeys": {"keys": list(user.ssh_keys)}}
        users[user.name] = entry
    if vm.allow_empty_root_password:
        users.setdefault("root", {})["password"] = ""
    if users:
        settings["users"] = {"users": users}
    if vm.ssh_enabled:
        settings["services"] = {"openssh": {"enable": True}}
    if vm.packages:
        settings["environment"] = {
            "systemPackages": [
                p if isinstance(p, Nix) else selection("pkgs", parse_attr_path(p))
                for p in vm.packages
            ]
        }
    return merge_free_settings(settings, network or {}, vm.nixos)


def merge_free_settings(
    settings: dict[str, Any], generated: Mapping[str, Any], free: Mapping[str, Any]
) -> dict[str, Any]:
    """nixgen's own settings, then ``generated`` ones (networks), then the
    person's free ``nixos`` settings (dotted keys), merged into one tree."""
    for key, value in generated.items():
        _merge(settings, [key], value)
    for key, value in free.items():
        _merge(settings, parse_attr_path(key), nix_values(value))
    return settings


def _merge(target: dict[str, Any], path: list[str], value: Any) -> None:
    """Set a dotted key; nested dicts merge, so free settings extend nixgen's own."""
    node = _parent(target, path)
    last = path[-1]
    if isinstance(value, Mapping) and isinstance(node.get(last), dict):
        for k, v in value.items():
            _merge(node[last], [k], v)
    elif last in node and isinstance(node[last], dict):
        # A value here would silently drop settings nixgen writes below it.
        below = ", ".join(sorted(node[last]))
        raise RenderError(
            f"nixos setting {'.'.join(path)} would replace what nixgen sets below it ({below})",
            hint="set the individual options (e.g. with dotted keys) instead of the whole set",
        )
    else:
        node[last] = value


# ----------------------------------------------------------------- routing option paths

# The microvm options that fields of MicroVM stand for, by option name.
_MICROVM_FIELDS = {
    info.option: info for info in describe(MicroVM) if info.name not in NON_MICROVM_FIELDS
}
_DERIVED_PREFIXES = (
    ("users", "users"),
    ("services", "openssh", "enable"),
    ("environment", "systemPackages"),
)


def model_options() -> tuple[str, ...]:
    """The options the fields of :class:`~nixgen.model.MicroVM` stand for, as keys:
    ``system``, ``system.stateVersion``, ``microvm.hypervisor``, ``microvm.vcpu``, …
    (the NixOS settings the model derives, users and packages, are free)."""
    return (SYSTEM, STATE_VERSION, *(attr_path(("microvm", o)) for o in _MICROVM_FIELDS))


def _is_mapping_type(typ: object) -> bool:
    for member in typing.get_args(typ) or (typ,):
        origin = typing.get_origin(member)
        if origin is not None and isinstance(origin, type) and issubclass(origin, Mapping):
            return True
    return False


def check_path(path: Sequence[str]) -> None:
    """Raise :class:`OptionError` for a path no edit may set as such (``microvm`` as a whole)."""
    _route(tuple(path))


def _route(path: tuple[str, ...]) -> tuple[str, list[str]]:
    """Where an option path lives in a MicroVM's data: ("field"|"extra"|"nixos"|"name", path)."""
    if not path:
        raise OptionError("an empty option path", hint="name an option, e.g. microvm.mem")
    if path == (SYSTEM,):
        return "field", ["system"]
    if path == ("system", "stateVersion"):
        return "field", ["stateVersion"]
    if path == ("networking", "hostName"):
        return "name", []
    if path[0] != "microvm":
        return "nixos", list(path)
    rest = list(path[1:])
    if not rest:
        raise OptionError(
            "`microvm` as a whole cannot be set or removed here",
            hint="name the options one by one, e.g. microvm.mem and microvm.vcpu",
        )
    info = _MICROVM_FIELDS.get(rest[0])
    if info is None:
        return "extra", rest
    if len(rest) == 1:
        return "field", rest
    group = group_class(info.type)
    if group is not None:
        return _route_group(group, rest, rest[:1], 1)
    if _is_mapping_type(info.type):
        return "field", rest
    raise OptionError(
        f"microvm.{attr_path(rest[:1])} is one option; "
        f"microvm.{attr_path(rest)} is not an option inside it",
        hint=f"set microvm.{attr_path(rest[:1])} as a whole",
    )


def _route_group(group: type, rest: list[str], done: list[str], at: int) -> tuple[str, list[str]]:
    fields = {info.option: info for info in describe(group)}
    info = fields.get(rest[at])
    if info is None:
        # An option of the group that the model does not know: microvm.* goes to extra.
        return "extra", rest
    if at == len(rest) - 1:
        return "field", rest
    inner = group_class(info.type)
    if inner is not None:
        return _route_group(inner, rest, [*done, rest[at]], at + 1)
    if _is_mapping_type(info.type):
        return "field", rest
    raise OptionError(
        f"microvm.{attr_path(rest[: at + 1])} is one option; "
        f"microvm.{attr_path(rest)} is not an option inside it",
        hint=f"set microvm.{attr_path(rest[: at + 1])} as a whole",
    )


# ----------------------------------------------------------------- values as data


def plain(value: object) -> object:
    """A value read from Nix as data-file data: ``Nix`` and paths become ``{"_nix": …}``."""
    if isinstance(value, Nix):
        return {NIX_KEY: value.text}
    if isinstance(value, PurePosixPath):
        return {NIX_KEY: to_nix(value)}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _set_nested(data: dict[str, Any], path: Sequence[str], value: object) -> None:
    node = data
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {} if not isinstance(child, Mapping) or NIX_KEY in child else dict(child)
            node[part] = child
        node = child
    node[path[-1]] = value


def _pop_nested(data: dict[str, Any], path: Sequence[str]) -> bool:
    node: Any = data
    parents: list[tuple[dict[str, Any], str]] = []
    for part in path[:-1]:
        child = node.get(part) if isinstance(node, dict) else None
        if not isinstance(child, dict):
            return False
        parents.append((node, part))
        node = child
    if not isinstance(node, dict) or path[-1] not in node:
        return False
    del node[path[-1]]
    # An emptied group goes away (back to its default, None).
    for parent, part in reversed(parents):
        if parent[part]:
            break
        del parent[part]
    return True


def _table_set(table: dict[str, Any], path: list[str], value: object) -> None:
    """Set a dotted path in a free table (``nixos``, ``extra``) whose keys are dotted too."""
    for key in list(table):
        parts = parse_attr_path(key)
        if parts == path:
            table[key] = value
            return
        if len(parts) < len(path) and path[: len(parts)] == parts:
            inner = table[key]
            if isinstance(inner, Mapping) and set(inner) != {NIX_KEY}:
                copy = _thaw(inner)
                _set_nested(copy, path[len(parts) :], value)
                table[key] = copy
                return
            raise OptionError(
                f"{attr_path(path)} is inside {key}, which is set as a whole",
                hint=f"set {key} as a whole, or remove it first",
            )
        if len(parts) > len(path) and parts[: len(path)] == path:
            del table[key]  # the new value replaces what was set below it
    table[attr_path(path)] = value


def _table_pop(table: dict[str, Any], path: list[str]) -> bool:
    removed = False
    for key in list(table):
        parts = parse_attr_path(key)
        if parts[: len(path)] == path:
            del table[key]
            removed = True
        elif len(parts) < len(path) and path[: len(parts)] == parts:
            inner = table[key]
            if isinstance(inner, Mapping):
                copy = _thaw(inner)
                if _pop_nested(copy, path[len(parts) :]):
                    removed = True
                    if copy:
                        table[key] = copy
                    else:
                        del table[key]
    return removed


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_thaw(v) for v in value]
    return value


# ----------------------------------------------------------------- changing a model


def set_option(vm: MicroVM, key: str, value: object) -> MicroVM:
    """``vm`` with option ``key`` (``"microvm.mem"``, ``"services.nginx.enable"``) set.

    ``value`` is plain data (numbers, strings, lists, dicts) or ``Nix(…)``.
    Raises :class:`OptionError` for a path nixgen cannot place and
    :class:`~nixgen.errors.ValidationError` for a value of the wrong type.
    """
    data = _data(vm)
    _apply(data, tuple(parse_attr_path(key)), plain(value))
    return _build(data, vm.name)


def unset_option(vm: MicroVM, key: str) -> MicroVM:
    """``vm`` without option ``key`` (a field goes back to its default).

    Raises :class:`OptionError` when the model does not set ``key``.
    """
    data = _data(vm)
    if not _remove(data, tuple(parse_attr_path(key))):
        raise OptionError(f"guest {vm.name!r} does not set {key}")
    return _build(data, vm.name)


def _data(vm: MicroVM) -> dict[str, Any]:
    data = to_dict(vm)
    return _thaw(data)  # type: ignore[no-any-return]


def _build(data: Mapping[str, Any], name: str) -> MicroVM:
    return from_dict(MicroVM, data, path=keyed("guests", name))


def _apply(data: dict[str, Any], path: tuple[str, ...], value: object) -> None:
    where, sub = _route(path)
    if where == "name":
        raise OptionError(
            "networking.hostName is the guest's name",
            hint="rename the guest instead (`nixgen rename OLD NEW`)",
        )
    if where == "field":
        _set_nested(data, sub, value)
    elif where == "extra":
        _table_set(data.setdefault("extra", {}), sub, value)
    elif not _set_derived(data, path, value):
        _table_set(data.setdefault("nixos", {}), sub, value)


def _remove(data: dict[str, Any], path: tuple[str, ...]) -> bool:
    where, sub = _route(path)
    if where == "name":
        raise OptionError(
            "networking.hostName is the guest's name and cannot be removed",
            hint="rename the guest instead (`nixgen rename OLD NEW`)",
        )
    if where == "field":
        return _pop_nested(data, sub)
    if where == "extra":
        return _table_pop(data.get("extra", {}), sub)
    removed = _table_pop(data.get("nixos", {}), sub)
    return _unset_derived(data, path) or removed


def _set_derived(data: dict[str, Any], path: tuple[str, ...], value: object) -> bool:
    """Options nixgen writes from fields of its own: set those fields instead."""
    if path == ("services", "openssh", "enable") and isinstance(value, bool):
        data["ssh"] = value
        return True
    if path == ("users", "users", "root", "password") and value == "":
        data["allowEmptyRootPassword"] = True
        return True
    if path == ("environment", "systemPackages"):
        packages = _packages(value)
        if packages is not None:
            data["packages"] = packages
            return True
    return False


def _unset_derived(data: dict[str, Any], path: tuple[str, ...]) -> bool:
    """Remove an option nixgen writes from a field: change that field."""

    def covers(option: tuple[str, ...]) -> bool:
        return option[: len(path)] == path

    removed = False
    if covers(("services", "openssh", "enable")):
        if "ssh" in data:
            data.pop("ssh")
            removed = True
        if any(u.get("sshKeys") for u in data.get("users", [])):
            data["ssh"] = False  # keys alone turn sshd on
            removed = True
    if covers(("users", "users", "root", "password")) and data.pop("allowEmptyRootPassword", False):
        removed = True
    if covers(("environment", "systemPackages")) and data.pop("packages", None):
        removed = True
    users = data.get("users", [])
    kept: list[dict[str, Any]] = []
    for user in users:
        prefix = ("users", "users", str(user.get("name")))
        if covers(prefix):
            removed = True
            continue
        if path[:3] == prefix and len(path) > 3:
            fields = {
                ("extraGroups",): "groups",
                ("hashedPassword",): "hashedPassword",
                ("openssh", "authorizedKeys", "keys"): "sshKeys",
            }
            rest = path[3:]
            for option, field in fields.items():
                if option[: len(rest)] == rest and field in user:
                    user = {k: v for k, v in user.items() if k != field}
                    removed = True
        kept.append(user)
    if users:
        data["users"] = kept
    return removed


_PKGS = re.compile(r"pkgs\.([A-Za-z_][A-Za-z0-9_'-]*(?:\.[A-Za-z_][A-Za-z0-9_'-]*)*)\Z")


def _packages(value: object) -> list[object] | None:
    """``[ pkgs.htop (…) ]`` as the model's packages: names, or Nix for the rest."""
    if not isinstance(value, list | tuple):
        return None
    out: list[object] = []
    for item in value:
        if not (isinstance(item, Mapping) and set(item) == {NIX_KEY}):
            return None
        match = _PKGS.match(str(item[NIX_KEY]).strip())
        out.append(match.group(1) if match else dict(item))
    return out


# ----------------------------------------------------------------- settings → model


def model_from_settings(
    name: str, settings: Mapping[str, object]
) -> tuple[MicroVM, dict[str, Unmodelled]]:
    """A guest model from flat settings, and the settings it could not take.

    Never raises for a bad value: a setting the model cannot hold (wrong
    type, an expression where data is expected, a path nixgen cannot place)
    is returned in the second mapping with the reason, and the model keeps
    its default there.
    """
    unmodelled: dict[str, Unmodelled] = {}
    routed: dict[str, tuple[str, list[str], object]] = {}
    for key, value in settings.items():
        try:
            path = tuple(parse_attr_path(key))
            where, sub = _route(path)
        except NixgenError as err:
            unmodelled[key] = Unmodelled(key, value, err.message)
            continue
        if where == "name":
            if value != name:
                unmodelled[key] = Unmodelled(
                    key,
                    value,
                    f"the host name differs from the guest's name {name!r}"
                    if not isinstance(value, Nix)
                    else "an expression, not a literal",
                )
            continue
        routed[key] = (where, sub, value)
    derived, nixos_left = _derive_nixos(name, routed)
    for _ in range(len(routed) + 2):
        data: dict[str, Any] = {"name": name}
        data.update(derived)
        for key, (where, sub, value) in routed.items():
            if key in unmodelled or (where == "nixos" and key not in nixos_left):
                continue
            try:
                _place(data, where, sub, plain(value))
            except NixgenError as err:
                unmodelled[key] = Unmodelled(key, value, err.message)
        try:
            return _build(data, name), unmodelled
        except ValidationError as err:
            blamed = _blame(err.problems, name, routed, unmodelled)
            if not blamed:
                break
            for key, (reason, hint) in blamed.items():
                value = routed[key][2]
                if _has_nix(value):
                    unmodelled[key] = Unmodelled(
                        key,
                        value,
                        "an expression nixgen does not evaluate, where the model needs a value",
                    )
                else:
                    unmodelled[key] = Unmodelled(key, value, reason, hint)
    # Nothing to blame (should not happen): keep the whole guest as written.
    for key, (_, _, value) in routed.items():
        unmodelled.setdefault(key, Unmodelled(key, value, "the model cannot hold it"))
    return MicroVM(name=name), unmodelled


def from_settings(settings: Mapping[str, object], *, name: str | None = None) -> MicroVM:
    """The guest that flat settings stand for; the inverse of :func:`to_settings`.

    The name is ``networking.hostName`` unless ``name`` is given.  Unlike
    :func:`model_from_settings` it refuses what the model cannot hold:
    :class:`~nixgen.errors.ValidationError` lists each such setting and why.
    """
    if name is None:
        given = settings.get(HOSTNAME)
        if not isinstance(given, str):
            raise OptionError(
                f"the settings have no literal {HOSTNAME}, so the guest has no name",
                hint="pass name=…, or include networking.hostName",
            )
        name = given
    vm, unmodelled = model_from_settings(name, settings)
    if unmodelled:
        raise ValidationError(
            [
                Problem(
                    path=f"{keyed('guests', name)}.{u.key}",
                    message=u.reason,
                    hint=u.hint or "write a value the model can hold, or leave the option out",
                )
                for u in unmodelled.values()
            ]
        )
    return vm


def _place(data: dict[str, Any], where: str, sub: list[str], value: object) -> None:
    if where == "field":
        _set_nested(data, sub, value)
    elif where == "extra":
        _table_set(data.setdefault("extra", {}), sub, value)
    else:
        _table_set(data.setdefault("nixos", {}), sub, value)


def _blame(
    problems: Iterable[Problem],
    name: str,
    routed: Mapping[str, tuple[str, list[str], object]],
    unmodelled: Mapping[str, Unmodelled],
) -> dict[str, tuple[str, str]]:
    """The settings responsible for each problem of reading the model (longest match)."""
    prefix = keyed("guests", name) + "."
    places: dict[str, str] = {}
    for key, (where, sub, _) in routed.items():
        if key in unmodelled:
            continue
        if where == "field":
            places[key] = ".".join(sub)
        else:
            places[key] = keyed(where, attr_path(sub))
    blamed: dict[str, tuple[str, str]] = {}
    for problem in problems:
        rest = problem.path.removeprefix(prefix)
        best = None
        for key, place in places.items():
            matches = rest == place or rest.startswith((place + ".", place + "["))
            if matches and (best is None or len(place) > len(places[best])):
                best = key
        if best is None:
            head = re.split(r"[.\[]", rest, maxsplit=1)[0]
            for key, place in places.items():
                if re.split(r"[.\[]", place, maxsplit=1)[0] == head:
                    blamed.setdefault(key, (_reason(problem, rest, place), problem.hint))
            continue
        blamed.setdefault(best, (_reason(problem, rest, places[best]), problem.hint))
    return blamed


def _reason(problem: Problem, rest: str, place: str) -> str:
    """The problem, said of the option: ``[0].type: is not one of …`` inside a list."""
    shown = "" if problem.value is None else f" (got {_short(problem.value)})"
    inner = rest[len(place) :].lstrip(".") if rest.startswith(place) else ""
    return f"{inner + ': ' if inner else ''}{problem.message}{shown}"


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def _derive_nixos(
    name: str, routed: Mapping[str, tuple[str, list[str], object]]
) -> tuple[dict[str, Any], set[str]]:
    """Fields nixgen renders into NixOS settings, recognised in those settings.

    Returns the fields and the nixos keys left for ``nixos``.  A field is
    taken only when rendering it gives back exactly the settings it came
    from; otherwise the settings stay in ``nixos``.
    """
    nixos = {k: v for k, (where, _, v) in routed.items() if where == "nixos"}
    left = set(nixos)
    if not any(tuple(parse_attr_path(k))[: len(p)] == p for k in nixos for p in _DERIVED_PREFIXES):
        return {}, left
    fields: dict[str, Any] = {}
    used: set[str] = set()
    if nixos.get("users.users.root.password") == "":
        fields["allowEmptyRootPassword"] = True
        used.add("users.users.root.password")
    packages_value = nixos.get("environment.systemPackages")
    if packages_value is not None:
        packages = _packages(plain(packages_value))
        if packages is not None:
            fields["packages"] = packages
            used.add("environment.systemPackages")
    users: dict[str, dict[str, Any]] = {}
    user_keys: dict[str, list[str]] = {}
    spoiled: set[str] = set()
    for key, value in nixos.items():
        path = parse_attr_path(key)
        if path[:2] != ["users", "users"] or len(path) < 4 or key in used:
            continue
        user, rest = path[2], tuple(path[3:])
        entry = users.setdefault(user, {"name": user})
        user_keys.setdefault(user, []).append(key)
        if rest == ("isNormalUser",) and value is True and user != "root":
            continue
        if rest == ("extraGroups",) and isinstance(value, list | tuple) and _strings(value):
            entry["groups"] = list(value)
        elif rest == ("hashedPassword",) and isinstance(value, str):
            entry["hashedPassword"] = value
        elif (
            rest == ("openssh", "authorizedKeys", "keys")
            and isinstance(value, list | tuple)
            and _strings(value)
        ):
            entry["sshKeys"] = list(value)
        else:
            spoiled.add(user)
    chosen = []
    for user, entry in users.items():
        normal = f"users.users.{attr_path([user])}.isNormalUser"
        if user in spoiled or (user != "root" and normal not in user_keys[user]):
            continue
        chosen.append(entry)
        used.update(user_keys[user])
    if chosen:
        fields["users"] = chosen
    ssh = nixos.get("services.openssh.enable")
    has_keys = any(u.get("sshKeys") for u in chosen)
    if ssh is True:
        if not has_keys:
            fields["ssh"] = True
        used.add("services.openssh.enable")
    elif has_keys and "services.openssh.enable" not in nixos:
        fields["ssh"] = False  # keys alone would turn sshd on; it is not on here
    if not used:
        return {}, left
    # Keep only what renders back to exactly the settings it came from.
    try:
        vm = _build({"name": name, **fields}, name)
        rendered = to_settings(vm)
    except NixgenError:
        return {}, left
    back = {
        k: v
        for k, v in rendered.items()
        if any(tuple(parse_attr_path(k))[: len(p)] == p for p in _DERIVED_PREFIXES)
    }
    if back != {k: nixos[k] for k in used}:
        return {}, left
    return fields, left - used


def _strings(value: object) -> bool:
    return isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)


def _has_nix(value: object) -> bool:
    if isinstance(value, Nix | PurePosixPath):
        return True
    if isinstance(value, Mapping):
        return any(_has_nix(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_nix(v) for v in value)
    return False
