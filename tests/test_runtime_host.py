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
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from nixgen import Flake, Host, HostVM, MicroVM, Network
from nixgen.process import proc
from nixgen.project import Project
from nixgen.runtime import GuestRuntime, Runtime, helpers
from nixgen.runtime.errors import StartError, UnsupportedError
from nixgen.runtime.helpers import _socket_in_use, find_virtiofsd, has_net_admin
from tests.fakerunner import BOOTS, kill_leftovers, leftovers, make_runner

REPO = Path(__file__).resolve().parent.parent
T = TypeVar("T")

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
fd = next((int(a.split("=", 1)[1]) for a in args if a.startswith("--fd=")), None)
if fd is not None:  # a socket the supervisor listens on
    server = socket.socket(fileno=fd)
else:
    server = socket.socket(socket.AF_UNIX)
    server.bind(next(a.split("=", 1)[1] for a in args if a.startswith("--socket-path=")))
    server.listen(1)
while True:
    connection, _ = server.accept()
    connection.sendall(f"served by {{os.getpid()}}\\n".encode())
    connection.close()
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


def guest(tmp_path: Path) -> GuestRuntime:
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
    # C virtiofsd syntax; the socket in the state folder, by its absolute path
    assert args == [f"--socket-path={web.state.path}/data.sock", "-o", f"source={source}"]
    [daemon] = [p for p in leftovers(tmp_path) if str(fake_virtiofsd) in proc.cmdline(p)[:2]]
    web.stop(timeout=10)
    assert not proc.alive(daemon)
    assert not (web.state.path / "data.sock").exists()


