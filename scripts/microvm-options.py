#!/usr/bin/env python3
"""Write nixgen's packaged option schema from a microvm.nix checkout.

    python scripts/microvm-options.py --microvm ~/src/microvm.nix --nixpkgs ~/src/nixpkgs

evaluates the checkout's guest and host option declarations with the module
system of nixpkgs' ``lib/`` (``nixgen/schema.nix``; nothing is fetched or
built) and writes ``nixgen/data/microvm-options.json``: the option trees and
the microvm.nix revision they were read from.  ``--rev`` names the revision
when the checkout is not a git work tree (e.g. a ``git archive`` export).
Needs ``nix`` with the ``nix-command`` feature.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ENTRY = REPO / "scripts" / "microvm-options.nix"
DEFAULT_OUT = REPO / "nixgen" / "data" / "microvm-options.json"
UPSTREAM = "github:microvm-nix/microvm.nix"


def git_rev(folder: Path) -> str | None:
    done = subprocess.run(
        ["git", "-C", str(folder), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() if done.returncode == 0 else None


def read_schema(microvm: Path, nixpkgs: Path) -> dict[str, object]:
    done = subprocess.run(
        [
            "nix",
            "--extra-experimental-features",
            "nix-command",
            "eval",
            "--json",
            "--impure",
            "--file",
            str(ENTRY),
            "--argstr",
            "nixpkgs",
            str(nixpkgs),
            "--argstr",
            "microvm",
            str(microvm),
            "schema",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"microvm-options: nix eval failed:\n{done.stderr}")
    data = json.loads(done.stdout)
    assert isinstance(data, dict)
    return data


def option_names(tree: dict[str, Any], prefix: str) -> set[str]:
    """Every option of a tree by its documented name (``microvm.interfaces.*.id``)."""
    names: set[str] = set()
    for name, entry in tree.items():
        if name.startswith("_"):
            continue
        path = f"{prefix}.{name}"
        if "group" in entry:
            names |= option_names(entry["group"], path)
            continue
        names.add(path)
        names |= _sub_names(entry["type"], path)
    return names


def _sub_names(typ: dict[str, Any], path: str) -> set[str]:
    nested = typ.get("nested") or {}
    if "options" in typ:
        return option_names(typ["options"], path)
    if typ["name"] in ("listOf", "nonEmptyListOf") and "elemType" in nested:
        return _sub_names(nested["elemType"], f"{path}.*")
    if typ["name"] in ("attrsOf", "lazyAttrsOf") and "elemType" in nested:
        return _sub_names(nested["elemType"], f"{path}.<name>")
    if "elemType" in nested:
        return _sub_names(nested["elemType"], path)
    return set()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--microvm", type=Path, required=True, help="microvm.nix checkout")
    parser.add_argument("--nixpkgs", type=Path, required=True, help="folder with nixpkgs' lib/")
    parser.add_argument("--rev", help="microvm.nix commit (default: git rev-parse HEAD)")
    parser.add_argument("--nixpkgs-rev", help="nixpkgs commit (default: git rev-parse HEAD)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    microvm, nixpkgs = args.microvm.resolve(), args.nixpkgs.resolve()
    if not (nixpkgs / "lib" / "default.nix").is_file():
        sys.exit(f"microvm-options: {nixpkgs} has no lib/default.nix; give a nixpkgs checkout")
    if not (microvm / "nixos-modules" / "microvm").is_dir():
        sys.exit(
            f"microvm-options: {microvm} has no nixos-modules/microvm; give a microvm.nix checkout"
        )
    rev = args.rev or git_rev(microvm)
    if rev is None:
        sys.exit(f"microvm-options: {microvm} is not a git checkout; name its commit with --rev")
    schema = read_schema(microvm, nixpkgs)
    documented = schema.pop("docNames")
    assert isinstance(documented, dict)
    for side in ("guest", "host"):
        tree = schema[side]
        assert isinstance(tree, dict)
        # Every submodule's _module.* plumbing is left out of the walk on purpose.
        listed = {n for n in documented[side] if "._module." not in n}
        walked = option_names(tree, "microvm")
        if walked != listed:
            sys.exit(
                f"microvm-options: the {side} options walked differ from nixpkgs' "
                f"optionAttrSetToDocList: only walked {sorted(walked - listed)}, "
                f"only listed {sorted(listed - walked)}"
            )
    data = {
        "source": {
            "url": UPSTREAM,
            "rev": rev,
            "nixpkgsRev": args.nixpkgs_rev or git_rev(nixpkgs),
        },
        **schema,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    guest, host = schema["guest"], schema["host"]
    assert isinstance(guest, dict) and isinstance(host, dict)
    print(f"{args.out}: microvm.nix {rev[:12]}, {len(guest)} guest and {len(host)} host names")


if __name__ == "__main__":
    main()
