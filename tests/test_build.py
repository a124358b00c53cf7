"""Building guests with the real ``nix build`` against the stand-in inputs."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from nixgen import Flake, Interface, MicroVM, Nix, Share, Volume, render_files, write_project
from nixgen.build import BuildResult, GuestEvalError, build, evaluate, kernel_image
from nixgen.nixcmd import NixRunner
from nixgen.nixcmd.errors import NixBuildError, NixOptionError, NixTimeoutError
from nixgen.project import Project
from tests.clirunner import run_cli
from tests.standin import (
    NIX_SKIP_REASON,
    nix_available,
    offline_nix_env,
    prepare_inputs,
)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    if not nix_available():
        pytest.skip(NIX_SKIP_REASON)
    base = tmp_path_factory.mktemp("inputs")
    os.environ.update(offline_nix_env(base))  # NIX_CONF_DIR for every nix call below
    return {name: f"path:{path}" for name, path in prepare_inputs(base).items()}


@pytest.fixture
def nix(inputs: dict[str, str]) -> NixRunner:
    return NixRunner(override_inputs=inputs)


def project(tmp_path: Path, *guests: MicroVM, checked: bool = True) -> Path:
    """A project of ``guests``; ``checked=False`` writes one that nixgen's
    validation refuses (write_project would), as a hand edit could leave it."""
    flake = Flake(guests=guests)
    if checked:
        write_project(flake, tmp_path)
    else:
        for rel, text in render_files(flake).items():
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / rel).write_text(text)
    Project(tmp_path).save(flake)
    return tmp_path


def qemu(name: str, **kw: Any) -> MicroVM:
    return MicroVM(name=name, interfaces=[Interface.user()], shares=[Share.ro_store()], **kw)


def count_calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    seen: list[list[str]] = []
    original = NixRunner.run

    def spy(self: NixRunner, args: Any, **kw: Any) -> Any:
        seen.append(list(args))
        return original(self, args, **kw)

    monkeypatch.setattr(NixRunner, "run", spy)
    return seen


# ----------------------------------------------------------------- without nix


def test_kernel_image_follows_the_hypervisor() -> None:
    outs = {"out": "/nix/store/k", "dev": "/nix/store/k-dev"}
    assert kernel_image("qemu", "x86_64-linux", outs) == Path("/nix/store/k/bzImage")
    assert kernel_image("cloud-hypervisor", "x86_64-linux", outs) == Path(
        "/nix/store/k-dev/vmlinux"
    )
    assert kernel_image("firecracker", "x86_64-linux", outs).name == "vmlinux"
    assert kernel_image("qemu", "aarch64-linux", outs) == Path("/nix/store/k/Image")


def test_result_json_round_trip() -> None:
    result = BuildResult(
        name="a",
        hypervisor="qemu",
        system="x86_64-linux",
        runner=Path("/nix/store/r"),
        kernel=Path("/nix/store/k/bzImage"),
        initrd=Path("/nix/store/i/initrd"),
        reg_info=None,
        toplevel=Path("/nix/store/t"),
        store_disk=None,
        drv_path="/nix/store/r.drv",
    )
    assert BuildResult.from_json(result.to_json()) == result
    assert result.run_script == Path("/nix/store/r/bin/microvm-run")


# ----------------------------------------------------------------- with nix


@pytest.mark.nix
def test_one_guest_artifacts(tmp_path: Path, nix: NixRunner) -> None:
    folder = project(
        tmp_path, qemu("web", volumes=[Volume(image="var.img", mount_point="/var", size=8)])
    )
    results = build(folder, nix=nix)
    web = results["web"]
    assert web.hypervisor == "qemu" and web.system == "x86_64-linux"
    assert web.run_script.is_file() and os.access(web.run_script, os.X_OK)
    assert web.kernel.name == "bzImage" and web.kernel.is_file()
    assert web.initrd.is_file()
    assert web.reg_info is not None and web.reg_info.is_file()
    assert str(web.toplevel) in web.reg_info.read_text()
    assert web.toplevel.is_dir()
    assert web.store_disk is None  # the host store is shared
    assert web.shutdown_script is not None


@pytest.mark.nix
def test_several_guests_in_one_build_call(
    tmp_path: Path, nix: NixRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    guests = [
        qemu("a"),
        MicroVM(name="b", hypervisor="cloud-hypervisor", interfaces=[Interface.tap_device("vm-b")]),
        MicroVM(name="c", hypervisor="firecracker", interfaces=[Interface.tap_device("vm-c")]),
    ]
    folder = project(tmp_path, *guests)
    calls = count_calls(monkeypatch)
    results = build(folder, nix=nix, gc_roots=False)
    kinds = [c[0] for c in calls]
    assert kinds.count("eval") == 1 and kinds.count("build") == 1, calls
    assert sorted(results) == ["a", "b", "c"]
    # Each result belongs to its own guest, whatever order nix printed them in.
    for name, result in results.items():
        assert f"-{name}" in result.runner.name
        assert result.run_script.read_text().count(name) >= 1
    assert results["b"].kernel.name == "vmlinux"  # cloud-hypervisor boots the dev output's vmlinux
    assert results["c"].store_disk is not None and results["c"].store_disk.exists()


@pytest.mark.nix
def test_gc_roots_keep_runners(tmp_path: Path, nix: NixRunner) -> None:
    folder = project(tmp_path, qemu("web"))
    web = build(folder, nix=nix)["web"]
    assert web.gc_root == folder / ".nixgen/gcroots/web"
    assert web.gc_root.resolve() == web.runner
    auto = Path("/nix/var/nix/gcroots/auto")
    if auto.is_dir():  # an indirect root: nix links to our link from gcroots/auto
        links = [p.readlink() for p in auto.iterdir() if p.is_symlink()]
        assert web.gc_root in links


@pytest.mark.nix
def test_no_op_rebuild_runs_no_nix(
    tmp_path: Path, nix: NixRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = project(tmp_path, qemu("web"))
    first = build(folder, nix=nix)
    calls = count_calls(monkeypatch)
    start = time.perf_counter()
    again = build(folder, nix=nix)
    elapsed = time.perf_counter() - start
    assert again == first and calls == []
    assert elapsed < 5  # generous: the benchmark measures the real figure
    # A change to the flake is seen, and nix runs again.
    write_project(Flake(guests=[qemu("web", mem=1024)]), folder)
    changed = build(folder, nix=nix)
    assert [c[0] for c in calls][:2] == ["eval", "build"]
    assert changed["web"].runner != first["web"].runner


@pytest.mark.nix
def test_evaluate_builds_nothing(tmp_path: Path, nix: NixRunner) -> None:
    nonce = uuid.uuid4().hex
    marker = Nix(f'pkgs.runCommand "never-{nonce}" {{ }} "touch $out"')
    folder = project(tmp_path, qemu("web", packages=[marker]))
    info = evaluate(folder, nix=nix)
    assert info["web"]["hypervisor"] == "qemu"
    assert not Path(info["web"]["runnerOut"]).exists()


@pytest.mark.nix
def test_failing_build_reports_the_derivation_and_its_log(tmp_path: Path, nix: NixRunner) -> None:
    nonce = uuid.uuid4().hex
    boom = Nix(f'pkgs.runCommand "boom-{nonce}" {{ }} "echo it broke here >&2; exit 3"')
    folder = project(tmp_path, qemu("web", packages=[boom]))
    with pytest.raises(NixBuildError) as err:
        build(folder, nix=nix)
    assert f"boom-{nonce}" in str(err.value)
    assert "nix log" in str(err.value)
    assert not (folder / ".nixgen/build-cache.json").exists()
    assert not (folder / ".nixgen/gcroots/web").exists()


@pytest.mark.nix
def test_evaluation_errors_of_every_guest_are_reported(tmp_path: Path, nix: NixRunner) -> None:
    folder = project(
        tmp_path,
        qemu("good"),
        qemu("bad1", extra={"memoryy": 1}),
        qemu("bad2", extra={"balloonMem": 1, "notAnOption": True}),
        checked=False,
    )
    with pytest.raises(GuestEvalError) as err:
        evaluate(folder, nix=nix)
    assert sorted(err.value.errors) == ["bad1", "bad2"]
    assert isinstance(err.value.errors["bad1"], NixOptionError)
    assert "microvm.memoryy" in str(err.value.errors["bad1"])


@pytest.mark.nix
def test_interrupted_build_leaves_nothing_behind(tmp_path: Path, inputs: dict[str, str]) -> None:
    nonce = uuid.uuid4().hex
    slow = Nix(f'pkgs.runCommand "slow-{nonce}" {{ }} "sleep 60; touch $out"')
    folder = project(tmp_path, qemu("web", packages=[slow]))
    with pytest.raises(NixTimeoutError):
        build(folder, nix=NixRunner(override_inputs=inputs, timeout=8))
    assert not (folder / ".nixgen/build-cache.json").exists()
    assert not (folder / ".nixgen/gcroots").exists()
    assert not list(folder.glob("result*"))


@pytest.mark.nix
def test_cli_build_and_check(tmp_path: Path, inputs: dict[str, str]) -> None:
    folder = project(tmp_path, qemu("web"), qemu("db"))
    overrides = [a for name, url in inputs.items() for a in ("--override-input", name, url)]
    result = run_cli(["build", "web", "--flake", str(folder), *overrides, "--json"])
    assert result.exit_code == 0, result.output
    assert '"web"' in result.output and '"db"' not in result.output
    # The no-op cache answers the same build without starting nix (none on PATH).
    args = ["build", "web", "--flake", str(folder), *overrides, "--json"]
    again = run_cli(args, env={"PATH": str(tmp_path / "no-nix-here")})
    assert again.exit_code == 0 and again.output == result.output
    result = run_cli(["check", str(folder), *overrides])
    assert result.exit_code == 0, result.output
    assert "evaluated with nix" in result.output
    # An evaluation error fails check with the guest named (nixgen does not
    # type free NixOS settings; the stand-in's boot.kernelParams is a list).
    toml = folder / "nixgen.toml"
    toml.write_text(toml.read_text() + '\n[guests.db.nixos]\n"boot.kernelParams" = 1\n')
    assert run_cli(["render", str(folder)]).exit_code == 0
    result = run_cli(["check", str(folder), *overrides])
    assert result.exit_code == 1
    assert "guest 'db'" in result.output and "boot.kernelParams" in result.output


@pytest.mark.nix
def test_hosts_are_not_built_as_guests(tmp_path: Path, nix: NixRunner) -> None:
    from nixgen import Host

    flake = Flake(
        guests=[qemu("web")],
        hosts=[Host(name="vmhost", vms=["web"], nixos_configuration=True)],  # type: ignore[list-item]
    )
    write_project(flake, tmp_path)
    assert "vmhost = nixpkgs.lib.nixosSystem" in (tmp_path / "flake.nix").read_text()
    assert sorted(build(tmp_path, nix=nix, gc_roots=False)) == ["web"]
