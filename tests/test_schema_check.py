"""Every ``microvm.*`` name is checked against microvm.nix's schema, at every door."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nixgen import Flake, FlakeFile, Host, HostVM, MicroVM, ValidationError, check, validate
from nixgen.model import Nix
from nixgen.model.convert import loads_flake
from nixgen.render import render_files
from nixgen.schema import Schema, packaged_schema
from tests.clirunner import run_cli
from tests.standin import NIX_SKIP_REASON, STANDINS_DIR, nix_available, offline_nix_env

REPO = Path(__file__).resolve().parents[1]


def messages(target: Flake | MicroVM, *, warnings: bool = False) -> list[str]:
    return [f"{p.path}: {p.message} | {p.hint}" for p in check(target) if p.warning == warnings]


# ------------------------------------------------------------- the packaged data


def test_packaged_schema_records_its_microvm_revision() -> None:
    data = json.loads((REPO / "nixgen/data/microvm-options.json").read_text(encoding="utf-8"))
    assert data["source"]["url"] == "github:microvm-nix/microvm.nix"
    assert len(data["source"]["rev"]) == 40
    schema = packaged_schema()
    assert schema.rev == data["source"]["rev"]
    assert schema.rev is not None
    assert schema.rev[:7] in schema.source
    # guest and host module, both
    assert schema.guest["mem"]["type"]["name"] == "positiveInt"
    assert set(schema.host["host"]["group"]) == {"enable", "startupTimeout", "useNotifySockets"}
    vm_options = schema.host["vms"]["type"]["nested"]["elemType"]["options"]
    assert {"extraModules", "pkgs", "nixpkgs", "evaluatedConfig", "config", "flake"} <= set(
        vm_options
    )


@pytest.mark.nix
@pytest.mark.skipif(not nix_available(), reason=NIX_SKIP_REASON)
def test_the_script_reads_a_checkouts_declarations(tmp_path: Path) -> None:
    """scripts/microvm-options.py on the stand-ins: it gives back the tree the
    stand-in declared its options from (the packaged one), read by a module system."""
    microvm = tmp_path / "microvm"
    shutil.copytree(STANDINS_DIR / "microvm", microvm)
    (microvm / "options.json").write_text(json.dumps(packaged_schema().guest), encoding="utf-8")
    out = tmp_path / "schema.json"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts/microvm-options.py"),
            "--microvm",
            str(microvm),
            "--nixpkgs",
            str(STANDINS_DIR / "nixpkgs"),
            "--rev",
            "0123456789abcdef0123456789abcdef01234567",
            "--out",
            str(out),
        ],
        env=offline_nix_env(tmp_path),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["source"]["rev"] == "0123456789abcdef0123456789abcdef01234567"
    packaged = dict(packaged_schema().guest)
    read = dict(data["guest"])
    # The stand-in's own storeDisk (null or a package) stands for upstream's.
    assert read.pop("storeDisk")["type"]["name"] == "nullOr"
    packaged.pop("storeDisk")
    assert set(read) == set(packaged)
    # Names and types at every depth (defaults are the stand-in's own).
    assert _without_defaults(read) == _without_defaults(packaged)
    assert set(data["host"]) == {"host", "vms", "stateDir", "autostart"}


def _without_defaults(value: object) -> object:
    if isinstance(value, dict):
        return {k: _without_defaults(v) for k, v in value.items() if k != "default"}
    return value


# ------------------------------------------------------------- the Python API


def test_a_misspelt_extra_name_gets_the_closest_real_one() -> None:
    (found,) = messages(MicroVM(name="vm", extra={"memory": 1024}))
    assert found.startswith(
        'guests["vm"].extra["memory"]: microvm.nix has no option microvm.memory'
    )
    assert "did you mean microvm.mem?" in found


def test_a_misspelt_name_inside_a_namespace() -> None:
    (found,) = messages(MicroVM(name="vm", extra={"vsock.ssh.enabel": True}))
    assert "did you mean microvm.vsock.ssh.enable?" in found


def test_a_name_below_a_plain_option_is_refused() -> None:
    (found,) = messages(MicroVM(name="vm", extra={"prettyProcnames.x": True}))
    assert "microvm.prettyProcnames is an option, it has no 'x' inside" in found


def test_extra_values_are_checked_against_the_option_type() -> None:
    found = messages(
        MicroVM(
            name="vm",
            extra={
                "storeDiskErofsFlags": 3,
                "optimize.enable": "yes",
                "binScripts": {"a": "echo", "b": 1},
            },
        )
    )
    assert any("microvm.storeDiskErofsFlags is list of string; got an integer" in f for f in found)
    assert any("microvm.optimize.enable is boolean; got a string" in f for f in found)
    assert any(
        "microvm.binScripts is attribute set of" in f and "b: got an integer" in f for f in found
    )
    assert len(found) == 3


def test_nix_expressions_and_right_types_pass() -> None:
    vm = MicroVM(
        name="vm",
        extra={
            "storeDiskErofsFlags": ["-zlz4"],
            "optimize": {"enable": False},
            "qemu.package": Nix("pkgs.qemu"),
            "vsock.ssh.enable": True,
            "binScripts.hello": "echo hi",
        },
    )
    assert messages(vm) == []


def test_a_host_option_on_a_guest_says_where_it_belongs() -> None:
    (found,) = messages(MicroVM(name="vm", extra={"host.startupTimeout": 300}))
    assert "belongs to microvm.nix's host module" in found


def test_top_level_names_nixos_does_not_have_get_a_warning() -> None:
    vm = MicroVM(name="vm", nixos={"balloon": True, "servics.nginx.enable": True, "services.x": 1})
    found = messages(vm, warnings=True)
    assert len(found) == 2
    assert any(
        "NixOS has no options under 'balloon'" in f and "microvm.balloon" in f for f in found
    )
    assert any(
        "NixOS has no options under 'servics'" in f and "did you mean services" in f for f in found
    )


def test_a_schema_decides_what_exists() -> None:
    """check() takes the schema to use (e.g. one read off the flake's lock)."""
    packaged = packaged_schema()
    newer = Schema(
        guest={**packaged.guest, "memory": packaged.guest["mem"]},
        host=packaged.host,
        source="a newer microvm.nix",
    )
    vm = MicroVM(name="vm", extra={"memory": 1024})
    assert messages(vm)
    assert check(vm, schema=newer) == []
    assert validate(Flake(guests=[vm]), schema=newer) == []


# ------------------------------------------------------------- nixgen.toml


def test_toml_extra_tables_are_checked() -> None:
    text = """
[guests.web]
hypervisor = "qemu"

[guests.web.extra]
memory = 1024
"optimize.enable" = true
"""
    flake = loads_flake(text)
    with pytest.raises(ValidationError) as err:
        validate(flake)
    (problem,) = err.value.problems
    assert problem.path == 'guests["web"].extra["memory"]'
    assert "did you mean microvm.mem?" in problem.message


# ------------------------------------------------------------- the host module


def test_every_host_module_option_can_be_set() -> None:
    host = Host(
        name="h",
        vms=[HostVM(name="web")],
        nixos={
            "microvm.host.startupTimeout": 300,
            "microvm.host.useNotifySockets": True,
            "microvm.vms.web.extraModules": [Nix("./extra.nix")],
            "microvm.vms.web.pkgs": Nix("pkgs"),
            "microvm.vms.web.nixpkgs": Nix("pkgs.path"),
            "microvm.vms.other.evaluatedConfig": Nix("self.nixosConfigurations.web"),
        },
    )
    flake = Flake(guests=[MicroVM(name="web")], hosts=[host])
    assert [p for p in check(flake) if not p.warning] == []
    text = render_files(flake)[next(p for p in render_files(flake) if p.parts[0] == "hosts")]
    assert "startupTimeout = 300;" in text
    assert "useNotifySockets = true;" in text
    assert "extraModules = [ (./extra.nix) ];" in text
    # one microvm set: the free settings joined nixgen's own
    assert text.count("microvm") == 1 + text.count("microvm.")


def test_host_module_options_are_checked() -> None:
    host = Host(
        name="h",
        vms=[HostVM(name="web")],
        nixos={
            "microvm.host.startupTimout": 300,
            "microvm.host.startupTimeout": 0,
            "microvm.vms.web.autostrat": False,
            "microvm.vms.web.flake": Nix("self"),
            "microvm.mem": 1024,
        },
    )
    found = messages(Flake(guests=[MicroVM(name="web")], hosts=[host]))
    assert any("did you mean microvm.host.startupTimeout?" in f for f in found)
    assert any("microvm.host.startupTimeout is positive integer" in f for f in found)
    assert any("did you mean microvm.vms.web.autostart?" in f for f in found)
    assert any("microvm.vms.web.flake is set by nixgen" in f for f in found)
    assert any("microvm.mem belongs to microvm.nix's guest module" in f for f in found)
    assert len(found) == 5


# ------------------------------------------------------------- the CLI


def test_nixgen_set_refuses_a_misspelt_option(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    assert run_cli(["init", str(folder)]).exit_code == 0
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    result = run_cli(["set", "-f", str(folder), "my-microvm", "microvm.memory=1024"])
    assert result.exit_code == 1
    assert "did you mean microvm.mem?" in result.output
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before
    ok = run_cli(["set", "-f", str(folder), "my-microvm", "microvm.mem=1024"])
    assert ok.exit_code == 0, ok.output


# ------------------------------------------------------------- FlakeFile


def test_flakefile_edits_are_checked(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    assert run_cli(["init", str(folder)]).exit_code == 0
    flake = FlakeFile.load(folder)
    with pytest.raises(ValidationError) as err:
        flake.set("my-microvm", "microvm.memory", 1024)
    assert "did you mean microvm.mem?" in str(err.value)
    with pytest.raises(ValidationError) as err:
        flake.set("my-microvm", "microvm.optimize.enable", "no")
    assert "microvm.optimize.enable is boolean; got a string" in str(err.value)
    flake.set("my-microvm", "microvm.optimize.enable", False)
    assert "optimize.enable = false;" in flake.diff()


def test_a_misspelt_option_written_by_hand_can_still_be_unset(tmp_path: Path) -> None:
    """Edits are refused for what they bring, not for what was there: unset removes it."""
    folder = tmp_path / "p"
    assert run_cli(["init", str(folder)]).exit_code == 0
    module = next((folder / "vms").glob("*.nix"))
    text = module.read_text(encoding="utf-8")
    module.write_text(
        text.replace("mem = 512;", "mem = 512;\n    memory = 1024;"), encoding="utf-8"
    )
    (folder / "nixgen.toml").unlink(missing_ok=True)
    flake = FlakeFile.load(folder)
    assert any("no option microvm.memory" in p.message for p in check(flake.model()))
    flake.set("my-microvm", "microvm.vcpu", 2)  # the old mistake does not block other edits
    flake.unset("my-microvm", "microvm.memory")
    flake.save()
    assert "memory" not in module.read_text(encoding="utf-8")


def test_toml_host_module_options() -> None:
    text = """
[guests.web]

[hosts.alpha]
vms = ["web"]

[hosts.alpha.nixos]
"microvm.host.startupTimeout" = 0
"microvm.host.useNotifySockets" = true
"microvm.vms.web.autostrat" = false
"""
    with pytest.raises(ValidationError) as err:
        validate(loads_flake(text))
    found = sorted(f"{p.path}: {p.message}" for p in err.value.problems)
    assert found == [
        'hosts["alpha"].nixos["microvm.host.startupTimeout"]: microvm.host.startupTimeout is '
        "positive integer, meaning >0; 0 is out of range",
        'hosts["alpha"].nixos["microvm.vms.web.autostrat"]: microvm.nix has no option '
        "microvm.vms.web.autostrat; did you mean microvm.vms.web.autostart?",
    ]
