"""nixgen as a user installs it: typed (py.typed), with its templates and .nix files."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

USER_CODE = """\
from nixgen import MicroVM, Flake

ok = Flake(guests=[MicroVM(name="web", mem=1024)])
bad = MicroVM(name="web", mem="lots")
"""


def test_a_users_mypy_strict_sees_nixgens_types(tmp_path: Path) -> None:
    # Run from a folder outside the repository: mypy finds the installed nixgen.
    (tmp_path / "user.py").write_text(USER_CODE)
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "user.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert "py.typed" not in done.stdout, done.stdout
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1, done.stdout
    assert errors[0].startswith("user.py:4:") and '"mem" to "MicroVM"' in errors[0]


def test_the_wheel_ships_py_typed_templates_and_nix_files(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if built.returncode != 0:
        pytest.skip(f"cannot build a wheel here (pip needs PyPI for hatchling): {built.stderr}")
    [wheel] = tmp_path.glob("nixgen-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "nixgen/py.typed" in names
    assert "nixgen/build.nix" in names
    assert "nixgen/_templates/flake/flake.nix.j2" in names
