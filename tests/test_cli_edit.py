"""The command line over existing flakes: show, set, unset, add, rm, rename."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from nixgen import Flake, FlakeFile, Interface, MicroVM, Share, Volume, write_project
from nixgen.build import build
from nixgen.nixcmd import NixRunner
from nixgen.project import Project, init_project
from nixgen.render import generated_state
from tests.clirunner import run_cli
from tests.flakefiles import copy_flake, snapshot
from tests.standin import (
    NIX_SKIP_REASON,
    nix_available,
    offline_nix_env,
    prepare_inputs,
)


def run(*args: str) -> tuple[int, str, str]:
    result = run_cli(list(args))
    return result.exit_code, result.stdout, result.stderr


# ----------------------------------------------------------------- show


def test_show_lists_guests_as_a_table(tmp_path: Path) -> None:
    folder = copy_flake(tmp_path, "split")
    code, out, _ = run("show", "--flake", str(folder))
    assert code == 0
    assert out.splitlines() == [
        "NAME     SYSTEM        HYPERVISOR            VCPU  MEM       SETTINGS  DECLARED",
        'web      x86_64-linux  lib.mkDefault "qemu"  2     1024 MiB  10        flake.nix:18',
        'db       x86_64-linux  lib.mkDefault "qemu"  1     2048 MiB  9         flake.nix:26',
        "builder  x86_64-linux  qemu                  4     4096 MiB  3         flake.nix:30",
    ]


def test_show_one_guest_says_where_each_setting_is(tmp_path: Path) -> None:
    folder = copy_flake(tmp_path, "split")
    code, out, _ = run("show", "web", "--flake", str(folder))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "web: system x86_64-linux, declared at flake.nix:18"
    assert any(line.split() == ["microvm.mem", "1024", "vms/web.nix:9"] for line in lines), lines
    assert any(
        line.split()
        == ["networking.firewall.allowedTCPPorts", "[", "80", "443", "]", "vms/web-extra.nix:2"]
        for line in lines
    )
    assert "kept as written, outside the model:" in lines
    assert any(line.startswith("  microvm.hypervisor: an expression") for line in lines)


def test_show_json_for_scripts(tmp_path: Path) -> None:
    folder = copy_flake(tmp_path, "split")
    code, out, _ = run("show", "--json", "--flake", str(folder))
    assert code == 0
    data = json.loads(out)
    assert [g["name"] for g in data["guests"]] == ["web", "db", "builder"]
    db = data["guests"][1]
    assert db["settings"]["microvm.mem"] == 2048
    assert db["settings"]["microvm.hypervisor"] == {"_nix": 'lib.mkDefault "qemu"'}
    assert db["where"]["microvm.mem"] == ["vms/db.nix:7"]
    assert db["model"]["mem"] == 2048 and "volumes" not in db["model"]
    assert set(db["unmodelled"]) == {"microvm.hypervisor", "microvm.volumes"}
    assert data["unreadable"] == [] and data["project"] is False
    code, out, _ = run("show", "db", "--json", "--flake", str(folder))
    assert code == 0 and json.loads(out) == db


def test_show_lists_what_it_cannot_read_and_why(tmp_path: Path) -> None:
    folder = copy_flake(tmp_path, "flakes/computed-genattrs.nix")
    code, out, _ = run("show", "-f", str(folder))
    assert code == 0
    assert "no guests nixgen can read" in out
    assert "nixosConfigurations is computed by `lib.genAttrs`" in out
    code, out, _ = run("show", "--json", "-f", str(folder))
    [item] = json.loads(out)["unreadable"]
    assert item["name"] is None and item["where"] == "flake.nix:16"
    assert "lib.genAttrs" in item["reason"]
    folder = copy_flake(tmp_path, "flakes/helper-function.nix")
    code, out, _ = run("show", "-f", str(folder))
    assert "not readable without evaluating the flake:" in out


def test_show_uses_the_current_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = copy_flake(tmp_path, "flakes/template.nix")
    monkeypatch.chdir(folder)
    code, out, _ = run("show")
    assert code == 0 and out.splitlines()[1].startswith("my-microvm  x86_64-linux  qemu")


# ----------------------------------------------------------------- set and unset


def test_set_several_options_dry_run_prints_the_diff(tmp_path: Path) -> None:
    folder = copy_flake(tmp_path, "flakes/multi-guest.nix")
    before = snapshot(folder)
    code, out, _ = run(
        "set", "web", "microvm.mem=2048", "microvm.balloon=true", "-f", str(folder), "--dry-run"
    )
    assert code == 0
    assert out == (
        "--- a/flake.nix\n"
        "+++ b/flake.nix\n"
        "@@ -12,10 +12,11 @@\n"
        "           {\n"
        '             networking.hostName = "web";\n'
        '             microvm.hypervisor = "qemu";\n'
        "-            microvm.mem = 1024;\n"
        "+            microvm.mem = 2048;\n"
        "             microvm.vcpu = 2;\n"
        '             microvm.interfaces = [ { type = "user"; id = "qemu"; mac = "02:00:00:01:01:01"; } ];\n'
        '             microvm.forwardPorts = [ { from = "host"; host.port = 8080; guest.port = 80; } ];\n'
        "+            microvm.balloon = true;\n"
        "             services.nginx.enable = true;\n"
        "             networking.firewall.allowedTCPPorts = [ 80 ];\n"
        "           }\n"
    )
    assert snapshot(folder) == before


def test_set_writes_in_place(tmp_path: Path) -> None:
    folder = copy_flake(tmp_path, "split")
    code, out, _ = run(
        "set",
        "db",
        "microvm.vcpu=2",
        'microvm.interfaces=[ { type = "tap"; id = "vm-db"; mac = "02:00:00:00:00:11"; } ]',
        'system="aarch64-linux"',
        "-f",
        str(folder),
    )
    assert code == 0, out
    assert out.splitlines() == [
        f"wrote   {folder / 'flake.nix'}",
        f"wrote   {folder / 'vms/db.nix'}",
    ]
    db = FlakeFile.load(folder)["db"]
    assert db.vcpu == 2 and db.system == "aarch64-linux"
    assert [i.id for i in db.interfaces] == ["vm-db"]
    assert 'system = "aarch64-linux";' in (folder / "flake.nix").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("microvm.hypervisor=qemu",), "quote them: microvm.hypervisor='\"qemu\"'"),
        (("microvm.mem=./x",), "is not a Nix literal"),
        (('microvm.mem="big"',), "expected a whole number"),
        (('microvm.hypervisor="firecracker"',), "cannot share folders over 9p"),
        (("microvm.vcpu=2", "microvm.mem=0"), "must be a positive number"),
        (('networking.hostName="x"',), "rename"),
        (("microvm={ }",), "one by one"),
    ],
)
def test_bad_values_are_refused_and_nothing_changes(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    folder = copy_flake(tmp_path, "flakes/template.nix")
    before = snapshot(folder)
    code, _, err = run("set", "my-microvm", *args, "--flake", str(folder))
    assert code == 1
    assert message in err
    assert snapshot(folder) == before


def test_usage_errors(tmp_path: Path) -> None:
    folder = copy_flake(tmp_path, "flakes/template.nix")
    before = snapshot(folder)
    result = run_cli(["set", "my-microvm", "microvm.mem", "-f", str(folder)])
    assert result.exit_code == 2 and "is not KEY=VALUE" in result.stderr
    code, _, err = run("set", "nope", "microvm.mem=1", "-f", str(folder))
    assert code == 1 and "no guest 'nope'" in err and "my-microvm" in err
    code, _, err = run("unset", "my-microvm", "microvm.balloon", "-f", str(folder))
    assert code == 1 and "does not set microvm.balloon" in err
    result = run_cli(["show", "-f", str(tmp_path / "missing")])
    assert result.exit_code == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run("show", "-f", str(empty))
    assert code == 1 and "flake.nix: no such file" in err
    assert snapshot(folder) == before


def test_unset(tmp_path: Path) -> None:
    folder = copy_flake(tmp_path, "flakes/template.nix")
    code, out, _ = run(
        "unset",
        "my-microvm",
        "microvm.socket",
        "users.users.root.password",
        "-f",
        str(folder),
        "--dry-run",
    )
    assert code == 0
    assert [line for line in out.splitlines() if line.startswith(("-", "+"))] == [
        "--- a/flake.nix",
        "+++ b/flake.nix",
        '-              users.users.root.password = "";',
        '-                socket = "control.socket";',
    ]


# ----------------------------------------------------------------- add, rm, rename


def test_add_rm_rename_on_the_upstream_template_shape(tmp_path: Path) -> None:
    folder = copy_flake(tmp_path, "flakes/template.nix")
    code, out, _ = run(
        "add",
        "second",
        "--hypervisor",
        "cloud-hypervisor",
        "--mem",
        "256",
        "--vcpu",
        "2",
        "-f",
        str(folder),
    )
    assert code == 0, out
    flake = FlakeFile.load(folder)
    assert flake["second"] == MicroVM(name="second", hypervisor="cloud-hypervisor", mem=256, vcpu=2)
    text = (folder / "flake.nix").read_text()
    assert "second = self.nixosConfigurations.second.config.microvm.declaredRunner;" in text
    code, out, _ = run("rename", "my-microvm", "first", "-f", str(folder))
    assert code == 0
    code, out, _ = run("rm", "second", "-f", str(folder), "--dry-run")
    assert code == 0 and out.startswith("--- a/flake.nix\n")
    assert "-        second = nixpkgs.lib.nixosSystem {" in out
    code, out, _ = run("rm", "second", "-f", str(folder))
    assert code == 0
    flake = FlakeFile.load(folder)
    assert flake.names() == ["first"]
    text = (folder / "flake.nix").read_text()
    assert "default = self.packages.${system}.first;" in text
    assert "second" not in text and "my-microvm" not in text


def test_add_rm_rename_on_a_generated_project(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    init_project(folder, template="microvm", git_add=False, name="web")
    code, out, err = run("add", "db", "--mem", "1024", "-f", str(folder))
    assert code == 0, err
    assert f"wrote   {folder / 'vms/db.nix'}" in out.splitlines()
    assert Project.at(folder).load().guest("db").mem == 1024
    code, out, err = run("rename", "db", "database", "-f", str(folder))
    assert code == 0, err
    assert f"removed {folder / 'vms/db.nix'}" in out.splitlines()
    code, out, err = run("set", "database", "microvm.vcpu=2", "-f", str(folder))
    assert code == 0, err
    code, out, err = run("rm", "web", "-f", str(folder))
    assert code == 0, err
    assert sorted(p.name for p in (folder / "vms").iterdir()) == ["database.nix"]
    declared = Project.at(folder).load()
    assert [g.name for g in declared.guests] == ["database"]
    assert declared.guest("database").vcpu == 2
    for name in ("flake.nix", "vms/database.nix"):
        assert generated_state((folder / name).read_text()) == "pristine"
    code, out, _ = run("render", str(folder))
    assert code == 0 and out.strip() == "up to date"


def test_hosts_are_shown_apart_and_guests_they_run_can_go(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    init_project(folder, template="multi", git_add=False)
    project = Project.at(folder)
    declared = project.load()
    project.save(declared.with_host(declared.hosts[0].evolve(nixos_configuration=True)))
    project.render()
    code, out, _ = run("show", "-f", str(folder))
    assert code == 0
    lines = out.splitlines()
    assert [line.split()[0] for line in lines[1:4]] == ["web", "db", "cache"]
    assert lines[4:] == [
        "",
        "hosts (they run guests; nixgen does not edit them):",
        "HOST    KIND           SYSTEM        RUNS            DECLARED",
        "vmhost  configuration  x86_64-linux  web, db, cache  flake.nix:50",
    ]
    code, out, _ = run("show", "vmhost", "-f", str(folder))
    assert code == 0 and out.splitlines()[:2] == [
        "vmhost: a host, not a guest (nixosConfigurations.vmhost, declared at flake.nix:50); "
        "nixgen does not edit hosts",
        "  recognised: imports microvm.nixosModules.host",
    ]
    code, out, _ = run("show", "--json", "-f", str(folder))
    assert json.loads(out)["hosts"] == [
        {
            "name": "vmhost",
            "kind": "configuration",
            "system": "x86_64-linux",
            "declared": "flake.nix:50",
            "recognised": "imports microvm.nixosModules.host",
            "module": "hosts/vmhost.nix",
            "runs": ["web", "db", "cache"],
        }
    ]
    before = snapshot(folder)
    for args in (("rm", "vmhost"), ("rename", "vmhost", "h2"), ("set", "vmhost", "microvm.mem=1")):
        code, _, err = run(*args, "-f", str(folder))
        assert code == 1 and "'vmhost' is a host, not a guest" in err, args
    assert snapshot(folder) == before
    code, _, err = run("rename", "db", "database", "-f", str(folder))
    assert code == 0, err
    assert "'database' has the interface vm-database" in err
    code, out, err = run("rm", "web", "-f", str(folder))
    assert code == 0, err
    assert f"removed {folder / 'vms/web.nix'}" in out.splitlines()
    assert f"wrote   {folder / 'hosts/vmhost.nix'}" in out.splitlines()
    assert "move to other addresses" in err
    assert [h.guest_names for h in Project.at(folder).load().hosts] == [("database", "cache")]
    code, out, _ = run("render", str(folder))
    assert code == 0 and out.strip() == "up to date"


def test_dry_run_shows_new_and_removed_files(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    init_project(folder, template="microvm", git_add=False, name="web")
    before = snapshot(folder)
    code, out, _ = run("rename", "web", "www", "-f", str(folder), "--dry-run")
    assert code == 0
    assert "--- a/vms/web.nix\n+++ /dev/null\n" in out
    assert "--- /dev/null\n+++ b/vms/www.nix\n" in out
    assert "--- a/nixgen.toml\n+++ b/nixgen.toml\n" in out
    assert "-[guests.web]\n" in out and "+[guests.www]\n" in out
    assert snapshot(folder) == before


def test_a_refused_rename_changes_nothing(tmp_path: Path) -> None:
    folder = copy_flake(tmp_path, "flakes/multi-guest.nix")
    before = snapshot(folder)
    code, _, err = run("rename", "web", "db", "-f", str(folder))
    assert code == 1 and "already has a guest 'db'" in err
    code, _, err = run("rename", "web", "web_1", "-f", str(folder))
    assert code == 1 and "not a valid host name" in err
    assert snapshot(folder) == before


# ----------------------------------------------------------------- with nix


@pytest.mark.nix
def test_a_flake_edited_on_the_command_line_builds(tmp_path: Path) -> None:
    if not nix_available():
        pytest.skip(NIX_SKIP_REASON)
    os.environ.update(offline_nix_env(tmp_path / "nix"))
    inputs = {n: f"path:{p}" for n, p in prepare_inputs(tmp_path / "inputs").items()}
    folder = copy_flake(tmp_path, "flakes/multi-guest.nix")
    for args in (
        ("set", "db", "microvm.mem=1024", "microvm.vcpu=2"),
        ("unset", "web", "services.nginx.enable"),
        ("rename", "web", "www"),
        ("rm", "cache"),
        ("add", "extra", "--mem", "256"),
    ):
        code, _, err = run(*args, "-f", str(folder))
        assert code == 0, (args, err)
    flake = FlakeFile.load(folder)
    flake.set("extra", "microvm.shares", [Share.ro_store()])
    flake.save()
    built = build(folder, nix=NixRunner(override_inputs=inputs), gc_roots=False, use_cache=False)
    assert sorted(built) == ["db", "extra", "www"]
    assert all(r.run_script.is_file() for r in built.values())


def test_add_copies_the_shape_of_the_guests_there(tmp_path: Path) -> None:
    """Interfaces, volumes and shares of the last guest with that hypervisor, made db's own."""
    folder = tmp_path / "p"
    web = MicroVM(
        name="web",
        interfaces=[Interface.user(), Interface.tap_device("vm-web")],
        volumes=[Volume(image="var.img", mount_point="/var", size=256)],
        shares=[
            Share.ro_store(),
            Share.virtiofs("data", "/srv/web-data", "/data"),
        ],
    )
    write_project(Flake(guests=[web]), folder)
    Project(folder).save(Flake(guests=[web]))
    code, _, err = run("add", "db", "-f", str(folder))
    assert code == 0, err
    assert "the interfaces, volumes and shares of web (2, 1, 2)" in err
    db = Project.at(folder).load().guest("db")
    assert [(i.type, i.id) for i in db.interfaces] == [("user", "eth0"), ("tap", "vm-db")]
    assert db.resolved_interfaces()[1].mac != web.resolved_interfaces()[1].mac
    assert [(v.image, v.mount_point) for v in db.volumes] == [("var.img", "/var")]
    assert [(s.tag, s.source) for s in db.shares] == [
        ("ro-store", "/nix/store"),
        ("data", "/srv/db-data"),
    ]
    code, _, err = run("add", "bare", "--bare", "-f", str(folder))
    assert code == 0, err
    bare = Project.at(folder).load().guest("bare")
    assert (bare.interfaces, bare.volumes, bare.shares) == ((), (), ())
