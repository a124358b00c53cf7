"""microvm.nix's option schema: which ``microvm.*`` names exist, and their types.

nixgen ships the schema of the microvm.nix release it was made with
(``nixgen/data/microvm-options.json``, written by
``scripts/microvm-options.py`` from upstream's option declarations); where
nix is available, :mod:`nixgen.lockschema` reads the same data off the
flake's own locked ``microvm`` input.  The validator asks a :class:`Schema`
about every ``microvm.*`` name and value the model does not type itself: an
unknown name gets the closest real one, a value its option's type.

Option trees map a name to an option ``{"type", "default", "readOnly",
"internal"}`` or to a namespace ``{"group": {…}}``; a type is ``{"name",
"description"}`` with ``values`` (enum), ``nested`` (element types) or
``options`` (a submodule's own options).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any, Literal

import attrs

from nixgen._repr import attrs_repr
from nixgen.model.expr import Nix

__all__ = [
    "CACHE_DIR",
    "NIXOS_NAMESPACES",
    "Issue",
    "Schema",
    "Side",
    "cached_schema",
    "known_schema",
    "packaged_schema",
]

Side = Literal["guest", "host"]
Tree = Mapping[str, Any]

_DATA = "data"
_SCHEMA_FILE = "microvm-options.json"
_NAMESPACES_FILE = "nixos-namespaces.json"

# Types whose values nixgen cannot judge from data: anything goes (packages,
# modules, functions, free-form attribute sets).
_OPAQUE_TYPES = frozenset(
    {
        "anything",
        "attrs",
        "deferredModule",
        "functionTo",
        "package",
        "pkgs",
        "raw",
        "shellPackage",
        "unspecified",
    }
)
_STRING_TYPES = frozenset(
    {"str", "nonEmptyStr", "singleLineStr", "lines", "separatedString", "strMatching", "string"}
)
_INT_RANGES: Mapping[str, tuple[int, int]] = {
    "int": (-(2**63), 2**63 - 1),
    "positiveInt": (1, 2**63 - 1),
    "unsignedInt": (0, 2**63 - 1),
    "unsignedInt8": (0, 2**8 - 1),
    "unsignedInt16": (0, 2**16 - 1),
    "unsignedInt32": (0, 2**32 - 1),
    "signedInt8": (-(2**7), 2**7 - 1),
    "signedInt16": (-(2**15), 2**15 - 1),
    "signedInt32": (-(2**31), 2**31 - 1),
}


@attrs.frozen
class Found:
    """Where a dotted name leads: an option (``option``), a namespace (``group``),
    or a place inside an option's value that the type leaves open (``open``)."""

    option: Tree | None = None
    group: Tree | None = None
    open: bool = False

    __repr__ = attrs_repr


@attrs.frozen
class Unknown:
    """A name the schema does not have: ``known`` is the longest prefix that
    exists, ``closest`` the real name nearest to what was written, if any."""

    name: str
    known: str
    closest: str | None
    choices: tuple[str, ...]
    #: the option whose value has no such key (a name below a plain option)
    below: str | None = None

    __repr__ = attrs_repr


