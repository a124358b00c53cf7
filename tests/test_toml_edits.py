"""nixgen.toml is the user's file: every edit keeps its comments, order and layout."""

from __future__ import annotations

from pathlib import Path

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from nixgen import FlakeFile, MicroVM
from nixgen.model.convert import loads_flake, update_toml
from nixgen.project import Project, init_project
from tests.clirunner import run_cli

COMMENTED = """\
# my fleet: keep this header
description = "mine"

[inputs.nixpkgs]
url = "github:NixOS/nixpkgs/nixos-unstable"

[inputs.microvm]
url = "github:microvm-nix/microvm.nix"
follows = { nixpkgs = "nixpkgs" }

# the web guest: small on purpose
[guests.web]
vcpu = 1  # keep
mem = 512


[guests.web.qemu]
machine = "q35"  # for the PCI devices

[guests.db]
hypervisor = "qemu"
# db wants room
mem = 2000
"""


def test_a_changed_setting_keeps_its_end_of_line_comment_and_every_other_line() -> None:
    flake = loads_flake(COMMENTED)
    web = flake.guest("web")
    text = update_toml(COMMENTED, flake.with_guest(attrs.evolve(web, mem=1024)))
    assert text == COMMENTED.replace("mem = 512", "mem = 1024")


def test_added_removed_and_unset_settings_touch_only_their_lines() -> None:
    flake = loads_flake(COMMENTED)
    web = flake.guest("web")
    assert web.qemu is not None
    changed = flake.with_guest(attrs.evolve(web, vcpu=2, qemu=attrs.evolve(web.qemu, machine=None)))
    changed = changed.without_guest("db").with_guest(MicroVM(name="cache", mem=256))
    text = update_toml(COMMENTED, changed)
    assert text is not None
    assert loads_flake(text) == changed
    assert text.startswith("# my fleet: keep this header\n")
    assert "vcpu = 2  # keep\n" in text
    assert "# the web guest: small on purpose\n[guests.web]\n" in text
    assert "for the PCI devices" not in text  # the setting went, with its comment
    assert "db wants room" not in text and "[guests.db]" not in text
    assert text.index("[guests.web]") < text.index("[guests.cache]")
    assert 'follows = { nixpkgs = "nixpkgs" }' in text  # an inline table stays inline


def test_nothing_changed_is_the_same_text() -> None:
    assert update_toml(COMMENTED, loads_flake(COMMENTED)) == COMMENTED


def test_a_renamed_guest_keeps_its_comments_under_the_new_name() -> None:
    flake = loads_flake(COMMENTED)
    renamed = flake.rename_guest("web", "www")
    text = update_toml(COMMENTED, renamed, renamed={"www": "web"})
    assert text is not None and loads_flake(text) == renamed
    assert "# the web guest: small on purpose\n[guests.www]\nvcpu = 1  # keep\n" in text
    assert '[guests.www.qemu]\nmachine = "q35"  # for the PCI devices\n' in text


def test_text_that_is_not_a_flake_is_not_edited() -> None:
    assert update_toml("guests = 3\n", loads_flake(COMMENTED)) is None


def test_project_save_keeps_the_comments(tmp_path: Path) -> None:
    source = tmp_path / "nixgen.toml"
    source.write_text(COMMENTED)
    project = Project(tmp_path)
    flake = project.load()
    project.save(flake.with_guest(attrs.evolve(flake.guest("db"), mem=4096)))
    assert source.read_text() == COMMENTED.replace("mem = 2000", "mem = 4096")


def test_every_edit_command_keeps_the_users_comments(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    init_project(folder, git_add=False)
    source = folder / "nixgen.toml"
    text = source.read_text()
    text = text.replace("vcpu = 1\n", "vcpu = 1  # keep\n").replace(
        "[guests.my-microvm]\n", "# my own note\n[guests.my-microvm]\n"
    )
    source.write_text(text)
    for args in (
        ["set", "my-microvm", "microvm.mem=1024"],
        ["add", "extra"],
        ["rename", "my-microvm", "main"],
        ["unset", "main", "microvm.socket"],
        ["rm", "extra"],
    ):
        result = run_cli([*args, "--flake", str(folder)])
        assert result.exit_code == 0, (args, result.output)
        now = source.read_text()
        assert "vcpu = 1  # keep\n" in now, args
        assert "# my own note\n" in now, args
        assert now.startswith("# nixgen project: the guests of this flake, as data.\n"), args
    final = Project.at(folder).load()
    assert [g.name for g in final.guests] == ["main"]
    assert final.guest("main").mem == 1024 and final.guest("main").socket is None
    assert "# my own note\n[guests.main]\n" in source.read_text()


def test_flakefile_save_keeps_the_comments(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    init_project(folder, git_add=False)
    source = folder / "nixgen.toml"
    source.write_text(source.read_text() + "# the end\n")
    flake = FlakeFile.load(folder)
    flake.set("my-microvm", "microvm.vcpu", 2)
    assert "+vcpu = 2" in flake.diff()
    flake.save()
    assert source.read_text().endswith("# the end\n")
    assert "vcpu = 2\n" in source.read_text()


@settings(max_examples=60, deadline=None)
@given(
    mems=st.dictionaries(st.sampled_from(["web", "db"]), st.integers(64, 65536)),
    vcpu=st.integers(1, 64),
    drop_db=st.booleans(),
    new=st.lists(st.sampled_from(["a", "b-c", "x_1"]), unique=True, max_size=2),
)
def test_any_edit_reads_back_as_the_model_and_keeps_the_header(
    mems: dict[str, int], vcpu: int, drop_db: bool, new: list[str]
) -> None:
    flake = loads_flake(COMMENTED)
    for name, mem in mems.items():
        flake = flake.with_guest(attrs.evolve(flake.guest(name), mem=mem))
    flake = flake.with_guest(attrs.evolve(flake.guest("web"), vcpu=vcpu))
    if drop_db:
        flake = flake.without_guest("db")
    for name in new:
        flake = flake.with_guest(MicroVM(name=name))
    text = update_toml(COMMENTED, flake)
    assert text is not None and loads_flake(text) == flake
    assert text.startswith("# my fleet: keep this header\n")
    assert f"vcpu = {vcpu}  # keep\n" in text
    assert "  # for the PCI devices\n" in text
    assert ("# db wants room" in text) is not drop_db
