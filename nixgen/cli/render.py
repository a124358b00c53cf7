"""``nixgen render``: write flake.nix and vms/*.nix from nixgen.toml."""

from __future__ import annotations

import json
from argparse import ArgumentError
from pathlib import Path

from nixgen.cli import nixopts, output
from nixgen.cli.output import echo
from nixgen.cli.parsing import argument, command, directory, option
from nixgen.hypervisors import markdown_table
from nixgen.project import Project


@command("render")
@argument("directory", type=directory, nargs="?", default=None)
@nixopts.flake_option
@option("--force", action="store_true", help="Overwrite generated files even if edited by hand.")
@output.json_option("Print the files written, unchanged, removed and kept as JSON.")
def render_command(
    directory: Path | None, flake_dir: Path | None, force: bool, as_json: bool
) -> None:
    """Validate nixgen.toml, then (re)write the flake files it generates.

    The project folder is DIRECTORY or --flake (default: the current folder).
    """
    if directory is not None and flake_dir is not None and directory != flake_dir:
        raise ArgumentError(None, "give the project folder once: DIRECTORY or --flake")
    project = Project.at(directory or flake_dir or Path())
    result = project.render(force=force)
    if as_json:
        fields = ("written", "unchanged", "removed", "kept")
        data = {f: [str(p) for p in getattr(result, f)] for f in fields}
        echo(json.dumps({"ok": True, **data}, indent=2))
        return
    for path in result.written:
        echo(f"wrote   {path}")
    for path in result.removed:
        echo(f"removed {path}")
    for path in result.kept:
        echo(f"kept    {path} (edited by hand; its guest or host is gone: delete it yourself)")
    if not result.written and not result.removed:
        echo("up to date")


@command("hypervisors")
def hypervisors_command() -> None:
    """Print what each hypervisor supports (Markdown table)."""
    echo(markdown_table(), nl=False)