@attrs.frozen(eq=False)
class Schema:
    """The option trees of microvm.nix's guest and host modules, and where they came from.

    Compared (and hashed) by identity: the validator remembers each guest's
    problems per schema.
    """

    guest: Tree
    host: Tree
    #: what this schema was read from, as ``nixgen check`` says it
    source: str
    #: the microvm.nix revision, when known
    rev: str | None = None

    @classmethod
    def from_data(cls, data: Mapping[str, Any], source: str) -> Schema:
        origin = data.get("source") or {}
        return cls(
            guest=data["guest"], host=data.get("host") or {}, source=source, rev=origin.get("rev")
        )

    def tree(self, side: Side) -> Tree:
        return self.guest if side == "guest" else self.host

    def lookup(self, side: Side, path: Sequence[str]) -> Found | Unknown:
        """What ``microvm.<path>`` is in the guest or host module."""
        node: Tree = self.tree(side)
        for i, part in enumerate(path):
            entry = node.get(part)
            if entry is None:
                return _unknown(path, i, node)
            if "group" in entry:
                node = entry["group"]
                continue
            return _inside(entry, path, i + 1)
        return Found(group=node)

    def unknown(self, side: Side, path: Sequence[str]) -> bool:
        """Whether ``microvm.<path>`` names nothing in that module."""
        return isinstance(self.lookup(side, path), Unknown)

    def problems(self, side: Side, path: Sequence[str], value: object) -> Iterator[Issue]:
        """What is wrong with setting ``microvm.<path>`` to ``value`` (maybe nothing).

        ``value`` may hold :class:`~nixgen.model.expr.Nix` expressions: those
        are Nix's to check.  A table set on a namespace is checked key by key.
        """
        found = self.lookup(side, path)
        if isinstance(found, Unknown):
            yield Issue(describe_unknown(found), _unknown_hint(found))
            return
        dotted = ".".join(["microvm", *path])
        if found.open or _is_nix(value):
            return
        if found.group is not None:
            if not isinstance(value, Mapping):
                yield Issue(
                    f"{dotted} is a namespace of options, not an option",
                    f"set one of its options: {_names(found.group)}",
                )
                return
            for key, inner in value.items():
                yield from self.problems(side, [*path, str(key)], inner)
            return
        assert found.option is not None
        typ = found.option["type"]
        mismatch = type_mismatch(typ, value)
        if mismatch is not None:
            yield Issue(
                f"{dotted} is {typ['description']}; {mismatch}",
                f"give {typ['description']} (microvm.nix's type), or an expression: "
                '{ _nix = "…" } in nixgen.toml, Nix("…") in Python',
            )

    __repr__ = attrs_repr


@attrs.frozen
class Issue:
    """One problem :meth:`Schema.problems` found: what is wrong, and what to do."""

    message: str
    hint: str

    __repr__ = attrs_repr


def _unknown_hint(unknown: Unknown) -> str:
    if unknown.closest is not None:
        return f"use {unknown.closest}"
    if unknown.choices:
        return f"{unknown.known} has: {', '.join(unknown.choices[:12])}" + (
            ", …" if len(unknown.choices) > 12 else ""
        )
    return f"set {unknown.below or unknown.known} itself"


def _unknown(path: Sequence[str], i: int, node: Tree, below: str | None = None) -> Unknown:
    choices = tuple(sorted(n for n in node if not n.startswith("_")))
    close = _close_matches(path[i], choices, n=1, cutoff=0.6)
    if not close:
        # A change of case only (vcpu, vCPU) is below difflib's cutoff.
        close = [c for c in choices if c.lower() == path[i].lower()]
    prefix = ".".join(["microvm", *path[:i]])
    return Unknown(
        name=".".join(["microvm", *path]),
        known=prefix,
        closest=f"{prefix}.{close[0]}" if close else None,
        choices=choices,
        below=below,
    )


def _inside(option: Tree, path: Sequence[str], i: int) -> Found | Unknown:
    """Follow the rest of ``path`` into an option's value (submodules, attribute sets)."""
    typ: Tree = option["type"]
    while i < len(path):
        name = typ["name"]
        if name in _OPAQUE_TYPES:
            return Found(option=option, open=True)
        nested = typ.get("nested") or {}
        if name == "nullOr" and "elemType" in nested:
            typ = nested["elemType"]
        elif name in ("attrsOf", "lazyAttrsOf") and "elemType" in nested:
            typ = nested["elemType"]  # any attribute name
            i += 1
        elif name in ("submodule", "submoduleWith"):
            options: Tree = typ.get("options") or {}
            entry = options.get(path[i])
            if entry is None:
                if "_freeformOptions" in options:
                    return Found(option=option, open=True)
                return _unknown(path, i, options, below=".".join(["microvm", *path[:i]]))
            if "group" in entry:
                return Found(option=option, open=True)
            typ = entry["type"]
            option = entry
            i += 1
        else:
            return Unknown(
                name=".".join(["microvm", *path]),
                known=".".join(["microvm", *path[:i]]),
                closest=None,
                choices=(),
                below=".".join(["microvm", *path[:i]]),
            )
    return Found(option={**option, "type": typ})


def describe_unknown(unknown: Unknown) -> str:
    """The message for a name that does not exist."""
    if unknown.below is not None and not unknown.choices:
        return f"{unknown.below} is an option, it has no {unknown.name.removeprefix(unknown.below + '.')!r} inside"
    message = f"microvm.nix has no option {unknown.name}"
    if unknown.closest is not None:
        return f"{message}; did you mean {unknown.closest}?"
    return message


def _names(tree: Tree, limit: int = 8) -> str:
    names = sorted(n for n in tree if not n.startswith("_"))
    shown = ", ".join(names[:limit])
    return shown + (", …" if len(names) > limit else "")


