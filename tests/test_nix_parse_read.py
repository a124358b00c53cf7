"""Reading guests out of flakes statically (nixgen.nix.read)."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nixgen.nix import edit
from nixgen.nix.emit import Nix
from nixgen.nix.parse import Document
from nixgen.nix.read import read_guests, read_module

CORPUS = Path(__file__).parent / "corpus"
NIX = shutil.which("nix-instantiate")
needs_nix = pytest.mark.skipif(NIX is None, reason="nix not found: apt-get install nix-bin")


def _flake(name: str) -> Document:
    return Document.load(CORPUS / "flakes" / name)


def test_template_guest() -> None:
    found = read_guests(_flake("template.nix"))
    assert found.names() == ["my-microvm"]
    assert not found.unreadable
    guest = found["my-microvm"]
    assert guest.system == "x86_64-linux"
    assert [m.kind for m in guest.modules] == ["reference", "inline"]
    assert guest.modules[0].text == "microvm.nixosModules.microvm"
    assert guest.settings == {
        "networking.hostName": "my-microvm",
        "users.users.root.password": "",
        "microvm.volumes": [{"mountPoint": "/var", "image": "var.img", "size": 256}],
        "microvm.shares": [
            {
                "proto": "9p",
                "tag": "ro-store",
                "source": "/nix/store",
                "mountPoint": "/nix/.ro-store",
            }
        ],
        "microvm.hypervisor": "qemu",
        "microvm.socket": "control.socket",
    }
    mem = guest.setting("microvm.socket")
    assert mem is not None
    assert mem.span.line == 49
    assert mem.locator == ("outputs", "nixosConfigurations", "my-microvm", "modules", 1)


def test_settings_point_back_to_where_they_are_written() -> None:
    doc = _flake("multi-guest.nix")
    found = read_guests(doc)
    setting = found["db"].setting("microvm.mem")
    assert setting is not None
    assert setting.value == 2560
    assert doc.source[setting.span.start : setting.span.end] == b"2560"
    assert doc.source[setting.binding.start : setting.binding.end] == b"mem = 2560;"
    assert setting.locator is not None
    changed = edit.set_value(doc, setting.locator, setting.path, "3072")
    assert read_guests(changed)["db"].settings["microvm.mem"] == 3072


def test_several_guests_dotted_and_nested() -> None:
    multi = read_guests(_flake("multi-guest.nix"))
    assert multi.names() == ["web", "db", "cache"]
    assert multi["cache"].system == "aarch64-linux"
    assert multi["web"].settings["microvm.forwardPorts"] == [
        {"from": "host", "host": {"port": 8080}, "guest": {"port": 80}}
    ]
    dotted = read_guests(_flake("dotted-guests.nix"))
    assert dotted.names() == ["alpha", "beta", "gamma-1"]
    assert dotted["beta"].settings == {
        "networking.hostName": "beta",
        "microvm.vcpu": 4,
        "microvm.hypervisor": "crosvm",
    }
    assert [len(g.modules) for g in dotted.guests] == [2, 3, 2]


def test_let_bound_guests_and_system_through_variables() -> None:
    found = read_guests(_flake("let-bound-guests.nix"))
    assert found.names() == ["router", "dns"]
    router = found["router"]
    assert router.system == "aarch64-linux"  # system = hostSystem; hostSystem = system;
    assert router.settings["microvm.mem"] == 384
    assert router.settings["microvm.socket"] == "control.socket"  # from `base`
    base = router.setting("microvm.hypervisor")
    assert base is not None and base.span.line == 11


def test_values_that_are_not_literal_are_kept_as_source() -> None:
    doc = Document.load(CORPUS / "modules" / "mkif-mkdefault.nix")
    module = read_module(doc)
    values = {s.key: s.value for s in module.settings}
    assert values["microvm.mem"] == Nix("lib.mkDefault 1024")
    assert values["microvm.hypervisor"] == Nix(
        'if pkgs.stdenv.isAarch64 then "cloud-hypervisor" else "qemu"'
    )
    assert values["microvm.interfaces"] == [
        {
            "type": "tap",
            "id": Nix('"vm-${config.networking.hostName}"'),
            "mac": "02:00:00:00:00:02",
        }
    ]
    assert values["networking.hostName"] == "www"
    assert module.arguments == ("config", "lib", "pkgs", "...")


def test_guests_split_over_files() -> None:
    found = read_guests(Document.load(CORPUS / "split" / "flake.nix"))
    assert found.names() == ["web", "db", "builder"]
    web = found["web"]
    assert [m.kind for m in web.modules] == ["reference", "file", "file"]
    assert web.modules[2].file == CORPUS / "split" / "vms" / "web.nix"
    assert web.settings["networking.firewall.allowedTCPPorts"] == [80, 443]  # via imports
    assert web.settings["microvm.hypervisor"] == Nix('lib.mkDefault "qemu"')
    mem = web.setting("microvm.mem")
    assert mem is not None
    assert mem.span.file == CORPUS / "split" / "vms" / "web.nix"
    assert mem.locator == ()
    db = found["db"]
    assert db.settings["services.postgresql.dataDir"] == Nix("dataDir")
    assert db.settings["microvm.volumes"] == [
        {"image": "db.img", "mountPoint": Nix("dataDir"), "size": 8192}
    ]
    builder = found["builder"]  # ./hosts is a folder: its default.nix, in full module form
    assert builder.settings == {
        "networking.hostName": "builder",
        "microvm.mem": 4096,
        "microvm.vcpu": 4,
    }
    assert builder.setting("microvm.mem") is not None
    assert builder.modules[1].locator == ()
    assert builder.definitions["microvm.mem"][0].locator == ("config",)
    assert set(found.documents) >= {(CORPUS / "split" / "vms" / "web.nix").resolve()}


def test_edit_a_setting_in_a_module_file() -> None:
    found = read_guests(Document.load(CORPUS / "split" / "flake.nix"))
    setting = found["builder"].setting("microvm.vcpu")
    assert setting is not None and setting.span.file is not None and setting.locator is not None
    doc = found.documents[setting.span.file.resolve()]
    changed = edit.set_value(doc, setting.locator, setting.path, "8")
    assert edit.diff(doc, changed, label="default.nix") == (
        "--- a/default.nix\n"
        "+++ b/default.nix\n"
        "@@ -2,7 +2,7 @@\n"
        "   config = {\n"
        '     networking.hostName = "builder";\n'
        "     microvm.mem = 4096;\n"
        "-    microvm.vcpu = 4;\n"
        "+    microvm.vcpu = 8;\n"
        "   };\n"
        "   options = { };\n"
        " }\n"
    )


def test_missing_module_file_is_a_problem_not_a_crash() -> None:
    found = read_guests(_flake("split.nix"))
    module = found["splitvm"].modules[1]
    assert module.kind == "file"
    assert module.problems and "split-missing.nix" in module.problems[0]


def test_computed_configurations_are_reported_not_guessed() -> None:
    genattrs = read_guests(_flake("computed-genattrs.nix"))
    assert genattrs.guests == ()
    [reason] = genattrs.unreadable
    assert reason.name is None and "lib.genAttrs" in reason.reason
    assert reason.span is not None and reason.span.line == 16

    listtoattrs = read_guests(_flake("computed-listtoattrs.nix"))
    assert "listToAttrs" in listtoattrs.unreadable[0].reason

    imported = read_guests(_flake("import-configs.nix"))
    assert "imported from another file" in imported.unreadable[0].reason

    parts = read_guests(_flake("flake-parts.nix"))
    assert parts.guests == ()
    assert "flake-parts.lib.mkFlake" in parts.unreadable[0].reason


def test_merges_read_the_literal_side_and_report_the_rest() -> None:
    found = read_guests(_flake("merged.nix"))
    assert found.names() == ["static"]
    assert found["static"].settings["microvm.vcpu"] == 1
    assert len(found.unreadable) == 1 and "more-guests.nix" in found.unreadable[0].reason
    assert len(found.notes) == 1 and "eachDefaultSystem" in found.notes[0]
    # the locator goes through the `//` to the literal guest
    doc = _flake("merged.nix")
    locator = found["static"].locator
    assert locator is not None
    changed = edit.set_value(doc, locator, ["system"], '"aarch64-linux"')
    assert read_guests(changed)["static"].system == "aarch64-linux"


def test_guests_built_by_local_functions_are_named() -> None:
    found = read_guests(_flake("helper-function.nix"))
    assert found.names() == ["three"]
    reasons = {u.name: u.reason for u in found.unreadable}
    assert set(reasons) == {"one", "two", "four"}
    assert "mkVm" in reasons["one"]
    assert "not an attribute set literal" in reasons["four"]
    hypervisors = read_guests(_flake("hypervisors.nix"))
    assert hypervisors.names() == ["fc", "ch"]
    assert {u.name for u in hypervisors.unreadable} == {"kvmtool", "crosvm"}


def test_computed_guest_name() -> None:
    found = read_guests(_flake("rec-outputs.nix"))
    assert found.names() == ["plain"]
    assert "nixosConfigurations.${vmName}" in found.unreadable[0].reason
    assert found["plain"].settings["networking.firewall.allowedTCPPorts"] == [Nix("port")]


def test_inherit_forms() -> None:
    found = read_guests(_flake("inherit-from.nix"))
    guest = found["inh"]
    assert guest.system == "x86_64-linux"  # inherit system; with let inherit (settings) system;
    assert guest.settings == {
        "networking.hostName": Nix("settings.hostName"),
        "microvm.mem": Nix("settings.mem"),
        "microvm.hypervisor": "qemu",
    }


def test_duplicates_are_listed_with_their_places() -> None:
    guest = read_guests(_flake("overrides.nix"))["layered"]
    assert [d.value for d in guest.definitions["microvm.mem"]] == [512, Nix("lib.mkForce 1024")]
    # lib.mkForce (priority 50) wins over a plain definition (100): certain from the text
    assert guest.settings["microvm.mem"] == Nix("lib.mkForce 1024")
    decision = guest.decision("microvm.mem")
    assert decision.winners == guest.definitions["microvm.mem"][1:]
    assert decision.losers == guest.definitions["microvm.mem"][:1]
    assert not any("defined 2 times" in p for p in guest.problems)


def test_special_files_read_the_same() -> None:
    for name, guest, mem in [
        ("crlf.nix", "crlf", 1024),
        ("bom.nix", "bom", 300),
        ("tabs.nix", "tabbed", 768),
        ("trailing-whitespace.nix", "trail", 1024),
        ("single-line.nix", "tiny", 256),
        ("four-spaces.nix", "arm", 2048),
        ("unicode.nix", "gäst", 512),
    ]:
        assert read_guests(_flake(name))[guest].settings["microvm.mem"] == mem, name
    crlf = read_guests(_flake("crlf.nix"))["crlf"].settings
    assert crlf["environment.etc.crlf.text"] == Nix("''\r\n            a line\r\n          ''")


def test_module_file_kinds() -> None:
    full = read_module(Document.load(CORPUS / "modules" / "full-form.nix"))
    assert [s.key for s in full.settings] == ["config"]
    assert isinstance(full.settings[0].value, Nix)
    dynamic = read_module(Document.load(CORPUS / "modules" / "dynamic-keys.nix"))
    assert len(dynamic.problems) == 3
    assert {s.key: s.value for s in dynamic.settings}["microvm.mem"] == 1024
    paths = read_guests(_flake("paths-uris.nix"))["paths"].settings
    assert paths["environment.etc.relative.source"] == PurePosixPath("files/motd")
    assert paths["environment.etc.source.text"] == "https://example.org/index.html"
    assert paths["environment.etc.home.source"] == Nix("~/dotfiles/bashrc")


# --------------------------------------------------------------------------- strings vs Nix

_PIECES = [
    " ",
    "  ",
    "a",
    "b c",
    "\n",
    "\n  ",
    "\t",
    "$",
    "$$",
    "''$",
    "'''",
    "''\\t",
    "{",
    "}",
    "x'y",
]


def _indented(pieces: list[str]) -> str:
    return "''" + "".join(pieces) + "''"


@pytest.mark.nix
@needs_nix
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(st.sampled_from(_PIECES), max_size=12), min_size=30, max_size=40))
def test_indented_strings_decode_like_nix(bodies: list[list[str]]) -> None:
    texts: list[str] = []
    values: list[object] = []
    for pieces in bodies:
        text = _indented(pieces)
        try:
            doc = Document.parse(text)
        except Exception:
            continue
        value = doc.literal(doc.expression())
        if isinstance(value, str):
            texts.append(text)
            values.append(value)
    if not texts:
        return
    expr = "[\n" + "\n".join(f"({t})" for t in texts) + "\n]"
    done = subprocess.run(
        [NIX or "nix-instantiate", "--eval", "--strict", "--json", "-E", expr],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout) == values


HOSTS = """{
  inputs.microvm.url = "github:microvm-nix/microvm.nix";
  outputs = { self, nixpkgs, microvm }@inputs: {
    nixosConfigurations = {
      guest = nixpkgs.lib.nixosSystem { modules = [ microvm.nixosModules.microvm ]; };
      # a guest that runs guests of its own is a guest
      nested = nixpkgs.lib.nixosSystem {
        modules = [ microvm.nixosModules.microvm { microvm.vms.inner.flake = self; } ];
      };
      byInput = nixpkgs.lib.nixosSystem { modules = [ (inputs.microvm.nixosModules.host) ]; };
      bySetting = nixpkgs.lib.nixosSystem {
        modules = [ { imports = [ { microvm.host.enable = true; } ]; } ];
      };
      byModule = nixpkgs.lib.nixosSystem { modules = [ self.nixosModules.vmhost ]; };
      notAHost = nixpkgs.lib.nixosSystem { modules = [ self.nixosModules.other ]; };
    };
    nixosModules.vmhost = { microvm.vms.guest.flake = self; microvm.autostart = [ "nested" ]; };
    nixosModules.other = { services.nginx.enable = true; };
  };
}"""


def test_hosts_are_told_from_guests() -> None:
    found = read_guests(Document.parse(HOSTS))
    assert found.names() == ["guest", "nested", "notAHost"]
    hosts = {h.name: h for h in found.hosts}
    assert list(hosts) == ["byInput", "bySetting", "byModule"]
    assert hosts["byInput"].reason == "imports inputs.microvm.nixosModules.host"
    assert hosts["bySetting"].reason == "sets microvm.host.enable"
    assert hosts["byModule"].reason == "imports self.nixosModules.vmhost, a host module"
    assert hosts["byModule"].runs == ("guest",)
    assert [s.key for s in hosts["byModule"].mentions("nested")] == ["microvm.autostart"]
    assert all(h.kind == "configuration" for h in found.hosts)
    # a host module a configuration imports is listed once, with that configuration
    assert found.host("vmhost") is None


@pytest.mark.nix
@needs_nix
def test_plain_strings_decode_like_nix() -> None:
    rng = random.Random(7)
    # no `{`: after `$` it would start an interpolation
    alphabet = ["a", " ", "\\n", "\\t", '\\"', "\\\\", "\\$", "$", "$$", "}", "é", "\\q", "\n"]
    texts = [
        '"' + "".join(rng.choice(alphabet) for _ in range(rng.randrange(12))) + '"'
        for _ in range(200)
    ]
    values = []
    for text in texts:
        doc = Document.parse(text)
        values.append(doc.literal(doc.expression()))
    assert all(isinstance(v, str) for v in values)
    done = subprocess.run(
        [
            NIX or "nix-instantiate",
            "--eval",
            "--strict",
            "--json",
            "-E",
            "[" + " ".join(texts) + "]",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout) == values
