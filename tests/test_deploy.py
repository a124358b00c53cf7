"""``nixgen deploy``: the exact commands, per-host reports, --fail-fast, the command runner.

Every subprocess is faked with pytest-subprocess; nothing reaches a host.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from pytest_subprocess import FakeProcess

from nixgen import (
    CommandError,
    DeployOptions,
    Flake,
    Fleet,
    Host,
    HostVM,
    MicroVM,
    Network,
    ProjectError,
    ValidationError,
)
from nixgen.deploy import CommandRunner
from nixgen.nixcmd import FLAKE_FEATURE_FLAGS, NixRunner
from nixgen.project import Project
from nixgen.render import write_project
from tests.clirunner import run_cli

BUILD_STDERR = "error: builder for '/nix/store/x-nixos-system-beta.drv' failed with exit code 1;\n"


def toplevel_json(name: str) -> str:
    return json.dumps(
        [
            {
                "drvPath": f"/nix/store/d-nixos-system-{name}.drv",
                "outputs": {"out": f"/nix/store/o-nixos-system-{name}"},
            }
        ]
    )


def two_hosts() -> Flake:
    return Flake(
        guests=[MicroVM(name="web"), MicroVM(name="db")],
        hosts=[
            Host(
                name="alpha",
                vms=[HostVM(name="web")],
                networks=[Network.bridged("lan", ["web"], ipv4="10.0.0.0/24")],
                nixos_configuration=True,
                target_host="root@alpha.example",
            ),
            Host(name="beta", vms=[HostVM(name="db")], nixos_configuration=True),
            Host(name="gamma"),  # a module only: not deployed
        ],
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "fleet"
    flake = two_hosts()
    write_project(flake, folder, source="nixgen.toml")
    Project(folder).save(flake)
    return folder


@pytest.fixture
def fake_nix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An executable named nix, first on PATH, that pytest-subprocess stands in for."""
    path = tmp_path / "bin" / "nix"
    path.parent.mkdir()
    path.write_text("#!/bin/sh\nexit 99\n")
    path.chmod(0o755)
    monkeypatch.setenv("PATH", f"{path.parent}{os.pathsep}{os.environ['PATH']}")
    return path


def nix(fake: Path, *args: str) -> list[str]:
    return [str(fake), *FLAKE_FEATURE_FLAGS, *args]


def ref(folder: Path) -> str:
    return f"path:{folder.resolve()}"


def register_host(
    fp: FakeProcess,
    fake: Path,
    folder: Path,
    name: str,
    target: str,
    *,
    overrides: tuple[str, ...] = (),
) -> None:
    installable = f"{ref(folder)}#nixosConfigurations.{name}.config.system.build.toplevel"
    fp.register(
        nix(fake, "build", "--no-link", "--json", *overrides, "--", installable),
        stdout=toplevel_json(name),
    )
    fp.register(
        nix(fake, "copy", "--to", f"ssh://{target}", "--", f"/nix/store/o-nixos-system-{name}")
    )
    fp.register(
        [
            "nixos-rebuild",
            "switch",
            "--flake",
            f"{ref(folder)}#{name}",
            "--target-host",
            target,
            *overrides,
        ]
    )


def test_every_host_is_built_copied_and_activated(
    fp: FakeProcess, fake_nix: Path, project: Path
) -> None:
    register_host(fp, fake_nix, project, "alpha", "root@alpha.example")
    register_host(fp, fake_nix, project, "beta", "beta")
    fleet = Fleet.load(project, nix=NixRunner(binary=str(fake_nix)))
    seen: list[str] = []
    report = fleet.deploy(on_step=lambda host, step: seen.append(f"{host}:{step.step}"))
    assert report.ok and report.succeeded == ("alpha", "beta")
    assert seen == [
        "alpha:build",
        "alpha:copy",
        "alpha:activate",
        "beta:build",
        "beta:copy",
        "beta:activate",
    ]
    alpha = report.hosts[0]
    assert alpha.target == "root@alpha.example"
    assert alpha.toplevel == "/nix/store/o-nixos-system-alpha"
    assert alpha.steps[2].command[:2] == ("nixos-rebuild", "switch")
    assert fp.call_count(["nixos-rebuild", fp.any()]) == 2


