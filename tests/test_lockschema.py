"""The flake's own locked microvm.nix decides which options exist (real nix, stand-ins)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from nixgen.lockschema import LockSchemaError, lock_schema
from nixgen.nixcmd import NixRunner
from nixgen.schema import CACHE_DIR, packaged_schema
from tests.clirunner import run_cli
from tests.standin import NIX_SKIP_REASON, nix_available, offline_nix_env, prepare_inputs

pytestmark = [pytest.mark.nix, pytest.mark.skipif(not nix_available(), reason=NIX_SKIP_REASON)]

NEW_OPTION = "frobnicate"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ.update(offline_nix_env(tmp_path_factory.mktemp("nix")))


def newer_microvm(dest: Path) -> dict[str, str]:
    """Stand-in inputs whose microvm.nix has one option more than the packaged schema."""
    guest = dict(packaged_schema().guest)
    guest[NEW_OPTION] = guest["balloon"]  # a boolean, default false
    inputs = prepare_inputs(dest, options=guest)
    return {name: f"path:{path}" for name, path in inputs.items()}


def overrides(inputs: dict[str, str]) -> list[str]:
    return [a for name, url in inputs.items() for a in ("--override-input", name, url)]


def project_using_the_new_option(folder: Path) -> Path:
    assert run_cli(["init", str(folder)]).exit_code == 0
    toml = folder / "nixgen.toml"
    toml.write_text(
        toml.read_text(encoding="utf-8") + f"\n[guests.my-microvm.extra]\n{NEW_OPTION} = true\n",
        encoding="utf-8",
    )
    return folder


def nix_calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    seen: list[list[str]] = []
    original = NixRunner.run

    def spy(self: NixRunner, args: Any, **kw: Any) -> Any:
        seen.append(list(args))
        return original(self, args, **kw)

    monkeypatch.setattr(NixRunner, "run", spy)
    return seen


def test_an_option_only_the_locked_microvm_has_is_accepted_through_the_lock(
    tmp_path: Path, env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs = newer_microvm(tmp_path / "inputs")
    folder = project_using_the_new_option(tmp_path / "p")
    # Without nix, the packaged schema does not know it.
    result = run_cli(["check", str(folder), "--no-eval"])
    assert result.exit_code == 1
    assert f"microvm.nix has no option microvm.{NEW_OPTION}" in result.output
    assert "microvm options: packaged with nixgen" in result.output
    # With nix, the locked input's schema does, and nix agrees when it evaluates.
    calls = nix_calls(monkeypatch)
    result = run_cli(["check", str(folder), *overrides(inputs)])
    assert result.exit_code == 0, result.output
    assert "evaluated with nix" in result.output
    assert "microvm options: the flake's locked microvm input (path:" in result.output
    assert sum(1 for c in calls if c[:1] == ["eval"] and "--file" in c) == 1
    (cached,) = (folder / CACHE_DIR).iterdir()
    assert cached.name.startswith("sha256-")
    # Read once: the next check takes it from the cache under .nixgen/.
    calls.clear()
    result = run_cli(["check", str(folder), *overrides(inputs)])
    assert result.exit_code == 0, result.output
    assert not [c for c in calls if "--file" in c]


def test_the_lock_decides_both_ways(tmp_path: Path, env: None) -> None:
    """A microvm.nix without the option refuses it before nix, like the packaged schema."""
    plain = {n: f"path:{p}" for n, p in prepare_inputs(tmp_path / "inputs").items()}
    folder = project_using_the_new_option(tmp_path / "p")
    result = run_cli(["check", str(folder), *overrides(plain)])
    assert result.exit_code == 1
    assert f"has no option microvm.{NEW_OPTION}" in result.output
    assert "microvm options: the flake's locked microvm input" in result.output


def test_lock_schema_reads_the_locked_input(tmp_path: Path, env: None) -> None:
    inputs = newer_microvm(tmp_path / "inputs")
    folder = project_using_the_new_option(tmp_path / "p")
    schema = lock_schema(folder, nix=NixRunner(override_inputs=inputs))
    assert NEW_OPTION in schema.guest
    assert NEW_OPTION not in packaged_schema().guest
    # The host module is read as well.
    assert "startupTimeout" in schema.host["host"]["group"]


def test_a_flake_nix_cannot_lock_falls_back_with_a_note(tmp_path: Path, env: None) -> None:
    folder = project_using_the_new_option(tmp_path / "p")
    # No overrides: the github inputs cannot be fetched offline.
    with pytest.raises(LockSchemaError):
        lock_schema(folder, nix=NixRunner(timeout=60))
    result = run_cli(["check", str(folder)])
    assert "using the options nixgen ships" in result.output
    assert f"has no option microvm.{NEW_OPTION}" in result.output
    assert result.exit_code == 1


def test_once_read_the_locked_schema_serves_commands_without_nix(tmp_path: Path, env: None) -> None:
    """With a flake.lock, check reads the lock without overrides, and render,
    check --no-eval and set then use the cached schema (no nix call) instead of
    the packaged one."""
    inputs = newer_microvm(tmp_path / "inputs")
    folder = project_using_the_new_option(tmp_path / "p")
    lock = subprocess.run(
        ["nix", "flake", "lock", f"path:{folder}", *overrides(inputs)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert lock.returncode == 0, lock.stderr
    assert (folder / "flake.lock").is_file()
    assert "packaged with nixgen" in run_cli(["check", str(folder), "--no-eval"]).output
    result = run_cli(["check", str(folder)])
    assert result.exit_code == 0, result.output
    assert "microvm options: the flake's locked microvm input" in result.output
    result = run_cli(["check", str(folder), "--no-eval"])
    assert result.exit_code == 0, result.output
    assert "microvm options: the flake's locked microvm input" in result.output
    assert run_cli(["render", str(folder)]).exit_code == 0
    assert f"{NEW_OPTION} = true;" in (folder / "vms/my-microvm.nix").read_text(encoding="utf-8")
    # nixgen set (FlakeFile) too: the option the flake's microvm.nix has is settable
    # (unset first, so that setting it is a new use, not one there before).
    unset = run_cli(["unset", "-f", str(folder), "my-microvm", f"microvm.{NEW_OPTION}"])
    assert unset.exit_code == 0, unset.output
    result = run_cli(["set", "-f", str(folder), "my-microvm", f"microvm.{NEW_OPTION}=false"])
    assert result.exit_code == 0, result.output
    assert f"{NEW_OPTION} = false;" in (folder / "vms/my-microvm.nix").read_text(encoding="utf-8")
