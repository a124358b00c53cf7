"""What reading and editing real flakes showed (issue 12's "also fix" list): modules
nixgen cannot read, several definitions of one option and their priorities, file
names in messages, hints that lead somewhere, flakes without nixosConfigurations,
computed configurations without nix."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from nixgen import FlakeFile, Nix
from nixgen.errors import NixgenError
from nixgen.flake.errors import FlakeEditError
from nixgen.nix.parse import Document
from nixgen.nix.read import priority, read_guests
from tests.clirunner import run_cli
from tests.flakefiles import copy_flake, snapshot


def run(*args: str) -> tuple[int, str, str]:
    """The command without nix (--no-eval): these findings are about reading the text."""
    result = run_cli([*args, "--no-eval"])
    return result.exit_code, result.stdout, result.stderr


def changed_lines(before: dict[str, bytes], after: dict[str, bytes]) -> dict[str, list[str]]:
    """The lines each file lost (``-``) or gained (``+``)."""
    import difflib

    out: dict[str, list[str]] = {}
    for name in sorted(before.keys() | after.keys()):
        old = before.get(name, b"").decode().splitlines()
        new = after.get(name, b"").decode().splitlines()
        lines = [
            line
            for line in difflib.unified_diff(old, new, lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))
        ]
        if lines:
            out[name] = lines
    return out


# ----------------------------------------------------------------- 1: modules not read


def test_show_lists_the_modules_it_could_not_read(tmp_path: Path) -> None:
    folder = copy_flake(tmp_path, "partly-read")
    code, out, _ = run("show", "-f", str(folder))
    assert code == 0, out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:5]}
    # set inside `import ./vms/hypervisor.nix { … }`: unknown, not qemu nor 1 vCPU
    assert rows["fn"][:5] == ["fn", "x86_64-linux", "unknown", "unknown", "1024"]
    assert rows["gone"][2:5] == ["unknown", "unknown", "unknown"]
    assert rows["deep"][2:4] == ["unknown", "unknown"] and rows["deep"][4] == "2048"
    # every module read: the defaults of microvm.nix apply
    assert rows["whole"][2:5] == ["qemu", "2", "512"]
    assert "modules nixgen could not read (the options they set are unknown):" in out
    assert re.search(r"fn: `\(import ./vms/hypervisor.nix .*` \(flake.nix:14\): .*import", out)
    assert re.search(r"gone: `./vms/missing.nix` \(flake.nix:23\): no such file", out)
    assert re.search(r"deep: `./deep-extra.nix` \(vms/deep.nix:3\): no such file", out)
    assert "whole:" not in out


def test_show_one_guest_lists_its_unread_modules(tmp_path: Path) -> None:
    folder = copy_flake(tmp_path, "partly-read")
    code, out, _ = run("show", "gone", "-f", str(folder))
    assert code == 0
    assert "modules nixgen could not read (the options they set are unknown):" in out
    assert re.search(r"`./vms/missing.nix` \(flake.nix:23\): no such file vms/missing.nix", out)
    code, out, _ = run("show", "whole", "-f", str(folder))
    assert "could not read" not in out


def test_show_json_says_what_is_unknown(tmp_path: Path) -> None:
    folder = copy_flake(tmp_path, "partly-read")
    code, out, _ = run("show", "--json", "-f", str(folder))
    assert code == 0
    guests = {g["name"]: g for g in json.loads(out)["guests"]}
    [unread] = guests["fn"]["unread"]
    assert unread["module"] == '(import ./vms/hypervisor.nix { hypervisor = "cloud-hypervisor"; })'
    assert unread["where"] == "flake.nix:14" and "import" in unread["reason"]
    assert "microvm.hypervisor" in guests["fn"]["unknown"]
    assert "microvm.vcpu" in guests["fn"]["unknown"]
    assert "microvm.mem" not in guests["fn"]["unknown"]  # written in a module it read
    assert guests["whole"]["unread"] == [] and guests["whole"]["unknown"] == []
    # the model leaves out what is unknown, rather than show its default
    assert guests["fn"]["model"] == {"mem": 1024, "system": "x86_64-linux"}
    assert guests["whole"]["model"]["hypervisor"] == "qemu"
    code, out, _ = run("show", "deep", "--json", "-f", str(folder))
    [unread] = json.loads(out)["unread"]
    assert unread == {
        "module": "./deep-extra.nix",
        "reason": "no such file vms/deep-extra.nix",
        "where": "vms/deep.nix:3",
    }


def test_guest_view_says_which_options_are_known(tmp_path: Path) -> None:
    flake = FlakeFile.load(copy_flake(tmp_path, "partly-read"))
    fn = flake.guest("fn")
    assert not fn.known("microvm.hypervisor") and fn.known("microvm.mem")
    assert "microvm.hypervisor" in fn.unknown and "microvm.mem" not in fn.unknown
    assert [u.text for u in fn.unread] == [
        '(import ./vms/hypervisor.nix { hypervisor = "cloud-hypervisor"; })'
    ]
    whole = flake.guest("whole")
    assert whole.unread == () and whole.unknown == ()
    assert whole.known("microvm.hypervisor") and whole.known("services.nginx.enable")


INHERITED_MODULES = """{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
  outputs = { self, nixpkgs, modules }: {
    nixosConfigurations.vm = nixpkgs.lib.nixosSystem {
      system = "x86_64-linux";
      inherit modules;
    };
  };
}
"""


def test_modules_inherited_from_outside_are_unread(tmp_path: Path) -> None:
    (tmp_path / "flake.nix").write_text(INHERITED_MODULES)
    vm = FlakeFile.load(tmp_path).guest("vm")
    [unread] = vm.unread
    assert unread.text == "inherit modules;" and "inherited" in unread.reason
    assert not vm.known("microvm.hypervisor")


def test_modules_of_inputs_are_not_unread(tmp_path: Path) -> None:
    """``microvm.nixosModules.microvm`` and the like are libraries, not the guest's modules."""
    flake = FlakeFile.load(copy_flake(tmp_path, "flakes/template.nix"))
    assert flake.guest("my-microvm").unread == ()


