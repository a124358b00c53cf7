"""Helpers for tests that run the real ``nix`` against the stand-in inputs.

The stand-ins (``tests/standins/nixpkgs`` and ``tests/standins/microvm``,
described in ``tests/standins/README.md``) replace nixpkgs and microvm.nix,
which cannot be fetched offline. A test typically does::

    inputs = prepare_inputs(tmp_path / "inputs")
    env = offline_nix_env(tmp_path)
    subprocess.run(["nix", "build", "--json", "--no-link", f"path:{flake}#default",
                    *override_args(inputs)], env=env, check=True)
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nixgen.schema import packaged_schema

if TYPE_CHECKING:
    from tests.guestimage import GuestImage

__all__ = [
    "NIX_CONF",
    "NIX_SKIP_REASON",
    "REPO_ROOT",
    "STANDINS_DIR",
    "nix_available",
    "offline_nix_env",
    "override_args",
    "prepare_inputs",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
STANDINS_DIR = REPO_ROOT / "tests" / "standins"

NIX_SKIP_REASON = "nix not found: apt-get install nix-bin, then see README"

#: Settings that let nix build the stand-ins offline, as root or not, with no
#: daemon and nothing under /etc.
NIX_CONF = (
    "build-users-group =\n"
    "sandbox = false\n"
    "substituters =\n"
    "experimental-features = nix-command flakes\n"
    "flake-registry =\n"
    "download-attempts = 1\n"
)

_COPY_IGNORE = shutil.ignore_patterns(
    "options.json", "flake.lock", "result", "result-*", "guest", "__pycache__"
)


def nix_available() -> bool:
    """Whether a ``nix`` executable is on PATH."""
    return shutil.which("nix") is not None


def offline_nix_env(tmp_path: Path) -> dict[str, str]:
    """Write the offline ``nix.conf`` under *tmp_path* and return an environment using it.

    The result is a copy of ``os.environ`` with ``NIX_CONF_DIR`` pointing at
    the new folder and ``NIX_USER_CONF_FILES`` at the same file, so that a
    user's own ``~/.config/nix/nix.conf`` cannot add substituters or registries.
    """
    conf_dir = tmp_path / "nix-conf"
    conf_dir.mkdir(parents=True, exist_ok=True)
    conf_file = conf_dir / "nix.conf"
    conf_file.write_text(NIX_CONF, encoding="utf-8")
    env = dict(os.environ)
    env["NIX_CONF_DIR"] = str(conf_dir)
    env["NIX_USER_CONF_FILES"] = str(conf_file)
    return env


def prepare_inputs(
    dest: Path, *, guest: GuestImage | None = None, options: Mapping[str, Any] | None = None
) -> dict[str, Path]:
    """Copy both stand-ins into *dest* and return ``{"nixpkgs": ..., "microvm": ...}``.

    The microvm stand-in declares the guest options of nixgen's packaged
    schema (``nixgen/data/microvm-options.json``), written as ``options.json``
    beside its ``flake.nix``; *options* replaces that option tree (a
    microvm.nix with other options).

    With *guest* (``tests.guestimage.guest_image()``), its kernel and initrd
    are put beside the microvm ``flake.nix`` as ``guest/vmlinux`` and
    ``guest/initrd``: the qemu runner's ``bin/microvm-run`` then starts a real
    ``qemu-system-x86_64`` booting that guest, and ``bin/microvm-shutdown``
    stops it over QMP. Without it (the default) every runner only prints a line.
    """
    dest = dest.resolve()
    dest.mkdir(parents=True, exist_ok=True)
    inputs: dict[str, Path] = {}
    for name in ("nixpkgs", "microvm"):
        target = dest / name
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(STANDINS_DIR / name, target, ignore=_COPY_IGNORE)
        inputs[name] = target
    tree = packaged_schema().guest if options is None else options
    (inputs["microvm"] / "options.json").write_text(json.dumps(tree, indent=1), encoding="utf-8")
    if guest is not None:
        folder = inputs["microvm"] / "guest"
        folder.mkdir()
        _link_or_copy(guest.kernel, folder / "vmlinux")
        _link_or_copy(guest.initrd, folder / "initrd")
    return inputs


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link to the cached file where possible (same file system), else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def override_args(inputs: Mapping[str, Path]) -> list[str]:
    """``--override-input NAME path:/abs/dir`` for every input (nixpkgs first)."""
    ordered = sorted(inputs, key=lambda name: (name != "nixpkgs", name))
    args: list[str] = []
    for name in ordered:
        args += ["--override-input", name, f"path:{Path(inputs[name]).resolve()}"]
    return args


def inputs_with_flake_parts(dest: Path) -> dict[str, Path]:
    """:func:`prepare_inputs` plus the flake-parts stand-in (used in place: nothing
    of it is generated), the inputs the computed corpus (``tests/computed/``) takes."""
    return {**prepare_inputs(dest), "flake-parts": STANDINS_DIR / "flake-parts"}


def flake_override_args(inputs: Mapping[str, Path], folder: Path) -> list[str]:
    """:func:`override_args` for the inputs that ``folder``'s ``flake.nix`` names."""
    text = (folder / "flake.nix").read_text(encoding="utf-8")
    return override_args({name: path for name, path in inputs.items() if f"inputs.{name}" in text})
