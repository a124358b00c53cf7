"""``nixgen check``: validate a project, evaluate its guests and hosts, and list them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from nixgen._repr import attrs_repr
from nixgen.cli import nixopts, output
from nixgen.cli.output import echo
from nixgen.cli.parsing import argument, command, option
from nixgen.errors import NixgenError, ProjectError, ValidationError
from nixgen.project import Project
from nixgen.schema import Schema, known_schema

if TYPE_CHECKING:
    from nixgen.model import Flake

NixSettings = tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...], float | None]


@attrs.frozen
class _Evaluation:
    evaluated: bool
    note: str
    #: guest name -> why nix could not evaluate it
    errors: dict[str, NixgenError] = attrs.field(factory=dict)
    #: host name -> why nix could not evaluate its system
    host_errors: dict[str, NixgenError] = attrs.field(factory=dict)

    @property
    def failed(self) -> bool:
        return bool(self.errors or self.host_errors)

    __repr__ = attrs_repr


@command("check")
@argument("names", nargs="*")
@nixopts.flake_option
@nixopts.nix_options
@output.json_option("Print the guests, problems and evaluation as JSON.")
@option("--no-eval", action="store_true", help="Only nixgen's own validation; do not run nix.")
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
    settings: NixSettings = (override_inputs, nix_option, nix_timeout)
    schema = _schema(directory, settings, no_eval)
    try:
        flake, warnings = project.check(schema=schema)
    except ValidationError as err:
        found = [*err.problems, *err.warnings]
        if as_json:
            invalid = _Evaluation(False, "not evaluated: invalid nixgen.toml")
            _print_json(None, found, invalid, schema)
        output.problems(found)
        echo(f"microvm options: {schema.source}", err=True)
        raise SystemExit(output.EXIT_FAILED) from None
    unknown = [n for n in names if n not in {g.name for g in flake.guests}]
    if unknown:
        raise ProjectError(
            f"no guest(s) {', '.join(unknown)} in {project.source}",
            hint="the guests are: " + ", ".join(g.name for g in flake.guests),
        )
    shown = flake if not names else flake.evolve(guests=[flake.guest(n) for n in names])
    hosts: dict[str, str] = {} if names else {h.name: h.system for h in flake.hosts}
    result = _evaluate(
        directory, [g.name for g in shown.guests], bool(names), hosts, settings, no_eval
    )
    if as_json:
        _print_json(shown, warnings, result, schema)
    output.problems(warnings)
    verbose = output.verbose()
    failures = [("guest", result.errors), ("host", result.host_errors)]
    for kind, errors in failures:
        for name, error in errors.items():
            output.secho(f"error: {kind} {name!r}: {error}", fg="red", err=True)
            for full in output.full_commands(error) if verbose else ():
                echo(f"  full command: {full}", err=True)
    if result.failed:
        raise SystemExit(output.EXIT_FAILED)
    if not as_json:
        output.guests(shown, as_json=False)
        echo(
            f"\n{len(shown.guests)} guest(s), no errors, {len(warnings)} warning(s); {result.note}"
        )
        echo(f"microvm options: {schema.source}")


def _print_json(
    flake: Flake | None, problems: list[Any], result: _Evaluation, schema: Schema
) -> None:
    """The one JSON document of ``check --json`` (shape: docs/output.md)."""
    ok = not result.failed and not any(not p.warning for p in problems)
    data = {
        "ok": ok,
        "guests": [] if flake is None else [output.guest_row(vm) for vm in flake.guests],
        "problems": [output.problem_json(p) for p in problems],
        "evaluated": result.evaluated,
        "note": result.note,
        "eval_errors": {name: output.error_json(e) for name, e in result.errors.items()},
        "host_errors": {name: output.error_json(e) for name, e in result.host_errors.items()},
        "microvm_options": schema.source,
    }
    echo(json.dumps(data, indent=2))


def _nix_installed() -> bool:
    import shutil  # (with bz2, lzma and zlib: only where nix is to run)

    return shutil.which("nix") is not None


def _schema(directory: Path, settings: NixSettings, no_eval: bool) -> Schema:
    """The flake's own microvm.nix options where nix can read them (or read them
    before), else the packaged ones."""
    if no_eval or not _nix_installed():
        return known_schema(directory)
    from nixgen.lockschema import LockSchemaError, lock_schema  # nix's side

    try:
        return lock_schema(directory, nix=nixopts.make_nix(*settings))
    except LockSchemaError as err:
        output.secho(f"note: {err.message}; using the options nixgen ships", fg="yellow", err=True)
        return known_schema(directory)


def _evaluate(
    directory: Path,
    guests: list[str],
    asked: bool,
    hosts: dict[str, str],
    settings: NixSettings,
    no_eval: bool,
) -> _Evaluation:
    if no_eval:
        return _Evaluation(False, "not evaluated (--no-eval)")
    if not _nix_installed():
        return _Evaluation(
            False, "not evaluated: nix is not installed (apt-get install nix-bin, or see nixos.org)"
        )
    from nixgen.build import GuestEvalError, evaluate  # nix's side: not for --no-eval
    from nixgen.hostcheck import HostEvalError, evaluate_hosts
    from nixgen.nixcmd.errors import NixEvalError, NixInputError

    nix = nixopts.make_nix(*settings)
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
    try:
        evaluate_hosts(directory, hosts, nix=nix)
    except HostEvalError as err:
        return _Evaluation(True, "evaluated with nix: hosts failed", host_errors=dict(err.errors))
    return _Evaluation(
        True, "evaluated with nix" + (f" ({len(hosts)} host(s) too)" if hosts else "")
    )