def test_one_failing_host_does_not_stop_the_others(
    fp: FakeProcess, fake_nix: Path, project: Path
) -> None:
    installable = f"{ref(project)}#nixosConfigurations.alpha.config.system.build.toplevel"
    fp.register(
        nix(fake_nix, "build", "--no-link", "--json", "--", installable),
        stderr=BUILD_STDERR.replace("beta", "alpha"),
        returncode=1,
    )
    register_host(fp, fake_nix, project, "beta", "beta")
    report = Fleet.load(project, nix=NixRunner(binary=str(fake_nix))).deploy()
    assert not report.ok
    assert report.failed == ("alpha",) and report.succeeded == ("beta",)
    alpha = report.hosts[0]
    failed = alpha.failed_step
    assert failed is not None and failed.step == "build" and len(alpha.steps) == 1
    assert failed.error is not None and "nixos-system-alpha" in str(failed.error)
    assert failed.command[0] == str(fake_nix)
    assert report.to_json()["hosts"][0]["steps"][0]["ok"] is False


def test_fail_fast_skips_the_rest(fp: FakeProcess, fake_nix: Path, project: Path) -> None:
    installable = f"{ref(project)}#nixosConfigurations.alpha.config.system.build.toplevel"
    fp.register(
        nix(fake_nix, "build", "--no-link", "--json", "--", installable),
        stdout=toplevel_json("alpha"),
    )
    fp.register(
        nix(
            fake_nix,
            "copy",
            "--to",
            "ssh://root@alpha.example",
            "--",
            "/nix/store/o-nixos-system-alpha",
        )
    )
    fp.register(
        [
            "nixos-rebuild",
            "switch",
            "--flake",
            f"{ref(project)}#alpha",
            "--target-host",
            "root@alpha.example",
        ],
        stderr="ssh: connect to host alpha.example port 22: Connection refused\n",
        returncode=1,
    )
    fleet = Fleet.load(project, nix=NixRunner(binary=str(fake_nix)))
    report = fleet.deploy(options=DeployOptions(fail_fast=True))
    assert report.failed == ("alpha",) and report.skipped == ("beta",)
    assert not report.hosts[1].steps
    step = report.hosts[0].failed_step
    assert step is not None and step.step == "activate"
    error = step.error
    assert isinstance(error, CommandError)
    assert error.exit_code == 1 and "Connection refused" in error.stderr
    text = str(error)
    assert "command: nixos-rebuild switch --flake" in text and "exit code: 1" in text
    assert "check that the target is reachable" in text


def test_remote_builders_and_stores(fp: FakeProcess, fake_nix: Path, project: Path) -> None:
    installable = f"{ref(project)}#nixosConfigurations.beta.config.system.build.toplevel"
    fp.register(
        nix(
            fake_nix,
            "build",
            "--no-link",
            "--json",
            "--builders",
            "ssh://builder x86_64-linux",
            "--store",
            "ssh-ng://builder",
            "--override-input",
            "nixpkgs",
            "path:/src/nixpkgs",
            "--",
            installable,
        ),
        stdout=toplevel_json("beta"),
    )
    fp.register(
        nix(
            fake_nix,
            "copy",
            "--from",
            "ssh-ng://builder",
            "--to",
            "ssh://beta",
            "--substitute-on-destination",
            "--",
            "/nix/store/o-nixos-system-beta",
        )
    )
    fp.register(
        [
            "nixos-rebuild",
            "boot",
            "--flake",
            f"{ref(project)}#beta",
            "--target-host",
            "beta",
            "--use-remote-sudo",
            "--build-host",
            "builder",
            "--override-input",
            "nixpkgs",
            "path:/src/nixpkgs",
        ]
    )
    fleet = Fleet.load(
        project,
        nix=NixRunner(binary=str(fake_nix), override_inputs={"nixpkgs": "path:/src/nixpkgs"}),
    )
    options = DeployOptions(
        builders="ssh://builder x86_64-linux",
        store="ssh-ng://builder",
        action="boot",
        sudo=True,
        substitute_on_destination=True,
    )
    report = fleet.deploy(["beta"], options)
    assert report.ok, [str(s.error) for s in report.hosts[0].steps]


def test_activation_over_ssh(fp: FakeProcess, fake_nix: Path, project: Path) -> None:
    installable = f"{ref(project)}#nixosConfigurations.beta.config.system.build.toplevel"
    out = "/nix/store/o-nixos-system-beta"
    fp.register(
        nix(fake_nix, "build", "--no-link", "--json", "--", installable),
        stdout=toplevel_json("beta"),
    )
    fp.register(nix(fake_nix, "copy", "--to", "ssh://beta", "--", out))
    profile = ["ssh", "--", "beta", "sudo", "nix-env", "-p", "/nix/var/nix/profiles/system"]
    fp.register([*profile, "--set", out])
    fp.register(["ssh", "--", "beta", "sudo", f"{out}/bin/switch-to-configuration", "switch"])
    fleet = Fleet.load(project, nix=NixRunner(binary=str(fake_nix)))
    report = fleet.deploy(["beta"], DeployOptions(activate_with="ssh", sudo=True))
    assert report.ok
    assert [s.step for s in report.hosts[0].steps] == ["build", "copy", "activate", "activate"]