# ----------------------------------------------------------------- 2, 3: priorities


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1024", 100),
        ('"qemu"', 100),
        ("[ 1 ]", 100),
        ("lib.mkDefault 1024", 1000),
        ("mkDefault 1024", 1000),
        ('(lib.mkOptionDefault "qemu")', 1500),
        ("lib.mkForce false", 50),
        ("lib.mkOverride 900 2", 900),
        ("lib.mkVMOverride 2", 10),
        ('lib.mkIf true "x"', None),
        ("lib.mkMerge [ 1 ]", None),
        ("lib.mkOverride prio 2", None),
        ("someVariable", None),
        ("mkVm 2", None),
        ("1024 * 2", 100),
        ('"vm-${name}"', 100),
    ],
)
def test_priority_as_written(text: str, expected: int | None) -> None:
    doc = Document.parse(text)
    assert priority(doc.value(doc.expression())) == expected


def test_the_winning_definition_is_decided_by_priority(tmp_path: Path) -> None:
    folder = copy_flake(tmp_path, "priorities")
    flake = FlakeFile.load(folder)
    vm = flake.guest("vm")
    assert vm.settings["microvm.mem"] == 4096
    assert vm.settings["microvm.vcpu"] == Nix("lib.mkOverride 900 2")
    assert vm.settings["microvm.hypervisor"] == Nix('lib.mkDefault "qemu"')
    assert vm.settings["microvm.balloon"] == Nix("lib.mkForce false")
    assert vm.settings["microvm.kernelParams"] == ["quiet", "console=ttyS0"]  # lists merge
    assert "microvm.socket" not in vm.settings  # mkIf: only nix can tell
    assert vm.vm.mem == 4096 and vm.vm.kernel_params == ("quiet", "console=ttyS0")
    assert "undecided" in vm.unmodelled["microvm.socket"].reason
    assert not any("defined 2 times" in p for p in vm.problems)


