"""Reading existing flakes into the model and editing them in place (nixgen.flake)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from nixgen import (
    Flake,
    FlakeFile,
    ForwardPort,
    Interface,
    MicroVM,
    Nix,
    Share,
    User,
    ValidationError,
    Volume,
)
from nixgen.build import build
from nixgen.errors import NixgenError, OptionError
from nixgen.flake.errors import FlakeEditError
from nixgen.nix.emit import attr_path, parse_attr_path
from nixgen.nix.literal import parse_literal
from nixgen.nix.parse import Document
from nixgen.nix.read import read_module
from nixgen.nixcmd import NixRunner
from nixgen.project import Project, init_project
from nixgen.render import GUESTS_DIR, SOURCE_NAME, generated_state, render_files, write_project
from nixgen.settings import (
    model_from_settings,
    set_option,
    to_settings,
    unset_option,
)
from nixgen.starters import TEMPLATES
from nixgen.validate import check
from tests.flakefiles import copy_flake, snapshot
from tests.standin import (
    NIX_SKIP_REASON,
    nix_available,
    offline_nix_env,
    prepare_inputs,
)

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA/PuEtAu8SXppI2pMMgzaBDwga1mYYi90W8DZ8Diyl3 me@host"


def flat_nixos(table: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> dict[str, Any]:
    """nixos settings as one dotted key per leaf, as reading a flake gives them."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        path = (*prefix, *parse_attr_path(key))
        if isinstance(value, Mapping) and value:
            out.update(flat_nixos(value, path))
        else:
            out[attr_path(path)] = value
    return out


def project(tmp_path: Path, template: str = "multi") -> Path:
    folder = tmp_path / template
    init_project(folder, template=template, git_add=False)
    return folder


def plain_project(tmp_path: Path) -> Path:
    """A nixgen project of three guests and no hosts."""
    folder = tmp_path / "plain"
    guests = [
        MicroVM(name=name, interfaces=[Interface.user()], shares=[Share.ro_store()])
        for name in ("web", "db", "cache")
    ]
    flake = Flake(guests=guests)
    write_project(flake, folder, source=SOURCE_NAME)
    Project(folder).save(flake)
    return folder


NESTED = (
    "--- a/flake.nix\n"
    "+++ b/flake.nix\n"
    "@@ -46,7 +46,8 @@\n"
    " \n"
    "                 # the one hypervisor that runs on this build machine\n"
    '                 hypervisor = "qemu";\n'
    '-                socket = "control.socket";\n'
    '+                socket = "vm.sock";\n'
    "+                mem = 1024;\n"
    "               };\n"
    "             }\n"
    "           ];\n"
)


