"""``nixgen deploy`` end to end: real ``nix build``, real ``nix copy`` over a real sshd.

Each target host is an sshd on 127.0.0.1 (own host key, own config, a free
port, key-only root login) that chroots the session into a folder of its own:
this machine's ``/usr`` bound read-only, and an empty ``/nix``, so the target
has its own Nix store, its own profiles and its own ``/nix/var``.  Activation
runs over ssh (``activate_with="ssh"``): the real ``nix-env --set`` of the
target's system profile, then the stand-in's ``switch-to-configuration``
(tests/standins), which records what it was asked to do on the target.

Every sshd runs in a mount and PID namespace of its own (``unshare``): its bind
mounts vanish with it, and killing it kills every session it started.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from nixgen import (
    DeployOptions,
    DeployReport,
    Flake,
    Fleet,
    Host,
    HostVM,
    MicroVM,
    Share,
)
from nixgen.nixcmd import NixRunner
from nixgen.project import Project
from nixgen.render import write_project
from tests.standin import (
    NIX_SKIP_REASON,
    nix_available,
    offline_nix_env,
    override_args,
    prepare_inputs,
)

#: the gate in front of the targets' commands runs with the system's Python (in the chroot)
TARGET_PYTHON = "/usr/bin/python3"
SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if Path("/usr/sbin/sshd").exists() else None)


def _missing() -> str | None:
    if not nix_available():
        return NIX_SKIP_REASON
    if SSHD is None or shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        return "sshd/ssh not found: apt-get install openssh-server openssh-client"
    if not Path(TARGET_PYTHON).is_file():
        return f"{TARGET_PYTHON} not found: apt-get install python3"
    if shutil.which("unshare") is None or os.geteuid() != 0:
        return "needs root and unshare (util-linux) to give each sshd its own namespaces"
    return None


pytestmark = [
    pytest.mark.nix,
    pytest.mark.skipif(_missing() is not None, reason=_missing() or ""),
]

UNSHARE = ("unshare", "--mount", "--pid", "--fork", "--kill-child", "--propagation", "private")
NIX_CONF = "build-users-group =\nsandbox = false\nsubstituters =\n"
SSH_OPTIONS = """\
Host *
  HostName 127.0.0.1
  User root
  IdentityFile {key}
  IdentitiesOnly yes
  UserKnownHostsFile {known_hosts}
  StrictHostKeyChecking yes
  BatchMode yes
  ConnectTimeout 10
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@attrs.define
class Target:
    """One target host: an sshd that chroots its sessions into ``root``."""

    name: str
    root: Path
    config: Path
    #: sshd_config without its Port (chosen when sshd starts)
    settings: str
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the sshd: on a free port the first time, on the same one again after."""
        if self.port:  # the clients know this one
            if not self._listen(self.port):
                raise AssertionError(f"port {self.port} of {self.name} was taken: {self.log()}")
            return
        for _ in range(5):
            # A port found free may be taken before sshd binds it: then try another.
            if self._listen(free_port()):
                return
        raise AssertionError(f"no free port for the sshd of {self.name}: {self.log()}")

    def _listen(self, port: int) -> bool:
        """Start sshd on ``port``; False when the port was taken (sshd then exited)."""
        root = self.root
        self.config.write_text(self.settings + f"Port {port}\n")
        # Bound in the sshd's own mount namespace; ChrootDirectory needs every
        # part of its path root-owned and not world-writable, so the session
        # root is seen at /mnt there (pytest's folders live under /tmp).
        script = (
            f"mount --bind -o ro /usr '{root}/usr' && mount --rbind /dev '{root}/dev' && "
            f"mount -t proc proc '{root}/proc' && mount --rbind '{root}' /mnt && "
            # sshd wants /run/sshd; a tmpfs keeps it out of the machine's /run
            "mount -t tmpfs tmpfs /run && mkdir -m 755 /run/sshd && "
            f"exec '{SSHD}' -D -e -f '{self.config}'"
        )
        log_file = root.parent / f"{self.name}-sshd.log"
        log_file.touch()
        start = log_file.stat().st_size  # (appended to: its earlier runs are kept)
        with log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [*UNSHARE, "--", "sh", "-c", script],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        # sshd's own word that it listens: a connection alone could reach another program
        listening = f"Server listening on 127.0.0.1 port {port}."
        deadline = time.monotonic() + 30
        while listening not in (said := log_file.read_bytes()[start:].decode(errors="replace")):
            if self.process.poll() is not None:
                self.process = None
                if "Address already in use" in said:
                    return False
                raise AssertionError(f"sshd of {self.name} exited: {said}")
            if time.monotonic() > deadline:
                raise AssertionError(f"sshd of {self.name} does not listen: {said}")
            time.sleep(0.05)
        self.port = port
        return True

    def kill(self) -> None:
        """Kill the sshd and every session it started (its PID namespace ends)."""
        if self.process is not None and self.process.poll() is None:
            # unshare ignores SIGTERM; when it dies its child gets SIGKILL (--kill-child)
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)
        self.process = None

    def log(self) -> str:
        return (self.root.parent / f"{self.name}-sshd.log").read_text(errors="replace")

    def store_paths(self) -> set[str]:
        store = self.root / "nix" / "store"
        return (
            {p.name for p in store.iterdir() if not p.name.startswith(".")}
            if store.is_dir()
            else set()
        )

    def activations(self) -> list[str]:
        record = self.root / "nix" / "var" / "nixgen-standin" / "activations"
        return record.read_text().splitlines() if record.is_file() else []

    def system_profile(self) -> str:
        link = self.root / "nix" / "var" / "nix" / "profiles" / "system"
        return str((link.parent / link.readlink()).readlink()) if link.is_symlink() else ""


GATE = """\
import os, subprocess, sys, time
child = subprocess.Popen(["/bin/sh", "-c", os.environ.get("SSH_ORIGINAL_COMMAND", "")],
                         stdin=subprocess.PIPE)
