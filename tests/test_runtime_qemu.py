"""Running a real guest: qemu (TCG) boots the tiny test guest (tests/guestimage.py).

The stand-in qemu runner starts a real ``qemu-system-x86_64`` when the
stand-in inputs carry the guest image; nixgen then builds, starts, watches
and stops it like any guest.  Skipped when nix, qemu or the guest image
(Debian's kernel and busybox packages) are not to be had.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from nixgen import Flake, MicroVM, write_project
from nixgen.cli import cli
from nixgen.nixcmd import NixRunner
from nixgen.process import proc
from nixgen.project import Project
from nixgen.runtime import GuestState, Runtime
from tests.fakerunner import kill_leftovers, leftovers
from tests.guestimage import BOOT_MARKER, REBOOT_MARKER, guest_image
from tests.standin import (
    NIX_SKIP_REASON,
    nix_available,
    offline_nix_env,
    prepare_inputs,
)

pytestmark = [
    pytest.mark.nix,
    pytest.mark.skipif(not nix_available(), reason=NIX_SKIP_REASON),
]

BOOT_TIMEOUT = 90.0


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    image = guest_image()  # skips when qemu or the image can't be had
    base = tmp_path_factory.mktemp("qemu-inputs")
    os.environ.update(offline_nix_env(base))
    found = prepare_inputs(base / "inputs", guest=image)
    return {name: f"path:{path}" for name, path in found.items()}


@pytest.fixture(autouse=True)
def clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    yield
    found = kill_leftovers(tmp_path)
    assert not found, f"processes left running: {found}"


def project(folder: Path, **mems: int) -> Path:
    flake = Flake(guests=[MicroVM(name=name, mem=mem) for name, mem in mems.items()])
    write_project(flake, folder)
    Project(folder).save(flake)
    return folder


def overrides(inputs: dict[str, str]) -> list[str]:
    return [arg for name, url in inputs.items() for arg in ("--override-input", name, url)]


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_run_wait_status_and_clean_stop(tmp_path: Path, inputs: dict[str, str]) -> None:
    folder = project(tmp_path / "p", boot=384)
    result = invoke(
        "run",
        "boot",
        "-f",
        str(folder),
        "--wait",
        "--timeout",
        str(BOOT_TIMEOUT),
        *overrides(inputs),
    )
    assert result.exit_code == 0, result.output
    assert "boot booted in" in result.output

    guest = Runtime(folder).guest("boot")
    status = guest.status()
    assert status.state is GuestState.RUNNING
    assert status.run_state == "running"  # over QMP
    assert (status.hypervisor, status.mem) == ("qemu", 384)
    assert status.vcpu == 1
    assert any(BOOT_MARKER in line for line in guest.console_tail())

    result = invoke("stop", "boot", "-f", str(folder), "--timeout", "30")
    assert result.exit_code == 0, result.output
    assert "stopped boot with microvm-shutdown" in result.output
    assert "(exit code 0)" in result.output
    assert any(REBOOT_MARKER in line for line in guest.console_tail())  # Ctrl-Alt-Del got there
    assert guest.status().state is GuestState.STOPPED
    assert not leftovers(tmp_path)


def test_kill_9_crashes_and_the_guest_boots_again(tmp_path: Path, inputs: dict[str, str]) -> None:
    folder = project(tmp_path / "p", boot=256)
    guest = Runtime(folder, nix=NixRunner(override_inputs=inputs)).guest("boot")
    pid = guest.start(wait=True, timeout=BOOT_TIMEOUT).pid
    assert "qemu-system-x86_64" in proc.cmdline(pid)[0]  # microvm-run execs qemu
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while guest.status(live=False).state is GuestState.RUNNING:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    status = guest.status()
    assert status.state is GuestState.CRASHED
    assert status.exit is not None and status.exit.signal == signal.SIGKILL
    assert any(BOOT_MARKER in line for line in status.console_tail)
    assert (guest.state.path / "boot.sock").exists()  # what a killed qemu leaves
    again = guest.start(build=False, wait=True, timeout=BOOT_TIMEOUT)
    assert again.pid != pid
    assert guest.status().run_state == "running"
    assert guest.stop(timeout=30).method == "microvm-shutdown"


def test_update_restart_restarts_only_the_changed_guest(
    tmp_path: Path, inputs: dict[str, str]
) -> None:
    folder = project(tmp_path / "p", a=256, b=256)
    rt = Runtime(folder, nix=NixRunner(override_inputs=inputs))
    a, b = rt.guest("a"), rt.guest("b")
    pid_a = a.start(wait=True, timeout=BOOT_TIMEOUT).pid
    pid_b = b.start(wait=True, timeout=BOOT_TIMEOUT).pid
    try:
        project(folder, a=256, b=320)
        assert {s.name: s.freshness for s in rt.status()} == {"a": "current", "b": "outdated"}
        results = {r.name: r for r in rt.update(restart=True, wait=True)}
        assert not results["a"].changed and not results["a"].restarted
        assert results["b"].changed and results["b"].restarted
        assert a.pid == pid_a and b.pid not in (None, pid_b)
        [status] = rt.status(["b"])  # evaluates: the build cache knows the flake
        assert status.run_state == "running" and status.mem == 320
        assert status.freshness == "current"
    finally:
        a.stop(timeout=30)
        b.stop(timeout=30)