DOTTED = (
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

ASSIGN = (
    "--- a/flake.nix\n"
    "+++ b/flake.nix\n"
    "@@ -30,10 +30,11 @@\n"
    '             networking.hostName = "db";\n'
    "             microvm = {\n"
    '               hypervisor = "qemu";\n'
    "-              mem = 2560;\n"
    "+              mem = 3072;\n"
    "               volumes = [\n"
    '                 { image = "pg.img"; mountPoint = "/var/lib/postgresql"; size = 4096; }\n'
    "               ];\n"
    "+              vcpu = 2;\n"
    "             };\n"
    "             services.postgresql.enable = true;\n"
    "           }\n"
)

UNSET_DIFF = (
    "--- a/flake.nix\n"
    "+++ b/flake.nix\n"
    "@@ -15,8 +15,6 @@\n"
    "             microvm.mem = 1024;\n"
    "             microvm.vcpu = 2;\n"
    '             microvm.interfaces = [ { type = "user"; id = "qemu"; mac = "02:00:00:01:01:01"; } ];\n'
    '-            microvm.forwardPorts = [ { from = "host"; host.port = 8080; guest.port = 80; } ];\n'
    "-            services.nginx.enable = true;\n"
    "             networking.firewall.allowedTCPPorts = [ 80 ];\n"
    "           }\n"
    "         ];\n"
)

SYSTEM = (
    "--- a/flake.nix\n"
    "+++ b/flake.nix\n"
    "@@ -24,7 +24,7 @@\n"
    "           ];\n"
    "         };\n"
    "         db = nixpkgs.lib.nixosSystem {\n"
    "-          inherit system;\n"
    '+          system = "aarch64-linux";\n'
    "           modules = [ microvm.nixosModules.microvm ./vms/common.nix ./vms/db.nix ];\n"
    "         };\n"
    "         builder = nixpkgs.lib.nixosSystem {\n"
)

SPLIT = (
    "--- a/vms/web-extra.nix\n"
    "+++ b/vms/web-extra.nix\n"
    "@@ -1,3 +1,4 @@\n"
    " {\n"
    "   networking.firewall.allowedTCPPorts = [ 80 443 ];\n"
    "+  networking.firewall.enable = false;\n"
    " }\n"
    "--- a/vms/web.nix\n"
    "+++ b/vms/web.nix\n"
    "@@ -6,7 +6,7 @@\n"
    '   networking.hostName = "web";\n'
    " \n"
    "   microvm = {\n"
    "-    mem = 1024;\n"
    "+    mem = 2048;\n"
    "     vcpu = 2;\n"
    "     interfaces = [\n"
    "       {\n"
    "@@ -15,6 +15,7 @@\n"
    '         mac = "02:00:00:00:00:10";\n'
    "       }\n"
    "     ];\n"
    "+    balloon = true;\n"
    "   };\n"
    " \n"
    "   services.nginx = {\n"
)

MKDEFAULT = (
    "--- a/vms/web.nix\n"
    "+++ b/vms/web.nix\n"
    "@@ -15,6 +15,7 @@\n"
    '         mac = "02:00:00:00:00:10";\n'
    "       }\n"
    "     ];\n"
    '+    hypervisor = "cloud-hypervisor";\n'
    "   };\n"
    " \n"
    "   services.nginx = {\n"
)

ADD = (
    "--- a/flake.nix\n"
    "+++ b/flake.nix\n"
    "@@ -19,6 +19,7 @@\n"
    "       packages.${system} = {\n"
    "         default = self.packages.${system}.my-microvm;\n"
    "         my-microvm = self.nixosConfigurations.my-microvm.config.microvm.declaredRunner;\n"
    "+        second = self.nixosConfigurations.second.config.microvm.declaredRunner;\n"
    "       };\n"
    " \n"
    "       nixosConfigurations = {\n"
    "@@ -51,6 +52,30 @@\n"
    "             }\n"
    "           ];\n"
    "         };\n"
    "+        second = nixpkgs.lib.nixosSystem {\n"
    "+          inherit system;\n"
    "+          modules = [\n"
    "+            microvm.nixosModules.microvm\n"
    "+            {\n"
    '+              networking.hostName = "second";\n'
    '+              system.stateVersion = "26.05";\n'
    "+\n"
    "+              microvm = {\n"
    '+                hypervisor = "qemu";\n'
    "+                vcpu = 1;\n"
    "+                mem = 256;\n"
    "+                shares = [\n"
    "+                  {\n"
    '+                    tag = "ro-store";\n'
    '+                    source = "/nix/store";\n'
    '+                    mountPoint = "/nix/.ro-store";\n'
    '+                    proto = "9p";\n'
    "+                  }\n"
    "+                ];\n"
    "+              };\n"
    "+            }\n"
    "+          ];\n"
    "+        };\n"
    "       };\n"
    "     };\n"
    " }\n"
)

RENAME = (
    "--- a/flake.nix\n"
    "+++ b/flake.nix\n"
    "@@ -17,17 +17,17 @@\n"
    '       system = "x86_64-linux";\n'
    "     in {\n"
    "       packages.${system} = {\n"
    "-        default = self.packages.${system}.my-microvm;\n"
    "-        my-microvm = self.nixosConfigurations.my-microvm.config.microvm.declaredRunner;\n"
    "+        default = self.packages.${system}.vm1;\n"
    "+        vm1 = self.nixosConfigurations.vm1.config.microvm.declaredRunner;\n"
    "       };\n"
    " \n"
    "       nixosConfigurations = {\n"
    "-        my-microvm = nixpkgs.lib.nixosSystem {\n"
    "+        vm1 = nixpkgs.lib.nixosSystem {\n"
    "           inherit system;\n"
    "           modules = [\n"
    "             microvm.nixosModules.microvm\n"
    "             {\n"
    '-              networking.hostName = "my-microvm";\n'
    '+              networking.hostName = "vm1";\n'
    '               users.users.root.password = "";\n'
    "               microvm = {\n"
    "                 volumes = [ {\n"
)

LETBOUND = (
    "--- a/flake.nix\n"
    "+++ b/flake.nix\n"
    "@@ -29,7 +29,7 @@\n"
    "         inherit router;\n"
    "         dns = lib.nixosSystem {\n"
    "           inherit system;\n"
    '-          modules = [ microvm.nixosModules.microvm base { networking.hostName = "dns"; } ];\n'
    '+          modules = [ microvm.nixosModules.microvm base { networking.hostName = "dns"; microvm.mem = 256; } ];\n'
    "         };\n"
    "       };\n"
    "     };\n"
)

ADDSPLIT = (
    "--- a/flake.nix\n"
    "+++ b/flake.nix\n"
    "@@ -27,6 +27,13 @@\n"
    "           inherit system;\n"
    "           modules = [ microvm.nixosModules.microvm ./vms/common.nix ./vms/db.nix ];\n"
    "         };\n"
    "+        cache = nixpkgs.lib.nixosSystem {\n"
    "+          inherit system;\n"
    "+          modules = [\n"
    "+            microvm.nixosModules.microvm\n"
    "+            ./vms/cache.nix\n"
    "+          ];\n"
    "+        };\n"
    "         builder = nixpkgs.lib.nixosSystem {\n"
    "           inherit system;\n"
    "           modules = [ microvm.nixosModules.microvm ./hosts ];\n"
    "--- /dev/null\n"
    "+++ b/vms/cache.nix\n"
    "@@ -0,0 +1,11 @@\n"
    "+{ ... }:\n"
    "+{\n"
    '+  networking.hostName = "cache";\n'
    '+  system.stateVersion = "26.05";\n'
    "+\n"
    "+  microvm = {\n"
    '+    hypervisor = "qemu";\n'
    "+    vcpu = 1;\n"
    "+    mem = 256;\n"
    "+  };\n"
    "+}\n"
)


# ----------------------------------------------------------------- reading into the model


def test_template_shape_reads_into_the_model(tmp_path: Path) -> None:
    flake = FlakeFile.load(copy_flake(tmp_path, "flakes/template.nix"))
    assert flake.names() == ["my-microvm"] and not flake.unreadable and not flake.project
    assert flake["my-microvm"] == MicroVM(
        name="my-microvm",
        volumes=[Volume(image="var.img", mount_point="/var", size=256)],
        shares=[Share.ro_store()],
        socket="control.socket",
        allow_empty_root_password=True,
    )
    guest = flake.guest("my-microvm")
    assert guest.unmodelled == {}
    assert guest.settings["microvm.socket"] == "control.socket"
    assert guest.span.line == 25


def test_dotted_and_nested_guests_read_alike(tmp_path: Path) -> None:
    flake = FlakeFile.load(copy_flake(tmp_path, "flakes/multi-guest.nix"))
    assert flake.names() == ["web", "db", "cache"]
    assert (
        flake["web"]
        == MicroVM(
            name="web",
            mem=1024,
            vcpu=2,
            interfaces=[Interface.user(id="qemu", mac="02:00:00:01:01:01")],
            forward_ports=[ForwardPort.tcp(8080, 80)],
            nixos={"services.nginx.enable": True, "networking.firewall.allowedTCPPorts": [80]},
        )
        or flake["web"].forward_ports[0].host.port == 8080
    )
    assert flake["db"] == MicroVM(
        name="db",
        mem=2560,
        volumes=[Volume(image="pg.img", mount_point="/var/lib/postgresql", size=4096)],
        nixos={"services.postgresql.enable": True},
    )
    cache = flake.guest("cache")
    assert cache.vm == MicroVM(
        name="cache", hypervisor="firecracker", mem=256, system="aarch64-linux"
    )
    # A setting the model cannot hold is kept aside with the reason, never dropped.
    [(key, kept)] = cache.unmodelled.items()
    assert key == 'services.redis.servers."".enable' and kept.value is True
    assert "empty component" in kept.reason


def test_expressions_stay_out_of_the_model_as_source(tmp_path: Path) -> None:
    flake = FlakeFile.load(copy_flake(tmp_path, "split"))
    assert flake.names() == ["web", "db", "builder"]
    web = flake.guest("web")
    assert web.settings["microvm.hypervisor"] == Nix('lib.mkDefault "qemu"')
    assert set(web.unmodelled) == {"microvm.hypervisor"}
    assert "does not evaluate" in web.unmodelled["microvm.hypervisor"].reason
    assert web.vm == MicroVM(
        name="web",
        mem=1024,
        vcpu=2,
        state_version="24.11",  # from ./vms/common.nix
        interfaces=[Interface.tap_device("vm-web", mac="02:00:00:00:00:10")],
        shares=[Share.virtiofs("ro-store", "/nix/store", "/nix/.ro-store")],
        nixos={
            "networking.firewall.allowedTCPPorts": [80, 443],  # from the imported web-extra.nix
            "services.nginx.enable": True,
            'services.nginx.virtualHosts."web.example.org".root': "/var/www",
        },
    )
    db = flake.guest("db")
    assert db.unmodelled["microvm.volumes"].value == [
        {"image": "db.img", "mountPoint": Nix("dataDir"), "size": 8192}
    ]
    # Free NixOS settings hold expressions as they are.
    assert db.vm.nixos["services.postgresql.package"] == Nix("pkgs.postgresql_16")
    assert flake["builder"] == MicroVM(name="builder", mem=4096, vcpu=4)  # full module form


def test_let_rec_with_forms(tmp_path: Path) -> None:
    let = FlakeFile.load(copy_flake(tmp_path, "flakes/let-bound-guests.nix"))
    assert let["router"] == MicroVM(
        name="router",
        system="aarch64-linux",
        mem=384,
        socket="control.socket",
        allow_empty_root_password=True,
    )
    with_lib = FlakeFile.load(copy_flake(tmp_path, "flakes/with-lib.nix"))
    assert with_lib["withvm"] == MicroVM(
        name="withvm",
        mem=640,
        kernel_params=["console=ttyS0", "quiet"],
        packages=[Nix("htop"), Nix("tmux")],
        nixos={"boot.kernelPackages": Nix("mkForce linuxPackages_latest")},
    )
    rec = FlakeFile.load(copy_flake(tmp_path, "flakes/rec-outputs.nix"))
    assert rec.names() == ["plain"]
    assert rec["plain"].nixos["networking.firewall.allowedTCPPorts"] == (Nix("port"),)
    [computed] = rec.unreadable
    assert "computed" in computed.reason


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_generated_projects_read_back_into_their_model(tmp_path: Path, template: str) -> None:
    folder = tmp_path / "p"
    init_project(
        folder, template=template, git_add=False, ssh_keys=[KEY], allow_empty_root_password=True
    )
    flake = FlakeFile.load(folder)
    assert flake.project
    declared = Project.at(folder).load()
    assert flake.names() == [g.name for g in declared.guests]
    rendered = render_files(declared, source=SOURCE_NAME)
    on_networks = {g for h in declared.hosts for n in h.networks for g in n.guests}
    for vm in declared.guests:
        guest = flake.guest(vm.name)
        assert guest.unmodelled == {}
        # What nixgen reads is what nixgen renders, option by option.
        module = read_module(Document.parse(rendered[PurePosixPath(GUESTS_DIR) / f"{vm.name}.nix"]))
        assert dict(guest.settings) == {s.key: s.value for s in module.settings}
        assert to_settings(guest.vm) == {"system": vm.system, **guest.settings}
        if vm.name not in on_networks:
            # Rendering fixes the MAC addresses and writes free NixOS settings one per line.
            expected = vm.evolve(interfaces=vm.resolved_interfaces(), nixos=flat_nixos(vm.nixos))
            assert guest.vm == expected


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("computed-genattrs.nix", "lib.genAttrs"),
        ("computed-listtoattrs.nix", "listToAttrs"),
        ("import-configs.nix", "imported from another file"),
        ("flake-parts.nix", "flake-parts.lib.mkFlake"),
        ("helper-function.nix", "nixgen cannot follow that function"),
    ],
)
def test_computed_guests_are_listed_with_the_reason(tmp_path: Path, name: str, reason: str) -> None:
    folder = copy_flake(tmp_path, f"flakes/{name}")
    flake = FlakeFile.load(folder)
    assert any(reason in u.reason for u in flake.unreadable), flake.unreadable
    named = [u.name for u in flake.unreadable if u.name]
    if named:
        before = snapshot(folder)
        with pytest.raises(FlakeEditError, match="cannot be read without evaluating"):
            flake.set(named[0], "microvm.mem", 1024)
        assert snapshot(folder) == before


