"""``nixgen check``: validate a project, evaluate its guests, and list them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import click

from nixgen.build import evaluate
from nixgen.cli import nixopts, output
from nixgen.errors import NixgenError, ProjectError, ValidationError
from nixgen.project import Project

if TYPE_CHECKING:
    from nixgen.model import Flake


@attrs.frozen
class _Evaluation:
    evaluated: bool
    note: str
    #: guest name -> why nix could not evaluate it
    errors: dict[str, NixgenError] = attrs.field(factory=dict)


@click.command("check")
@click.argument("names", nargs=-1)
@nixopts.flake_option
@nixopts.nix_options
@output.json_option("Print the guests, problems and evaluation as JSON.")
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
        found = [*err.problems, *err.warnings]
        if as_json:
            _print_json(None, found, _Evaluation(False, "not evaluated: invalid nixgen.toml"))
        output.problems(found)
        raise click.exceptions.Exit(output.EXIT_FAILED) from None
    unknown = [n for n in names if n not in {g.name for g in flake.guests}]
    if unknown:
        raise ProjectError(
            f"no guest(s) {', '.join(unknown)} in {project.source}",
            hint="the guests are: " + ", ".join(g.name for g in flake.guests),
        )
    shown = flake if not names else flake.evolve(guests=[flake.guest(n) for n in names])
    result = _evaluate(
        directory,
        [g.name for g in shown.guests],
        bool(names),
        (override_inputs, nix_option, nix_timeout),
        no_eval,
    )
    if as_json:
        _print_json(shown, warnings, result)
    output.problems(warnings)
    verbose = bool(click.get_current_context().meta.get(output.VERBOSE_KEY))
    for name, error in result.errors.items():
        output.secho(f"error: guest {name!r}: {error}", fg="red", err=True)
        for command in output.full_commands(error) if verbose else ():
            click.echo(f"  full command: {command}", err=True)
    if result.errors:
        raise click.exceptions.Exit(output.EXIT_FAILED)
    if not as_json:
        output.guests(shown, as_json=False)
        click.echo(
            f"\n{len(shown.guests)} guest(s), no errors, {len(warnings)} warning(s); {result.note}"
        )


def _print_json(flake: Flake | None, problems: list[Any], result: _Evaluation) -> None:
    """The one JSON document of ``check --json`` (shape: docs/output.md)."""
    ok = not result.errors and not any(not p.warning for p in problems)
    data = {
        "ok": ok,
        "guests": [] if flake is None else [output.guest_row(vm) for vm in flake.guests],
        "problems": [output.problem_json(p) for p in problems],
        "evaluated": result.evaluated,
        "note": result.note,
        "eval_errors": {name: output.error_json(e) for name, e in result.errors.items()},
    }
    click.echo(json.dumps(data, indent=2))


def _evaluate(
    directory: Path,
    guests: list[str],
    asked: bool,
    nix_settings: tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...], float | None],
    no_eval: bool,
) -> _Evaluation:
    if no_eval:
        return _Evaluation(False, "not evaluated (--no-eval)")
    if shutil.which("nix") is None:
        return _Evaluation(
            False, "not evaluated: nix is not installed (apt-get install nix-bin, or see nixos.org)"
        )
    from nixgen.build import GuestEvalError  # nix's side: not for --no-eval
    from nixgen.nixcmd.errors import NixEvalError, NixInputError

    nix = nixopts.make_nix(*nix_settings)
    try:
        evaluate(directory, guests if asked else None, nix=nix)
    except NixInputError as err:
        if err.offline:
            # Nothing is wrong with the guests: nix could not fetch the inputs.
            output.secho(f"note: {err.message}", fg="yellow", err=True)
            return _Evaluation(
                False, "not evaluated: the flake inputs could not be fetched (offline?)"
            )
        raise
    except GuestEvalError as err:
        return _Evaluation(True, "evaluated with nix: guests failed", dict(err.errors))
    except NixEvalError as err:
        # one guest (else GuestEvalError says which): nix's error is that guest's
        who = guests[0] if len(guests) == 1 else "(all guests)"
        return _Evaluation(True, "evaluated with nix: guests failed", {who: err})
    return _Evaluation(True, "evaluated with nix")
