"""``nixgen build``: build guests and show their artifacts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from nixgen.build import build
from nixgen.cli import nixopts, output
from nixgen.cli.output import echo
from nixgen.cli.parsing import argument, command, option
from nixgen.cli.progress import progress


@command("build")
@argument("names", nargs="*")
@nixopts.flake_option
@nixopts.nix_options
@nixopts.jobs_option
@output.json_option("Print the artifacts as JSON.")
@option("--no-cache", action="store_true", help="Always run nix, even when nothing changed.")
@option("--no-gc-roots", action="store_true", help="Do not register the runners as GC roots.")
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
        echo(json.dumps(shown, indent=2))
        return
    for name, result in results.items():
        echo(f"{name} ({result.hypervisor})")
        echo(f"  runner    {result.run_script}")
        echo(f"  kernel    {result.kernel}")
        echo(f"  initrd    {result.initrd}")
        echo(f"  regInfo   {result.reg_info or '-'}")
        echo(f"  toplevel  {result.toplevel}")
        if result.store_disk:
            echo(f"  storeDisk {result.store_disk}")
        if result.gc_root:
            echo(f"  gc root   {result.gc_root}")