def test_virtiofsd_is_never_orphaned(tmp_path: Path, fake_virtiofsd: Path) -> None:
    """Even when the supervisor itself is killed, virtiofsd does not live on."""
    source = tmp_path / "shared"
    source.mkdir()
    web = guest(tmp_path)
    web.start(runner=virtiofs_runner(tmp_path, source), wait=True)
    record = web.state.read_run()
    assert record is not None and record.supervisor is not None
    [daemon] = [p for p in leftovers(tmp_path) if str(fake_virtiofsd) in proc.cmdline(p)[:2]]
    os.kill(record.supervisor, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while proc.alive(daemon):
        assert time.monotonic() < deadline, "virtiofsd outlived its supervisor"
        time.sleep(0.02)
    web.stop(timeout=5)
    assert not leftovers(tmp_path)


def test_a_virtiofsd_that_dies_is_noticed_reported_and_started_again(
    tmp_path: Path, fake_virtiofsd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(helpers, "DAEMON_RESTART_DELAY", 1.0)
    source = tmp_path / "shared"
    source.mkdir()
    web = guest(tmp_path)
    web.start(runner=virtiofs_runner(tmp_path, source), wait=True)
    [before] = web.status(live=False).daemons
    assert before.name == "virtiofsd-data" and before.alive() and not before.died
    assert not web.status(live=False).notes

    os.kill(before.pid or 0, signal.SIGKILL)
    status = wait_until(lambda: web.status(live=False), lambda s: s.daemons[0].died)
    [down] = status.daemons
    assert status.running and down.last_exit == "was killed by signal 9"
    assert any("virtiofsd-data was killed by signal 9" in note for note in status.notes)
    assert any("nixgen stop web && nixgen run web" in note for note in status.notes)
    said = f"virtiofsd-data (pid {before.pid}) was killed by signal 9 while the guest ran"
    assert said in (web.state.path / "virtiofsd-data.log").read_text()
    assert said in web.state.console.read_text()

    status = wait_until(lambda: web.status(live=False), lambda s: s.daemons[0].restarts == 1)
    [again] = status.daemons
    assert again.alive() and again.pid != before.pid and again.state == "running"
    # listening again, on a fresh socket
    wait_until(lambda: _socket_in_use(web.state.path / "data.sock"), bool)
    assert "was started again (once)" in " ".join(status.notes)
    assert status.to_json()["daemons"][0]["restarts"] == 1
    web.stop(timeout=10)
    assert not proc.alive(again.pid or 0)
    assert not web.status(live=False).daemons  # a stopped guest has none


def test_a_socket_path_too_long_for_an_address_is_bound_by_the_supervisor(
    tmp_path: Path, fake_virtiofsd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A unix socket address holds 107 bytes: in a deep state folder the
    supervisor binds the share's socket (by its relative name) and passes it
    to virtiofsd as --fd; a virtiofsd started again serves the same socket."""
    monkeypatch.setattr(helpers, "DAEMON_RESTART_DELAY", 0.5)
    source = tmp_path / "shared"
    source.mkdir()
    web = Runtime(None, state_root=tmp_path / ("deep" * 20) / "vms").guest("web")
    assert len(str(web.state.path / "data.sock")) > helpers.SOCKET_PATH_MAX
    web.start(runner=virtiofs_runner(tmp_path, source), wait=True)
    assert "socket-was-ready" in web.console_tail()
    record = web.state.path / "virtiofsd.args"
    wait_until(record.exists, bool)  # the start does not wait for a daemon with --fd
    [args] = wait_until(lambda: record.read_text().splitlines(), bool)
    assert args.startswith("-o source=") and "--fd=" in args and "--socket-path" not in args
    [first] = web.status(live=False).daemons
    assert ask(web.state.path, "data.sock") == f"served by {first.pid}"
    os.kill(first.pid or 0, signal.SIGKILL)
    status = wait_until(lambda: web.status(live=False), lambda s: s.daemons[0].restarts == 1)
    again = status.daemons[0].pid
    assert again != first.pid
    assert ask(web.state.path, "data.sock") == f"served by {again}"
    web.stop(timeout=10)
    assert not proc.alive(again or 0) and not (web.state.path / "data.sock").exists()


def ask(folder: Path, name: str) -> str:
    """Connect to the unix socket ``name`` in ``folder`` (by its relative name) and read a line."""
    here = Path.cwd()
    os.chdir(folder)
    try:
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(10)
            client.connect(name)
            return client.makefile().readline().strip()
    finally:
        os.chdir(here)


def wait_until(get: Callable[[], T], done: Callable[[T], bool], timeout: float = 15.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = get()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"not reached within {timeout} s: {value}"
        time.sleep(0.05)


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


needs_real_virtiofsd = pytest.mark.skipif(
    os.geteuid() != 0 or find_virtiofsd() is None,
    reason="needs root and virtiofsd (apt-get install qemu-system-common for "
    "/usr/lib/qemu/virtiofsd, or virtiofsd)",
)


@needs_real_virtiofsd
def test_two_projects_run_guests_of_one_name_and_share_tag_side_by_side(tmp_path: Path) -> None:
    """QEMU's C virtiofsd locks a pid file named after its socket path: with the
    runner's relative socket name two projects' ``web`` guests would collide."""
    source = tmp_path / "shared"
    source.mkdir()
    runner = virtiofs_runner(tmp_path, source)  # no bin/virtiofsd-run: nixgen starts virtiofsd
    guests = [Runtime(None, state_root=tmp_path / p / "vms").guest("web") for p in ("a", "b")]
    for each in guests:
        each.start(runner=runner, wait=True)
    for each in guests:
        assert each.is_running()
        assert "socket-was-ready" in each.console_tail()
        assert _socket_in_use(each.state.path / "data.sock"), each.console_tail()
    for each in guests:
        each.stop(timeout=10)
        assert not (each.state.path / "data.sock").exists()


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


#: A parent link for macvtap interfaces: a dummy where the kernel has it, else a veth.
MACVTAP_NETNS_SETUP = """
import subprocess
from pathlib import Path
from tests.fakerunner import BOOTS, make_runner
# the runner finds /dev/tap<ifindex> in /sys/class/net, as upstream's does:
# sysfs shows the interfaces of the namespace that mounts it
subprocess.run(["mount", "-t", "sysfs", "sysfs", "/sys"], check=True)
if subprocess.run(["ip", "link", "add", "eth9", "type", "dummy"]).returncode != 0:
    subprocess.run(["ip", "link", "add", "eth9", "type", "veth", "peer", "name", "eth9p"], check=True)
subprocess.run(["ip", "link", "set", "eth9", "up"], check=True)
def show(name):
    return subprocess.run(["ip", "-d", "-o", "link", "show", name], capture_output=True,
                          text=True).stdout
def macvtap_runner(folder, line):
    # opens the interface's tap device as upstream's qemu runner does (fd 3)
    opens = 'exec 3<>"/dev/tap$(cat /sys/class/net/vm-mv/ifindex)" && echo macvtap-open\\n'
    runner = make_runner(folder, opens + BOOTS)
    (runner / "share/microvm/macvtap-interfaces").write_text(line + "\\n")
    return runner
"""

IN_NETNS_MACVTAP = MACVTAP_NETNS_SETUP + textwrap.dedent(
    """
    import sys
    from nixgen.runtime.errors import StartError
    from nixgen.runtime import Runtime

    tmp = Path(sys.argv[1])
    runner = macvtap_runner(tmp / "runner", "vm-mv 02:00:00:00:00:0a eth9 bridge")
    guest = Runtime(None, state_root=tmp / "vms").guest("web")
    guest.start(runner=runner, wait=True)
    assert "macvtap-open" in guest.console_tail(), guest.console_tail()
    link = show("vm-mv")
    assert "vm-mv@eth9" in link and "macvtap mode bridge" in link, link
    assert "02:00:00:00:00:0a" in link and "ALLMULTI" in link and ",UP" in link, link
    guest.stop(timeout=10)
    assert not show("vm-mv"), show("vm-mv")  # removed with the guest
    # one that exists already (made by an administrator) is used and left in place
    subprocess.run(["ip", "link", "add", "link", "eth9", "name", "vm-mv", "type", "macvtap"],
                   check=True)
    guest.start(runner=runner, wait=True)
    assert "macvtap-open" in guest.console_tail(), guest.console_tail()
    guest.stop(timeout=10)
    assert show("vm-mv")
    subprocess.run(["ip", "link", "delete", "vm-mv"], check=True)
    # a parent link that does not exist: refused before anything starts
    runner = macvtap_runner(tmp / "runner2", "vm-mv 02:00:00:00:00:0a eth7 bridge")
    try:
        guest.start(runner=runner)
    except StartError as err:
        assert "the link 'eth7' that macvtap vm-mv sits on (it does not exist)" in str(err), err
        assert not guest.is_running() and not show("vm-mv")
    else:
        raise AssertionError("started without the parent link")
    print("macvtap-ok")
    """
)


@needs_root_and_netns
def test_macvtap_interfaces_are_made_and_removed(tmp_path: Path) -> None:
    done = subprocess.run(
        ["unshare", "-n", "-m", sys.executable, "-c", IN_NETNS_MACVTAP, str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and "macvtap-ok" in done.stdout, done.stdout + done.stderr


def user_python() -> list[str]:
    """A Python that another user may run, with nixgen and its packages on its path.

    This one may sit under /root (pyenv), which other users cannot enter: take
    the system's of the same version then."""
    system = Path("/usr/bin/python3")
    if system.exists() and not str(Path(sys.executable).resolve()).startswith("/root/"):
        return [sys.executable]
    version = subprocess.run(
        [str(system), "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if version != str(sys.version_info[:2]):
        pytest.skip(f"{sys.executable} is not for other users, and {system} is another version")
    import site

    path = ":".join([str(REPO), *site.getsitepackages()])
    return ["env", f"PYTHONPATH={path}", str(system)]


AS_USER_MACVTAP = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from nixgen.runtime.errors import StartError
    from nixgen.runtime import Runtime

    runner, state = Path(sys.argv[1]), Path(sys.argv[2])
    guest = Runtime(None, state_root=state).guest("web")
    try:
        guest.start(runner=runner, wait=True)
    except StartError as err:
        print(err)
        sys.exit(3)
    print("\\n".join(guest.console_tail()))
    guest.stop(timeout=10)
    """
)


def _world_readable_folder(prefix: str) -> Path:
    """A new folder under /tmp that another user can enter (pytest's tmp_path is
    root's alone).  A fresh name each time: pids wrap (pid_max may be 32768), and
    a run killed half-way leaves its folder behind."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir=os.path.realpath("/tmp")))


@pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(p) for p in ("unshare", "ip", "setpriv")),
    reason="needs root, unshare and setpriv (util-linux) and ip (iproute2)",
)
@pytest.mark.parametrize("caps", ["+net_admin,+chown", ""])
def test_macvtap_as_a_user_with_or_without_the_capabilities(caps: str) -> None:
    """With CAP_NET_ADMIN and CAP_CHOWN nixgen makes the interface and hands its
    /dev/tap<ifindex> to its user, whose runner opens it; without them the
    start is refused early, saying what is missing and how to do it by hand."""
    base = _world_readable_folder("nixgen-macvtap-")
    try:
        (base / "vms").mkdir(parents=True)
        for path in (base, base / "vms"):
            path.chmod(0o777)
        setup = MACVTAP_NETNS_SETUP + textwrap.dedent(
            f"""
            import os, sys
            macvtap_runner(Path({str(base / "runner")!r}), "vm-mv 02:00:00:00:00:0b eth9 bridge")
            caps = {caps!r}
            user = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
            if caps:
                user += ["--inh-caps=" + caps, "--ambient-caps=" + caps]
            else:
                user += ["--inh-caps=-all"]
            done = subprocess.run(user + {user_python()!r} + ["-c", sys.argv[1],
                                  {str(base / "runner")!r}, {str(base / "vms")!r}])
            print("macvtap left behind:", bool(show("vm-mv")))
            sys.exit(done.returncode)
            """
        )
        done = subprocess.run(
            ["unshare", "-n", "-m", sys.executable, "-c", setup, AS_USER_MACVTAP],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        out = done.stdout + done.stderr
        assert "macvtap left behind: False" in out, out
        if caps:
            assert done.returncode == 0 and "macvtap-open" in done.stdout, out
        else:
            assert done.returncode == 3, out
            assert "vm-mv do not exist and creating them needs root, or CAP_NET_ADMIN" in out
            assert "without CAP_NET_ADMIN and CAP_CHOWN" in out
            assert "ip link add link eth9 name vm-mv address 02:00:00:00:00:0b" in out
    finally:
        kill_leftovers(base)
        shutil.rmtree(base, ignore_errors=True)


REFUSED = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from nixgen.runtime.errors import StartError
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
    base = _world_readable_folder("nixgen-tap-")
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


# ---------------------------------------------------------------------- ssh

needs_sshd = pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(p) for p in ("ssh", "ssh-keygen", "/usr/sbin/sshd")),
    reason="needs root and OpenSSH (apt-get install openssh-client openssh-server)",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_sshd(argv: list[str], log: Path) -> tuple[subprocess.Popen[bytes], int]:
    """sshd (``argv`` without ``-p``) listening on a free loopback port: (process, port).

    A port found free may be taken by another program before sshd binds it:
    then sshd says so and exits, and another port is tried.  Listening is what
    sshd itself reports, not a connection that anything on the port would accept.
    """
    for _ in range(5):
        port = free_port()
        with log.open("wb") as out:
            server = subprocess.Popen([*argv, "-p", str(port)], stderr=out)
        listening = f"Server listening on 127.0.0.1 port {port}."
        deadline = time.monotonic() + 30
        while listening not in log.read_text(errors="replace"):
            if server.poll() is not None:
                break
            assert time.monotonic() < deadline, "sshd did not start: " + log.read_text()
            time.sleep(0.05)
        else:
            return server, port
        server.wait()
        if "Address already in use" not in log.read_text(errors="replace"):
            raise AssertionError("sshd exited: " + log.read_text())
    raise AssertionError("no free port for sshd after 5 tries: " + log.read_text())


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A real sshd on a loopback port standing in for the guest's: (port, client key)."""
    keys = tmp_path / "keys"
    keys.mkdir()
    for name in ("host", "client"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / name)], check=True
        )
    shutil.copy(keys / "client.pub", keys / "authorized_keys")
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation folder
    server, port = start_sshd(
        [
            "/usr/sbin/sshd",
            "-D",
            "-e",
            "-f",
            "/dev/null",
            "-h",
            str(keys / "host"),
            "-o",
            "ListenAddress=127.0.0.1",
            "-o",
            f"AuthorizedKeysFile={keys / 'authorized_keys'}",
            "-o",
            "PidFile=none",
            "-o",
            "UsePAM=no",
            "-o",
            "StrictModes=no",
            "-o",
            "PermitRootLogin=prohibit-password",
        ],
        tmp_path / "sshd.log",
    )
    try:
        yield port, keys / "client"
    finally:
        server.kill()
        server.wait()


BATCH = ("-o", "BatchMode=yes", "-o", "ConnectTimeout=10")


@needs_sshd
def test_ssh_to_a_forwarded_port(tmp_path: Path, sshd: tuple[int, Path]) -> None:
    port, key = sshd
    run = f"# -netdev user,id=net0,hostfwd=tcp:127.0.0.1:{port}-:22\n" + BOOTS
    web = guest(tmp_path)
    web.start(runner=make_runner(tmp_path / "runner", run), wait=True)
    command = web.ssh_command(["echo", "inside-$((6*7))"], options=("-i", str(key), *BATCH))
    assert command.via == f"forwarded port 127.0.0.1:{port}"
    done = subprocess.run(command.argv, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "inside-42"
    web.stop(timeout=5)


def mux(path: Path, port: int) -> threading.Thread:
    """cloud-hypervisor's vsock socket: ``CONNECT 22`` → ``OK …``, then the stream
    (here: to the stand-in sshd)."""
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(1)

    def serve() -> None:
        conn, _ = server.accept()
        server.close()
        request = b""
        while not request.endswith(b"\n"):
            request += conn.recv(1)
        assert request == b"CONNECT 22\n", request
        conn.sendall(b"OK 1073741824\n")
        upstream = socket.create_connection(("127.0.0.1", port))
        sockets = [conn, upstream]
        while True:
            ready, _, _ = select.select(sockets, [], [], 30)
            if not ready:
                return
            for source in ready:
                data = source.recv(65536)
                if not data:
                    conn.close()
                    upstream.close()
                    return
                (upstream if source is conn else conn).sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


@needs_sshd
def test_ssh_over_cloud_hypervisors_vsock_socket(tmp_path: Path, sshd: tuple[int, Path]) -> None:
    """The guest has a vsock CID: ssh goes through nixgen's ProxyCommand, as upstream's microvm -s."""
    port, key = sshd
    runner = make_runner(tmp_path / "runner", BOOTS, hypervisor="cloud-hypervisor")
    (runner / "share" / "microvm" / "vsock-cid").write_text("5\n")
    web = guest(tmp_path)
    web.start(runner=runner, wait=True)
    thread = mux(web.state.path / "notify.vsock", port)
    command = web.ssh_command(["echo", "via-vsock"], options=("-i", str(key), *BATCH))
    assert command.via == f"vsock-mux {web.state.path / 'notify.vsock'}"
    done = subprocess.run(command.argv, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "via-vsock"
    thread.join(timeout=10)
    web.stop(timeout=5)


def test_ssh_over_vsock_uses_the_cid(tmp_path: Path) -> None:
    runner = make_runner(tmp_path / "runner", BOOTS)
    (runner / "share" / "microvm" / "vsock-cid").write_text("42\n")
    web = guest(tmp_path)
    web.start(runner=runner, wait=True)
    state = str(tmp_path / "vms")
    done = subprocess.run(
        [sys.executable, "-m", "nixgen", "ssh", "web", "--state-dir", state, "--print", "uptime"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "nixgen.runtime.sshproxy vsock 42 22" in done.stdout
    assert done.stdout.split()[-3:] == ["root", "vsock/42", "uptime"]
    # the proxy itself, where nothing answers on that CID: a clear error
    proxy = subprocess.run(
        [sys.executable, "-m", "nixgen.runtime.sshproxy", "vsock", "42", "22"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert proxy.returncode == 1 and "cannot reach vsock 42 port 22" in proxy.stderr
    web.stop(timeout=5)


def test_no_way_in_says_what_would_give_one(tmp_path: Path) -> None:
    web = guest(tmp_path)
    web.start(runner=make_runner(tmp_path / "runner", BOOTS), wait=True)
    with pytest.raises(UnsupportedError, match="offers no way in") as caught:
        web.ssh_command()
    assert "microvm.vsock.cid" in str(caught.value) and "--attach" in str(caught.value)
    web.stop(timeout=5)


def test_the_models_network_gives_the_tap_its_bridge_and_ssh_its_address(
    tmp_path: Path,
) -> None:
    """A guest on a bridge network of nixgen.toml: its tap goes on that bridge,
    and `nixgen ssh` reaches its static address."""
    lan = Network.bridged("lan", ["web"], ipv4="10.0.0.0/24", bridge="br-lan")
    flake = Flake(
        guests=[MicroVM(name="web")],
        hosts=[Host(name="vmhost", vms=[HostVM("web")], networks=[lan])],
    )
    project = tmp_path / "p"
    project.mkdir()
    Project(project).save(flake)
    rt = Runtime(project, state_root=tmp_path / "vms")
    [attachment] = rt.attachments("web")
    assert rt.tap_bridges("web") == {attachment.id: "br-lan"}
    web = rt.guest("web")
    web.start(runner=make_runner(tmp_path / "runner", BOOTS), build=False, wait=True)
    command = web.ssh_command(["uptime"])
    assert command.via == "address 10.0.0.2"
    assert command.argv == ("ssh", "-l", "root", "10.0.0.2", "uptime")
    web.stop(timeout=5)
