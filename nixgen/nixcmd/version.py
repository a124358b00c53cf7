"""Which ``nix`` is installed, and what its command line can do.

Every difference between Nix versions and flavours (Nix, Lix, Determinate
Nix) that nixgen relies on lives in :class:`Dialect`, so the rest of nixgen
asks "does this nix have X" instead of comparing version numbers itself.
"""

from __future__ import annotations

import enum
import os
import re
import shutil
import threading
from pathlib import Path

import attrs

from nixgen import process
from nixgen.nixcmd.errors import NixNotFoundError, NixVersionError
from nixgen.process.errors import CommandNotFoundError, CommandTimeoutError

__all__ = [
    "FLAKE_FEATURE_FLAGS",
    "MIN_VERSION",
    "Dialect",
    "Flavour",
    "NixVersion",
    "clear_version_cache",
    "detect_dialect",
    "find_nix",
    "message_file",
    "nix_version",
]

#: Enables flakes on every Nix from 2.4 on, whatever nix.conf says (and is
#: harmless where flakes are already on, as on Determinate Nix).
FLAKE_FEATURE_FLAGS: tuple[str, ...] = ("--extra-experimental-features", "nix-command flakes")


class Flavour(enum.StrEnum):
    """Who made the nix binary: the versions of each count separately."""

    NIX = "nix"
    LIX = "lix"
    DETERMINATE = "determinate"


@attrs.frozen(order=True)
class NixVersion:
    """A parsed ``nix --version``.

    ``major.minor.patch`` is the Nix-compatible version the binary reports
    (Lix reports its own numbers, 2.90 and up; Determinate Nix reports the
    upstream Nix version it is based on, its own release in ``flavour_version``).
    """

    major: int
    minor: int
    patch: int
    flavour: Flavour = attrs.field(default=Flavour.NIX, order=False)
    flavour_version: str | None = attrs.field(default=None, order=False)
    #: anything after the numbers (``pre20240101_abc``), kept for messages only
    suffix: str = attrs.field(default="", order=False, eq=False)

    # `nix (Nix) 2.8.0`, `nix (Lix, like Nix) 2.91.1`,
    # `nix (Determinate Nix 3.6.2) 2.29.0`, `nix (Nix) 2.24.0pre20240101_dirty`
    _PATTERN = re.compile(
        r"\((?P<label>[^)]*)\)\s+(?P<major>\d+)\.(?P<minor>\d+)(?:\.(?P<patch>\d+))?(?P<suffix>\S*)"
    )

    @classmethod
    def parse(cls, text: str) -> NixVersion:
        """Read the first line of ``nix --version``; raise NixVersionError if unreadable."""
        first = text.strip().splitlines()[0] if text.strip() else ""
        match = cls._PATTERN.search(first)
        if match is None:
            raise NixVersionError(
                f"cannot read the Nix version from `nix --version` output {first!r}",
                hint="nixgen expects a line like 'nix (Nix) 2.18.1'; check that the "
                "nix on PATH is Nix, Lix or Determinate Nix",
            )
        label = match["label"].strip()
        flavour = Flavour.NIX
        flavour_version: str | None = None
        if label.lower().startswith("lix"):
            flavour = Flavour.LIX
        elif label.lower().startswith("determinate"):
            flavour = Flavour.DETERMINATE
            own = re.search(r"(\d+(?:\.\d+)+)", label)
            flavour_version = own.group(1) if own else None
        return cls(
            major=int(match["major"]),
            minor=int(match["minor"]),
            patch=int(match["patch"] or 0),
            flavour=flavour,
            flavour_version=flavour_version,
            suffix=match["suffix"],
        )

    def at_least(self, major: int, minor: int, patch: int = 0) -> bool:
        """Whether the Nix-compatible version is ``major.minor.patch`` or newer."""
        return (self.major, self.minor, self.patch) >= (major, minor, patch)

    def __str__(self) -> str:
        number = f"{self.major}.{self.minor}.{self.patch}"
        if self.flavour is Flavour.LIX:
            return f"Lix {number}"
        if self.flavour is Flavour.DETERMINATE:
            return f"Determinate Nix {self.flavour_version or '?'} (Nix {number})"
        return f"Nix {number}"


#: Flakes and the `nix` command as nixgen uses them arrived in Nix 2.4.
MIN_VERSION = NixVersion(2, 4, 0)