def test_show_says_one_thing_about_several_definitions(tmp_path: Path) -> None:
    folder = copy_flake(tmp_path, "priorities")
    code, out, _ = run("show", "vm", "-f", str(folder))
    assert code == 0
    rows = [line.split() for line in out.splitlines()]
    assert ["microvm.mem", "lib.mkDefault", "1024", "(overridden)", "vms/defaults.nix:3"] in rows
    assert ["microvm.mem", "4096", "(wins)", "vms/vm.nix:4"] in rows
    assert ["microvm.kernelParams", "[", '"quiet"', "]", "(merged)", "vms/defaults.nix:6"] in rows
    assert ["microvm.socket", '"vm.sock"', "(undecided)", "vms/vm.nix:8"] in rows
    assert "module system decides" not in out and "defined 2 times" not in out.split("kept")[0]
    undecided = [line for line in out.splitlines() if "microvm.socket:" in line]
    assert len(undecided) == 1 and "nix would decide" in undecided[0]
    assert not [line for line in out.splitlines() if line.strip().startswith("microvm.mem:")]


def test_set_changes_only_the_winning_definition(tmp_path: Path) -> None:
    folder = copy_flake(tmp_path, "priorities")
    before = snapshot(folder)
    code, _, err = run("set", "vm", "microvm.mem=3000", "-f", str(folder))
    assert code == 0, err
    assert changed_lines(before, snapshot(folder)) == {
        "vms/vm.nix": ["-  microvm.mem = 4096;", "+  microvm.mem = 3000;"]
    }
    assert FlakeFile.load(folder)["vm"].mem == 3000


def test_set_over_a_forced_definition_is_refused(tmp_path: Path) -> None:
    """A plain value cannot replace `lib.mkForce false` while `true` is written elsewhere."""
    folder = copy_flake(tmp_path, "priorities")
    before = snapshot(folder)
    code, _, err = run("set", "vm", "microvm.balloon=false", "-f", str(folder))
    assert code == 1
    assert "vms/defaults.nix:8" in err and "lib.mkForce" in err
    assert snapshot(folder) == before


def test_unset_removes_only_the_winning_definition(tmp_path: Path) -> None:
    folder = copy_flake(tmp_path, "priorities")
    before = snapshot(folder)
    code, _, err = run("unset", "vm", "microvm.mem", "-f", str(folder))
    assert code == 0, err
    assert changed_lines(before, snapshot(folder)) == {"vms/vm.nix": ["-  microvm.mem = 4096;"]}
    assert "lib.mkDefault 1024 (vms/defaults.nix:3) now applies" in err
    assert FlakeFile.load(folder).guest("vm").settings["microvm.mem"] == Nix("lib.mkDefault 1024")


def test_set_beside_a_shared_default_still_works(tmp_path: Path) -> None:
    """The old rule (a shared lib.mkDefault is overridden in the guest's own module) holds."""
    folder = copy_flake(tmp_path, "split")
    flake = FlakeFile.load(folder)
    flake.set("db", "microvm.hypervisor", "cloud-hypervisor")
    assert flake["db"].hypervisor == "cloud-hypervisor"
    assert set(flake.changes()) == {folder / "vms/db.nix"}


# ----------------------------------------------------------------- 4: file names


def test_a_refusal_names_a_shared_module_relative_to_the_flake(tmp_path: Path) -> None:
    folder = copy_flake(tmp_path, "shared-config")
    with pytest.raises(FlakeEditError) as caught:
        FlakeFile.load(folder).set("a", "microvm.mem", 2048)
    assert "config/default.nix:4" in str(caught.value)
    assert str(folder) not in str(caught.value)
    code, _, err = run("set", "a", "microvm.mem=2048", "-f", str(folder))
    assert code == 1 and "config/default.nix:4: microvm.mem of 'a'" in err