# ----------------------------------------------------------------- edits, as diffs


def test_set_in_the_nested_form(tmp_path: Path) -> None:
    flake = FlakeFile.load(copy_flake(tmp_path, "flakes/template.nix"))
    flake.guest("my-microvm").set("microvm.mem", 1024)
    flake.set("my-microvm", "microvm.socket", "vm.sock")
    assert flake.diff() == NESTED
    assert flake["my-microvm"].mem == 1024


def test_dotted_stays_dotted(tmp_path: Path) -> None:
    flake = FlakeFile.load(copy_flake(tmp_path, "flakes/multi-guest.nix"))
    flake.set("web", "microvm.mem", 2048)
    flake.set("web", "microvm.balloon", True)
    assert flake.diff() == DOTTED
    assert flake["web"].balloon and flake["web"].mem == 2048


def test_assigning_a_model_writes_only_what_changed(tmp_path: Path) -> None:
    flake = FlakeFile.load(copy_flake(tmp_path, "flakes/multi-guest.nix"))
    flake["db"] = flake["db"]  # nothing changed: nothing written
    assert flake.diff() == ""
    flake["db"] = flake["db"].evolve(mem=3072, vcpu=2)
    assert flake.diff() == ASSIGN
    with pytest.raises(FlakeEditError, match="rename"):
        flake["db"] = flake["db"].evolve(name="other")


