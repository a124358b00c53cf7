"""Options every command that runs nix takes, like nix itself has them."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

from nixgen.cli import TYPE_CHECKING
from nixgen.cli.parsing import existing_directory, option

if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any, Literal, TypeVar

    from nixgen.nixcmd import NixRunner

    F = TypeVar("F", bound=Callable[..., Any])


def flake_option(function: F) -> F:
    return option(
        "-f",
        "--flake",
        dest="flake_dir",
        type=existing_directory,
        default=None,
        metavar="DIR",
        help="The project/flake folder (default: the current folder).",
    )(function)


def nix_options(function: F) -> F:
    """--override-input NAME URL, --option NAME VALUE, --nix-timeout SECONDS."""
    function = option(
        "--nix-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="Stop nix (and everything it started) after this long.",
    )(function)
    function = option(
        "--option",
        dest="nix_option",
        nargs=2,
        action="append",
        metavar=("NAME", "VALUE"),
        help="Set a nix configuration option for the nix calls.",
    )(function)
    return option(
        "--override-input",
        dest="override_inputs",
        nargs=2,
        action="append",
        metavar=("NAME", "URL"),
        help="Use URL for the flake input NAME (e.g. a local path:/dir), as nix does.",
    )(function)


def make_nix(
    override_inputs: tuple[tuple[str, str], ...],
    nix_option: tuple[tuple[str, str], ...],
    nix_timeout: float | None,
) -> NixRunner:
    from nixgen.nixcmd import NixRunner

    return NixRunner(
        override_inputs=dict(override_inputs),
        options=dict(nix_option),
        timeout=nix_timeout,
    )


def split_flake_and_names(
    flake_dir: Path | None, names: tuple[str, ...]
) -> tuple[Path, tuple[str, ...]]:
    """``nixgen check DIR`` keeps working: a first argument that is a folder is the flake."""
    from pathlib import Path

    folder, names = split_folder_and_names(flake_dir, names)
    return Path(folder), names


def split_folder_and_names(
    flake_dir: Path | None, names: tuple[str, ...]
) -> tuple[str, tuple[str, ...]]:
    """:func:`split_flake_and_names` with the folder as text (pathlib costs 4 ms to import)."""
    if flake_dir is None and names and os.path.isdir(names[0]):
        return names[0], names[1:]
    return (os.fspath(flake_dir) if flake_dir is not None else "."), names


def _jobs(value: str) -> int | Literal["auto"]:
    if value == "auto":
        return "auto"
    if value.isdigit():
        return int(value)
    raise argparse.ArgumentTypeError(f"{value!r}: give a number of builds, or auto (one per core)")


def jobs_option(function: F) -> F:
    """-j N|auto: parallel builds, as nix's --max-jobs (default: nix's own setting)."""
    return option(
        "-j",
        "--jobs",
        type=_jobs,
        default=None,
        metavar="N|auto",
        help="Parallel builds (nix --max-jobs; auto: one per core).",
    )(function)