def _is_nix(value: object) -> bool:
    return isinstance(value, Nix) or (
        isinstance(value, Mapping) and set(value) == {"_nix"} and isinstance(value["_nix"], str)
    )


def type_mismatch(typ: Tree, value: object) -> str | None:
    """Why ``value`` (data from TOML or Python) is not of type ``typ``, or None when it is
    (or when only Nix can tell)."""
    if _is_nix(value):
        return None
    name = typ["name"]
    nested: Tree = typ.get("nested") or {}
    if name in _OPAQUE_TYPES:
        return None
    if name == "nullOr":
        return None if value is None else type_mismatch(nested["elemType"], value)
    if value is None:
        return "got null"
    if name == "enum":
        values = typ.get("values") or []
        if value in values and type(value) in {type(v) for v in values}:
            return None
        close = _close_matches(str(value), [str(v) for v in values], n=1)
        return f"{value!r} is not one of them" + (f" (did you mean {close[0]!r}?)" if close else "")
    if name == "either":
        left, right = nested.get("left"), nested.get("right")
        if left is None or right is None:
            return None
        if type_mismatch(left, value) is None or type_mismatch(right, value) is None:
            return None
        return f"got {_kind(value)}"
    if name == "coercedTo":
        return None
    if name == "bool":
        return None if isinstance(value, bool) else f"got {_kind(value)}"
    if name in _INT_RANGES:
        if not isinstance(value, int) or isinstance(value, bool):
            return f"got {_kind(value)}"
        low, high = _INT_RANGES[name]
        return None if low <= value <= high else f"{value} is out of range"
    if name in ("float", "number"):
        ok = isinstance(value, float | int) and not isinstance(value, bool)
        if ok and name == "float" and isinstance(value, float) and not math.isfinite(value):
            return "got a number that is not finite"
        return None if ok else f"got {_kind(value)}"
    if name in _STRING_TYPES:
        return None if isinstance(value, str) else f"got {_kind(value)}"
    if name in ("path", "pathInStore"):
        if isinstance(value, str) and not value.startswith("/"):
            return f"{value!r} is not an absolute path"
        return None if isinstance(value, str) else f"got {_kind(value)}"
    if name in ("listOf", "nonEmptyListOf"):
        if not isinstance(value, list | tuple):
            return f"got {_kind(value)}"
        if name == "nonEmptyListOf" and not value:
            return "got an empty list"
        for i, item in enumerate(value):
            inner = type_mismatch(nested["elemType"], item)
            if inner is not None:
                return f"element {i}: {inner}"
        return None
    if name in ("attrsOf", "lazyAttrsOf"):
        if not isinstance(value, Mapping):
            return f"got {_kind(value)}"
        for key, item in value.items():
            inner = type_mismatch(nested["elemType"], item)
            if inner is not None:
                return f"{key}: {inner}"
        return None
    if name in ("submodule", "submoduleWith"):
        if not isinstance(value, Mapping):
            return f"got {_kind(value)}"
        return _submodule_mismatch(typ.get("options") or {}, value)
    return None  # a type this schema reader does not know: Nix will tell


def _submodule_mismatch(options: Tree, value: Mapping[str, Any]) -> str | None:
    for key, item in value.items():
        entry = options.get(key)
        if entry is None:
            if "_freeformOptions" in options:
                continue
            close = _close_matches(str(key), list(options), n=1)
            return f"it has no option {key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
        if "group" in entry:
            if isinstance(item, Mapping):
                inner = _submodule_mismatch(entry["group"], item)
                if inner is not None:
                    return f"{key}.{inner}"
            continue
        inner = type_mismatch(entry["type"], item)
        if inner is not None:
            return f"{key}: {inner}"
    return None


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "an attribute set"
    return type(value).__name__


def _close_matches(word: str, choices: Sequence[str], n: int, cutoff: float = 0.6) -> list[str]:
    """difflib's, which is imported once a name is wrong (a correct check needs none)."""
    import difflib

    return difflib.get_close_matches(word, choices, n=n, cutoff=cutoff)


def _data(*parts: str) -> Path:
    """A file shipped in the nixgen package.  (Beside this module, not through
    importlib.resources: nixgen is installed as files, and importing that costs
    ``nixgen check`` 8 ms, tempfile and shutil with it.)"""
    return Path(__file__).parent.joinpath(*parts)


