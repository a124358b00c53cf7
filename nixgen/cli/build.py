"""``nixgen build``: build guests and show their artifacts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import click

from nixgen.build import build
from nixgen.cli import nixopts, output
from nixgen.cli.progress import progress


@click.command("build")
@click.argument("names", nargs=-1)
@nixopts.flake_option
@nixopts.nix_options
@nixopts.jobs_option
@output.json_option("Print the artifacts as JSON.")
@click.option("--no-cache", is_flag=True, help="Always run nix, even when nothing changed.")
@click.option("--no-gc-roots", is_flag=True, help="Do not register the runners as GC roots.")
def build_command(
    names: tuple[str, ...],
    flake_dir: Path | None,
    override_inputs: tuple[tuple[str, str], ...],
    nix_option: tuple[tuple[str, str], ...],
    nix_timeout: float | None,
    jobs: int | Literal["auto"] | None,
    as_json: bool,
    no_cache: bool,
    no_gc_roots: bool,
) -> None:
    """Build guests NAMES (default: all) in one nix call and list their artifacts."""
    directory, names = nixopts.split_flake_and_names(flake_dir, names)
    nix = nixopts.make_nix(override_inputs, nix_option, nix_timeout)
    with progress("building") as report:
        results = build(
            directory,
            list(names) or None,
            nix=nix,
            jobs=jobs,
            use_cache=not no_cache,
            gc_roots=not no_gc_roots,
            on_event=report,
        )
    if as_json:
        # everything the text shows: the runner's bin/microvm-run too
        shown = {n: {**r.to_json(), "run_script": str(r.run_script)} for n, r in results.items()}
        click.echo(json.dumps(shown, indent=2))
        return
    for name, result in results.items():
        click.echo(f"{name} ({result.hypervisor})")
        click.echo(f"  runner    {result.run_script}")
        click.echo(f"  kernel    {result.kernel}")
        click.echo(f"  initrd    {result.initrd}")
        click.echo(f"  regInfo   {result.reg_info or '-'}")
        click.echo(f"  toplevel  {result.toplevel}")
        if result.store_disk:
            click.echo(f"  storeDisk {result.store_disk}")
        if result.gc_root:
            click.echo(f"  gc root   {result.gc_root}")
