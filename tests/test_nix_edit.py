"""Edits that change exactly the expected lines, and refusals that change nothing."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from tree_sitter import Node

from nixgen.nix import edit
from nixgen.nix.emit import Nix, to_nix
from nixgen.nix.errors import NixEditError, NixPathError, NixSyntaxError
from nixgen.nix.parse import Document
from nixgen.nix.read import read_guests

CORPUS = Path(__file__).parent / "corpus"
NIX = shutil.which("nix-instantiate")
needs_nix = pytest.mark.skipif(NIX is None, reason="nix not found: apt-get install nix-bin")
G = ("outputs", "nixosConfigurations")

Edit = Callable[[Document], Document]


def _let(doc: Document) -> Node:
    """The `let … in` under a module's function header."""
    body = doc.expression().child_by_field_name("body")
    assert body is not None and body.type == "let_expression"
    return body


# name: (corpus file, edit, the unified diff it must produce)
CASES: dict[str, tuple[str, Edit, str]] = {
    "replace_nested": (
        "flakes/template.nix",
        lambda x: edit.set_value(
            x,
            (*G, "my-microvm", "modules", 1),
            ["microvm", "hypervisor"],
            to_nix("cloud-hypervisor"),
        ),
        (
            "--- a/template.nix\n"
            "+++ b/template.nix\n"
            "@@ -45,7 +45,7 @@\n"
            "                 } ];\n"
            " \n"
            "                 # the one hypervisor that runs on this build machine\n"
            '-                hypervisor = "qemu";\n'
            '+                hypervisor = "cloud-hypervisor";\n'
            '                 socket = "control.socket";\n'
            "               };\n"
            "             }\n"
        ),
    ),
    "replace_dotted": (
        "flakes/multi-guest.nix",
        lambda x: edit.set_value(x, (*G, "web", "modules", 1), ["microvm", "mem"], "2048"),
        (
            "--- a/multi-guest.nix\n"
            "+++ b/multi-guest.nix\n"
            "@@ -12,7 +12,7 @@\n"
            "           {\n"
            '             networking.hostName = "web";\n'
            '             microvm.hypervisor = "qemu";\n'
            "-            microvm.mem = 1024;\n"
            "+            microvm.mem = 2048;\n"
            "             microvm.vcpu = 2;\n"
            '             microvm.interfaces = [ { type = "user"; id = "qemu"; mac = "02:00:00:01:01:01"; } ];\n'
            '             microvm.forwardPorts = [ { from = "host"; host.port = 8080; guest.port = 80; } ];\n'
        ),
    ),
    "insert_into_nested": (
        "flakes/template.nix",
        lambda x: edit.set_value(x, (*G, "my-microvm", "modules", 1), ["microvm", "vcpu"], "2"),
        (
            "--- a/template.nix\n"
            "+++ b/template.nix\n"
            "@@ -47,6 +47,7 @@\n"
            "                 # the one hypervisor that runs on this build machine\n"
            '                 hypervisor = "qemu";\n'
            '                 socket = "control.socket";\n'
            "+                vcpu = 2;\n"
            "               };\n"
            "             }\n"
            "           ];\n"
        ),
    ),
    "insert_dotted_next_to_siblings": (
        "flakes/multi-guest.nix",
        lambda x: edit.set_value(x, (*G, "web", "modules", 1), ["microvm", "balloon"], "true"),
        (
            "--- a/multi-guest.nix\n"
            "+++ b/multi-guest.nix\n"
            "@@ -16,6 +16,7 @@\n"
            "             microvm.vcpu = 2;\n"
            '             microvm.interfaces = [ { type = "user"; id = "qemu"; mac = "02:00:00:01:01:01"; } ];\n'
            '             microvm.forwardPorts = [ { from = "host"; host.port = 8080; guest.port = 80; } ];\n'
            "+            microvm.balloon = true;\n"
            "             services.nginx.enable = true;\n"
            "             networking.firewall.allowedTCPPorts = [ 80 ];\n"
            "           }\n"
        ),
    ),
    "insert_new_prefix_at_end": (
        "flakes/multi-guest.nix",
        lambda x: edit.set_value(
            x, (*G, "db", "modules", 1), ["services", "openssh", "enable"], "true"
        ),
        (
            "--- a/multi-guest.nix\n"
            "+++ b/multi-guest.nix\n"
            "@@ -36,6 +36,7 @@\n"
            "               ];\n"
            "             };\n"
            "             services.postgresql.enable = true;\n"
            "+            services.openssh.enable = true;\n"
            "           }\n"
            "         ];\n"
            "       };\n"
        ),
    ),
    "insert_multiline_value": (
        "flakes/template.nix",
        lambda x: edit.set_value(
            x,
            (*G, "my-microvm", "modules", 1),
            ["microvm", "interfaces"],
            to_nix([{"type": "tap", "id": "vm-a", "mac": "02:00:00:00:00:01"}]),
        ),
        (
            "--- a/template.nix\n"
            "+++ b/template.nix\n"
            "@@ -47,6 +47,13 @@\n"
            "                 # the one hypervisor that runs on this build machine\n"
            '                 hypervisor = "qemu";\n'
            '                 socket = "control.socket";\n'
            "+                interfaces = [\n"
            "+                  {\n"
            '+                    type = "tap";\n'
            '+                    id = "vm-a";\n'
            '+                    mac = "02:00:00:00:00:01";\n'
            "+                  }\n"
            "+                ];\n"
            "               };\n"
            "             }\n"
            "           ];\n"
        ),
    ),
    "unset_with_comments": (
        "flakes/comments-everywhere.nix",
        lambda x: edit.unset(x, (*G, "commented", "modules", 1), ["microvm", "mem"]),
        (
            "--- a/comments-everywhere.nix\n"
            "+++ b/comments-everywhere.nix\n"
            "@@ -38,8 +38,6 @@\n"
            "               # host name\n"
            '               networking.hostName = "commented"; # end of line\n'
            "               microvm = {\n"
            "-                # memory in MiB\n"
            "-                mem = 1024; # one GiB\n"
            "                 /* block before vcpu */\n"
            "                 vcpu = 1;\n"
            '                 # hypervisor = "cloud-hypervisor";\n'
        ),
    ),
    "unset_block_comment": (
        "flakes/comments-everywhere.nix",
        lambda x: edit.unset(x, (*G, "commented", "modules", 1), ["microvm", "vcpu"]),
        (
            "--- a/comments-everywhere.nix\n"
            "+++ b/comments-everywhere.nix\n"
            "@@ -40,8 +40,6 @@\n"
            "               microvm = {\n"
            "                 # memory in MiB\n"
            "                 mem = 1024; # one GiB\n"
            "-                /* block before vcpu */\n"
            "-                vcpu = 1;\n"
            '                 # hypervisor = "cloud-hypervisor";\n'
            '                 hypervisor = "qemu";\n'
            "                 # trailing comment in the set\n"
        ),
    ),
    "unset_whole_set": (
        "flakes/template.nix",
        lambda x: edit.unset(x, (*G, "my-microvm", "modules", 1), ["microvm"]),
        (
            "--- a/template.nix\n"
            "+++ b/template.nix\n"
            "@@ -29,25 +29,6 @@\n"
            "             {\n"
            '               networking.hostName = "my-microvm";\n'
            '               users.users.root.password = "";\n'
            "-              microvm = {\n"
            "-                volumes = [ {\n"
            '-                  mountPoint = "/var";\n'
            '-                  image = "var.img";\n'
            "-                  size = 256;\n"
            "-                } ];\n"
            "-                shares = [ {\n"
            "-                  # 9p needs no daemon on the host; virtiofs is faster\n"
            '-                  proto = "9p";\n'
            '-                  tag = "ro-store";\n'
            "-                  # sharing the host store means no store image is built\n"
            '-                  source = "/nix/store";\n'
            '-                  mountPoint = "/nix/.ro-store";\n'
            "-                } ];\n"
            "-\n"
            "-                # the one hypervisor that runs on this build machine\n"
            '-                hypervisor = "qemu";\n'
            '-                socket = "control.socket";\n'
            "-              };\n"
            "             }\n"
            "           ];\n"
            "         };\n"
        ),
    ),
    "unset_dotted_group": (
        "flakes/multi-guest.nix",
        lambda x: edit.unset(x, (*G, "web", "modules", 1), ["microvm"]),
        (
            "--- a/multi-guest.nix\n"
            "+++ b/multi-guest.nix\n"
            "@@ -11,11 +11,6 @@\n"
            "           microvm.nixosModules.microvm\n"
            "           {\n"
            '             networking.hostName = "web";\n'
            '-            microvm.hypervisor = "qemu";\n'
            "-            microvm.mem = 1024;\n"
            "-            microvm.vcpu = 2;\n"
            '-            microvm.interfaces = [ { type = "user"; id = "qemu"; mac = "02:00:00:01:01:01"; } ];\n'
            '-            microvm.forwardPorts = [ { from = "host"; host.port = 8080; guest.port = 80; } ];\n'
            "             services.nginx.enable = true;\n"
            "             networking.firewall.allowedTCPPorts = [ 80 ];\n"
            "           }\n"
        ),
    ),
    "rename_guest_dotted": (
        "flakes/dotted-guests.nix",
        lambda x: edit.rename(x, G, ["alpha"], "alpha2"),
        (
            "--- a/dotted-guests.nix\n"
            "+++ b/dotted-guests.nix\n"
            "@@ -5,7 +5,7 @@\n"
            '     microvm.url = "github:microvm-nix/microvm.nix";\n'
            "   };\n"
            "   outputs = { self, nixpkgs, microvm }: {\n"
            "-    nixosConfigurations.alpha = nixpkgs.lib.nixosSystem {\n"
            "+    nixosConfigurations.alpha2 = nixpkgs.lib.nixosSystem {\n"
            '       system = "x86_64-linux";\n'
            '       modules = [ microvm.nixosModules.microvm { networking.hostName = "alpha"; microvm.mem = 768; } ];\n'
            "     };\n"
        ),
    ),
    "rename_guest_nested": (
        "flakes/multi-guest.nix",
        lambda x: edit.rename(x, G, ["db"], "postgres"),
        (
            "--- a/multi-guest.nix\n"
            "+++ b/multi-guest.nix\n"
            "@@ -22,7 +22,7 @@\n"
            "         ];\n"
            "       };\n"
            " \n"
            "-      db = nixpkgs.lib.nixosSystem {\n"
            "+      postgres = nixpkgs.lib.nixosSystem {\n"
            '         system = "x86_64-linux";\n'
            "         modules = [\n"
            "           microvm.nixosModules.microvm\n"
        ),
    ),
    "add_module_file": (
        "split/flake.nix",
        lambda x: edit.insert_element(x, (*G, "db", "modules"), "./vms/backup.nix"),
        (
            "--- a/flake.nix\n"
            "+++ b/flake.nix\n"
            "@@ -25,7 +25,7 @@\n"
            "         };\n"
            "         db = nixpkgs.lib.nixosSystem {\n"
            "           inherit system;\n"
            "-          modules = [ microvm.nixosModules.microvm ./vms/common.nix ./vms/db.nix ];\n"
            "+          modules = [ microvm.nixosModules.microvm ./vms/common.nix ./vms/db.nix ./vms/backup.nix ];\n"
            "         };\n"
            "         builder = nixpkgs.lib.nixosSystem {\n"
            "           inherit system;\n"
        ),
    ),
    "add_module_multiline_list": (
        "split/flake.nix",
        lambda x: edit.insert_element(x, (*G, "web", "modules"), "./vms/monitoring.nix", 1),
        (
            "--- a/flake.nix\n"
            "+++ b/flake.nix\n"
            "@@ -19,6 +19,7 @@\n"
            "           inherit system;\n"
            "           modules = [\n"
            "             microvm.nixosModules.microvm\n"
            "+            ./vms/monitoring.nix\n"
            "             ./vms/common.nix\n"
            "             ./vms/web.nix\n"
            "           ];\n"
        ),
    ),
    "remove_module": (
        "split/flake.nix",
        lambda x: edit.remove_element(x, (*G, "web", "modules"), 1),
        (
            "--- a/flake.nix\n"
            "+++ b/flake.nix\n"
            "@@ -19,7 +19,6 @@\n"
            "           inherit system;\n"
            "           modules = [\n"
            "             microvm.nixosModules.microvm\n"
            "-            ./vms/common.nix\n"
            "             ./vms/web.nix\n"
            "           ];\n"
            "         };\n"
        ),
    ),
    "remove_module_inline_list": (
        "split/flake.nix",
        lambda x: edit.remove_element(x, (*G, "db", "modules"), 1),
        (
            "--- a/flake.nix\n"
            "+++ b/flake.nix\n"
            "@@ -25,7 +25,7 @@\n"
            "         };\n"
            "         db = nixpkgs.lib.nixosSystem {\n"
            "           inherit system;\n"
            "-          modules = [ microvm.nixosModules.microvm ./vms/common.nix ./vms/db.nix ];\n"
            "+          modules = [ microvm.nixosModules.microvm ./vms/db.nix ];\n"
            "         };\n"
            "         builder = nixpkgs.lib.nixosSystem {\n"
            "           inherit system;\n"
        ),
    ),
    "insert_guest": (
        "flakes/multi-guest.nix",
        lambda x: edit.insert_binding(
            x,
            G,
            'mail = nixpkgs.lib.nixosSystem {\n  system = "x86_64-linux";\n  modules = [\n    microvm.nixosModules.microvm\n    { networking.hostName = "mail"; }\n  ];\n};',
            after=["db"],
        ),
        (
            "--- a/multi-guest.nix\n"
            "+++ b/multi-guest.nix\n"
            "@@ -40,6 +40,14 @@\n"
            "         ];\n"
            "       };\n"
            " \n"
            "+      mail = nixpkgs.lib.nixosSystem {\n"
            '+        system = "x86_64-linux";\n'
            "+        modules = [\n"
            "+          microvm.nixosModules.microvm\n"
            '+          { networking.hostName = "mail"; }\n'
            "+        ];\n"
            "+      };\n"
            "+\n"
            "       cache = nixpkgs.lib.nixosSystem {\n"
            '         system = "aarch64-linux";\n'
            "         modules = [\n"
        ),
    ),
    "insert_guest_dotted_prefix": (
        "flakes/dotted-guests.nix",
        lambda x: edit.insert_binding(
            x,
            G,
            'delta = nixpkgs.lib.nixosSystem {\n  system = "x86_64-linux";\n  modules = [ microvm.nixosModules.microvm ];\n};',
        ),
        (
            "--- a/dotted-guests.nix\n"
            "+++ b/dotted-guests.nix\n"
            "@@ -21,6 +21,10 @@\n"
            '       system = "x86_64-linux";\n'
            '       modules = [ microvm.nixosModules.microvm { networking.hostName = "gamma-1"; } ];\n'
            "     };\n"
            "+    nixosConfigurations.delta = nixpkgs.lib.nixosSystem {\n"
            '+      system = "x86_64-linux";\n'
            "+      modules = [ microvm.nixosModules.microvm ];\n"
            "+    };\n"
            "     packages.x86_64-linux.alpha = self.nixosConfigurations.alpha.config.microvm.declaredRunner;\n"
            "   };\n"
            " }\n"
        ),
    ),
    "crlf_insert": (
        "flakes/crlf.nix",
        lambda x: edit.set_value(x, (*G, "crlf", "modules", 1), ["microvm", "vcpu"], "2"),
        (
            "--- a/crlf.nix\n"
            "+++ b/crlf.nix\n"
            "@@ -13,6 +13,7 @@\n"
            "           microvm = {\r\n"
            "             mem = 1024;\r\n"
            '             hypervisor = "qemu";\r\n'
            "+            vcpu = 2;\r\n"
            "           };\r\n"
            "           environment.etc.\"crlf\".text = ''\r\n"
            "             a line\r\n"
        ),
    ),
    "tabs_insert_multiline": (
        "flakes/tabs.nix",
        lambda x: edit.set_value(
            x,
            (*G, "tabbed", "modules", 1),
            ["microvm", "shares"],
            to_nix([{"tag": "ro-store", "source": "/nix/store", "mountPoint": "/nix/.ro-store"}]),
        ),
        (
            "--- a/tabs.nix\n"
            "+++ b/tabs.nix\n"
            "@@ -13,6 +13,13 @@\n"
            " \t\t\t\t\tmicrovm = {\n"
            " \t\t\t\t\t\tmem = 768;\n"
            " \t\t\t\t\t\tvcpu = 1;\n"
            "+\t\t\t\t\t\tshares = [\n"
            "+\t\t\t\t\t\t\t{\n"
            '+\t\t\t\t\t\t\t\ttag = "ro-store";\n'
            '+\t\t\t\t\t\t\t\tsource = "/nix/store";\n'
            '+\t\t\t\t\t\t\t\tmountPoint = "/nix/.ro-store";\n'
            "+\t\t\t\t\t\t\t}\n"
            "+\t\t\t\t\t\t];\n"
            " \t\t\t\t\t};\n"
            " \t\t\t\t\tenvironment.etc.\"tabbed\".text = ''\n"
            " \t\t\t\t\t\ttab-indented content keeps its tabs\n"
        ),
    ),
    "four_spaces_insert": (
        "flakes/four-spaces.nix",
        lambda x: edit.set_value(
            x,
            (*G, "arm", "modules", 1),
            ["microvm", "volumes"],
            to_nix([{"image": "var.img", "mountPoint": "/var", "size": 256}]),
        ),
        (
            "--- a/four-spaces.nix\n"
            "+++ b/four-spaces.nix\n"
            "@@ -27,6 +27,13 @@\n"
            '                                 mountPoint = "/nix/.ro-store";\n'
            "                             }\n"
            "                         ];\n"
            "+                        volumes = [\n"
            "+                            {\n"
            '+                                image = "var.img";\n'
            '+                                mountPoint = "/var";\n'
            "+                                size = 256;\n"
            "+                            }\n"
            "+                        ];\n"
            "                     };\n"
            "                 }\n"
            "             ];\n"
        ),
    ),
    "empty_set_insert": (
        "flakes/empty-sets.nix",
        lambda x: edit.set_value(x, (*G, "empty", "modules", 1), ["microvm", "mem"], "512"),
        (
            "--- a/empty-sets.nix\n"
            "+++ b/empty-sets.nix\n"
            "@@ -8,7 +8,7 @@\n"
            "       modules = [\n"
            "         microvm.nixosModules.microvm\n"
            "         {\n"
            "-          microvm = { };\n"
            "+          microvm = { mem = 512; };\n"
            "           microvm.interfaces = [ ];\n"
            "           networking = {};\n"
            "           environment.etc = {\n"
        ),
    ),
    "empty_multiline_set_insert": (
        "flakes/empty-sets.nix",
        lambda x: edit.set_value(
            x, (*G, "empty", "modules", 1), ["environment", "etc", "motd", "text"], to_nix("hi\n")
        ),
        (
            "--- a/empty-sets.nix\n"
            "+++ b/empty-sets.nix\n"
            "@@ -12,6 +12,7 @@\n"
            "           microvm.interfaces = [ ];\n"
            "           networking = {};\n"
            "           environment.etc = {\n"
            '+            motd.text = "hi\\n";\n'
            "           };\n"
            "           services.openssh.settings = { /* nothing yet */ };\n"
            "         }\n"
        ),
    ),
    "empty_list_insert": (
        "flakes/empty-sets.nix",
        lambda x: edit.insert_element(
            x, (*G, "nomodules", "modules"), "microvm.nixosModules.microvm"
        ),
        (
            "--- a/empty-sets.nix\n"
            "+++ b/empty-sets.nix\n"
            "@@ -19,7 +19,7 @@\n"
            "     };\n"
            "     nixosConfigurations.nomodules = nixpkgs.lib.nixosSystem {\n"
            '       system = "x86_64-linux";\n'
            "-      modules = [];\n"
            "+      modules = [ microvm.nixosModules.microvm ];\n"
            "     };\n"
            "   };\n"
            " }\n"
        ),
    ),
    "single_line_insert": (
        "flakes/single-line.nix",
        lambda x: edit.set_value(x, (*G, "tiny", "modules", 1), ["microvm", "balloon"], "false"),
        (
            "--- a/single-line.nix\n"
            "+++ b/single-line.nix\n"
            "@@ -1 +1 @@\n"
            '-{ inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable"; inputs.microvm.url = "github:microvm-nix/microvm.nix"; outputs = { self, nixpkgs, microvm }: { nixosConfigurations.tiny = nixpkgs.lib.nixosSystem { system = "x86_64-linux"; modules = [ microvm.nixosModules.microvm { networking.hostName = "tiny"; microvm = { mem = 256; vcpu = 1; }; microvm.shares = []; } ]; }; }; }\n'
            '+{ inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable"; inputs.microvm.url = "github:microvm-nix/microvm.nix"; outputs = { self, nixpkgs, microvm }: { nixosConfigurations.tiny = nixpkgs.lib.nixosSystem { system = "x86_64-linux"; modules = [ microvm.nixosModules.microvm { networking.hostName = "tiny"; microvm = { mem = 256; vcpu = 1; balloon = false; }; microvm.shares = []; } ]; }; }; }\n'
        ),
    ),
    "inherit_replaced": (
        "split/flake.nix",
        lambda x: edit.set_value(
            x,
            (
                *G,
                "web",
            ),
            ["system"],
            to_nix("aarch64-linux"),
        ),
        (
            "--- a/flake.nix\n"
            "+++ b/flake.nix\n"
            "@@ -16,7 +16,7 @@\n"
            "     {\n"
            "       nixosConfigurations = {\n"
            "         web = nixpkgs.lib.nixosSystem {\n"
            "-          inherit system;\n"
            '+          system = "aarch64-linux";\n'
            "           modules = [\n"
            "             microvm.nixosModules.microvm\n"
            "             ./vms/common.nix\n"
        ),
    ),
    "trailing_ws_kept": (
        "flakes/trailing-whitespace.nix",
        lambda x: edit.set_value(x, (*G, "trail", "modules", 1), ["microvm", "vcpu"], "3"),
        (
            "--- a/trailing-whitespace.nix\n"
            "+++ b/trailing-whitespace.nix\n"
            "@@ -11,6 +11,7 @@\n"
            "         {  \n"
            '           networking.hostName = "trail";    \n'
            "           microvm.mem = 1024;\t\n"
            "+          microvm.vcpu = 3;\n"
            "         }\n"
            "       ];\n"
            "     };\n"
        ),
    ),
    "module_file_insert": (
        "split/vms/web.nix",
        lambda x: edit.set_value(x, (), ["microvm", "hypervisor"], to_nix("qemu")),
        (
            "--- a/web.nix\n"
            "+++ b/web.nix\n"
            "@@ -15,6 +15,7 @@\n"
            '         mac = "02:00:00:00:00:10";\n'
            "       }\n"
            "     ];\n"
            '+    hypervisor = "qemu";\n'
            "   };\n"
            " \n"
            "   services.nginx = {\n"
        ),
    ),
    "module_file_unset": (
        "split/vms/db.nix",
        lambda x: edit.unset(x, (), ["microvm", "volumes"]),
        (
            "--- a/db.nix\n"
            "+++ b/db.nix\n"
            "@@ -5,13 +5,6 @@\n"
            " {\n"
            '   networking.hostName = "db";\n'
            "   microvm.mem = 2048;\n"
            "-  microvm.volumes = [\n"
            "-    {\n"
            '-      image = "db.img";\n'
            "-      mountPoint = dataDir;\n"
            "-      size = 8192;\n"
            "-    }\n"
            "-  ];\n"
            "   services.postgresql = {\n"
            "     enable = true;\n"
            "     package = pkgs.postgresql_16;\n"
        ),
    ),
    "let_binding": (
        "split/vms/db.nix",
        lambda x: edit.set_value(x, _let(x), ["dataDir"], to_nix("/srv/pg")),
        (
            "--- a/db.nix\n"
            "+++ b/db.nix\n"
            "@@ -1,6 +1,6 @@\n"
            " { pkgs, ... }:\n"
            " let\n"
            '-  dataDir = "/var/lib/postgresql";\n'
            '+  dataDir = "/srv/pg";\n'
            " in\n"
            " {\n"
            '   networking.hostName = "db";\n'
        ),
    ),
}


