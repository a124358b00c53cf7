"""``nixgen check``: validate a project, evaluate its guests and hosts, and list them."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from nixgen.cli import nixopts, output
from nixgen.errors import ValidationError
from nixgen.flake.errors import ProjectError
from nixgen.project import Project
from nixgen.schema import Schema, known_schema


@click.command("check")
@click.argument("names", nargs=-1)
@nixopts.flake_option
@nixopts.nix_options
@click.option("--json", "as_json", is_flag=True, help="Print the guests as JSON.")
@click.option("--no-eval", is_flag=True, help="Only nixgen's own validation; do not run nix.")
def check_command(
    names: tuple[str, ...],
    flake_dir: Path | None,
    override_inputs: tuple[tuple[str, str], ...],
    nix_option: tuple[tuple[str, str], ...],
    nix_timeout: float | None,
    as_json: bool,
    no_eval: bool,
) -> None:
    """Validate the guests, then evaluate them (and the hosts) with nix without building.

    Every problem of every guest is printed at once; the exit code is 1 when
    any is an error.  A first argument that is a folder is taken as --flake.
    microvm.* settings are checked against the options of the flake's locked
    microvm.nix when nix can read them, else against those nixgen ships.
    """
    directory, names = nixopts.split_flake_and_names(flake_dir, names)
    project = Project.at(directory)
    schema = _schema(directory, override_inputs, nix_option, nix_timeout, no_eval)
    try:
        flake, warnings = project.check(schema=schema)
    except ValidationError as err:
        output.problems([*err.problems, *err.warnings])
        click.echo(f"microvm options: {schema.source}", err=True)
        raise click.exceptions.Exit(1) from None
    output.problems(warnings)
    unknown = [n for n in names if n not in {g.name for g in flake.guests}]
    if unknown:
        raise ProjectError(
            f"no guest(s) {', '.join(unknown)} in {project.source}",
            hint="the guests are: " + ", ".join(g.name for g in flake.guests),
        )
    shown = flake if not names else flake.evolve(guests=[flake.guest(n) for n in names])
    hosts: dict[str, str] = {} if names else {h.name: h.system for h in flake.hosts}
    note = _evaluate(directory, names, hosts, override_inputs, nix_option, nix_timeout, no_eval)
    output.guests(shown, as_json=as_json)
    if not as_json:
        click.echo(f"\n{len(shown.guests)} guest(s), no errors, {len(warnings)} warning(s); {note}")
        click.echo(f"microvm options: {schema.source}")


def _schema(
    directory: Path,
    override_inputs: tuple[tuple[str, str], ...],
    nix_option: tuple[tuple[str, str], ...],
    nix_timeout: float | None,
    no_eval: bool,
) -> Schema:
    """The flake's own microvm.nix options where nix can read them (or read them
    before), else the packaged ones."""
    if no_eval or shutil.which("nix") is None:
        return known_schema(directory)
    from nixgen.lockschema import LockSchemaError, lock_schema  # nix's side

    try:
        return lock_schema(
            directory, nix=nixopts.make_nix(override_inputs, nix_option, nix_timeout)
        )
    except LockSchemaError as err:
        click.secho(f"note: {err.message}; using the options nixgen ships", fg="yellow", err=True)
        return known_schema(directory)


def _evaluate(
    directory: Path,
    names: tuple[str, ...],
    hosts: dict[str, str],
    override_inputs: tuple[tuple[str, str], ...],
    nix_option: tuple[tuple[str, str], ...],
    nix_timeout: float | None,
    no_eval: bool,
) -> str:
    if no_eval:
        return "not evaluated (--no-eval)"
    if shutil.which("nix") is None:
        return "not evaluated: nix is not installed (apt-get install nix-bin, or see nixos.org)"
    from nixgen.build import GuestEvalError, evaluate  # nix's side: not for --no-eval
    from nixgen.hostcheck import HostEvalError, evaluate_hosts
    from nixgen.nixcmd.errors import NixInputError

    nix = nixopts.make_nix(override_inputs, nix_option, nix_timeout)
    try:
        evaluate(directory, list(names) or None, nix=nix)
    except NixInputError as err:
        if err.offline:
            # Nothing is wrong with the guests: nix could not fetch the inputs.
            click.secho(f"note: {err.message}", fg="yellow", err=True)
            return "not evaluated: the flake inputs could not be fetched (offline?)"
        raise
    except GuestEvalError as err:
        for name, error in err.errors.items():
            click.secho(f"error: guest {name!r}: {error}", fg="red", err=True)
        raise click.exceptions.Exit(1) from None
    try:
        evaluate_hosts(directory, hosts, nix=nix)
    except HostEvalError as err:
        for name, error in err.errors.items():
            click.secho(f"error: host {name!r}: {error}", fg="red", err=True)
        raise click.exceptions.Exit(1) from None
    return "evaluated with nix" + (f" ({len(hosts)} host(s) too)" if hosts else "")
