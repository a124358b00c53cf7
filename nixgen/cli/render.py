"""``nixgen render``: write flake.nix and vms/*.nix from nixgen.toml."""

from __future__ import annotations

from pathlib import Path

import click

from nixgen.cli import output
from nixgen.errors import ValidationError
from nixgen.hypervisors import markdown_table
from nixgen.project import Project


@click.command("render")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--force", is_flag=True, help="Overwrite generated files even if edited by hand.")
def render_command(directory: Path, force: bool) -> None:
    """Validate nixgen.toml, then (re)write the flake files it generates."""
    project = Project.at(directory)
    try:
        result = project.render(force=force)
    except ValidationError as err:
        output.problems([*err.problems, *err.warnings])
        raise click.exceptions.Exit(1) from None
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
