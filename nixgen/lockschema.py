"""The option schema of the microvm.nix a flake has locked, read with nix.

A flake pinned to an older or newer microvm.nix than the one nixgen ships
should be checked against its own options.  :func:`lock_schema` asks nix for
the flake's lock (``nix flake metadata --json``: the overrides of ``nix``
apply, nothing is written), then evaluates ``lockschema.nix`` once: the
locked ``microvm`` input's option declarations, read with the locked
``nixpkgs``' lib by the same walker as the packaged schema
(``schema.nix``).  The result is cached under ``.nixgen/schema/``, keyed by
the input's narHash (and the walker's own hash), so the next check costs one
file read.  Any failure raises :class:`LockSchemaError`; callers fall back to
:func:`nixgen.schema.packaged_schema`.
"""

from __future__ import annotations

import hashlib
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

from nixgen.errors import NixgenError
from nixgen.nixcmd import Nix
from nixgen.render import atomic_write
from nixgen.schema import Schema

__all__ = ["CACHE_DIR", "LockSchemaError", "lock_schema"]

#: Where read schemas are kept, inside the project folder.
CACHE_DIR = Path(".nixgen") / "schema"


class LockSchemaError(NixgenError):
    """The locked microvm input's schema could not be read (no such input, nix failed)."""


def _nix_file(name: str) -> Path:
    return Path(str(resources.files("nixgen") / name))


def _walker_hash() -> str:
    """Changes when nixgen reads schemas differently: old cache entries then go unused."""
    digest = hashlib.sha256()
    for name in ("schema.nix", "lockschema.nix"):
        digest.update(_nix_file(name).read_bytes())
    return digest.hexdigest()[:12]


def _locked_node(locks: dict[str, Any], name: str, directory: Path) -> dict[str, Any]:
    """The ``locked`` attributes of the root's input ``name``."""
    nodes = locks.get("nodes") or {}
    root = str(locks.get("root", "root"))
    ref = ((nodes.get(root) or {}).get("inputs") or {}).get(name)
    node = _resolve(nodes, root, ref)
    locked = (nodes.get(node) or {}).get("locked") if node is not None else None
    if not isinstance(locked, dict) or "narHash" not in locked:
        raise LockSchemaError(
            f"the flake in {directory} has no locked {name!r} input",
            hint=f"add a {name} input (nixgen's flakes have one) and run nix flake lock",
        )
    return locked


def _resolve(nodes: dict[str, Any], root: str, ref: object, depth: int = 0) -> str | None:
    """A node name, or a follows path (``["other", "nixpkgs"]``, from the root) to one."""
    if isinstance(ref, str) or ref is None or depth > 32:
        return ref if isinstance(ref, str) else None
    if not isinstance(ref, list):
        return None
    current = root
    for step in ref:
        inputs = (nodes.get(current) or {}).get("inputs") or {}
        found = _resolve(nodes, root, inputs.get(step), depth + 1)
        if found is None:
            return None
        current = found
    return current


def lock_schema(directory: Path, *, nix: Nix | None = None) -> Schema:
    """The schema of the ``microvm`` input the flake in ``directory`` has locked."""
    nix = nix or Nix()
    directory = directory.resolve()
    try:
        meta = json.loads(
            nix.run(["flake", "metadata", "--json", f"path:{directory}"]).stdout or "{}"
        )
    except NixgenError as err:
        raise LockSchemaError(
            f"nix could not lock the flake in {directory}: {err.message}",
            hint=err.hint or "run nix flake lock in the project folder",
        ) from err
    locks = meta.get("locks") or {}
    microvm = _locked_node(locks, "microvm", directory)
    nixpkgs = _locked_node(locks, "nixpkgs", directory)
    nar_hash = str(microvm["narHash"])
    key = re.sub(r"[^A-Za-z0-9-]", "_", nar_hash) + "-" + _walker_hash()
    cache = directory / CACHE_DIR / f"{key}.json"
    source = f"the flake's locked microvm input ({_describe(microvm)})"
    if cache.is_file():
        try:
            return Schema.from_data(json.loads(cache.read_text(encoding="utf-8")), source)
        except (ValueError, KeyError):
            pass  # a damaged cache entry is read again below
    try:
        data = nix.run(
            [
                "eval",
                "--json",
                "--impure",
                "--file",
                str(_nix_file("lockschema.nix")),
                "--argstr",
                "microvm",
                json.dumps(microvm),
                "--argstr",
                "nixpkgs",
                json.dumps(nixpkgs),
                "schema",
            ],
            overrides=False,
        ).stdout
        parsed = json.loads(data)
        schema = Schema.from_data(parsed, source)
    except (NixgenError, ValueError, KeyError) as err:
        raise LockSchemaError(
            f"nix could not read the option declarations of the locked microvm input "
            f"({_describe(microvm)}): {getattr(err, 'message', err)}",
            hint="nixgen checks against the schema it ships instead",
        ) from err
    parsed["source"] = {"locked": microvm}
    cache.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(cache, json.dumps(parsed, sort_keys=True) + "\n")
    return schema


def _describe(locked: dict[str, Any]) -> str:
    """``github:microvm-nix/microvm.nix/71beea0``, ``path:/src/microvm``, or the narHash."""
    kind = locked.get("type")
    if kind == "github" and "owner" in locked:
        rev = str(locked.get("rev", ""))[:7]
        return f"github:{locked['owner']}/{locked.get('repo')}" + (f"/{rev}" if rev else "")
    if kind in ("path", "git") and ("path" in locked or "url" in locked):
        return f"{kind}:{locked.get('path') or locked.get('url')}"
    return str(locked.get("narHash"))
