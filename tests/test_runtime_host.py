"""What nixgen sets up on the host around a guest: virtiofsd and tap devices.

virtiofsd: a stand-in ``virtiofsd`` on PATH (a small Python program that binds
its socket and records its arguments) serves runner folders without
``bin/virtiofsd-run``; the runner's own ``virtiofsd-run`` is used where it has
one.  tests/test_runtime_qemu.py mounts a real share in a real guest.

Tap devices: real ``ip`` commands in a fresh network namespace (``unshare
-n``, as root), never on the host's own interfaces; and a refusal as an
unprivileged user (``setpriv``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from nixgen.errors import StartError
from nixgen.runtime import Guest, Runtime, proc
from nixgen.runtime.helpers import has_net_admin
from tests.fakerunner import BOOTS, kill_leftovers, leftovers, make_runner

REPO = Path(__file__).resolve().parent.parent

FAKE_VIRTIOFSD = f"""#!{sys.executable}
import os, socket, sys, time
args = sys.argv[1:]
if "--help" in args:
    print("usage: virtiofsd [options]  -o source=DIR")
    sys.exit(0)
with open("virtiofsd.args", "a") as log:
    print(" ".join(args), file=log)
if os.environ.get("FAKE_VIRTIOFSD_FAIL"):
    print("virtiofsd: cannot open the shared folder", file=sys.stderr)
    sys.exit(1)
path = next(a.split("=", 1)[1] for a in args if a.startswith("--socket-path="))
server = socket.socket(socket.AF_UNIX)
server.bind(path)
server.listen(1)
while True:
    time.sleep(1)
