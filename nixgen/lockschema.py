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

import json
from importlib import resources
from pathlib import Path
from typing import Any

from nixgen.build import flake_ref
from nixgen.errors import NixgenError
from nixgen.nixcmd import NixRunner
from nixgen.render import atomic_write
from nixgen.schema import Schema, cache_file, cached_schema, lock_source, locked_input

__all__ = ["LockSchemaError", "lock_schema"]


class LockSchemaError(NixgenError):
    """The option schema of the flake's locked microvm input could not be read:
    no such input, or nix failed."""


def _nix_file(name: str) -> Path:
    return Path(str(resources.files("nixgen") / name))


def _locked(locks: dict[str, Any], name: str, directory: Path) -> dict[str, Any]:
    locked = locked_input(locks, name)
    if locked is None:
        raise LockSchemaError(
            f"the flake in {directory} has no locked {name!r} input",
            hint=f"add a {name} input (nixgen's flakes have one) and run nix flake lock",
        )
    return locked


def lock_schema(directory: Path, *, nix: NixRunner | None = None) -> Schema:
    """The schema of the ``microvm`` input the flake in ``directory`` has locked."""
    nix = nix or NixRunner()
    directory = directory.resolve()
    try:
        meta = json.loads(
            nix.run(["flake", "metadata", "--json", flake_ref(directory)]).stdout or "{}"
        )
    except NixgenError as err:
        raise LockSchemaError(
            f"nix could not lock the flake in {directory}: {err.message}",
            hint=err.hint or "run nix flake lock in the project folder",
        ) from err
    locks = meta.get("locks") or {}
    microvm = _locked(locks, "microvm", directory)
    nixpkgs = _locked(locks, "nixpkgs", directory)
    cached = cached_schema(directory, microvm)
    if cached is not None:
        return cached
    cache = cache_file(directory, microvm)
    source = lock_source(microvm)
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
            f"({lock_source(microvm)}): {getattr(err, 'message', err)}",
            hint="nixgen checks against the schema it ships instead",
        ) from err
    parsed["source"] = {"locked": microvm}
    cache.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(cache, json.dumps(parsed, sort_keys=True) + "\n")
    _prune(cache.parent)
    return schema


def _prune(folder: Path, keep: int = 8) -> None:
    """Keep the newest few schemas (a few pins, or runs with and without overrides)."""
    entries = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[keep:]:
        old.unlink(missing_ok=True)