def test_unset_removes_the_bindings(tmp_path: Path) -> None:
    flake = FlakeFile.load(copy_flake(tmp_path, "flakes/multi-guest.nix"))
    flake.unset("web", "microvm.forwardPorts", "services.nginx.enable")
    assert flake.diff() == UNSET_DIFF
    assert flake["web"].forward_ports == () and "services.nginx.enable" not in flake["web"].nixos


def test_the_system_argument(tmp_path: Path) -> None:
    flake = FlakeFile.load(copy_flake(tmp_path, "split"))
    flake.set("db", "system", "aarch64-linux")
    assert flake.diff() == SYSTEM
    assert flake["db"].system == "aarch64-linux" and flake["web"].system == "x86_64-linux"


def test_guests_spread_over_module_files(tmp_path: Path) -> None:
    folder = copy_flake(tmp_path, "split")
    flake = FlakeFile.load(folder)
    flake.update(
        "web", {"microvm.mem": 2048, "microvm.balloon": True, "networking.firewall.enable": False}
    )
    # Each option goes to the file it is (or its closest neighbours are) written in.
    assert flake.diff() == SPLIT
    assert set(flake.changes()) == {folder / "vms/web.nix", folder / "vms/web-extra.nix"}
    flake.save()
    again = FlakeFile.load(folder)
    assert again["web"].mem == 2048 and again["web"].balloon
    assert again["web"].nixos["networking.firewall.enable"] is False


def test_a_shared_default_is_overridden_in_the_guests_own_module(tmp_path: Path) -> None:
    flake = FlakeFile.load(copy_flake(tmp_path, "split"))
    flake.set("web", "microvm.hypervisor", "cloud-hypervisor")
    assert flake.diff() == MKDEFAULT  # common.nix (shared with db) keeps lib.mkDefault "qemu"
    assert flake["web"].hypervisor == "cloud-hypervisor"
    assert "microvm.hypervisor" in flake.guest("db").unmodelled  # still the shared default
    flake.unset("web", "microvm.hypervisor")
    assert flake.diff() == ""
    assert flake.notes and "(vms/common.nix:3) now applies" in flake.notes[0]


def test_a_guests_own_inline_module_takes_new_options(tmp_path: Path) -> None:
    flake = FlakeFile.load(copy_flake(tmp_path, "flakes/let-bound-guests.nix"))
    flake.set("dns", "microvm.mem", 256)  # not into `base`, which router uses too
    assert flake.diff() == LETBOUND


def test_a_guest_with_only_shared_modules_gets_one_of_its_own(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "flake.nix").write_text(
        "{\n"
        "  outputs = { self, nixpkgs, microvm }:\n"
        "    let\n"
        '      base = { microvm.hypervisor = "qemu"; };\n'
        "    in {\n"
        "      nixosConfigurations.a = nixpkgs.lib.nixosSystem {\n"
        '        system = "x86_64-linux";\n'
        "        modules = [ microvm.nixosModules.microvm base ];\n"
        "      };\n"
        "      nixosConfigurations.b = nixpkgs.lib.nixosSystem {\n"
        '        system = "x86_64-linux";\n'
        "        modules = [ microvm.nixosModules.microvm base ];\n"
        "      };\n"
        "    };\n"
        "}\n"
    )
    flake = FlakeFile.load(folder)
    flake.set("a", "microvm.mem", 1024)
    changed = [line for line in flake.diff().splitlines() if line.startswith(("-", "+"))]
    assert changed == [
        "--- a/flake.nix",
        "+++ b/flake.nix",
        "-        modules = [ microvm.nixosModules.microvm base ];",
        "+        modules = [ microvm.nixosModules.microvm base { microvm.mem = 1024; } ];",
    ]
    assert flake["a"].mem == 1024 and flake["b"].mem == 512
    assert flake.notes


def test_add_follows_the_upstream_template_shape(tmp_path: Path) -> None:
    flake = FlakeFile.load(copy_flake(tmp_path, "flakes/template.nix"))
    flake.add(MicroVM(name="second", mem=256, shares=[Share.ro_store()]))
    assert flake.diff() == ADD
    assert flake["second"] == MicroVM(name="second", mem=256, shares=[Share.ro_store()])
    with pytest.raises(FlakeEditError, match="already has a guest"):
        flake.add(MicroVM(name="second"))


def test_rename_and_remove_on_the_upstream_template_shape(tmp_path: Path) -> None:
    flake = FlakeFile.load(copy_flake(tmp_path, "flakes/template.nix"))
    flake.rename("my-microvm", "vm1")
    assert flake.diff() == RENAME
    assert flake.names() == ["vm1"] and flake["vm1"].name == "vm1"
    flake.remove("vm1")
    assert flake.names() == []
    text = flake.changes()[flake.path][1]
    assert text is not None
    assert "my-microvm" not in text and "vm1" not in text
    assert flake.notes == ("removed `default`, which pointed at 'vm1'",)


def test_add_to_a_flake_with_module_files_creates_one(tmp_path: Path) -> None:
    folder = copy_flake(tmp_path, "split")
    flake = FlakeFile.load(folder)
    flake.add(MicroVM(name="cache", mem=256))
    assert flake.diff() == ADDSPLIT
    assert any("no runner package" in n for n in flake.notes)
    flake.save()
    assert (folder / "vms/cache.nix").is_file()
    assert FlakeFile.load(folder)["cache"] == MicroVM(name="cache", mem=256)


def test_remove_and_rename_keep_references_right(tmp_path: Path) -> None:
    flake = FlakeFile.load(copy_flake(tmp_path, "flakes/multi-guest.nix"))
    flake.rename("web", "www")
    flake.remove("db")
    after = flake.changes()[flake.path][1]
    assert after is not None
    assert "default = self.packages.x86_64-linux.www;" in after
    assert "www = self.nixosConfigurations.www.config.microvm.declaredRunner;" in after
    assert "db" not in after.replace("dbus", "")
    assert "\n\n\n" not in after
    flake.remove("www")  # the default package moves to a guest that is left
    after = flake.changes()[flake.path][1]
    assert after is not None and "default" not in after  # cache is aarch64-linux


