"""Running a real guest: qemu (TCG) boots the tiny test guest (tests/guestimage.py).

The stand-in qemu runner starts a real ``qemu-system-x86_64`` when the
stand-in inputs carry the guest image; nixgen then builds, starts, watches
and stops it like any guest.  Skipped when nix, qemu or the guest image
(Debian's kernel and busybox packages) are not to be had.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from nixgen import Flake, MicroVM, Nix, Share, write_project
from nixgen.nixcmd import NixRunner
from nixgen.process import proc
from nixgen.project import Project
from nixgen.runtime import GuestRuntime, GuestState, Runtime
from tests.clirunner import run_cli
from tests.fakerunner import favoured, kill_leftovers, leftovers
from tests.guestimage import BOOT_MARKER, REBOOT_MARKER, SHARE_MARKER, guest_image
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


@pytest.fixture
def favoured_cpu() -> Iterator[None]:
    """The tests that claim a time are timed apart from the machine's other load
    (see :func:`tests.fakerunner.favoured`)."""
    with favoured():
        yield


def project(folder: Path, shares: Sequence[Share] = (), **mems: int) -> Path:
    flake = Flake(
        guests=[MicroVM(name=name, mem=mem, shares=list(shares)) for name, mem in mems.items()]
    )
    write_project(flake, folder)
    Project(folder).save(flake)
    return folder


def overrides(inputs: dict[str, str]) -> list[str]:
    return [arg for name, url in inputs.items() for arg in ("--override-input", name, url)]


def invoke(*args: str) -> Any:
    return run_cli(list(args))


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


@pytest.mark.usefixtures("favoured_cpu")
@pytest.mark.parametrize(
    ("when", "method"),
    [("booting", "quit"), ("booted", "microvm-shutdown"), ("paused", "quit")],
)
def test_stop_takes_under_3_s_at_any_point(
    tmp_path: Path, inputs: dict[str, str], when: str, method: str
) -> None:
    """Booting (Ctrl-Alt-Del would be lost), booted, or paused (deaf to it)."""
    folder = project(tmp_path / "p", boot=256)
    guest = Runtime(folder, nix=NixRunner(override_inputs=inputs)).guest("boot")
    if when == "booting":
        guest.start()
        deadline = time.monotonic() + 30
        while not guest.console_tail():  # the kernel is printing: well into its boot
            assert time.monotonic() < deadline
            time.sleep(0.05)
    else:
        guest.start(wait=True, timeout=BOOT_TIMEOUT)
        if when == "paused":
            with guest.qmp() as qmp:
                qmp.execute("stop")
    result = guest.stop(timeout=30)
    assert (result.method, result.phase) == (method, when), result
    assert result.seconds < 3.0, result
    assert guest.status().state is GuestState.STOPPED


def wait_for_console(guest: GuestRuntime, text: str, timeout: float = 60.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        lines = guest.console_tail(200)
        if any(text in line for line in lines):
            return lines
        assert time.monotonic() < deadline, f"no {text!r} on the console:\n" + "\n".join(lines)
        time.sleep(0.1)


def test_a_virtiofs_share_is_served_and_mounted(tmp_path: Path, inputs: dict[str, str]) -> None:
    """virtiofsd (the runner's bin/virtiofsd-run) starts before qemu, the guest
    mounts the host folder and prints a file from it; virtiofsd ends with the guest."""
    data = tmp_path / "data"
    data.mkdir()
    token = f"hello-from-the-host-{os.getpid()}"
    (data / "nixgen-hello").write_text(token + "\n")
    share = Share.virtiofs("data", str(data), "/mnt/data")
    folder = project(tmp_path / "p", [share], fs=256)
    guest = Runtime(folder, nix=NixRunner(override_inputs=inputs)).guest("fs")
    started = guest.start(wait=True, timeout=BOOT_TIMEOUT)
    daemons = [
        p
        for p in proc.descendants(guest.state.read_run().supervisor or 0)  # type: ignore[union-attr]
        if any("virtiofsd" in word for word in proc.cmdline(p)[:2])
    ]
    assert daemons, "no virtiofsd runs beside the guest"
    lines = wait_for_console(guest, SHARE_MARKER)
    assert any(f"{SHARE_MARKER} data {token}" in line for line in lines), lines
    assert (guest.state.path / "fs-virtiofs-data.sock").exists()
    result = guest.stop(timeout=30)
    assert result.method == "microvm-shutdown", result
    assert not any(proc.alive(p) for p in daemons)
    assert not proc.alive(started.pid) and not leftovers(tmp_path)


@pytest.mark.usefixtures("favoured_cpu")
def test_a_virtiofsd_that_dies_under_a_running_guest(
    tmp_path: Path, inputs: dict[str, str]
) -> None:
    """The supervisor notices at once; status says the share is dead; QEMU runs
    on (it does not reconnect); stop does not wait for a shutdown that would
    hang on the share."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "nixgen-hello").write_text("hello\n")
    share = Share.virtiofs("data", str(data), "/mnt/data")
    folder = project(tmp_path / "p", [share], lost=256)
    guest = Runtime(folder, nix=NixRunner(override_inputs=inputs)).guest("lost")
    started = guest.start(wait=True, timeout=BOOT_TIMEOUT)
    wait_for_console(guest, SHARE_MARKER)
    [daemon] = guest.status(live=False).daemons
    assert daemon.alive()
    os.kill(daemon.pid or 0, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while not (status := guest.status(live=False)).daemons[0].died:
        assert time.monotonic() < deadline, status
        time.sleep(0.1)
    assert status.running and proc.alive(started.pid)
    assert any("virtiofsd was killed by signal 9" in note for note in status.notes), status
    assert any("shares do not work" in note for note in status.notes), status
    # what virtiofsd-run started went with it
    assert not [p for p in leftovers(tmp_path) if "/virtiofsd" in " ".join(proc.cmdline(p)[:1])]
    result = guest.stop(timeout=30)
    assert result.phase == "share-lost" and result.method == "quit", result
    assert result.seconds < 3.0, result
    assert not proc.alive(started.pid) and not leftovers(tmp_path)


@pytest.mark.usefixtures("favoured_cpu")
def test_a_guest_without_a_control_socket(tmp_path: Path, inputs: dict[str, str]) -> None:
    """socket = null (upstream: nullOr str): no QMP; it boots, and stops by SIGTERM."""
    folder = tmp_path / "p"
    flake = Flake(guests=[MicroVM(name="nosock", mem=256, socket=Nix("null"))])
    write_project(flake, folder)
    Project(folder).save(flake)
    assert "socket = null;" in (folder / "vms" / "nosock.nix").read_text()
    guest = Runtime(folder, nix=NixRunner(override_inputs=inputs)).guest("nosock")
    pid = guest.start(wait=True, timeout=BOOT_TIMEOUT).pid
    assert "-qmp" not in proc.cmdline(pid)
    assert guest.control_socket() is None
    result = guest.stop(timeout=30)
    assert result.method == "SIGTERM" and result.seconds < 3.0, result
    assert "no control socket" in result.output


def test_console_attach_types_into_the_real_guest_and_detaches(
    tmp_path: Path, inputs: dict[str, str]
) -> None:
    """Through a terminal (a pty): the guest's shell runs what is typed; Ctrl-]
    detaches and the guest keeps running; a second attach works the same."""
    folder = project(tmp_path / "p", tty=256)
    guest = Runtime(folder, nix=NixRunner(override_inputs=inputs)).guest("tty")
    pid = guest.start(wait=True, timeout=BOOT_TIMEOUT).pid
    wait_for_console(guest, "tty#")  # its shell's prompt
    command = [sys.executable, "-m", "nixgen", "console", "tty", "--attach", "-f", str(folder)]
    for a, b in ((6, 7), (20, 22)):
        main, sub = os.openpty()
        attached = subprocess.Popen(command, stdin=sub, stdout=sub, stderr=sub)
        os.close(sub)
        try:
            seen = read_pty(main, b"Ctrl-] detaches")
            os.write(main, f"echo answer-$(({a}*{b}))\r".encode())  # Enter is CR on a terminal
            seen = read_pty(main, f"answer-{a * b}\r\n".encode())
            os.write(main, b"\x1d")
            seen = read_pty(main, b"keeps running")
            assert b"(detached; tty keeps running)" in seen
            assert attached.wait(timeout=10) == 0
        finally:
            attached.kill()
            os.close(main)
        assert guest.pid == pid and guest.status().run_state == "running"
    assert guest.stop(timeout=30).method == "microvm-shutdown"


def read_pty(fd: int, text: bytes, timeout: float = 30.0) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while text not in seen:
        assert time.monotonic() < deadline, seen
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                seen += os.read(fd, 4096)
            except OSError:
                break
    return seen


def test_a_computed_guest_of_a_plain_flake_runs_lists_and_stops(
    tmp_path: Path, inputs: dict[str, str]
) -> None:
    """No nixgen.toml: the guest is one of `lib.genAttrs names mkWorker`
    (tests/computed/genattrs); list learns it through evaluation."""
    import shutil

    folder = tmp_path / "genattrs"
    source = Path(__file__).parent / "computed" / "genattrs"
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns("expect.toml"))
    nix = ["-f", str(folder), *overrides(inputs)]
    result = invoke("run", "worker2", "--wait", "--timeout", str(BOOT_TIMEOUT), *nix)
    assert result.exit_code == 0, result.output
    assert "worker2 booted in" in result.output
    try:
        result = invoke("list", "--json", *nix)
        assert result.exit_code == 0, result.output
        listed = {g["name"]: g for g in json.loads(result.stdout)}
        assert sorted(listed) == ["worker1", "worker2"]
        running = listed["worker2"]
        assert running["state"] == "running" and running["freshness"] == "current"
        assert (running["hypervisor"], running["vcpu"], running["mem"]) == ("qemu", 2, 512)
        assert listed["worker1"]["state"] == "stopped"
        assert listed["worker1"]["freshness"] == "not built"
        result = invoke("status", "worker2", *nix)
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith("worker2: running")
        assert "QMP: running" in result.stdout
    finally:
        result = invoke("stop", "worker2", "-f", str(folder), "--timeout", "30")
    assert result.exit_code == 0, result.output
    assert "stopped worker2 with microvm-shutdown" in result.output
    assert not leftovers(tmp_path)
