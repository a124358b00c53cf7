"""``nixgen check``: validate a project, evaluate its guests, and list them."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from nixgen.cli import nixopts, output
from nixgen.errors import ProjectError, ValidationError
from nixgen.project import Project


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
    """Validate the guests, then evaluate them with nix without building.

    Every problem of every guest is printed at once; the exit code is 1 when
    any is an error.  A first argument that is a folder is taken as --flake.
    """
    directory, names = nixopts.split_flake_and_names(flake_dir, names)
    project = Project.at(directory)
    try:
        flake, warnings = project.check()
    except ValidationError as err:
        output.problems([*err.problems, *err.warnings])
        raise click.exceptions.Exit(1) from None
    output.problems(warnings)
    unknown = [n for n in names if n not in {g.name for g in flake.guests}]
    if unknown:
        raise ProjectError(
            f"no guest(s) {', '.join(unknown)} in {project.source}",
            hint="the guests are: " + ", ".join(g.name for g in flake.guests),
        )
    shown = flake if not names else flake.evolve(guests=[flake.guest(n) for n in names])
    note = _evaluate(directory, names, override_inputs, nix_option, nix_timeout, no_eval)
    output.guests(shown, as_json=as_json)
    if not as_json:
        click.echo(f"\n{len(shown.guests)} guest(s), no errors, {len(warnings)} warning(s); {note}")


def _evaluate(
    directory: Path,
    names: tuple[str, ...],
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
    return "evaluated with nix"
