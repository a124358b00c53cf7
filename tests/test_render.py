"""Rendering: the files, their determinism, and the safety of writing them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path, PurePosixPath

import pytest

from nixgen import (
    Flake,
    HandEditedError,
    Input,
    Interface,
    MicroVM,
    Nix,
    Share,
    User,
    VfkitOptions,
    VirtiofsdOptions,
    Volume,
    render,
    render_files,
    write_project,
)
from nixgen.render import atomic_write, generated_state, guest_module
from nixgen.starters import TEMPLATES, Choices, build_template

NIX_INSTANTIATE = shutil.which("nix-instantiate")
needs_nix = pytest.mark.skipif(
    NIX_INSTANTIATE is None, reason="nix not found: apt-get install nix-bin (see README)"
)


def sample_flake() -> Flake:
    web = MicroVM(
        name="web",
        mem=1024,
        interfaces=[Interface.user()],
        shares=[Share.ro_store()],
        volumes=[Volume(image="var.img", mount_point="/var", size=256)],
        users=[User(name="root", ssh_keys=["ssh-ed25519 AAAAC3Nza me@host"])],
        packages=["htop"],
        nixos={"services.nginx.enable": True},
    )
    db = MicroVM(
        name="db", hypervisor="cloud-hypervisor", interfaces=[Interface.tap_device("vm-db")]
    )
    return Flake(guests=[web, db])


def test_one_module_per_guest_and_a_flake() -> None:
    files = render_files(sample_flake())
    assert sorted(map(str, files)) == ["flake.nix", "vms/db.nix", "vms/web.nix"]


def test_flake_has_the_shape_users_expect() -> None:
    text = render_files(sample_flake())[PurePosixPath("flake.nix")]
    assert 'url = "github:microvm-nix/microvm.nix";' in text
    assert 'inputs.nixpkgs.follows = "nixpkgs";' in text
    assert "web = nixpkgs.lib.nixosSystem {" in text
    assert "microvm.nixosModules.microvm\n            ./vms/web.nix\n" in text
    assert "web = self.nixosConfigurations.web.config.microvm.declaredRunner;" in text
    assert "default = self.packages.x86_64-linux.web;" in text
    assert "https://microvm.cachix.org" in text


def test_binary_cache_can_be_turned_off() -> None:
    text = render_files(sample_flake().evolve(binary_cache=False))[PurePosixPath("flake.nix")]
    assert "nixConfig" not in text and "cachix" not in text


def test_default_guest_is_configurable() -> None:
    text = render_files(sample_flake().evolve(default="db"))[PurePosixPath("flake.nix")]
    assert "default = self.packages.x86_64-linux.db;" in text


def test_extra_inputs_reach_the_modules() -> None:
    flake = sample_flake().evolve(
        inputs=(*sample_flake().inputs, Input(name="agenix", url="github:ryantm/agenix"))
    )
    text = render_files(flake)[PurePosixPath("flake.nix")]
    assert "      agenix,\n" in text
    assert "specialArgs.inputs = self.inputs;" in text


def test_guest_module_content() -> None:
    text = guest_module(sample_flake().guest("web"))
    assert 'networking.hostName = "web";' in text
    assert "mem = 1024;" in text
    assert 'mountPoint = "/nix/.ro-store";' in text
    assert "users.users.root.openssh.authorizedKeys.keys" in text
    assert "environment.systemPackages = [ pkgs.htop ];" in text
    assert "openssh.enable = true;" in text
    assert "nginx.enable = true;" in text
    # A stable MAC is filled in for interfaces without one.
    assert 'mac = "' in text


def test_defaults_are_left_to_microvm_nix() -> None:
    text = guest_module(MicroVM(name="plain"))
    assert "balloon" not in text and "deflateOnOOM" not in text and "storeOnDisk" not in text
    assert 'hypervisor = "qemu";' in text and "vcpu = 1;" in text and "mem = 512;" in text


def test_null_over_a_non_null_default_reaches_nix() -> None:
    vm = MicroVM(
        name="x",
        vfkit=VfkitOptions(log_level=None),
        virtiofsd=VirtiofsdOptions(group=None, inode_file_handles=None),
    )
    text = guest_module(vm)
    assert "vfkit.logLevel = null;" in text
    assert "group = null;" in text and "inodeFileHandles = null;" in text
    # Left at their defaults, they are not written at all.
    assert "logLevel" not in guest_module(MicroVM(name="x", vfkit=VfkitOptions()))


def test_free_values_render_from_the_frozen_model() -> None:
    vm = MicroVM(name="x", nixos={"a.b": [1, {"c": Nix("pkgs.c")}, {"_nix": "pkgs.d"}]})
    text = guest_module(vm)
    assert "a.b = [\n    1\n    {\n      c = pkgs.c;\n    }\n    pkgs.d\n  ];" in text


def test_modules_and_raw_nix() -> None:
    vm = MicroVM(
        name="x",
        modules=[
            PurePosixPath("modules/common.nix"),
            Nix('{ services.getty.autologinUser = "root"; }'),
        ],
        extra={"optimize.enable": False},
    )
    text = guest_module(vm)
    assert "../modules/common.nix" in text  # relative to vms/
    assert 'services.getty.autologinUser = "root";' in text
    assert "optimize.enable = false;" in text
    assert "  config,\n  lib,\n  pkgs,\n" in text


def test_rendering_is_deterministic() -> None:
    assert render_files(sample_flake()) == render_files(sample_flake())


def test_checksum_recognises_edits() -> None:
    text = guest_module(MicroVM(name="a"))
    assert generated_state(text) == "pristine"
    assert generated_state(text.replace("mem = 512;", "mem = 513;")) == "edited"
    assert generated_state("{ }\n") == "foreign"


def test_write_then_rerender_is_a_no_op(tmp_path: Path) -> None:
    first = write_project(sample_flake(), tmp_path)
    assert len(first.written) == 3
    second = write_project(sample_flake(), tmp_path)
    assert second.written == () and len(second.unchanged) == 3


def test_hand_edits_are_never_overwritten_silently(tmp_path: Path) -> None:
    write_project(sample_flake(), tmp_path)
    web = tmp_path / "vms/web.nix"
    edited = web.read_text().replace("mem = 1024;", "mem = 1024; # mine")
    web.write_text(edited)
    changed = sample_flake().with_guest(sample_flake().guest("web").evolve(mem=2047))
    with pytest.raises(HandEditedError, match=r"web\.nix") as err:
        write_project(changed, tmp_path)
    assert "--force" in str(err.value)
    # Nothing at all was written: the edit and the other files are as they were.
    assert web.read_text() == edited
    assert "mem = 2047" not in (tmp_path / "flake.nix").read_text()
    forced = write_project(changed, tmp_path, force=True)
    assert web in forced.written
    assert "mem = 2047;" in web.read_text()


def test_foreign_files_are_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "flake.nix").write_text("{ outputs = _: { }; }\n")
    with pytest.raises(HandEditedError):
        write_project(sample_flake(), tmp_path)
    assert (tmp_path / "flake.nix").read_text() == "{ outputs = _: { }; }\n"


def test_removed_guests_lose_their_unedited_module(tmp_path: Path) -> None:
    write_project(sample_flake(), tmp_path)
    result = write_project(sample_flake().without_guest("db"), tmp_path)
    assert result.removed == (tmp_path / "vms/db.nix",)
    assert not (tmp_path / "vms/db.nix").exists()


def test_removed_guest_with_edits_blocks_the_render(tmp_path: Path) -> None:
    write_project(sample_flake(), tmp_path)
    db = tmp_path / "vms/db.nix"
    db.write_text(db.read_text() + "# note\n")
    with pytest.raises(HandEditedError, match=r"db\.nix"):
        write_project(sample_flake().without_guest("db"), tmp_path)
    assert db.exists()
    # --force goes on, but keeps the edited module instead of deleting it.
    result = write_project(sample_flake().without_guest("db"), tmp_path, force=True)
    assert result.kept == (db,) and result.removed == ()
    assert db.read_text().endswith("# note\n")


def test_atomic_write_leaves_old_file_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "f.nix"
    target.write_text("old")

    def boom(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.nix"]  # no temp file left


def _project_texts(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*.nix"))}


def test_render_of_many_files_changes_nothing_when_the_flush_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_project(sample_flake(), tmp_path)
    before = _project_texts(tmp_path)

    def disk_full(temps: object, folders: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(render, "_flush", disk_full)
    bigger = sample_flake().evolve(guests=[g.evolve(mem=g.mem * 2) for g in sample_flake().guests])
    with pytest.raises(OSError, match="disk full"):
        write_project(bigger, tmp_path)
    assert _project_texts(tmp_path) == before
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


@pytest.mark.parametrize("syncfs", ["libc", "none"])
def test_render_of_many_files_writes_each_exactly_and_keeps_modes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, syncfs: str
) -> None:
    if syncfs == "none":  # a system without syncfs: an fsync a file
        monkeypatch.setattr(render, "_syncfs", lambda: None)
    write_project(sample_flake(), tmp_path)
    web = tmp_path / "vms" / "web.nix"
    assert web.stat().st_mode & 0o777 == 0o644  # a new file: readable by all
    web.chmod(0o600)
    bigger = sample_flake().evolve(guests=[g.evolve(mem=g.mem * 2) for g in sample_flake().guests])
    result = write_project(bigger, tmp_path)
    assert web in result.written and len(result.written) >= 2
    expected = {str(rel): text for rel, text in render_files(bigger).items()}
    assert _project_texts(tmp_path) == expected
    assert web.stat().st_mode & 0o777 == 0o600  # a replaced file keeps its mode
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


@needs_nix
@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_every_template_file_parses_with_nix(template: str, tmp_path: Path) -> None:
    assert NIX_INSTANTIATE is not None
    flake = build_template(template, Choices(ssh_keys=("ssh-ed25519 AAAA k",)))
    for rel, text in render_files(flake).items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        proc = subprocess.run(
            [NIX_INSTANTIATE, "--parse", str(path)], capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, f"{rel}:\n{text}\n{proc.stderr}"
