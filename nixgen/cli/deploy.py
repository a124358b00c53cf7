"""``nixgen deploy``: build, copy and activate hosts with Nix's own tools."""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

from nixgen.cli import nixopts, output
from nixgen.cli.output import echo
from nixgen.cli.parsing import argument, command, option
from nixgen.deploy import (
    Action,
    Activation,
    CommandRunner,
    DeployOptions,
    Fleet,
    StepResult,
)


@command("deploy")
@argument("hosts", nargs="*")
@nixopts.flake_option
@nixopts.nix_options
@option(
    "--builders",
    default=None,
    metavar="SPEC",
    help="Build on these remote builders (nix --builders, e.g. 'ssh://builder x86_64-linux').",
)
@option(
    "--store",
    default=None,
    metavar="URL",
    help="Build in this store (e.g. ssh-ng://builder) and copy from there.",
)
@option(
    "--action",
    choices=["switch", "boot", "test", "dry-activate"],
    default="switch",
    show_default=True,
    help="What activation does (as nixos-rebuild).",
)
@option(
    "--activate-with",
    choices=["nixos-rebuild", "ssh"],
    default="nixos-rebuild",
    show_default=True,
    help="nixos-rebuild --target-host, or switch-to-configuration over ssh.",
)
@option("--sudo", action="store_true", help="Activate through sudo (a non-root target user).")
@option(
    "--substitute-on-destination",
    action="store_true",
    help="Let the hosts download from their binary caches what they can (nix copy -s).",
)
@option("--fail-fast", action="store_true", help="Stop at the first host that fails.")
@option(
    "--timeout",
    type=float,
    default=None,
    metavar="SECONDS",
    help="Stop nixos-rebuild/ssh after this long (nix calls: --nix-timeout).",
)
@option("--dry-run", action="store_true", help="Print the commands instead of running them.")
@output.json_option("Print the report as JSON.")
def deploy_command(
    hosts: tuple[str, ...],
    flake_dir: Path | None,
    override_inputs: tuple[tuple[str, str], ...],
    nix_option: tuple[tuple[str, str], ...],
    nix_timeout: float | None,
    builders: str | None,
    store: str | None,
    action: str,
    activate_with: str,
    sudo: bool,
    substitute_on_destination: bool,
    fail_fast: bool,
    timeout: float | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Deploy HOSTS (default: every host with a full configuration).

    Per host: nix build of its system (locally, on --builders or in --store),
    nix copy --to ssh://TARGET, then nixos-rebuild ACTION --flake .#HOST
    --target-host TARGET.  Every host is reported; the exit status is 1 when
    any failed.
    """
    directory = flake_dir or Path()
    nix = nixopts.make_nix(override_inputs, nix_option, nix_timeout)
    fleet = Fleet.load(directory, nix=nix, runner=CommandRunner(timeout=timeout))
    options = DeployOptions(
        builders=builders,
        store=store,
        action=cast(Action, action),  # the parser's choices checked both
        activate_with=cast(Activation, activate_with),
        sudo=sudo,
        substitute_on_destination=substitute_on_destination,
        fail_fast=fail_fast,
    )
    if dry_run:
        echo(fleet.plan(hosts, options), nl=False)
        return
    report = fleet.deploy(hosts, options, on_step=None if as_json else _show_step)
    if as_json:
        echo(json.dumps(report.to_json(), indent=2))
    else:
        _summary(report.succeeded, report.failed, report.skipped)
    if not report.ok:
        raise SystemExit(output.EXIT_FAILED)


def _show_step(host: str, step: StepResult) -> None:
    if step.ok:
        extra = f" {step.output}" if step.output else ""
        echo(f"{host}: {step.step} ok ({step.duration:.1f} s){extra}")
    else:
        output.secho(f"{host}: {step.step} FAILED", fg="red", err=True)
        output.secho(f"  {step.error}".replace("\n", "\n  "), fg="red", err=True)


def _summary(succeeded: tuple[str, ...], failed: tuple[str, ...], skipped: tuple[str, ...]) -> None:
    parts = [
        f"{len(succeeded)} host(s) deployed" + (f" ({', '.join(succeeded)})" if succeeded else "")
    ]
    if failed:
        parts.append(f"{len(failed)} failed ({', '.join(failed)})")
    if skipped:
        parts.append(f"{len(skipped)} skipped after a failure ({', '.join(skipped)})")
    echo("; ".join(parts))