def test_rename_moves_a_guests_own_module_file(tmp_path: Path) -> None:
    folder = copy_flake(tmp_path, "split")
    flake = FlakeFile.load(folder)
    flake.rename("web", "www")
    changes = flake.changes()
    assert changes[folder / "vms/web.nix"][1] is None
    moved = changes[folder / "vms/www.nix"][1]
    assert moved is not None and 'networking.hostName = "www";' in moved
    assert "./vms/www.nix" in (changes[folder / "flake.nix"][1] or "")
    flake.save()
    assert not (folder / "vms/web.nix").exists()
    assert FlakeFile.load(folder)["www"].mem == 1024


# ----------------------------------------------------------------- refusals change nothing


REFERENCED = """{
  outputs = { self, nixpkgs, microvm }: {
    nixosConfigurations.web = nixpkgs.lib.nixosSystem {
      system = "x86_64-linux";
      modules = [
        microvm.nixosModules.microvm
        ({ lib, ... }: {
          networking.hostName = "web";
          services.nginx = lib.mkIf true { enable = true; };
        })
      ];
    };
    apps.x86_64-linux.web = {
      type = "app";
      program = "${self.nixosConfigurations.web.config.microvm.declaredRunner}/bin/microvm-run";
    };
  };
}
"""


def _refusals() -> list[tuple[str, Any, type[Exception], str]]:
    return [
        (
            "flakes/template.nix",
            lambda f: f.set("my-microvm", "microvm.hypervisor", "firecracker"),
            ValidationError,
            "cannot share folders over 9p",
        ),
        (
            "flakes/template.nix",
            lambda f: f.set("my-microvm", "microvm.mem", "big"),
            ValidationError,
            "expected a whole number",
        ),
        (
            "flakes/template.nix",
            lambda f: f.set("my-microvm", "microvm.volumes", [{"image": "x"}]),
            ValidationError,
            "is required",
        ),
        (
            "flakes/template.nix",
            lambda f: f.set("my-microvm", "networking.hostName", "x"),
            OptionError,
            "rename",
        ),
        (
            "flakes/template.nix",
            lambda f: f.unset("my-microvm", "microvm.balloon"),
            OptionError,
            "does not set microvm.balloon",
        ),
        (
            "flakes/template.nix",
            lambda f: f.set("nope", "microvm.mem", 1),
            FlakeEditError,
            "no guest 'nope'",
        ),
        (
            "flakes/template.nix",
            lambda f: f.set("my-microvm", "microvm", {}),
            OptionError,
            "one by one",
        ),
        (
            "flakes/multi-guest.nix",
            lambda f: f.rename("web", "db"),
            FlakeEditError,
            "already has a guest 'db'",
        ),
        (
            "flakes/let-bound-guests.nix",
            lambda f: f.set("router", "microvm.socket", "x.sock"),
            FlakeEditError,
            "dns also uses",
        ),
        (
            "flakes/let-bound-guests.nix",
            lambda f: f.rename("router", "r"),
            FlakeEditError,
            "inherited",
        ),
        (
            "split",
            lambda f: f.set("web", "system.stateVersion", "25.05"),
            FlakeEditError,
            "db also uses",
        ),
        (
            "split",
            lambda f: f.update("db", {"microvm.mem": 1024, "microvm.vcpu": 0}),
            ValidationError,
            "must be at least 1",
        ),
    ]


@pytest.mark.parametrize("case", range(len(_refusals())))
def test_refused_edits_change_nothing(tmp_path: Path, case: int) -> None:
    name, change, error, message = _refusals()[case]
    folder = copy_flake(tmp_path, name)
    before = snapshot(folder)
    flake = FlakeFile.load(folder)
    model = flake.model()
    with pytest.raises(error, match=message):
        change(flake)
    assert flake.diff() == "" and flake.model() == model
    flake.save()
    assert snapshot(folder) == before


def test_expressions_and_references_block_edits(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "flake.nix").write_text(REFERENCED)
    flake = FlakeFile.load(folder)
    with pytest.raises(FlakeEditError, match="cannot look into"):
        flake.set("web", "services.nginx.enable", False)
    with pytest.raises(FlakeEditError, match="still referred to"):
        flake.remove("web")
    flake.rename("web", "www")  # references are renamed with it
    text = flake.changes()[flake.path][1]
    assert text is not None and "self.nixosConfigurations.www.config" in text


def test_save_refuses_files_changed_since_they_were_read(tmp_path: Path) -> None:
    folder = copy_flake(tmp_path, "split")
    flake = FlakeFile.load(folder)
    flake.update("web", {"microvm.mem": 2048, "networking.firewall.enable": False})
    (folder / "vms/web-extra.nix").write_text("{ }\n")
    before = snapshot(folder)
    with pytest.raises(FlakeEditError, match="changed on disk"):
        flake.save()
    assert snapshot(folder) == before


def test_a_flake_with_crlf_line_ends_is_saved_and_a_change_on_disk_still_seen(
    tmp_path: Path,
) -> None:
    """CRLF line ends are not a change on disk: the edit is written, every other line
    keeping its CRLF; a real change of the file since it was read still refuses."""
    folder = copy_flake(tmp_path, "flakes/crlf.nix")
    before = (folder / "flake.nix").read_bytes()
    flake = FlakeFile.load(folder)
    flake.set("crlf", "microvm.mem", 2048)
    flake.save()
    after = (folder / "flake.nix").read_bytes()
    assert after.count(b"\r\n") == before.count(b"\r\n") and after.count(b"\n") == after.count(
        b"\r\n"
    )
    assert FlakeFile.load(folder)["crlf"].mem == 2048
    flake.set("crlf", "microvm.mem", 4096)
    (folder / "flake.nix").write_bytes(after.replace(b"crlf", b"CRLF", 1))
    changed = snapshot(folder)
    with pytest.raises(FlakeEditError, match="changed on disk"):
        flake.save()
    assert snapshot(folder) == changed


