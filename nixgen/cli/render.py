"""``nixgen render``: write flake.nix and vms/*.nix from nixgen.toml."""

from __future__ import annotations

import json
from pathlib import Path

import click

from nixgen.cli import nixopts, output
from nixgen.hypervisors import markdown_table
from nixgen.project import Project


@click.command("render")
@click.argument(
    "directory", type=click.Path(file_okay=False, path_type=Path), required=False, default=None
)
@nixopts.flake_option
@click.option("--force", is_flag=True, help="Overwrite generated files even if edited by hand.")
@output.json_option("Print the files written, unchanged, removed and kept as JSON.")
def render_command(
    directory: Path | None, flake_dir: Path | None, force: bool, as_json: bool
) -> None:
    """Validate nixgen.toml, then (re)write the flake files it generates.

    The project folder is DIRECTORY or --flake (default: the current folder).
    """
    if directory is not None and flake_dir is not None and directory != flake_dir:
        raise click.UsageError("give the project folder once: DIRECTORY or --flake")
    project = Project.at(directory or flake_dir or Path())
    result = project.render(force=force)
    if as_json:
        fields = ("written", "unchanged", "removed", "kept")
        data = {f: [str(p) for p in getattr(result, f)] for f in fields}
        click.echo(json.dumps({"ok": True, **data}, indent=2))
        return
    for path in result.written:
        click.echo(f"wrote   {path}")
    for path in result.removed:
        click.echo(f"removed {path}")
    for path in result.kept:
        click.echo(
            f"kept    {path} (edited by hand; its guest or host is gone: delete it yourself)"
        )
    if not result.written and not result.removed:
        click.echo("up to date")


@click.command("hypervisors")
def hypervisors_command() -> None:
    """Print what each hypervisor supports (Markdown table)."""
    click.echo(markdown_table(), nl=False)