@attrs.frozen
class Dialect:
    """What the command line of one nix version can do: the one place for
    version differences.  Build it with :meth:`for_version`."""

    version: NixVersion
    #: flags that enable flakes; the same on every version (see FLAKE_FEATURE_FLAGS)
    feature_flags: tuple[str, ...]
    #: `nix build --print-out-paths` (absent in 2.8: use `--json` instead, which all have)
    has_print_out_paths: bool
    #: `nix build --json` entries carry startTime/stopTime (parse them as optional anyway)
    build_json_has_times: bool
    #: `nix store diff-closures` (older: `nix diff-closures`)
    has_store_diff_closures: bool
    #: `nix derivation show` (older: `nix show-derivation`)
    has_derivation_show: bool
    #: `nix flake update INPUT…` updates single inputs (older: `nix flake lock --update-input`)
    flake_update_takes_inputs: bool
    #: eval errors print the "… while" trace before the message (older: after it)
    trace_before_message: bool
    #: flakes work without any flag (Determinate Nix)
    flakes_on_by_default: bool
    #: positions may read `«github:o/r/rev»/file.nix:L:C` instead of a /nix/store path
    lazy_trees: bool

    @classmethod
    def for_version(cls, version: NixVersion) -> Dialect:
        """The dialect of ``version``; raise NixVersionError if it predates flakes."""
        if not version.at_least(MIN_VERSION.major, MIN_VERSION.minor):
            raise NixVersionError(
                f"{version} is too old for nixgen: the `nix` command with flakes needs "
                f"Nix {MIN_VERSION.major}.{MIN_VERSION.minor} or newer",
                hint="upgrade Nix (https://nixos.org/download), e.g. to the version "
                "of your distribution's backports",
            )
        lix = version.flavour is Flavour.LIX
        det = version.flavour is Flavour.DETERMINATE
        return cls(
            version=version,
            feature_flags=FLAKE_FEATURE_FLAGS,
            has_print_out_paths=lix or version.at_least(2, 9),
            build_json_has_times=lix or version.at_least(2, 18),
            has_store_diff_closures=True,  # every version >= MIN_VERSION
            has_derivation_show=lix or version.at_least(2, 15),
            # Lix branched off Nix 2.18 and kept `flake lock --update-input`.
            flake_update_takes_inputs=not lix and version.at_least(2, 19),
            trace_before_message=lix or version.at_least(2, 13),
            flakes_on_by_default=det,
            lazy_trees=det,
        )

    def update_input_args(self, flake: str, *inputs: str) -> list[str]:
        """Arguments (after `nix`) that re-lock only ``inputs`` of ``flake``."""
        if self.flake_update_takes_inputs:
            return ["flake", "update", *inputs, "--flake", flake]
        args = ["flake", "lock"]
        for name in inputs:
            args += ["--update-input", name]
        return [*args, flake]

    def diff_closures_args(self, before: str, after: str) -> list[str]:
        """Arguments (after `nix`) comparing two closures."""
        return ["store", "diff-closures", before, after]

    def derivation_show_args(self, *installables: str) -> list[str]:
        """Arguments (after `nix`) printing derivations as JSON."""
        head = ["derivation", "show"] if self.has_derivation_show else ["show-derivation"]
        return [*head, *installables]


def message_file(file: str | None, line: int | None, column: int | None) -> str | None:
    """The file of an internal-json ``msg`` event or trace frame, as a bare path.

    Nix 2.8 gives ``"file": "/nix/store/…-source/guest.nix"``; Nix 2.26 gives
    ``"/nix/store/…-source/guest.nix:4:12"``, the event's own ``line`` and
    ``column`` appended.  Only a suffix equal to those is removed, so this
    holds whichever version wrote the event (it needs no :class:`Dialect`,
    which the event parser does not have).
    """
    if file is None or line is None:
        return file
    for suffix in (f":{line}:{column}", f":{line}") if column is not None else (f":{line}",):
        if file.endswith(suffix) and len(file) > len(suffix):
            return file[: -len(suffix)]
    return file


def find_nix(nix: str | os.PathLike[str] | None = None) -> Path:
    """The nix binary: ``nix`` if given (a path, or a name looked up on PATH), else
    ``nix`` on PATH.  Raise NixNotFoundError when there is none."""
    wanted = os.fspath(nix) if nix is not None else "nix"
    if os.sep in wanted:
        path = Path(wanted)
        if path.is_file() and os.access(path, os.X_OK):
            return path
        raise NixNotFoundError(wanted)
    found = shutil.which(wanted)
    if found is None:
        raise NixNotFoundError(None if nix is None else wanted)
    return Path(found)


_cache: dict[Path, NixVersion] = {}
_cache_lock = threading.Lock()


def nix_version(nix: str | os.PathLike[str] | None = None, *, timeout: float = 30.0) -> NixVersion:
    """Run ``nix --version`` once per binary and parse it (cached)."""
    path = find_nix(nix)
    with _cache_lock:
        if path in _cache:
            return _cache[path]
    argv = [str(path), "--version"]
    works = "check that the nix binary works: run `nix --version` yourself"
    try:
        # the only nix call that needs no flake flags
        done = process.run(argv, timeout=timeout, check=False)
    except CommandNotFoundError as err:
        raise NixNotFoundError(str(path), command=argv) from err
    except CommandTimeoutError as err:
        raise NixVersionError(
            f"`{path} --version` did not answer within {timeout:g} s", command=argv, hint=works
        ) from err
    if done.exit_code != 0:
        raise NixVersionError(
            f"`{path} --version` failed",
            command=argv,
            exit_code=done.exit_code,
            stderr=done.stderr,
            hint=works,
        )
    version = NixVersion.parse(done.stdout)
    with _cache_lock:
        _cache[path] = version
    return version


def detect_dialect(nix: str | os.PathLike[str] | None = None) -> Dialect:
    """The :class:`Dialect` of the installed nix (one cached ``nix --version``)."""
    return Dialect.for_version(nix_version(nix))


def clear_version_cache() -> None:
    """Forget cached versions (after an upgrade of nix, or in tests)."""
    with _cache_lock:
        _cache.clear()