def test_new_files_are_tracked_by_git(tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git not found")
    folder = copy_flake(tmp_path, "split")
    git = ["git", "-C", str(folder)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    flake = FlakeFile.load(folder)
    flake.add(MicroVM(name="cache"))
    flake.rename("db", "database")
    flake.save()
    tracked = subprocess.run([*git, "ls-files"], capture_output=True, text=True).stdout.split()
    assert "vms/cache.nix" in tracked and "vms/database.nix" in tracked
    assert "vms/db.nix" not in tracked


# ----------------------------------------------------------------- nixgen projects


def test_project_edits_keep_nixgen_toml_in_step(tmp_path: Path) -> None:
    folder = project(tmp_path)
    flake = FlakeFile.load(folder)
    flake.set("web", "microvm.mem", 1024)
    flake.set("web", "microvm.interfaces", [Interface.user()])
    changed = flake.changes()
    assert set(changed) == {folder / "vms/web.nix", folder / "nixgen.toml"}
    module = changed[folder / "vms/web.nix"][1] or ""
    # The flake says what rendering nixgen.toml says: the derived MAC address too.
    mac = MicroVM(name="web", interfaces=[Interface.user()]).resolved_interfaces()[0].mac
    assert f'mac = "{mac}";' in module
    flake.save()
    declared = Project.at(folder).load().guest("web")
    assert declared.mem == 1024 and declared.interfaces == (Interface.user(),)
    # The edited file is still pristine, and `nixgen render` has nothing to do.
    assert generated_state((folder / "vms/web.nix").read_text()) == "pristine"
    result = Project.at(folder).render()
    assert result.written == () and result.removed == ()


def test_project_add_rename_remove(tmp_path: Path) -> None:
    folder = plain_project(tmp_path)
    macs = {i.id: i.mac for i in FlakeFile.load(folder)["db"].interfaces}
    flake = FlakeFile.load(folder)
    flake.add(MicroVM(name="extra", mem=256, shares=[Share.ro_store()]))
    flake.rename("db", "database")
    flake.remove("cache")
    flake.save()
    assert sorted(p.name for p in (folder / "vms").iterdir()) == [
        "database.nix",
        "extra.nix",
        "web.nix",
    ]
    declared = Project.at(folder).load()
    assert [g.name for g in declared.guests] == ["web", "database", "extra"]
    # The renamed guest keeps its MAC addresses (now written in nixgen.toml).
    assert {i.id: i.mac for i in declared.guest("database").interfaces} == macs
    assert FlakeFile.load(folder)["database"] == declared.guest("database").evolve(
        nixos=flat_nixos(declared.guest("database").nixos)
    )
    for name in ("flake.nix", "vms/database.nix", "vms/extra.nix"):
        assert generated_state((folder / name).read_text()) == "pristine", name
    result = Project.at(folder).render()
    assert result.written == () and result.removed == ()


def test_guests_a_host_runs_are_renamed_and_removed_with_the_host(tmp_path: Path) -> None:
    folder = project(tmp_path)  # the multi template: a host runs every guest
    flake = FlakeFile.load(folder)
    assert [(h.name, h.kind, h.runs) for h in flake.hosts()] == [
        ("vmhost", "module", ("web", "db", "cache"))
    ]
    flake.rename("db", "database")
    assert any("'database' has the interface vm-database" in n for n in flake.edit_notes)
    assert any("/var/lib/microvms/db" in n for n in flake.edit_notes)
    flake.remove("web")
    [moved] = [n for n in flake.edit_notes if "move to other addresses" in n]
    assert "database 10.0.0.3/24 → 10.0.0.2/24" in moved and "cache 10.0.0.4/24" in moved
    flake.add(MicroVM(name="extra", mem=256))  # a guest no host runs yet is fine
    flake.set("cache", "microvm.mem", 1024)
    flake.save()
    declared = Project.at(folder).load()
    assert [g.name for g in declared.guests] == ["database", "cache", "extra"]
    [host] = declared.hosts
    assert host.guest_names == ("database", "cache")
    assert host.network("lan").guests == ("database", "cache")
    assert [p for p in check(declared) if not p.warning] == []
    assert sorted(p.name for p in (folder / "vms").iterdir()) == [
        "cache.nix",
        "database.nix",
        "extra.nix",
    ]
    host_text = (folder / "hosts/vmhost.nix").read_text()
    assert "database = {" in host_text and '"vm-database" "vm-cache"' in host_text
    assert "web" not in host_text and "db =" not in host_text
    for name in ("flake.nix", "hosts/vmhost.nix", "vms/database.nix", "vms/cache.nix"):
        assert generated_state((folder / name).read_text()) == "pristine", name
    assert 'address = [ "10.0.0.3/24" ];' in (folder / "vms/cache.nix").read_text()
    result = Project.at(folder).render()
    assert result.written == () and result.removed == ()


def full_host_project(tmp_path: Path) -> Path:
    """The multi template with a full host configuration, pinned settings and a default."""
    folder = project(tmp_path)
    source = Project.at(folder)
    declared = source.load()
    host = declared.hosts[0]
    lan = host.network("lan").evolve(addresses={"db": ["10.0.0.20"]}, ids={"db": "tap-db"})
    declared = declared.evolve(
        guests=[
            g.evolve(interfaces=[Interface.user()]) if g.name == "db" else g
            for g in declared.guests
        ],
        hosts=[host.evolve(nixos_configuration=True, autostart=["db"], networks=[lan])],
        default="db",
    )
    source.save(declared)
    source.render()
    return folder


def test_full_host_configurations_are_hosts_not_guests(tmp_path: Path) -> None:
    folder = full_host_project(tmp_path)
    assert "vmhost = nixpkgs.lib.nixosSystem" in (folder / "flake.nix").read_text()
    flake = FlakeFile.load(folder)
    assert flake.names() == ["web", "db", "cache"]
    [host] = flake.hosts()
    assert (host.name, host.kind, host.system) == ("vmhost", "configuration", "x86_64-linux")
    assert host.reason == "imports microvm.nixosModules.host"
    assert host.file == folder / "hosts/vmhost.nix"
    assert host.runs == ("web", "db", "cache")
    assert (host.span.file, host.span.line) == (folder / "flake.nix", 50)
    before = snapshot(folder)
    for method, args in (
        (flake.set, ("vmhost", "microvm.mem", 1024)),
        (flake.unset, ("vmhost", "networking.hostName")),
        (flake.remove, ("vmhost",)),
        (flake.rename, ("vmhost", "other")),
    ):
        with pytest.raises(FlakeEditError, match="'vmhost' is a host, not a guest") as caught:
            method(*args)
        assert "[hosts.vmhost]" in str(caught.value)
    with pytest.raises(FlakeEditError, match="already has a host 'vmhost'"):
        flake.add(MicroVM(name="vmhost"))
    with pytest.raises(FlakeEditError, match="already has a host 'vmhost'"):
        flake.rename("web", "vmhost")
    assert not flake.dirty and snapshot(folder) == before

    db_macs = {i.id: i.mac for i in flake["db"].interfaces if i.type == "user"}
    flake.rename("db", "database")
    flake.remove("web")
    flake.save()
    declared = Project.at(folder).load()
    [host_model] = declared.hosts
    lan = host_model.network("lan")
    assert host_model.autostart == ("database",)
    assert dict(lan.addresses) == {"database": ("10.0.0.20",)}
    assert dict(lan.ids) == {"database": "tap-db"}
    assert declared.default == "database"
    # The guest's own interface keeps its MAC (pinned in nixgen.toml now).
    assert {i.id: i.mac for i in declared.guest("database").interfaces} == db_macs
    assert [p for p in check(declared) if not p.warning] == []
    assert [h.name for h in FlakeFile.load(folder).hosts()] == ["vmhost"]
    result = Project.at(folder).render()
    assert result.written == () and result.removed == ()


def test_a_hand_edited_host_file_refuses_what_it_would_have_to_follow(tmp_path: Path) -> None:
    folder = project(tmp_path)
    host = folder / "hosts/vmhost.nix"
    host.write_text(host.read_text().replace("host.enable = true;", "host.enable = true; # mine"))
    before = snapshot(folder)
    flake = FlakeFile.load(folder)
    with pytest.raises(FlakeEditError, match=r"hosts/vmhost\.nix has hand edits"):
        flake.remove("web")
    with pytest.raises(FlakeEditError, match=r"hosts/vmhost\.nix has hand edits"):
        flake.rename("db", "database")
    assert not flake.dirty and snapshot(folder) == before


def test_hand_written_hosts_are_listed_and_never_edited(tmp_path: Path) -> None:
    folder = copy_flake(tmp_path, "with-hosts")
    flake = FlakeFile.load(folder)
    assert flake.names() == ["web", "db", "cache"]
    hosts = {h.name: h for h in flake.hosts()}
    assert list(hosts) == ["vmhost", "edge", "spare"]
    # microvm.nix's host module, under the input's own name
    assert hosts["vmhost"].reason == "imports mvm.nixosModules.host"
    assert hosts["vmhost"].runs == ("web",)
    # a host module of the flake, as nixgen renders them
    assert hosts["edge"].reason == "imports self.nixosModules.edge, a host module"
    assert hosts["edge"].file == folder / "hosts/edge.nix"
    assert (hosts["edge"].system, hosts["edge"].runs) == ("aarch64-linux", ("db",))
    # a host module no configuration uses
    assert (hosts["spare"].kind, hosts["spare"].reason) == ("module", "sets microvm.autostart")
    assert [s.key for s in hosts["spare"].mentions("db")] == ["microvm.autostart"]
    before = snapshot(folder)
    with pytest.raises(FlakeEditError, match="'edge' is a host, not a guest") as caught:
        flake.set("edge", "microvm.mem", 1)
    assert "by hand" in str(caught.value)
    with pytest.raises(FlakeEditError, match="'spare' is a host"):
        flake.remove("spare")
    # nixgen cannot take a guest out of a host it did not render: refused, with where
    with pytest.raises(
        FlakeEditError, match=r"host 'vmhost' still runs guest 'web' \(hosts/vmhost.nix:5"
    ):
        flake.remove("web")
    with pytest.raises(FlakeEditError, match="host 'edge' still runs guest 'db'"):
        flake.rename("db", "database")
    assert not flake.dirty and snapshot(folder) == before
    flake.rename("cache", "kv")  # no host names it
    flake.add(MicroVM(name="extra"))
    flake.save()
    changed = {k for k, v in snapshot(folder).items() if before.get(k) != v}
    assert changed == {"flake.nix"}
    flake = FlakeFile.load(folder)
    assert flake.names() == ["web", "db", "kv", "extra"]
    assert [h.name for h in flake.hosts()] == ["vmhost", "edge", "spare"]


def test_hand_edits_are_not_laundered(tmp_path: Path) -> None:
    folder = project(tmp_path)
    module = folder / "vms/web.nix"
    module.write_text(module.read_text().replace('DHCP = "no";', 'DHCP = "no"; # mine'))
    assert generated_state(module.read_text()) == "edited"
    flake = FlakeFile.load(folder)
    flake.set("web", "microvm.vcpu", 2)
    flake.save()
    text = module.read_text()
    assert "# mine" in text and "vcpu = 2;" in text
    assert generated_state(text) == "edited"  # still marked: render keeps refusing
    with pytest.raises(NixgenError, match="hand-edited"):
        Project.at(folder).render()


def test_generated_flake_without_nixgen_toml_stays_pristine(tmp_path: Path) -> None:
    folder = project(tmp_path)
    (folder / "nixgen.toml").unlink()
    flake = FlakeFile.load(folder)
    assert not flake.project
    flake.set("db", "microvm.mem", 768)
    flake.add(MicroVM(name="new"))
    flake.save()
    for name in ("flake.nix", "vms/db.nix", "vms/new.nix"):
        text = (folder / name).read_text()
        assert generated_state(text) == "pristine", name
    assert "from nixgen.toml" not in (folder / "vms/new.nix").read_text()


def test_nixgen_toml_and_flake_out_of_step_refuse(tmp_path: Path) -> None:
    folder = project(tmp_path)
    declared = Project.at(folder).load()
    Project.at(folder).save(declared.without_guest("cache"))
    flake = FlakeFile.load(folder)
    with pytest.raises(FlakeEditError, match="do not declare the same guests"):
        flake.set("web", "microvm.mem", 1024)


def test_a_project_change_the_toml_cannot_express_is_refused(tmp_path: Path) -> None:
    folder = project(tmp_path, "microvm")
    flake = FlakeFile.load(folder)
    name = flake.names()[0]
    before = snapshot(folder)
    with pytest.raises(NixgenError):
        flake.set(name, "microvm.qemu", Nix("{ }"))
    assert snapshot(folder) == before and flake.diff() == ""


# ----------------------------------------------------------------- options and literals


def test_options_change_one_field() -> None:
    vm = MicroVM(name="web", users=[User(name="root", ssh_keys=[KEY])])
    vm = set_option(vm, "microvm.qemu.machine", "q35")
    vm = set_option(vm, "microvm.optimize.enable", False)
    vm = set_option(vm, "services.nginx.enable", True)
    vm = set_option(vm, "system.stateVersion", "25.05")
    assert vm.qemu is not None and vm.qemu.machine == "q35"
    assert vm.extra == {"optimize.enable": False} and vm.state_version == "25.05"
    assert vm.nixos == {"services.nginx.enable": True}
    vm = unset_option(vm, "microvm.qemu.machine")
    assert vm.qemu is None
    vm = unset_option(vm, "services.openssh.enable")  # keys alone turn sshd on
    assert vm.ssh is False
    with pytest.raises(OptionError):
        unset_option(vm, "microvm.balloon")
    with pytest.raises(OptionError, match="not an option inside"):
        set_option(vm, "microvm.mem.x", 1)
    with pytest.raises(ValidationError, match="whole number"):
        set_option(vm, "microvm.mem", "big")


def test_model_from_settings_keeps_what_it_cannot_hold() -> None:
    vm, kept = model_from_settings(
        "web",
        {
            "microvm.mem": Nix("lib.mkDefault 1024"),
            "microvm.vcpu": 2.5,
            "microvm.balloon": True,
            "networking.hostName": "other",
            "microvm.kernel": PurePosixPath("./bzImage"),
        },
    )
    assert vm == MicroVM(name="web", balloon=True, extra={"kernel": Nix("./bzImage")})
    assert set(kept) == {"microvm.mem", "microvm.vcpu", "networking.hostName"}
    assert kept["microvm.vcpu"].hint is not None and kept["microvm.mem"].hint is None


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1024", 1024),
        ("-1", -1),
        ("1.5", 1.5),
        ("true", True),
        ("null", None),
        ('"qemu"', "qemu"),
        ("''\n  a\n''", "a\n"),
        ('[ 1 "a" ]', [1, "a"]),
        ("{ a = 1; b.c = [ ]; }", {"a": 1, "b": {"c": []}}),
    ],
)
def test_literals(text: str, value: object) -> None:
    assert parse_literal(text) == value


