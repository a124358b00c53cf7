"""Rendered flakes evaluate and build with the real ``nix``.

The inputs are the stand-ins of ``tests/standins`` (see their README): a
nixpkgs whose ``lib.nixosSystem`` runs a real module system, and a
microvm.nix whose module declares every guest option strictly from the
upstream schema, so a misspelt option name, a wrong type or a bad enum value
in nixgen's output fails these builds.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from nixgen import (
    Device,
    Flake,
    ForwardPort,
    Graphics,
    Interface,
    MicroVM,
    Nix,
    QemuOptions,
    Share,
    User,
    Volume,
    Vsock,
    render_files,
    validate,
    write_project,
)
from nixgen.model import MacvtapOptions
from nixgen.starters import TEMPLATES, Choices, build_template
from tests.standin import (
    NIX_SKIP_REASON,
    nix_available,
    offline_nix_env,
    override_args,
    prepare_inputs,
)

pytestmark = [
    pytest.mark.nix,
    pytest.mark.skipif(not nix_available(), reason=NIX_SKIP_REASON),
]

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA/PuEtAu8SXppI2pMMgzaBDwga1mYYi90W8DZ8Diyl3 me@host"


@pytest.fixture(scope="module")
def nix_setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], list[str]]:
    base = tmp_path_factory.mktemp("nix")
    inputs = prepare_inputs(base / "inputs")
    return offline_nix_env(base), override_args(inputs)


def nix_build(
    flake_dir: Path, attrs_: list[str], setup: tuple[dict[str, str], list[str]]
) -> subprocess.CompletedProcess[str]:
    env, overrides = setup
    return subprocess.run(
        [
            "nix",
            "build",
            "--json",
            "--no-link",
            *(f"path:{flake_dir}#{a}" for a in attrs_),
            *overrides,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=600,
    )


def nix_eval(
    flake_dir: Path,
    attr: str,
    setup: tuple[dict[str, str], list[str]],
    apply: str | None = None,
) -> Any:
    env, overrides = setup
    extra = ["--apply", apply] if apply else []
    proc = subprocess.run(
        ["nix", "eval", "--json", f"path:{flake_dir}#{attr}", *extra, *overrides],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def matrix() -> Flake:
    """Guests exercising every hypervisor, interface type, share protocol and device kind."""
    guests = [
        MicroVM(
            name="qemu-full",
            hypervisor="qemu",
            vcpu=2,
            mem=1024,
            hotplug_mem=512,
            balloon=True,
            interfaces=[Interface.user(), Interface.on_bridge("vm-br", bridge="br0")],
            forward_ports=[ForwardPort.tcp(2222, 22)],
            shares=[Share.ro_store(), Share.virtiofs("data", "/srv/data", "/data")],
            volumes=[Volume(image="var.img", mount_point="/var", size=256)],
            devices=[
                Device(bus="pci", path="0000:01:00.0"),
                Device(bus="usb", path="vendorid=0x1"),
            ],
            vsock=Vsock(cid=3),
            qemu=QemuOptions(machine="q35", extra_args=["-no-hpet"]),
            users=[User(name="root", ssh_keys=[KEY]), User(name="ops", groups=["wheel"])],
            packages=["htop", Nix("pkgs.jq")],
            nixos={"services.getty.autologinUser": "root", "boot.kernelParams": ["quiet"]},
            kernel_params=["console=ttyS0"],
            credential_files={"secret": "/run/secret"},
            user="microvm",
            modules=[PurePosixPath("modules/common.nix")],
        ),
        MicroVM(
            name="ch",
            hypervisor="cloud-hypervisor",
            interfaces=[
                Interface.tap_device("vm-ch", vhost=True),
                Interface(type="macvtap", id="vm-ch-mv", macvtap=MacvtapOptions(link="eth0")),
            ],
            shares=[Share.ro_store("virtiofs")],
            volumes=[Volume(image="data.qcow2", mount_point="/data", size=64, image_type="qcow2")],
            balloon=True,
            initial_balloon_mem=128,
            hugepage_mem=True,
            graphics=Graphics(enable=True),
            devices=[Device(bus="pci", path="0000:02:00.0")],
        ),
        MicroVM(
            name="fc",
            hypervisor="firecracker",
            interfaces=[Interface.tap_device("vm-fc")],
            volumes=[Volume(image="var.img", mount_point="/var", size=128)],
            vsock=Vsock(cid=4),
            store_disk_type="squashfs",
        ),
        MicroVM(
            name="cros",
            hypervisor="crosvm",
            interfaces=[Interface.tap_device("vm-cros")],
            shares=[Share.ro_store("9p"), Share.virtiofs("home", "/home", "/home")],
        ),
        MicroVM(
            name="kvmt",
            hypervisor="kvmtool",
            interfaces=[Interface.user()],
            shares=[Share.ro_store("9p")],
        ),
        MicroVM(
            name="strato",
            hypervisor="stratovirt",
            interfaces=[Interface.on_bridge("vm-strato", bridge="br0")],
            shares=[Share.ro_store("virtiofs")],
            devices=[Device(bus="usb", path="vendorid=0x2")],
        ),
        MicroVM(
            name="al",
            hypervisor="alioth",
            interfaces=[Interface.tap_device("vm-al")],
            shares=[Share.ro_store("virtiofs")],
        ),
        MicroVM(
            name="vf",
            hypervisor="vfkit",
            interfaces=[Interface.user()],
            shares=[Share.ro_store("virtiofs")],
        ),
    ]
    return Flake(guests=guests)


def test_matrix_is_valid_for_nixgen() -> None:
    warnings = validate(matrix())
    assert {w.path.split(".")[-1] for w in warnings} <= {"hypervisor"}  # vfkit: macOS only


def test_matrix_builds_in_one_nix_call(
    tmp_path: Path, nix_setup: tuple[dict[str, str], list[str]]
) -> None:
    flake = matrix()
    write_project(flake, tmp_path)
    (tmp_path / "modules").mkdir()
    (tmp_path / "modules/common.nix").write_text("{ services.openssh.settings.X = 1; }\n")
    attrs_ = [f"packages.{vm.system}.{vm.name}" for vm in flake.guests] + [
        "packages.x86_64-linux.default"
    ]
    proc = nix_build(tmp_path, attrs_, nix_setup)
    assert proc.returncode == 0, proc.stderr
    built = json.loads(proc.stdout)
    assert len({b["outputs"]["out"] for b in built}) == len(flake.guests)
    for entry in built:
        assert Path(entry["outputs"]["out"], "bin/microvm-run").is_file()


def test_settings_reach_the_evaluated_configuration(
    tmp_path: Path, nix_setup: tuple[dict[str, str], list[str]]
) -> None:
    flake = matrix()
    write_project(flake, tmp_path)
    (tmp_path / "modules").mkdir()
    (tmp_path / "modules/common.nix").write_text("{ services.openssh.settings.X = 1; }\n")
    # Read fields one by one: the whole microvm set holds derivations.
    prefix = "nixosConfigurations.qemu-full.config"
    assert nix_eval(tmp_path, f"{prefix}.microvm.mem", nix_setup) == 1024
    assert nix_eval(tmp_path, f"{prefix}.microvm.hypervisor", nix_setup) == "qemu"
    assert nix_eval(tmp_path, f"{prefix}.microvm.forwardPorts", nix_setup) == [
        {
            "from": "host",
            "host": {"address": "", "port": 2222},
            "guest": {"address": "", "port": 22},
            "proto": "tcp",
        }
    ]
    shares = nix_eval(tmp_path, f"{prefix}.microvm.shares", nix_setup)
    assert [s["tag"] for s in shares] == ["ro-store", "data"]
    assert nix_eval(tmp_path, f"{prefix}.networking.hostName", nix_setup) == "qemu-full"
    keys = nix_eval(tmp_path, f"{prefix}.users.users.root.openssh.authorizedKeys.keys", nix_setup)
    assert keys == [KEY]
    assert nix_eval(tmp_path, f"{prefix}.services.openssh.settings.X", nix_setup) == 1
    # Whole interface entries cannot be read: upstream leaves macvtap.link undefined on taps.
    macs = nix_eval(tmp_path, f"{prefix}.microvm.interfaces", nix_setup, apply="map (i: i.mac)")
    assert macs == [i.mac for i in flake.guest("qemu-full").resolved_interfaces()]


def test_aarch64_guests_evaluate(
    tmp_path: Path, nix_setup: tuple[dict[str, str], list[str]]
) -> None:
    """This machine cannot build for aarch64, but the flake must evaluate for it."""
    flake = Flake(
        guests=[MicroVM(name="arm", system="aarch64-linux", interfaces=[Interface.user()])]
    )
    write_project(flake, tmp_path)
    drv = nix_eval(tmp_path, "packages.aarch64-linux.arm.drvPath", nix_setup)
    assert drv.startswith("/nix/store/") and drv.endswith(".drv")
    assert (
        nix_eval(tmp_path, "nixosConfigurations.arm.config.microvm.hypervisor", nix_setup) == "qemu"
    )


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_every_template_builds(
    template: str, tmp_path: Path, nix_setup: tuple[dict[str, str], list[str]]
) -> None:
    flake = build_template(template, Choices(ssh_keys=(KEY,)))
    write_project(flake, tmp_path)
    attrs_ = [f"packages.{vm.system}.{vm.name}" for vm in flake.guests]
    proc = nix_build(tmp_path, attrs_, nix_setup)
    assert proc.returncode == 0, proc.stderr


def test_a_wrong_option_would_fail_the_build(
    tmp_path: Path, nix_setup: tuple[dict[str, str], list[str]]
) -> None:
    """Guards the guard: the stand-in really is strict about what nixgen emits."""
    flake = Flake(guests=[MicroVM(name="bad", extra={"notAnOption": 1})])
    for rel, text in render_files(flake).items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    proc = nix_build(tmp_path, ["packages.x86_64-linux.bad"], nix_setup)
    assert proc.returncode != 0
    assert "microvm.notAnOption' does not exist" in proc.stderr


def test_nix_flake_init_uses_the_same_templates(
    tmp_path: Path, nix_setup: tuple[dict[str, str], list[str]]
) -> None:
    """`nix flake init -t <nixgen>?dir=templates#NAME` creates what `nixgen init -t NAME`
    does, offline and with no --override-input: the templates flake has no inputs."""
    repo = Path(__file__).resolve().parents[1]
    env, _ = nix_setup
    copy = tmp_path / "nixgen"
    shutil.copytree(repo / "templates", copy / "templates")
    for name in ("microvm", "multi", "firecracker"):
        target = tmp_path / name
        target.mkdir()
        proc = subprocess.run(
            ["nix", "flake", "init", "-t", f"path:{copy}/templates#{name}"],
            cwd=target,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        made = {p.relative_to(target): p.read_bytes() for p in target.rglob("*") if p.is_file()}
        source = repo / "templates/init" / name
        want = {p.relative_to(source): p.read_bytes() for p in source.rglob("*") if p.is_file()}
        assert made == want
    assert not (copy / "templates/flake.lock").exists()  # nothing to lock, nothing written


def test_the_root_flake_offers_the_same_templates(
    tmp_path: Path, nix_setup: tuple[dict[str, str], list[str]]
) -> None:
    """The root flake's `templates` (which needs its nixpkgs input locked) is the same list."""
    repo = Path(__file__).resolve().parents[1]
    env, overrides = nix_setup
    copy = tmp_path / "nixgen"
    shutil.copytree(repo / "templates", copy / "templates")
    shutil.copy(repo / "flake.nix", copy / "flake.nix")
    nixpkgs = overrides[overrides.index("nixpkgs") + 1]
    names = {}
    for ref, extra in (
        (f"path:{copy}", ["--override-input", "nixpkgs", nixpkgs]),
        (f"path:{copy}/templates", []),
    ):
        proc = subprocess.run(
            [
                "nix",
                "eval",
                "--json",
                f"{ref}#templates",
                *extra,
                "--apply",
                "t: builtins.mapAttrs (n: v: v.description) t",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        names[ref] = json.loads(proc.stdout)
    root, sub = names.values()
    assert root == sub and "multi" in root and root["default"] == root["microvm"]
    assert set(root) - {"default"} == {p.name for p in (repo / "templates/init").iterdir()}
