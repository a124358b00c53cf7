"""``nixgen init``: create a project from a template."""

from __future__ import annotations

from pathlib import Path

import click

from nixgen.cli import output
from nixgen.model import HYPERVISORS
from nixgen.project import init_project
from nixgen.starters import TEMPLATES


@click.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("-t", "--template", default="microvm", show_default=True, help="Template to use.")
@click.option("--name", help="Guest name (the multi template uses it as a prefix).")
@click.option("--hypervisor", type=click.Choice(HYPERVISORS), help="Hypervisor for the guests.")
@click.option(
    "--ssh-key",
    "ssh_key_files",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    multiple=True,
    help="Public key file allowed to log in as root (repeatable).",
)
@click.option(
    "--allow-empty-root-password",
    is_flag=True,
    help="Let root log in with an empty password (throw-away demos only).",
)
@click.option("--list", "list_templates", is_flag=True, help="List the templates and exit.")
def init_command(
    directory: Path,
    template: str,
    name: str | None,
    hypervisor: str | None,
    ssh_key_files: tuple[Path, ...],
    allow_empty_root_password: bool,
    list_templates: bool,
) -> None:
    """Create a nixgen project (nixgen.toml, flake.nix, vms/) in DIRECTORY."""
    if list_templates:
        width = max(len(n) for n in TEMPLATES)
        for tmpl in TEMPLATES.values():
            click.echo(f"{tmpl.name.ljust(width)}  {tmpl.description}")
        return
    keys = [
        line.strip()
        for path in ssh_key_files
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    result = init_project(
        directory,
        template=template,
        name=name,
        hypervisor=hypervisor,  # type: ignore[arg-type]  # click.Choice checked it
        ssh_keys=keys,
        allow_empty_root_password=allow_empty_root_password,
    )
    output.problems(result.warnings)
    click.echo(f"created a nixgen project from template {template!r} in {directory}:")
    for path in result.created:
        click.echo(f"  {path}")
    first = result.flake.guests[0].name
    click.echo("\nnext:")
    click.echo(f"  cd {directory}")
    click.echo("  nixgen check    # validate the guests")
    click.echo(f"  nix run .#{first}    # build and boot {first}")
    if any(g.forward_ports for g in result.flake.guests):
        click.echo("  ssh -p 2222 root@localhost    # once it has booted")
    if not keys and not allow_empty_root_password:
        click.echo(
            "\nno login is set up: add an SSH key to nixgen.toml (see its header) and run "
            "`nixgen render`, or re-run init with --ssh-key ~/.ssh/id_ed25519.pub"
        )