def test_reading_problems_name_files_relative_to_the_flake(tmp_path: Path) -> None:
    folder = copy_flake(tmp_path, "partly-read")
    found = read_guests(Document.load(folder / "flake.nix"))
    texts = [u.reason for g in found.guests for u in g.unread]
    texts += [p for g in found.guests for m in g.modules for s in m.walk() for p in s.problems]
    assert texts and not [t for t in texts if str(folder) in t]
    flake = FlakeFile.load(folder)
    with pytest.raises(FlakeEditError) as caught:
        flake.set("nope", "microvm.mem", 1)
    assert str(folder) not in str(caught.value) and "flake.nix" in str(caught.value)


def test_refusals_about_files_name_them_relative_to_the_flake(tmp_path: Path) -> None:
    folder = copy_flake(tmp_path, "split")
    (folder / "vms/db.nix").write_text("{ microvm.mem = ; }\n")
    with pytest.raises(FlakeEditError) as caught:
        FlakeFile.load(folder).set("db", "microvm.vcpu", 2)
    assert "vms/db.nix:1" in str(caught.value) and str(folder) not in str(caught.value)
    folder = copy_flake(tmp_path, "priorities")
    flake = FlakeFile.load(folder)
    flake.set("vm", "microvm.mem", 3000)
    (folder / "vms/vm.nix").write_text("{ }\n")
    with pytest.raises(FlakeEditError) as caught:
        flake.save()
    assert str(caught.value).startswith("vms/vm.nix changed on disk")


# ----------------------------------------------------------------- 5: hints


def _suggestions(hint: str) -> list[str]:
    """The assignments a hint offers to copy: ``KEY=VALUE`` as one shell word."""
    found = re.findall(r"(?<![\w.])([A-Za-z][\w.-]*='[^']*'|[A-Za-z][\w.-]*=[^\s'`]+)", hint)
    return [shlex.split(m)[0] for m in found]


BAD_VALUES = [
    "microvm.mem=big",
    "microvm.mem=",
    "microvm.mem=./x",
    "microvm.vcpu=two",
    "microvm.hypervisor=fire",
    "microvm.hypervisor=qemu",
    "microvm.hypervisor=firecrakcer",
    "microvm.balloon=yes",
    "microvm.socket=ctl",
    "microvm.kernelParams=quiet",
    "microvm.interfaces=tap",
    "microvm.qemu.machine=pc",
    "services.nginx.enable=yes",
    "system=x86",
    "system=x86_64-linux",
    'system="x86"',
    'microvm.mem="big"',
    'microvm.hypervisor="fire"',
    'microvm.hypervisor="cloud"',
    'microvm.balloon="yes"',
    'microvm.optimize.enable="x"',
]


@pytest.mark.parametrize("assignment", BAD_VALUES)
def test_every_suggested_value_is_accepted_as_such(tmp_path: Path, assignment: str) -> None:
    """A refusal's suggested assignment is never refused for the same option again."""
    folder = copy_flake(tmp_path, "flakes/template.nix")
    code, _, err = run("set", "my-microvm", assignment, "-f", str(folder), "--dry-run")
    assert code != 0
    key = assignment.split("=", 1)[0]
    for hint in [line for line in err.splitlines() if line.strip().startswith("hint:")]:
        for suggestion in _suggestions(hint):
            assert suggestion.split("=", 1)[0] == key, hint
            again, _, err2 = run("set", "my-microvm", suggestion, "-f", str(folder), "--dry-run")
            if again == 0:
                continue
            # refused for another reason (firecracker cannot share over 9p), not this option
            assert f"{key}:" not in err2 and f".{key}" not in err2.replace("guests", ""), err2