def test_test_action_over_ssh_leaves_the_profile_alone(project: Path, fake_nix: Path) -> None:
    fleet = Fleet.load(project, nix=NixRunner(binary=str(fake_nix)))
    argvs = fleet.activate_argvs(
        fleet.flake.host("beta"), "/nix/store/x", DeployOptions(activate_with="ssh", action="test")
    )
    assert argvs == [["ssh", "--", "beta", "/nix/store/x/bin/switch-to-configuration", "test"]]


def test_dry_run_prints_the_commands(project: Path, fake_nix: Path) -> None:
    fleet = Fleet.load(project, nix=NixRunner(binary=str(fake_nix)))
    text = fleet.plan(["alpha"])
    assert "# alpha → root@alpha.example" in text
    assert (
        "nix --extra-experimental-features 'nix-command flakes' build --no-link --json -- "
        f"'{ref(project)}#nixosConfigurations.alpha.config.system.build.toplevel'"
    ) in text
    assert 'nix copy --to ssh://root@alpha.example -- "$toplevel"' in text.replace(
        "--extra-experimental-features 'nix-command flakes' ", ""
    )
    assert (
        f"nixos-rebuild switch --flake '{ref(project)}#alpha' --target-host root@alpha.example"
        in text
    )


def test_which_hosts_can_be_deployed(project: Path, fake_nix: Path) -> None:
    fleet = Fleet.load(project, nix=NixRunner(binary=str(fake_nix)))
    assert [h.name for h in fleet.deployable()] == ["alpha", "beta"]
    with pytest.raises(ProjectError, match=r"no host.*delta"):
        fleet.deployable(["delta"])
    with pytest.raises(ProjectError, match="gamma have only a module"):
        fleet.deployable(["gamma"])
    empty = Fleet(Flake(hosts=[Host(name="gamma")]), project)
    with pytest.raises(ProjectError, match="no host of this flake has a full configuration"):
        empty.deployable()


def test_stale_renders_are_not_deployed(project: Path) -> None:
    flake = two_hosts()
    Project(project).save(flake.with_host(flake.host("beta").evolve(state_dir="/srv/vms")))
    with pytest.raises(ProjectError, match=r"not up to date .*hosts/beta\.nix") as caught:
        Fleet.load(project)
    assert "nixgen render" in str(caught.value)


# ----------------------------------------------------------------- the runner


def test_runner_error_carries_command_exit_code_and_stderr(fp: FakeProcess) -> None:
    fp.register(
        ["ssh", "h", "--", "true"], stderr="Permission denied (publickey).\n", returncode=255
    )
    with pytest.raises(CommandError) as caught:
        CommandRunner().run(["ssh", "h", "--", "true"])
    err = caught.value
    assert err.command == ("ssh", "h", "--", "true") and err.exit_code == 255
    assert "Permission denied" in err.stderr
    assert "check the ssh key" in str(err)


def test_runner_passes_an_argv_in_its_own_session(fp: FakeProcess) -> None:
    recorder = fp.register(["nixos-rebuild", "--help"], stdout="usage\n")
    result = CommandRunner(env={"X": "1"}).run(["nixos-rebuild", "--help"])
    assert result.exit_code == 0 and result.stdout == "usage\n"
    kwargs = recorder.calls[0].kwargs or {}
    assert kwargs["start_new_session"] is True and kwargs.get("shell") in (None, False)
    assert kwargs["env"]["X"] == "1" and kwargs["env"]["PATH"] == os.environ["PATH"]
    with pytest.raises(TypeError):
        CommandRunner().run("nixos-rebuild --help")


