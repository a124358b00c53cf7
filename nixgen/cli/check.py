"""``nixgen check``: validate a project and show its guests."""

from __future__ import annotations

from pathlib import Path

import click

from nixgen.cli import output
from nixgen.errors import ValidationError
from nixgen.project import Project


@click.command("check")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--json", "as_json", is_flag=True, help="Print the guests as JSON.")
def check_command(directory: Path, as_json: bool) -> None:
    """Validate the guests of the project in DIRECTORY and list them.

    Every problem is printed at once; the exit code is 1 when any is an error.
    """
    project = Project.at(directory)
    try:
        flake, warnings = project.check()
    except ValidationError as err:
        output.problems([*err.problems, *err.warnings])
        raise click.exceptions.Exit(1) from None
    output.problems(warnings)
    output.guests(flake, as_json=as_json)
    if not as_json:
        click.echo(f"\n{len(flake.guests)} guest(s), no errors, {len(warnings)} warning(s)")


def register(group: click.Group) -> None:
    group.add_command(check_command)
