"""``nixgen build``: build guests and show their artifacts.

A no-op build is answered from the build cache before nix's side of nixgen
is imported: it must be no slower than ``nix build`` typed by hand.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from nixgen.cli import TYPE_CHECKING, nixopts, output
from nixgen.cli.output import echo
from nixgen.cli.parsing import argument, command, option

if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any, Literal


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
    folder, names = nixopts.split_folder_and_names(flake_dir, names)
    if not no_cache:
        from nixgen.buildcache import STATE_DIR, cached_entries, fingerprint

        root = os.path.realpath(folder)
        key = fingerprint(root, override_inputs=dict(override_inputs), options=dict(nix_option))
        hit = cached_entries(os.path.join(root, STATE_DIR), key, list(names) or None)
        if hit is not None:
            _show(hit, as_json)
            return
    from pathlib import Path

    from nixgen.build import build
    from nixgen.cli.progress import progress

    nix = nixopts.make_nix(override_inputs, nix_option, nix_timeout)
    with progress("building") as report:
        results = build(
            Path(folder),
            list(names) or None,
            nix=nix,
            jobs=jobs,
            use_cache=not no_cache,
            gc_roots=not no_gc_roots,
            on_event=report,
        )
    _show({name: result.to_json() for name, result in results.items()}, as_json)


def _show(results: Mapping[str, Mapping[str, Any]], as_json: bool) -> None:
    """The artifacts of each guest (as :meth:`nixgen.build.BuildResult.to_json` has them)."""
    if as_json:
        # everything the text shows: the runner's bin/microvm-run too
        shown = {n: {**r, "run_script": _run_script(r)} for n, r in results.items()}
        echo(json.dumps(shown, indent=2))
        return
    for name, result in results.items():
        echo(f"{name} ({result['hypervisor']})")
        echo(f"  runner    {_run_script(result)}")
        echo(f"  kernel    {result['kernel']}")
        echo(f"  initrd    {result['initrd']}")
        echo(f"  regInfo   {result.get('reg_info') or '-'}")
        echo(f"  toplevel  {result['toplevel']}")
        if result.get("store_disk"):
            echo(f"  storeDisk {result['store_disk']}")
        if result.get("gc_root"):
            echo(f"  gc root   {result['gc_root']}")


def _run_script(result: Mapping[str, Any]) -> str:
    """``bin/microvm-run`` of the runner (:attr:`nixgen.build.BuildResult.run_script`)."""
    return os.path.join(result["runner"], "bin", "microvm-run")