def shape(node: Node) -> list[tuple[str, int, int]]:
    """Every node's type and byte range, in document order."""
    out: list[tuple[str, int, int]] = []
    cursor = node.walk()
    while True:
        current = cursor.node
        assert current is not None
        out.append((current.type, current.start_byte, current.end_byte))
        if cursor.goto_first_child():
            continue
        while not cursor.goto_next_sibling():
            if not cursor.goto_parent():
                return out


def assert_same_as_fresh_parse(doc: Document) -> None:
    fresh = Document.parse(doc.source, doc.path)
    assert doc.sexp() == fresh.sexp()
    assert shape(doc.tree.root_node) == shape(fresh.tree.root_node)


@pytest.mark.parametrize("name", sorted(CASES))
def test_edit_changes_exactly_the_expected_lines(name: str) -> None:
    file, change, expected = CASES[name]
    path = CORPUS / file
    doc = Document.load(path)
    new = change(doc)
    assert edit.diff(doc, new, label=path.name) == expected
    assert doc.source == path.read_bytes(), "the original document must not change"
    assert_same_as_fresh_parse(new)


@pytest.mark.nix
@needs_nix
def test_edited_files_parse_with_real_nix(tmp_path: Path) -> None:
    files = []
    for name, (file, change, _) in sorted(CASES.items()):
        out = tmp_path / f"{name}.nix"
        out.write_bytes(change(Document.load(CORPUS / file)).source.removeprefix(b"\xef\xbb\xbf"))
        files.append(str(out))
    done = subprocess.run(
        [NIX or "nix-instantiate", "--parse", *files], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def test_edits_compose_and_read_back() -> None:
    doc = Document.load(CORPUS / "flakes" / "multi-guest.nix")
    module = (*G, "web", "modules", 1)
    doc = edit.set_value(doc, module, ["microvm", "mem"], "4096")
    doc = edit.set_value(doc, module, ["microvm", "balloon"], "true")
    doc = edit.unset(doc, module, ["microvm", "forwardPorts"])
    doc = edit.rename(doc, G, ["web"], "www")
    doc = edit.insert_element(doc, (*G, "www", "modules"), "./extra.nix")
    guest = read_guests(doc)["www"]
    assert guest.settings["microvm.mem"] == 4096
    assert guest.settings["microvm.balloon"] is True
    assert "microvm.forwardPorts" not in guest.settings
    assert [m.kind for m in guest.modules] == ["reference", "inline", "file"]
    assert_same_as_fresh_parse(doc)


def test_set_replaces_a_dotted_group_with_one_binding() -> None:
    doc = Document.parse("{\n  a.x = 1;\n  b = 2;\n  a.y = 3;\n}\n")
    new = edit.set_value(doc, (), ["a"], to_nix({"z": 4}))
    assert new.text == "{\n  a = {\n    z = 4;\n  };\n  b = 2;\n}\n"


def test_set_splits_an_inherit_of_several_names() -> None:
    doc = Document.parse("{\n  inherit a b c;\n}\n")
    assert edit.set_value(doc, (), ["b"], "2").text == "{\n  inherit a c;\n  b = 2;\n}\n"
    assert edit.unset(doc, (), ["c"]).text == "{\n  inherit a b;\n}\n"


def test_multiline_strings_keep_their_value_wherever_they_go() -> None:
    text = "first line\n  indented ${not interpolated}\nlast ''quoted''\n"
    for name in ("tabs.nix", "crlf.nix", "four-spaces.nix", "bom.nix"):
        doc = Document.load(CORPUS / "flakes" / name)
        guest = read_guests(doc).guests[0]
        module = (*G, guest.name, "modules", 1)
        new = edit.set_value(doc, module, ["environment", "etc", "new", "text"], to_nix(text))
        assert read_guests(new).guests[0].settings["environment.etc.new.text"] == text, name
        if name == "crlf.nix":
            # the new line ends in CRLF like the file; the string keeps its own line breaks
            assert new.source.count(b"\r\n") == doc.source.count(b"\r\n") + 1
            assert new.source.count(b"\n") == doc.source.count(b"\n") + 5


def test_refusals_change_nothing() -> None:
    doc = Document.load(CORPUS / "modules" / "mkif-mkdefault.nix")
    before = doc.source
    with pytest.raises(NixEditError, match=r"`services\.nginx` is `lib\.mkIf"):
        edit.set_value(doc, (), ["services", "nginx", "enable"], "false")
    with pytest.raises(NixEditError, match="not an attribute set literal"):
        edit.unset(doc, (), ["microvm", "shares", "x"])
    with pytest.raises(NixSyntaxError, match="not a Nix expression"):
        edit.set_value(doc, (), ["microvm", "mem"], "1; x = 2")
    with pytest.raises(NixEditError, match="already set"):
        edit.rename(doc, (), ["microvm", "mem"], "vcpu")
    with pytest.raises(NixEditError, match="is not set"):
        edit.rename(doc, (), ["microvm", "balloon"], "b")
    with pytest.raises(NixEditError, match="is not set"):
        edit.unset(doc, (), ["microvm", "balloon"], missing_ok=False)
    assert edit.unset(doc, (), ["microvm", "balloon"]) is doc
    with pytest.raises(NixEditError, match="already set"):
        edit.insert_binding(doc, (), 'networking.hostName = "x";')
    with pytest.raises(NixEditError, match="outside a list"):
        edit.insert_element(doc, ("assertions",), "{ }", 5)
    with pytest.raises(NixPathError):
        edit.insert_element(doc, ("networking", "hostName"), "1")
    with pytest.raises(NixSyntaxError, match="would not be valid"):
        edit.apply(doc, [edit.Replacement(0, 1, b"(")])
    with pytest.raises(NixEditError, match="overlapping"):
        edit.apply(doc, [edit.Replacement(0, 5, b"a"), edit.Replacement(3, 7, b"b")])
    inherited = Document.load(CORPUS / "flakes" / "inherit-from.nix")
    with pytest.raises(NixEditError, match="inherited"):
        edit.rename(inherited, (*G, "inh"), ["system"], "platform")
    assert doc.source == before


def test_unsupported_results_are_refused() -> None:
    doc = Document.parse("{ a = 1; }")
    with pytest.raises(NixSyntaxError, match="update operator"):
        edit.set_value(doc, (), ["a"], "{}//x")
    with pytest.raises(NixSyntaxError, match="update operator"):
        edit.apply(doc, [edit.Replacement(6, 7, b"{}//x")])


def test_list_elements_that_need_parentheses_get_them() -> None:
    doc = Document.parse("{ l = [ 1 ]; }")
    assert edit.insert_element(doc, ("l",), "-2").text == "{ l = [ 1 (-2) ]; }"
    assert edit.insert_element(doc, ("l",), "f x", 0).text == "{ l = [ (f x) 1 ]; }"
    assert edit.insert_element(doc, ("l",), "a.b or c").text == "{ l = [ 1 a.b or c ]; }"


def test_insert_into_single_line_set_expands_multiline_text() -> None:
    doc = Document.parse("{\n  m = { a = 1; /* c */ };\n}\n")
    new = edit.set_value(doc, ("m",), ["b"], to_nix({"x": 1, "y": 2}))
    assert new.text == (
        "{\n  m = {\n    a = 1;\n    /* c */\n    b = {\n      x = 1;\n      y = 2;\n    };\n  };\n}\n"
    )


def test_paths_are_literal_and_locators_follow_expressions() -> None:
    doc = Document.load(CORPUS / "flakes" / "dotted-guests.nix")
    # a new guest below the dotted `nixosConfigurations.*` bindings
    new = edit.set_value(doc, G, ["delta", "specialArgs"], "{ }")
    assert "    nixosConfigurations.delta.specialArgs = { };\n" in new.text
    # an attribute path does not go into a function call ...
    with pytest.raises(NixEditError, match="not an attribute set literal"):
        edit.set_value(doc, G, ["alpha", "specialArgs"], "{ }")
    # ... a locator does: into the nixosSystem argument
    new = edit.set_value(doc, (*G, "alpha"), ["specialArgs"], "{ }")
    assert "      specialArgs = { };\n    };\n    nixosConfigurations.beta" in new.text


def test_nodes_and_locators_are_both_targets() -> None:
    doc = Document.parse("let\n  a = 1;\nin\n{\n  b = a;\n}\n")
    new = edit.set_value(doc, doc.expression(), ["c"], "2")
    assert new.text == "let\n  a = 1;\n  c = 2;\nin\n{\n  b = a;\n}\n"
    body = doc.attrset_of(doc.expression())
    assert body is not None
    assert edit.set_value(doc, body, ["b"], "3").text.endswith("{\n  b = 3;\n}\n")


def test_values_in_nix_are_kept_verbatim() -> None:
    doc = Document.parse("{\n  a = 1;\n}\n")
    new = edit.set_value(doc, (), ["a"], to_nix(Nix("lib.mkDefault 2")))
    assert new.text == "{\n  a = lib.mkDefault 2;\n}\n"