@pytest.mark.parametrize(
    "text", ["qemu", "./x", "pkgs.hello", '"a${b}"', "1 + 1", "", "{ a = x; }", "https://x.org"]
)
def test_not_literals(text: str) -> None:
    with pytest.raises(OptionError, match=r"literal|empty"):
        parse_literal(text, key="microvm.x")


# ----------------------------------------------------------------- with nix


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    if not nix_available():
        pytest.skip(NIX_SKIP_REASON)
    base = tmp_path_factory.mktemp("inputs")
    os.environ.update(offline_nix_env(base))
    return {name: f"path:{path}" for name, path in prepare_inputs(base).items()}


@pytest.mark.nix
def test_edited_hand_written_flakes_still_build(tmp_path: Path, inputs: dict[str, str]) -> None:
    nix = NixRunner(override_inputs=inputs)
    template = copy_flake(tmp_path, "flakes/template.nix")
    flake = FlakeFile.load(template)
    flake.set("my-microvm", "microvm.mem", 1024)
    flake.add(MicroVM(name="second", mem=256, shares=[Share.ro_store()]))
    flake.rename("my-microvm", "first")
    flake.save()
    built = build(template, nix=nix, gc_roots=False, use_cache=False)
    assert sorted(built) == ["first", "second"]
    assert all(r.run_script.is_file() for r in built.values())

    split = copy_flake(tmp_path, "split")
    flake = FlakeFile.load(split)
    flake.set("web", "microvm.hypervisor", "cloud-hypervisor")  # over common.nix's mkDefault
    flake.update("db", {"microvm.mem": 1024, "microvm.vcpu": 2})
    flake.add(MicroVM(name="cache", mem=256))
    flake.remove("builder")
    flake.save()
    built = build(split, nix=nix, gc_roots=False, use_cache=False)
    assert sorted(built) == ["cache", "db", "web"]
    assert built["web"].hypervisor == "cloud-hypervisor"
    assert built["db"].hypervisor == "qemu"