def test_runner_missing_program(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing to find
    with pytest.raises(CommandError) as caught:
        CommandRunner().run(["nixos-rebuild", "switch"])
    assert "nixos-rebuild was not found" in str(caught.value)
    assert "--activate-with ssh" in str(caught.value)


def test_runner_times_out_and_stops_the_program() -> None:
    with pytest.raises(CommandError, match=r"did not finish within 0\.3 s") as caught:
        CommandRunner(timeout=0.3, grace=1.0).run(["sh", "-c", "echo started >&2; sleep 30"])
    assert caught.value.exit_code is None


def test_real_runner_reports_a_failing_program() -> None:
    with pytest.raises(CommandError) as caught:
        CommandRunner().run(["sh", "-c", "echo oops >&2; exit 3"])
    assert caught.value.exit_code == 3 and caught.value.stderr == "oops\n"
    assert CommandRunner().run(["sh", "-c", "echo fine"]).stdout == "fine\n"
    assert subprocess.run(["true"], check=False).returncode == 0


# ----------------------------------------------------------------- the command line


def test_cli_reports_every_host(fp: FakeProcess, fake_nix: Path, project: Path) -> None:
    installable = f"{ref(project)}#nixosConfigurations.alpha.config.system.build.toplevel"
    fp.register(
        nix(fake_nix, "build", "--no-link", "--json", "--", installable),
        stderr=BUILD_STDERR.replace("beta", "alpha"),
        returncode=1,
    )
    register_host(fp, fake_nix, project, "beta", "beta")
    result = run_cli(["deploy", "-f", str(project)])
    assert result.exit_code == 1
    assert "alpha: build FAILED" in result.output
    assert "beta: activate ok" in result.output
    assert "1 host(s) deployed (beta); 1 failed (alpha)" in result.output


def test_cli_json_and_dry_run(fp: FakeProcess, fake_nix: Path, project: Path) -> None:
    register_host(fp, fake_nix, project, "beta", "beta")
    result = run_cli(["deploy", "-f", str(project), "beta", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ok"] and [s["step"] for s in data["hosts"][0]["steps"]] == [
        "build",
        "copy",
        "activate",
    ]
    dry = run_cli(["deploy", "-f", str(project), "--dry-run"])
    assert (
        dry.exit_code == 0
        and "nixos-rebuild switch" in dry.output
        and "# beta → beta" in dry.output
    )


def test_cli_unknown_host(project: Path, fake_nix: Path) -> None:
    result = run_cli(["deploy", "-f", str(project), "delta"])
    assert result.exit_code == 1 and "no host(s) delta" in result.output


def test_a_target_host_that_looks_like_an_option_runs_nothing(
    fp: FakeProcess, fake_nix: Path, project: Path, tmp_path: Path
) -> None:
    # Build and copy are faked; ssh (the activation) is the real one, which
    # would run the ProxyCommand if the target reached it as an option.
    marker = tmp_path / "proxy-command-ran"
    flags = [str(fake_nix), *FLAKE_FEATURE_FLAGS]
    fp.register([*flags, "build", fp.any()], stdout=toplevel_json("beta"))
    fp.register([*flags, "copy", fp.any()])
    fp.allow_unregistered(True)
    flake = Project(project).check()[0]
    evil = flake.evolve(
        hosts=[
            h.evolve(target_host=f"-oProxyCommand=touch {marker}") if h.name == "beta" else h
            for h in flake.hosts
        ]
    )
    fleet = Fleet(evil, project, nix=NixRunner(binary=str(fake_nix)))
    refused: list[ValidationError] = []
    for attempt in (
        lambda: fleet.deploy(["beta"], DeployOptions(activate_with="ssh")),
        lambda: fleet.plan(["beta"]),
    ):
        try:
            attempt()
        except ValidationError as err:
            refused.append(err)
    assert not marker.exists(), "ssh ran the targetHost's ProxyCommand"
    assert len(refused) == 2
    assert 'hosts["beta"].targetHost' in str(refused[0]) and "starts with '-'" in str(refused[0])
    # and the data file is refused before anything runs
    Project(project).save(evil)
    result = run_cli(["deploy", "-f", str(project), "beta"])
    assert result.exit_code == 1 and 'hosts["beta"].targetHost' in result.output


def test_a_store_builder_that_looks_like_an_option_is_refused(
    project: Path, fake_nix: Path
) -> None:
    fleet = Fleet.load(project, nix=NixRunner(binary=str(fake_nix)))
    evil = DeployOptions(store="ssh-ng://-oProxyCommand=true")
    with pytest.raises(ValidationError, match="--store"):
        fleet.plan(["beta"], evil)
    with pytest.raises(ValidationError, match="starts with '-'"):
        fleet.deploy(["beta"], evil)
    assert "--build-host builder" in fleet.plan(["beta"], DeployOptions(store="ssh-ng://builder"))