"""

#: microvm-run that says whether its virtiofs socket was there when it started.
CHECKS_SOCKET = "[ -S data.sock ] && echo socket-was-ready\n" + BOOTS


@pytest.fixture(autouse=True)
def clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)
    yield
    found = kill_leftovers(tmp_path)
    assert not found, f"processes left running: {found}"


@pytest.fixture
def fake_virtiofsd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "fakebin"
    folder.mkdir()
    program = folder / "virtiofsd"
    program.write_text(FAKE_VIRTIOFSD)
    program.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}:{os.environ['PATH']}")
    return program


def virtiofs_runner(tmp_path: Path, source: Path, *, script: str | None = None) -> Path:
    runner = make_runner(tmp_path / "runner", CHECKS_SOCKET)
    tag = runner / "share" / "microvm" / "virtiofs" / "data"
    tag.mkdir(parents=True)
    (tag / "socket").write_text("data.sock\n")
    (tag / "source").write_text(f"{source}\n")
    if script is not None:
        (runner / "bin" / "virtiofsd-run").write_text("#!/bin/sh\n" + script)
        (runner / "bin" / "virtiofsd-run").chmod(0o755)
    return runner


def guest(tmp_path: Path) -> Guest:
    return Runtime(None, state_root=tmp_path / "vms").guest("web")


def test_virtiofsd_per_share_starts_before_the_runner_and_ends_after(
    tmp_path: Path, fake_virtiofsd: Path
) -> None:
    source = tmp_path / "shared"
    source.mkdir()
    web = guest(tmp_path)
    web.start(runner=virtiofs_runner(tmp_path, source), wait=True)
    assert "socket-was-ready" in web.console_tail()
    args = (web.state.path / "virtiofsd.args").read_text().split()
    assert args == ["--socket-path=data.sock", "-o", f"source={source}"]  # C virtiofsd syntax
    [daemon] = [p for p in leftovers(tmp_path) if str(fake_virtiofsd) in proc.cmdline(p)[:2]]
    web.stop(timeout=10)
    assert not proc.alive(daemon)
    assert not (web.state.path / "data.sock").exists()


def test_the_runners_own_virtiofsd_run_is_preferred(tmp_path: Path, fake_virtiofsd: Path) -> None:
    source = tmp_path / "shared"
    source.mkdir()
    script = f'echo "$@" > own-script-ran\nexec virtiofsd --socket-path=data.sock --shared-dir={source}\n'
    web = guest(tmp_path)
    web.start(runner=virtiofs_runner(tmp_path, source, script=script), wait=True)
    assert (web.state.path / "own-script-ran").exists()
    assert "socket-was-ready" in web.console_tail()
    web.stop(timeout=10)


def test_a_missing_share_folder_is_refused_before_anything_starts(
    tmp_path: Path, fake_virtiofsd: Path
) -> None:
    web = guest(tmp_path)
    with pytest.raises(StartError, match=r"virtiofs share 'data'.*is not a folder") as caught:
        web.start(runner=virtiofs_runner(tmp_path, tmp_path / "nowhere"))
    assert "mkdir -p" in str(caught.value)
    assert not (web.state.path / "virtiofsd.args").exists()
    assert not web.is_running()


def test_a_virtiofsd_that_fails_fails_the_start_with_its_log(
    tmp_path: Path, fake_virtiofsd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "shared"
    source.mkdir()
    monkeypatch.setenv("FAKE_VIRTIOFSD_FAIL", "1")
    web = guest(tmp_path)
    with pytest.raises(StartError, match="virtiofsd-data failed with exit code 1") as caught:
        web.start(runner=virtiofs_runner(tmp_path, source))
    assert "cannot open the shared folder" in str(caught.value)
    assert "socket-was-ready" not in web.console_tail()  # the runner never started
    assert not web.is_running()


# ---------------------------------------------------------------------- tap devices

needs_root_and_netns = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None,
    reason="needs root, unshare (util-linux) and ip (iproute2) for a network namespace",
)

IN_NETNS = textwrap.dedent(
    """
    import subprocess, sys
    from pathlib import Path
    from nixgen.runtime import Runtime
    from tests.fakerunner import BOOTS, make_runner

    tmp = Path(sys.argv[1])
    def links():
        lines = Path("/proc/self/net/dev").read_text().splitlines()[2:]
        return sorted(line.split(":", 1)[0].strip() for line in lines)
    def show(name):
        return subprocess.run(["ip", "-o", "link", "show", name], capture_output=True,
                              text=True, check=True).stdout
    subprocess.run(["ip", "link", "add", "br0", "type", "bridge"], check=True)
    runner = make_runner(tmp / "runner", BOOTS)
    (runner / "share/microvm/tap-interfaces").write_text("vm-a vm-b\\n")
    (runner / "share/microvm/tap-flags").write_text("vnet_hdr\\n")
    guest = Runtime(None, state_root=tmp / "vms").guest("web")
    guest.tap_bridges = lambda: {"vm-a": "br0"}
    guest.start(runner=runner, wait=True)
    assert {"vm-a", "vm-b"} <= set(links()), links()
    assert "master br0" in show("vm-a"), show("vm-a")
    assert "master" not in show("vm-b") and ",UP" in show("vm-b"), show("vm-b")
    guest.stop(timeout=10)
    assert "vm-a" not in links() and "vm-b" not in links(), links()
    # one that exists already (made by an administrator) is used and left in place
    subprocess.run(["ip", "tuntap", "add", "name", "vm-a", "mode", "tap"], check=True)
    subprocess.run(["ip", "tuntap", "add", "name", "vm-b", "mode", "tap"], check=True)
    guest.start(runner=runner, wait=True)
    guest.stop(timeout=10)
    assert {"vm-a", "vm-b"} <= set(links()), links()
    print("tap-ok")
    """
)


@needs_root_and_netns
def test_tap_devices_are_made_on_the_bridge_and_removed(tmp_path: Path) -> None:
    done = subprocess.run(
        ["unshare", "-n", sys.executable, "-c", IN_NETNS, str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and "tap-ok" in done.stdout, done.stdout + done.stderr


REFUSED = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from nixgen.errors import StartError
    from nixgen.runtime import Runtime

    runner, state = Path(sys.argv[1]), Path(sys.argv[2])
    guest = Runtime(None, state_root=state).guest("web")
    try:
        guest.start(runner=runner)
    except StartError as err:
        print(err)
        sys.exit(0 if not guest.is_running() else 2)
    sys.exit(1)
    """
)


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="needs root and setpriv (util-linux) to act as an unprivileged user",
)
def test_without_the_rights_the_start_is_refused_and_says_what_is_missing(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    assert has_net_admin()
    base = Path(os.path.realpath("/tmp")) / f"nixgen-tap-{os.getpid()}"
    try:
        runner = make_runner(base / "runner", BOOTS)
        (runner / "share/microvm/tap-interfaces").write_text("vm-nixgen-t\n")
        (base / "vms").mkdir()
        for path in (base, base / "vms"):
            path.chmod(0o777)
        done = subprocess.run(
            [
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
                sys.executable,
                "-c",
                REFUSED,
                str(runner),
                str(base / "vms"),
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "vm-nixgen-t do not exist" in done.stdout
        assert "root or CAP_NET_ADMIN (nixgen runs as uid 65534" in done.stdout
        assert "ip tuntap add name vm-nixgen-t" in done.stdout  # how to do it by hand
        assert not (base / "vms" / "web" / "pid").exists()
    finally:
        kill_leftovers(base)
        shutil.rmtree(base, ignore_errors=True)