seen = 0
while data := os.read(0, 65536):
    if seen >= 16 and os.path.exists("/pause"):
        open("/paused", "w").close()
        while os.path.exists("/pause"):
            time.sleep(0.1)
    seen += len(data)
    try:
        child.stdin.write(data)
        child.stdin.flush()
    except BrokenPipeError:
        break
child.stdin.close()
sys.exit(child.wait())
"""


def make_target(base: Path, name: str, client_key: Path, host_key: Path) -> Target:
    root = base / name
    for sub in ("usr", "dev", "proc", "tmp", "root", "nix", "etc/nix"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    (root / "tmp").chmod(0o1777)
    for link in ("bin", "sbin", "lib", "lib64"):
        if Path(f"/{link}").is_symlink():
            (root / link).symlink_to(f"usr/{link}")
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\n")
    (root / "etc/nix/nix.conf").write_text(NIX_CONF)
    # A gate in front of every command: it passes the session through, except
    # that while /pause exists it holds the client's bytes after the first 16
    # (nix's handshake), so a test can kill sshd in the middle of `nix copy`.
    (root / "gate").write_text(GATE)
    keys = base / f"{name}-authorized_keys"
    keys.write_text(f'command="{TARGET_PYTHON} /gate" {client_key.with_suffix(".pub").read_text()}')
    settings = (
        f"ListenAddress 127.0.0.1\nHostKey {host_key}\n"
        f"AuthorizedKeysFile {keys}\nPidFile none\nStrictModes no\nUsePAM no\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
        "ChrootDirectory /mnt\nLogLevel VERBOSE\n"
    )
    return Target(name=name, root=root, config=base / f"{name}-sshd_config", settings=settings)


@attrs.frozen
class Setup:
    project: Path
    flake: Flake
    nix: NixRunner
    targets: dict[str, Target]
    client: Path  # the folder with the ssh config


def fleet_flake() -> Flake:
    store = [Share.ro_store()]
    return Flake(
        guests=[MicroVM(name="web", shares=store), MicroVM(name="db", shares=store)],
        hosts=[
            Host(name="alpha", vms=[HostVM(name="web")], nixos_configuration=True),
            Host(name="beta", vms=[HostVM(name="db")], nixos_configuration=True),
            Host(name="gone", nixos_configuration=True),  # no sshd listens for it
        ],
    )


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    base = tmp_path_factory.mktemp("ssh")
    base.chmod(0o755)
    client_key = base / "id_ed25519"
    host_key = base / "ssh_host_ed25519_key"
    for key in (client_key, host_key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    targets = {n: make_target(base, n, client_key, host_key) for n in ("alpha", "beta")}
    try:
        # started first: the ssh client's configuration names the ports they listen on
        for target in targets.values():
            target.start()
        with pytest.MonkeyPatch.context() as patch:  # for the commands that are not nix
            yield _setup(base, targets, client_key, host_key, patch)
    finally:
        for target in targets.values():
            target.kill()


def _setup(
    base: Path,
    targets: dict[str, Target],
    client_key: Path,
    host_key: Path,
    patch: pytest.MonkeyPatch,
) -> Setup:
    gone_port = free_port()  # nothing listens there
    host_pub = host_key.with_suffix(".pub").read_text().split()
    known = base / "known_hosts"
    known.write_text(
        "".join(f"[127.0.0.1]:{t.port} {host_pub[0]} {host_pub[1]}\n" for t in targets.values())
    )
    config = base / "ssh_config"
    config.write_text(
        "".join(f"Host {t.name}\n  Port {t.port}\n" for t in targets.values())
        + f"Host gone\n  Port {gone_port}\n"
        + SSH_OPTIONS.format(key=client_key, known_hosts=known)
    )
    # nix copy, nixos-rebuild and nixgen's own activation all run `ssh` from PATH.
    client = base / "bin"
    client.mkdir()
    wrapper = client / "ssh"
    wrapper.write_text(f'#!/bin/sh\nexec {shutil.which("ssh")} -F "{config}" "$@"\n')
    wrapper.chmod(0o755)

    inputs = prepare_inputs(base / "inputs")
    env = offline_nix_env(base)
    env["PATH"] = f"{client}{os.pathsep}{env['PATH']}"
    overrides = override_args(inputs)
    nix = NixRunner(
        env=env,
        timeout=600,
        override_inputs={overrides[i + 1]: overrides[i + 2] for i in range(0, len(overrides), 3)},
    )
    project = base / "fleet"
    flake = fleet_flake()
    write_project(flake, project, source="nixgen.toml")
    Project(project).save(flake)
    patch.setenv("PATH", env["PATH"])
    return Setup(project=project, flake=flake, nix=nix, targets=targets, client=client)


OPTIONS = DeployOptions(activate_with="ssh")


def test_two_hosts_receive_their_systems_and_an_unreachable_one_fails_alone(
    setup: Setup,
) -> None:
    fleet = Fleet.load(setup.project, nix=setup.nix)
    report = fleet.deploy(["alpha", "gone", "beta"], OPTIONS)
    assert report.succeeded == ("alpha", "beta"), [
        str(s.error) for h in report.hosts for s in h.steps
    ]
    assert report.succeeded == ("alpha", "beta") and report.failed == ("gone",)
    for host in report.hosts:
        if host.host == "gone":
            continue
        target = setup.targets[host.host]
        assert host.toplevel is not None
        toplevel = Path(host.toplevel)
        # copied: the system and its closure are in the target's own store
        assert toplevel.name in target.store_paths()
        assert (target.root / toplevel.relative_to("/") / "etc/hostname").read_text() == (
            f"{host.host}\n"
        )
        # activated: the real nix-env set the profile, the stand-in switched
        assert target.system_profile() == host.toplevel
        assert target.activations()[-1] == f"switch {host.toplevel}"
    gone = report.hosts[1]
    assert [s.step for s in gone.steps] == ["build", "copy"] and not gone.steps[1].ok
    message = str(gone.steps[1].error)
    assert "ssh://gone" in message and "Connection refused" in message
    assert "ssh gone true" in message


def test_a_second_run_copies_nothing(setup: Setup) -> None:
    fleet = Fleet.load(setup.project, nix=setup.nix)
    first = fleet.deploy(["alpha"], OPTIONS)
    assert first.ok
    alpha = setup.targets["alpha"]
    before = registered(alpha)
    again = fleet.deploy(["alpha"], OPTIONS)
    assert again.ok and again.hosts[0].toplevel == first.hosts[0].toplevel
    # every path already there: none added, none registered again
    assert registered(alpha) == before
    assert alpha.activations()[-2:] == [f"switch {first.hosts[0].toplevel}"] * 2


NIX_PATH_INFO = (
    "nix",
    "--extra-experimental-features",
    "nix-command",
    "path-info",
    "--all",
    "--json",
)


def registered(target: Target) -> dict[str, object]:
    """The target store's valid paths with their registration times."""
    proc = subprocess.run(
        [*NIX_PATH_INFO, "--store", str(target.root)],
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(proc.stdout)
    if isinstance(data, dict):  # Nix >= 2.19: an object keyed by path
        return {path: info["registrationTime"] for path, info in data.items()}
    return {entry["path"]: entry["registrationTime"] for entry in data}


def test_sshd_killed_during_the_copy_then_a_rerun_completes(setup: Setup) -> None:
    beta = setup.targets["beta"]
    fleet = Fleet.load(setup.project, nix=setup.nix)
    toplevel = fleet.deploy(["beta"], attrs.evolve(OPTIONS, action="test")).hosts[0].toplevel
    assert toplevel is not None
    # forget the system on the target, so that the copy has work to do again
    subprocess.run(
        ["nix-store", "--store", str(beta.root), "--delete", "--ignore-liveness", toplevel],
        check=True,
        capture_output=True,
        env=setup.nix.env,
    )
    assert Path(toplevel).name not in beta.store_paths()
    (beta.root / "pause").touch()
    result: list[object] = []
    worker = threading.Thread(target=lambda: result.append(fleet.deploy(["beta"], OPTIONS)))
    worker.start()
    try:
        deadline = time.monotonic() + 120
        while not (beta.root / "paused").exists():
            assert time.monotonic() < deadline and worker.is_alive(), "the copy never connected"
            time.sleep(0.05)
        beta.kill()  # with the copy's session in it
        worker.join(timeout=120)
    finally:
        (beta.root / "pause").unlink(missing_ok=True)
        (beta.root / "paused").unlink(missing_ok=True)
        if beta.process is None:
            beta.start()
    (report,) = result
    assert isinstance(report, DeployReport)
    host = report.hosts[0]
    assert not host.ok and [s.step for s in host.steps] == ["build", "copy"]
    message = str(host.steps[1].error)
    assert "ssh://beta" in message and "end-of-file" in message
    assert "running the deploy again" in message
    rerun = fleet.deploy(["beta"], OPTIONS)
    assert rerun.ok
    assert beta.system_profile() == toplevel and beta.activations()[-1] == f"switch {toplevel}"