@cache
def packaged_schema() -> Schema:
    """The schema nixgen ships (microvm.nix at the revision it records)."""
    data = json.loads(_data(_DATA, _SCHEMA_FILE).read_text(encoding="utf-8"))
    rev = (data.get("source") or {}).get("rev") or "unknown"
    return Schema.from_data(data, f"packaged with nixgen (microvm.nix {rev[:7]})")


# ------------------------------------------------------------------ read off a lock

#: Where schemas read off a flake's locked microvm input are kept (nixgen.lockschema).
CACHE_DIR = Path(".nixgen") / "schema"


def locked_input(locks: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    """The ``locked`` attributes of the root's input ``name`` in a flake.lock graph."""
    nodes = locks.get("nodes") or {}
    root = str(locks.get("root", "root"))
    ref = ((nodes.get(root) or {}).get("inputs") or {}).get(name)
    node = _resolve(nodes, root, ref)
    locked = (nodes.get(node) or {}).get("locked") if node is not None else None
    return locked if isinstance(locked, dict) and "narHash" in locked else None


def _resolve(nodes: Mapping[str, Any], root: str, ref: object, depth: int = 0) -> str | None:
    """A node name, or a follows path (``["other", "nixpkgs"]``, from the root) to one."""
    if isinstance(ref, str):
        return ref
    if not isinstance(ref, list) or depth > 32:
        return None
    current = root
    for step in ref:
        inputs = (nodes.get(current) or {}).get("inputs") or {}
        found = _resolve(nodes, root, inputs.get(step), depth + 1)
        if found is None:
            return None
        current = found
    return current


@cache
def _walker_hash() -> str:
    """Changes when nixgen reads schemas differently: old cache entries then go unused."""
    import hashlib  # (4 ms at import: only once a lock is read)

    digest = hashlib.sha256()
    for name in ("schema.nix", "lockschema.nix"):
        digest.update(_data(name).read_bytes())
    return digest.hexdigest()[:12]


def cache_file(directory: Path, locked: Mapping[str, Any]) -> Path:
    """Where the schema of the locked microvm input ``locked`` is kept: by its narHash."""
    key = re.sub(r"[^A-Za-z0-9-]", "_", str(locked["narHash"]))
    return directory / CACHE_DIR / f"{key}-{_walker_hash()}.json"


def lock_source(locked: Mapping[str, Any]) -> str:
    """How ``nixgen check`` names a schema read off a lock."""
    kind = locked.get("type")
    if kind == "github" and "owner" in locked:
        rev = str(locked.get("rev", ""))[:7]
        where = f"github:{locked['owner']}/{locked.get('repo')}" + (f"/{rev}" if rev else "")
    elif kind in ("path", "git") and ("path" in locked or "url" in locked):
        where = f"{kind}:{locked.get('path') or locked.get('url')}"
    else:
        where = str(locked.get("narHash"))
    return f"the flake's locked microvm input ({where})"


def cached_schema(directory: Path, locked: Mapping[str, Any] | None = None) -> Schema | None:
    """The schema read earlier off the microvm input ``locked`` (default: the one in
    ``directory``'s flake.lock), if it is in the cache; no nix is run."""
    if locked is None:
        try:
            lock = json.loads((directory / "flake.lock").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        locked = locked_input(lock, "microvm") if isinstance(lock, dict) else None
        if locked is None:
            return None
    try:
        data = json.loads(cache_file(directory, locked).read_text(encoding="utf-8"))
        return Schema.from_data(data, lock_source(locked))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # not read yet, or a damaged entry: read again


def known_schema(directory: Path) -> Schema:
    """The best schema for a project without running nix: the one of its locked
    microvm input when ``nixgen check`` has read it, else the packaged one."""
    return cached_schema(directory) or packaged_schema()


@cache
def _namespaces() -> frozenset[str]:
    text = _data(_DATA, _NAMESPACES_FILE).read_text(encoding="utf-8")
    names = json.loads(text)["namespaces"]
    return frozenset(names)


class _Namespaces:
    """The top-level option names of NixOS (``services``, ``boot``, …), read on first use."""

    def __contains__(self, name: object) -> bool:
        return name in _namespaces()

    def closest(self, name: str) -> str | None:
        close = _close_matches(name, sorted(_namespaces()), n=1, cutoff=0.7)
        return close[0] if close else None


#: NixOS's top-level option names: a free setting outside them is most likely a typo.
NIXOS_NAMESPACES = _Namespaces()