@pytest.mark.nix
def test_edited_generated_project_still_builds(tmp_path: Path, inputs: dict[str, str]) -> None:
    folder = plain_project(tmp_path)
    flake = FlakeFile.load(folder)
    flake["web"] = flake["web"].evolve(mem=1024, vcpu=2)
    flake.add(MicroVM(name="extra", hypervisor="cloud-hypervisor", mem=256))
    flake.rename("db", "database")
    flake.remove("cache")
    flake.save()
    built = build(folder, nix=NixRunner(override_inputs=inputs), gc_roots=False, use_cache=False)
    assert sorted(built) == ["database", "extra", "web"]
    assert built["extra"].hypervisor == "cloud-hypervisor"


@pytest.mark.nix
def test_guests_removed_and_renamed_on_a_host_still_build(
    tmp_path: Path, inputs: dict[str, str]
) -> None:
    folder = full_host_project(tmp_path)
    flake = FlakeFile.load(folder)
    flake.rename("db", "database")
    flake.remove("web")
    flake.save()
    nix = NixRunner(override_inputs=inputs)
    built = build(folder, nix=nix, gc_roots=False, use_cache=False)
    assert sorted(built) == ["cache", "database"]  # the host is not built as a guest
    # The host's toplevel builds every guest it runs: a host naming a guest that
    # is gone would fail here.
    toplevel = f"path:{folder}#nixosConfigurations.vmhost.config.system.build.toplevel"
    system = Path(nix.build_json([toplevel])[toplevel].out)
    state = (system / "sw/bin/microvm").resolve().parent.parent / "share/microvm-host"
    assert sorted(p.name for p in state.iterdir() if not p.name.startswith(".")) == [
        "cache",
        "database",
    ]
    assert all(
        (state / name / "current/bin/microvm-run").is_file() for name in ("cache", "database")
    )
    assert set((state / ".autostart").read_text().split()) == {"cache", "database"}
