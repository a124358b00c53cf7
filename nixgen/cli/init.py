"""``nixgen init``: create a project from a template."""

from __future__ import annotations

from pathlib import Path

from nixgen.cli import output
from nixgen.cli.output import echo
from nixgen.cli.parsing import argument, command, directory, existing_file, option
from nixgen.model import HYPERVISORS
from nixgen.project import init_project, read_key_file
from nixgen.starters import TEMPLATES


@command("init")
@argument("directory", type=directory, nargs="?", default=Path())
@option("-t", "--template", default="microvm", show_default=True, help="Template to use.")
@option("--name", help="Guest name (the multi template uses it as a prefix).")
@option("--hypervisor", choices=HYPERVISORS, help="Hypervisor for the guests.")
@option(
    "--ssh-key",
    dest="ssh_key_files",
    type=existing_file,
    action="append",
    metavar="FILE",
    help="Public key file allowed to log in as root (repeatable).",
)
@option(
    "--allow-empty-root-password",
    action="store_true",
    help="Let root log in with an empty password (throw-away demos only).",
)
@option("--list", dest="list_templates", action="store_true", help="List the templates and exit.")
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
            echo(f"{tmpl.name.ljust(width)}  {tmpl.description}")
        return
    keys = [
        line.strip()
        for path in ssh_key_files
        for line in read_key_file(path).splitlines()
        if line.strip() and not line.startswith("#")
    ]
    result = init_project(
        directory,
        template=template,
        name=name,
        hypervisor=hypervisor,  # type: ignore[arg-type]  # the parser's choices checked it
        ssh_keys=keys,
        allow_empty_root_password=allow_empty_root_password,
    )
    output.problems(result.warnings)
    echo(f"created a nixgen project from template {template!r} in {directory}:")
    for path in result.created:
        echo(f"  {path}")
    first = result.flake.guests[0].name
    echo("\nnext:")
    echo(f"  cd {directory}")
    echo("  nixgen check    # validate the guests")
    echo(f"  nix run .#{first}    # build and boot {first}")
    if any(g.forward_ports for g in result.flake.guests):
        echo("  ssh -p 2222 root@localhost    # once it has booted")
    if not keys and not allow_empty_root_password:
        echo(
            "\nno login is set up: add an SSH key to nixgen.toml (see its header) and run "
            "`nixgen render`, or re-run init with --ssh-key ~/.ssh/id_ed25519.pub"
        )
