"""``nixgen graph``: draw the project's hosts, networks and guests.

Thin over :mod:`nixgen.graph`; see docs/graph.md.
"""

from __future__ import annotations

import sys
from argparse import ArgumentError
from pathlib import Path

from nixgen.cli import nixopts, output
from nixgen.cli.output import echo
from nixgen.cli.parsing import argument, command, directory, file, option
from nixgen.errors import ProjectError, ValidationError
from nixgen.graph import (
    FORMATS,
    SUFFIXES,
    Format,
    Graph,
    GuestMark,
    format_for,
    marks_from_status,
)
from nixgen.model import Flake
from nixgen.project import Project
from nixgen.render import SOURCE_NAME


def _load(directory: Path) -> Flake:
    """``nixgen.toml`` when there is one (validated), else the guests of a hand-written flake."""
    if (directory / SOURCE_NAME).is_file():
        flake, warnings = Project.at(directory).check()
        output.problems(warnings)
        return flake
    if not (directory / "flake.nix").is_file():
        raise ProjectError(
            f"{directory.resolve()}: no {SOURCE_NAME} or flake.nix here, so nothing to draw",
            hint="pass the project folder: nixgen graph DIR",
        )
    from nixgen.flake import FlakeFile

    return FlakeFile.load(directory).model()


def _status(
    directory: Path,
    state_dir: Path | None,
    no_eval: bool,
    override_inputs: tuple[tuple[str, str], ...],
    nix_option: tuple[tuple[str, str], ...],
    nix_timeout: float | None,
) -> dict[str, GuestMark]:
    # The runtime (and its imports) only when asked for.
    from nixgen.runtime import Runtime
    from nixgen.runtime.manager import environ_state_root

    runtime = Runtime(
        directory,
        state_root=state_dir or environ_state_root(),
        nix=nixopts.make_nix(override_inputs, nix_option, nix_timeout),
    )
    return marks_from_status(runtime.status(evaluate=not no_eval, tail_lines=0))


@command("graph")
@argument("directory", type=directory, nargs="?", default=Path())
@option(
    "--format",
    dest="format_",
    choices=FORMATS,
    default=None,
    help="dot (default), svg or png (through Graphviz's dot), or mermaid; "
    "default: from the --output file's suffix.",
)
@option(
    "-o",
    "--output",
    dest="output_path",
    type=file,
    metavar="FILE",
    default=None,
    help="Write the picture to this file instead of stdout.",
)
@option(
    "--status",
    action="store_true",
    help="Colour each guest by its state as `nixgen status` knows it "
    "(running, stopped, crashed, outdated, stale).",
)
@option("--no-eval", action="store_true", help="With --status: do not evaluate the flake.")
@option(
    "--state-dir",
    type=directory,
    metavar="DIR",
    default=None,
    envvar="NIXGEN_STATE_DIR",
    help="With --status: the folder of the guests' state folders (as for `nixgen status`).",
)
@nixopts.nix_options
def graph_command(
    directory: Path,
    format_: Format | None,
    output_path: Path | None,
    status: bool,
    no_eval: bool,
    state_dir: Path | None,
    override_inputs: tuple[tuple[str, str], ...],
    nix_option: tuple[tuple[str, str], ...],
    nix_timeout: float | None,
) -> None:
    """Draw the hosts, networks and guests of the project in DIRECTORY."""
    fmt: Format = "dot"
    if format_ is not None:
        fmt = format_
    elif output_path is not None:
        wanted = format_for(output_path)
        if wanted is None:
            raise ArgumentError(
                None,
                f"{output_path}: which format? Pass --format, or name the file "
                + ", ".join(f"*{suffix}" for suffix in SUFFIXES),
            )
        fmt = wanted
    if output_path is None and fmt == "png" and sys.stdout.isatty():
        raise ArgumentError(None, "a PNG on a terminal is noise: pass -o FILE.png, or pipe it")
    try:
        flake = _load(directory)
    except ValidationError as err:
        output.problems([*err.problems, *err.warnings])
        raise SystemExit(1) from None
    marks = (
        _status(directory, state_dir, no_eval, override_inputs, nix_option, nix_timeout)
        if status
        else None
    )
    graph = Graph.of(flake, status=marks)
    if output_path is not None:
        graph.write(output_path, fmt)
        echo(f"wrote   {output_path}")
        return
    sys.stdout.buffer.write(graph.render(fmt))
    sys.stdout.flush()
