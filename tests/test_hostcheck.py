"""``nixgen check`` evaluates hosts too, module-only ones included (real nix, stand-ins)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nixgen import Flake, Host, HostVM, MicroVM, Nix, write_project
from nixgen.hostcheck import HostEvalError, evaluate_hosts
from nixgen.nixcmd import NixRunner
from nixgen.project import Project
from tests.clirunner import run_cli
from tests.standin import NIX_SKIP_REASON, nix_available, offline_nix_env, prepare_inputs

pytestmark = [pytest.mark.nix, pytest.mark.skipif(not nix_available(), reason=NIX_SKIP_REASON)]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("inputs")
    os.environ.update(offline_nix_env(base))
    return {name: f"path:{path}" for name, path in prepare_inputs(base).items()}


def overrides(inputs: dict[str, str]) -> list[str]:
    return [a for name, url in inputs.items() for a in ("--override-input", name, url)]


def multi(folder: Path) -> Path:
    assert run_cli(["init", "-t", "multi", str(folder)]).exit_code == 0
    return folder


def line_of(path: Path, text: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def test_the_multi_templates_module_only_host_is_evaluated(
    tmp_path: Path, inputs: dict[str, str]
) -> None:
    folder = multi(tmp_path / "p")
    result = run_cli(["check", str(folder), *overrides(inputs)])
    assert result.exit_code == 0, result.output
    assert "evaluated with nix (1 host(s) too)" in result.output


def test_a_misspelt_option_in_a_host_module_is_the_hosts_error_at_its_line(
    tmp_path: Path, inputs: dict[str, str]
) -> None:
    folder = multi(tmp_path / "p")
    module = folder / "hosts/vmhost.nix"
    text = module.read_text(encoding="utf-8")
    module.write_text(text.replace("autostart = true;", "autostrat = true;", 1), encoding="utf-8")
    result = run_cli(["check", str(folder), *overrides(inputs)])
    assert result.exit_code == 1
    line = line_of(module, "autostrat")
    assert (
        f"error: host 'vmhost': the option `microvm.vms.web.autostrat' does not exist "
        f"(defined at hosts/vmhost.nix:{line})" in result.output
    )
    assert "guest" not in result.output.split("\n")[0]
    assert "<unknown-file>" not in result.output


def test_a_full_host_that_fails_is_reported_as_a_host(
    tmp_path: Path, inputs: dict[str, str]
) -> None:
    flake = Flake(
        guests=[MicroVM(name="web")],
        hosts=[Host(name="alpha", vms=[HostVM(name="web")], nixos_configuration=True)],
    )
    folder = tmp_path / "p"
    write_project(flake, folder)
    Project(folder).save(flake)
    module = folder / "hosts/alpha.nix"
    text = module.read_text(encoding="utf-8")
    module.write_text(text.replace("autostart = true;", "autostrat = true;", 1), encoding="utf-8")
    result = run_cli(["check", str(folder), *overrides(inputs)])
    assert result.exit_code == 1
    assert "error: host 'alpha': the option `microvm.vms.web.autostrat' does not exist" in (
        result.output
    )
    assert f"hosts/alpha.nix:{line_of(module, 'autostrat')}" in result.output
    assert "guest 'alpha'" not in result.output


def test_every_host_module_option_evaluates(tmp_path: Path, inputs: dict[str, str]) -> None:
    host = Host(
        name="h",
        vms=[HostVM(name="web", mode="config")],
        nixos={
            "microvm.host.startupTimeout": 300,
            "microvm.host.useNotifySockets": True,
            "microvm.vms.web.extraModules": [Nix('{ networking.domain = "example.org"; }')],
            "microvm.vms.web.pkgs": Nix("pkgs"),
            "microvm.vms.web.nixpkgs": Nix("pkgs.path"),
            "microvm.vms.web.evaluatedConfig": Nix("null"),
        },
    )
    flake = Flake(guests=[MicroVM(name="web")], hosts=[host])
    folder = tmp_path / "p"
    write_project(flake, folder)
    Project(folder).save(flake)
    runner = NixRunner(override_inputs=inputs)
    (drv,) = evaluate_hosts(folder, {"h": "x86_64-linux"}, nix=runner).values()
    assert drv.endswith(".drv")
    # A wrong type that only nix sees (an expression) fails as the host's.
    bad = host.evolve(nixos={**host.nixos, "microvm.host.startupTimeout": Nix("0")})
    write_project(flake.evolve(hosts=[bad]), folder, force=True)
    with pytest.raises(HostEvalError) as err:
        evaluate_hosts(folder, {"h": "x86_64-linux"}, nix=runner)
    assert "microvm.host.startupTimeout" in str(err.value.errors["h"])
