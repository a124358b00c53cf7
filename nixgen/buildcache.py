"""The no-op cache of ``nixgen build``: what the last build produced, valid while
nothing nix would read has changed and its paths are still in the store.

Standard library only, so that a no-op ``nixgen build`` is answered from
``.nixgen/build-cache.json`` before nixgen imports nix's side (attrs, the Nix
runner, the model): it must not be slower than ``nix build`` typed by hand.
:mod:`nixgen.build` writes the cache and reads it through this module.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence

# typing and pathlib cost ~9 ms to import together; a no-op build needs neither
# (mypy reads a TYPE_CHECKING of one's own as typing's).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "ARTIFACTS",
    "CACHE_FILE",
    "STATE_DIR",
    "cached_entries",
    "fingerprint",
    "read_cache",
]

STATE_DIR = ".nixgen"
CACHE_FILE = "build-cache.json"
_CACHE_VERSION = 3  # 3: BLAKE2b keys
#: the store paths of a cached result (its keys in the cache file); all must exist
ARTIFACTS = ("runner", "kernel", "initrd", "reg_info", "toplevel", "store_disk")
#: the artifacts every guest has (the others may be null)
_ALWAYS = frozenset({"runner", "kernel", "initrd", "toplevel"})
# Never part of what nix sees as the flake's source, or changing all the time.
_IGNORED_DIRS = frozenset({".git", STATE_DIR, "__pycache__"})
_IGNORED_SUFFIXES = (".img", ".qcow2", ".raw", ".sock", ".socket")


def fingerprint(
    directory: str | os.PathLike[str],
    *,
    override_inputs: Mapping[str, str],
    options: Mapping[str, str],
    extra_args: Sequence[str] = (),
) -> str:
    """What a build depends on that nixgen can see without running nix.

    Sizes and modification times of every file of the flake folder (hashing
    contents would cost time on large trees) and the nix settings.  Volumes
    and sockets are left out: a running guest changes them all the time and
    nix never reads them.  The guests asked for are not part of it: the
    cache keeps every guest built under one fingerprint.
    """
    import hashlib  # (OpenSSL's, ~3 ms: `nixgen list` reads STATE_DIR here and hashes nothing)

    digest = hashlib.blake2b(digest_size=32)
    digest.update(json.dumps([_CACHE_VERSION]).encode())
    digest.update(
        json.dumps(
            [sorted(override_inputs.items()), sorted(options.items()), list(extra_args)]
        ).encode()
    )
    for path, stat in sorted(_files(os.fspath(directory))):
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    for value in override_inputs.values():
        local = value.removeprefix("path:")
        if local.startswith("/") and os.path.isdir(local):
            for path, stat in sorted(_files(local)):
                digest.update(f"{local}/{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return str(digest.hexdigest())


def _files(root: str) -> Iterable[tuple[str, os.stat_result]]:
    """Each file under ``root``: its path relative to ``root``, and its stat."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in _IGNORED_DIRS and not d.startswith("result")]
        relative = os.path.relpath(folder, root)
        for name in files:
            if name.endswith(_IGNORED_SUFFIXES) or name.startswith("result"):
                continue
            try:
                stat = os.stat(os.path.join(folder, name))
            except OSError:
                continue
            yield (name if relative == "." else os.path.join(relative, name)), stat


def read_cache(state: str | os.PathLike[str], key: str) -> dict[str, Any] | None:
    """The cache file under ``state`` when it was written under fingerprint ``key``."""
    try:
        with open(os.path.join(state, CACHE_FILE), encoding="utf-8") as file:
            data = json.load(file)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("key") != key:
        return None
    if not isinstance(data.get("results"), dict):
        return None
    return data


def cached_entries(
    state: str | os.PathLike[str], key: str, names: Sequence[str] | None
) -> dict[str, dict[str, Any]] | None:
    """The cached results of ``names`` (None: every guest) as stored, or None when
    nix must run: another fingerprint, a guest never built under it, or a path
    garbage collection removed since."""
    data = read_cache(state, key)
    if data is None:
        return None
    entries = data["results"]
    if names is None:
        if data.get("complete") is not True:
            return None
        wanted = list(entries)
    else:
        wanted = list(names)
        if any(name not in entries for name in wanted):
            return None
    found: dict[str, dict[str, Any]] = {}
    for name in wanted:
        entry = entries[name]
        if not isinstance(entry, dict):
            return None
        paths = [entry.get(k) for k in ARTIFACTS]
        if any(
            not isinstance(p, str) if k in _ALWAYS else p is not None and not isinstance(p, str)
            for k, p in zip(ARTIFACTS, paths, strict=True)
        ):
            return None
        if not all(os.path.exists(p) for p in paths if p is not None):
            return None
        found[name] = entry
    return found