def test_a_word_that_fits_the_option_is_suggested_quoted(tmp_path: Path) -> None:
    folder = copy_flake(tmp_path, "flakes/template.nix")
    _, _, err = run("set", "my-microvm", "microvm.socket=ctl", "-f", str(folder))
    assert "microvm.socket='\"ctl\"'" in err
    _, _, err = run("set", "my-microvm", "microvm.hypervisor=firecrakcer", "-f", str(folder))
    assert "microvm.hypervisor='\"firecracker\"'" in err
    _, _, err = run("set", "my-microvm", 'system="x86"', "-f", str(folder))
    assert "did you mean system='\"x86_64-linux\"'?" in err
    _, _, err = run("set", "my-microvm", "microvm.mem=big", "-f", str(folder))
    assert "'\"big\"'" not in err and "microvm.mem takes positive integer" in err


# ----------------------------------------------------------------- 6: no nixosConfigurations

NO_CONFIGURATIONS = """{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
  outputs = { self, nixpkgs }: {
    packages.x86_64-linux.hello = nixpkgs.legacyPackages.x86_64-linux.hello;
  };
}
"""


def test_a_flake_without_nixos_configurations_gets_a_note(tmp_path: Path) -> None:
    (tmp_path / "flake.nix").write_text(NO_CONFIGURATIONS)
    flake = FlakeFile.load(tmp_path)
    [note] = [n for n in flake.notes if "nixosConfigurations" in n]
    assert "has no nixosConfigurations" in note
    code, out, _ = run("show", "-f", str(tmp_path))
    assert code == 0 and "note: flake.nix has no nixosConfigurations" in out
    code, out, _ = run("show", "--json", "-f", str(tmp_path))
    assert any("has no nixosConfigurations" in n for n in json.loads(out)["notes"])
    # a flake with guests, or a computed set, gets no such note
    assert not [
        n for n in FlakeFile.load(copy_flake(tmp_path, "split")).notes if "no nixosConf" in n
    ]
    computed = FlakeFile.load(copy_flake(tmp_path, "flakes/computed-genattrs.nix"))
    assert not [n for n in computed.notes if "no nixosConf" in n]


# ----------------------------------------------------------------- 7: computed, without nix


def test_a_computed_set_names_its_expression_and_needs_nix(tmp_path: Path) -> None:
    folder = copy_flake(tmp_path, "flakes/computed-genattrs.nix")
    [item] = FlakeFile.load(folder).unreadable
    assert item.reason.startswith(
        "flake.nix:16: nixosConfigurations = nixpkgs.lib.genAttrs names mkWorker"
    )
    assert "reading it needs nix" in item.reason
    code, out, _ = run("show", "-f", str(folder))
    assert code == 0
    assert "flake.nix:16: nixosConfigurations = nixpkgs.lib.genAttrs names mkWorker" in out
    assert "--override-input" in out and "install nix" in out


@pytest.mark.parametrize(
    ("corpus", "where"),
    [
        ("flakes/computed-genattrs.nix", "flake.nix:16: nixosConfigurations = "),
        ("flakes/computed-listtoattrs.nix", "flake.nix:"),
        ("flakes/import-configs.nix", "flake.nix:"),
        ("flakes/flake-parts.nix", "flake.nix:"),
    ],
)
def test_set_on_a_computed_guest_says_reading_it_needs_nix(
    tmp_path: Path, corpus: str, where: str
) -> None:
    folder = copy_flake(tmp_path, corpus)
    before = snapshot(folder)
    code, _, err = run("set", "worker1", "microvm.mem=1024", "-f", str(folder))
    assert code == 1
    assert "guests: none" not in err
    assert where in err and "needs nix" in err
    assert snapshot(folder) == before
    with pytest.raises(NixgenError, match="needs nix"):
        FlakeFile.load(folder).unset("worker1", "microvm.mem")


def test_suggestions_are_found_in_hints() -> None:
    """The property test above reads hints with this: it must see the forms hints use."""
    hint = "the shell eats double quotes, so quote them: microvm.mem='\"big\"'"
    assert _suggestions(hint) == ['microvm.mem="big"']
    assert _suggestions('give boolean (microvm.nix\'s type), or a { _nix = "…" }') == []
