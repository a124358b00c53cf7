"""Helper processes nixgen starts for a guest, in one place.

Two kinds:

- the runner's own scripts that nixgen calls while a guest runs
  (``bin/microvm-shutdown``, ``bin/microvm-balloon``): :class:`Helper`.  Each
  call has its own timeout, and a helper ends with the nixgen that started
  it: it stays in nixgen's process group (a Ctrl-C or ``timeout`` reaches
  both), and the kernel kills it when nixgen dies (``PR_SET_PDEATHSIG``);
  it is started through :func:`nixgen.process.spawn`.
  QEMU serves one QMP client at a time, so a shutdown helper left behind
  would block the next stop;
- what must run before the hypervisor starts and end after it (virtiofsd per
  virtiofs share, tap devices): :class:`Prestart`, carried out by the guest's
  supervisor (:mod:`nixgen.runtime._supervisor`) so that it lives exactly as
  long as the guest.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import stat
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from nixgen import process
from nixgen.process import proc
from nixgen.process.errors import CommandError
from nixgen.runtime.errors import StartError
from nixgen.runtime.runner import MacvtapInterface, RunnerInfo, VirtiofsShare

__all__ = [
    "Daemon",
    "Helper",
    "HelperResult",
    "Prestart",
    "has_net_admin",
    "macvtap_commands",
    "run_helper",
    "tap_commands",
    "virtiofs_daemons",
]


@attrs.frozen
class HelperResult:
    argv: tuple[str, ...]
    #: None when it was ended (timed out or no longer needed)
    exit_code: int | None
    output: str
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


class Helper:
    """One helper process, started at once; read it with :meth:`finish` or end it with :meth:`end`."""

    def __init__(self, argv: Sequence[str | Path], *, cwd: Path) -> None:
        self.argv = tuple(str(a) for a in argv)
        self.started = time.monotonic()
        # In nixgen's process group (a Ctrl-C or `timeout` reaches it too), and
        # killed by the kernel should nixgen die without cleaning up.
        self._process = process.spawn(self.argv, cwd=cwd, output=True, die_with_parent=True)

    @property
    def pid(self) -> int:
        return self._process.pid

    def running(self) -> bool:
        return self._process.poll() is None

    @property
    def exit_code(self) -> int | None:
        """How it ended (None: still running, or ended by a signal)."""
        code = self._process.poll()
        return code if code is None or code >= 0 else None

    def finish(self, timeout: float) -> HelperResult:
        """Wait up to ``timeout`` seconds for it to end by itself; end it after that."""
        try:
            out, _ = self._process.communicate(timeout=max(timeout, 0.01))
        except subprocess.TimeoutExpired:
            return self.end(timed_out=True)
        except BaseException:  # Ctrl-C while waiting: it goes with us
            self.end()
            raise
        return HelperResult(self.argv, self._process.returncode, _text(out))

    def end(self, *, timed_out: bool = False) -> HelperResult:
        """End it and whatever it started (SIGKILL: a helper holds no state worth saving)."""
        if self._process.poll() is None:
            proc.signal_pids([*proc.descendants(self.pid), self.pid], signal.SIGKILL)
        out, _ = self._process.communicate()
        return HelperResult(self.argv, None, _text(out), timed_out=timed_out)

    def __enter__(self) -> Helper:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.running():
            self.end()


def run_helper(argv: Sequence[str | Path], *, cwd: Path, timeout: float) -> HelperResult:
    """Run a helper to its end, or for ``timeout`` seconds at most."""
    with Helper(argv, cwd=cwd) as helper:
        return helper.finish(timeout)


def _text(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", "replace")


# ---------------------------------------------------------------------- before the hypervisor


#: Seconds before a daemon (virtiofsd) that ended while its guest runs is
#: started again: microvm.nix's ``microvm-virtiofsd@`` unit has
#: ``Restart=always`` with ``RestartSec=5s``.
DAEMON_RESTART_DELAY = 5.0


@attrs.frozen
class Daemon:
    """A process that serves the guest while it runs (virtiofsd): started
    before the hypervisor, which may start once every one of ``sockets`` exists."""

    name: str
    argv: tuple[str, ...]
    sockets: tuple[str, ...] = ()
    #: a socket (relative to the state folder) that the supervisor binds and
    #: listens on itself, passing it as ``--fd=N``: for a socket whose absolute
    #: path is longer than a socket address holds (see :func:`virtiofsd_daemon`).
    #: The socket outlives a daemon that dies: a restarted one serves it again.
    #: The start cannot wait for such a daemon to be ready: one that fails
    #: early is reported as a daemon that died while the guest ran.
    listen: str | None = None


@attrs.frozen
class Prestart:
    """What the supervisor does around the hypervisor.

    ``before``: commands run to their end first (tap devices); ``daemons``
    started next; ``after``: commands run once the hypervisor has ended and
    the daemons are gone (removing the tap devices nixgen made), also when it
    crashed.
    """

    before: tuple[tuple[str, ...], ...] = ()
    daemons: tuple[Daemon, ...] = ()
    after: tuple[tuple[str, ...], ...] = ()
    #: how long the daemons may take to create their sockets
    timeout: float = 10.0
    #: seconds before a daemon that ended while the guest runs is started again
    restart_delay: float = attrs.field(factory=lambda: DAEMON_RESTART_DELAY)

    @property
    def empty(self) -> bool:
        return not (self.before or self.daemons or self.after)

    def to_json(self) -> dict[str, Any]:
        return {
            "before": [list(c) for c in self.before],
            "daemons": [
                {
                    "name": d.name,
                    "argv": list(d.argv),
                    "sockets": list(d.sockets),
                    "listen": d.listen,
                }
                for d in self.daemons
            ],
            "after": [list(c) for c in self.after],
            "timeout": self.timeout,
            "restart_delay": self.restart_delay,
        }


def is_socket(path: Path) -> bool:
    with contextlib.suppress(OSError):
        return stat.S_ISSOCK(os.lstat(path).st_mode)
    return False


# ---------------------------------------------------------------------- virtiofsd

#: Where distributions put virtiofsd when it is not on PATH (Debian 12's C
#: virtiofsd comes with qemu-system-common; the Rust one with its own package).
VIRTIOFSD_PLACES = ("/usr/libexec/virtiofsd", "/usr/lib/qemu/virtiofsd")


def find_virtiofsd() -> Path | None:
    import shutil  # (shutil and socket: only for guests with shares or taps; ~5 ms)

    found = shutil.which("virtiofsd")
    if found:
        return Path(found)
    return next((Path(p) for p in VIRTIOFSD_PLACES if os.access(p, os.X_OK)), None)


@functools.lru_cache(maxsize=8)
def _virtiofsd_is_rust(binary: Path) -> bool:
    """The Rust virtiofsd takes ``--shared-dir``; QEMU's C one ``-o source=``."""
    try:
        text = process.run([binary, "--help"], timeout=5, merge_stderr=True, check=False).stdout
    except CommandError:
        return True
    return "--shared-dir" in text


#: The longest path a unix socket address holds (``sun_path`` less its NUL).
SOCKET_PATH_MAX = 107


def virtiofsd_daemon(binary: Path, share: VirtiofsShare, state: Path) -> Daemon:
    """One virtiofsd for one share, from the runner's share files only.

    Its socket is named by its absolute path in the guest's state folder:
    QEMU's C virtiofsd names its pid file (``/run/virtiofsd/<socket
    path>.pid``) after the path it is given, so the runner's relative name
    (``web-virtiofs-data.sock``) would collide between two projects running a
    guest of the same name.  Where that path is too long for a socket, the
    supervisor binds the socket itself and passes it as ``--fd=N`` (then
    virtiofsd writes no pid file at all).
    """
    if _virtiofsd_is_rust(binary):
        extra = () if os.geteuid() == 0 else ("--sandbox=none",)
        rest: tuple[str, ...] = (f"--shared-dir={share.source}", *extra)
    else:
        rest = ("-o", f"source={share.source}")
    name = f"virtiofsd-{share.tag}"
    path = state / share.socket
    if len(os.fsencode(path)) <= SOCKET_PATH_MAX:
        return Daemon(name, (str(binary), f"--socket-path={path}", *rest), (share.socket,))
    return Daemon(name, (str(binary), *rest), (share.socket,), listen=share.socket)


def _socket_in_use(path: Path) -> bool:
    """Whether a process has a unix socket bound at ``path`` (``/proc/net/unix``)."""
    try:
        lines = Path("/proc/net/unix").read_text(errors="replace").splitlines()[1:]
    except OSError:
        return True  # cannot tell: leave it alone
    wanted = str(path)
    return any(line.split()[-1] == wanted for line in lines if len(line.split()) >= 8)


def virtiofs_daemons(name: str, info: RunnerInfo, state: Path) -> tuple[Daemon, ...]:
    """The virtiofsd(s) a guest needs, as upstream's ``microvm-virtiofsd@`` unit runs them.

    The runner's own ``bin/virtiofsd-run`` where it has one (it carries every
    option of every share); else one ``virtiofsd`` per share from
    ``share/microvm/virtiofs/<tag>/{socket,source}``.  Sources must exist;
    a stale socket outside the state folder is removed, one in use refused.
    """
    if not info.virtiofs or info.hypervisor == "vfkit":  # vfkit serves virtiofs itself
        return ()
    for share in info.virtiofs:
        source = state / share.source
        if not source.is_dir():
            raise StartError(
                name,
                f"the source of virtiofs share {share.tag!r}, {source}, is not a folder",
                hint=f"create it (mkdir -p {source}) or change microvm.shares",
            )
        sock = state / share.socket
        if is_socket(sock):
            if _socket_in_use(sock):
                raise StartError(
                    name,
                    f"the socket of virtiofs share {share.tag!r}, {sock}, is in use",
                    hint="another guest or virtiofsd uses it: give each share its own socket",
                )
            sock.unlink()
    sockets = tuple(s.socket for s in info.virtiofs)
    if info.virtiofsd_script is not None:
        return (Daemon("virtiofsd", (str(info.virtiofsd_script),), sockets),)
    binary = find_virtiofsd()
    if binary is None:
        raise StartError(
            name,
            "it has virtiofs shares ("
            + ", ".join(s.tag for s in info.virtiofs)
            + ") and its runner has no bin/virtiofsd-run, but virtiofsd is not installed",
            hint="install virtiofsd (Debian: apt-get install virtiofsd, or qemu-system-common "
            "for /usr/lib/qemu/virtiofsd), or put it on PATH",
        )
    return tuple(virtiofsd_daemon(binary, share, state) for share in info.virtiofs)


# ---------------------------------------------------------------------- tap devices

_CAP_CHOWN = 0
_CAP_NET_ADMIN = 12


def _has_capability(bit: int) -> bool:
    """Root, or capability ``bit`` in this process's effective capabilities."""
    if os.geteuid() == 0:
        return True
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> bit & 1)
    except (OSError, ValueError, IndexError):
        pass
    return False


def has_net_admin() -> bool:
    """Root, or CAP_NET_ADMIN in this process's effective capabilities."""
    return _has_capability(_CAP_NET_ADMIN)


def _find_ip() -> str | None:
    import shutil

    return shutil.which("ip") or next(
        (p for p in ("/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip") if os.access(p, os.X_OK)), None
    )


def _link_exists(name: str) -> bool:
    """Whether this network namespace has interface ``name`` (``/proc/self/net/dev``,
    which, unlike /sys/class/net, follows the namespace without a remount)."""
    try:
        lines = Path("/proc/self/net/dev").read_text().splitlines()[2:]
    except OSError:
        return Path("/sys/class/net", name).exists()
    return any(line.split(":", 1)[0].strip() == name for line in lines)


def tap_commands(
    name: str, info: RunnerInfo, bridges: Mapping[str, str]
) -> tuple[tuple[tuple[str, ...], ...], tuple[tuple[str, ...], ...]]:
    """Commands that create (before) and remove (after) the guest's tap devices.

    Taps that exist already (made by an administrator, or by systemd-networkd)
    are used as they are and left in place.  ``bridges`` maps a tap id to the
    bridge the model attaches it to (the guest's bridge network).  Refuses,
    before anything starts, when a tap must be made and nixgen cannot.
    """
    missing = [tap for tap in info.tap_interfaces if not _link_exists(tap)]
    if not missing:
        return (), ()
    ip = _find_ip()
    lacking = []
    if ip is None:
        lacking.append("the `ip` command (Debian: apt-get install iproute2)")
    if not has_net_admin():
        lacking.append(f"root or CAP_NET_ADMIN (nixgen runs as uid {os.geteuid()} without it)")
    if not Path("/dev/net/tun").exists():
        lacking.append("/dev/net/tun (modprobe tun)")
    for tap in missing:
        bridge = bridges.get(tap)
        if bridge is not None and not _link_exists(bridge):
            lacking.append(f"the bridge {bridge!r} that {tap} belongs on (it does not exist)")
    if lacking:
        first = missing[0]
        raise StartError(
            name,
            f"its tap interface(s) {', '.join(missing)} do not exist and creating them needs "
            + "; ".join(lacking),
            hint="run nixgen as root (or with CAP_NET_ADMIN), or create them beforehand: "
            f"ip tuntap add name {first} mode tap user {os.getuid()} vnet_hdr && "
            f"ip link set {first} up",
        )
    assert ip is not None
    flags = tuple(f for f in info.tap_flags if f in ("vnet_hdr", "multi_queue"))
    before: list[tuple[str, ...]] = []
    after: list[tuple[str, ...]] = []
    for tap in missing:
        before.append(
            (ip, "tuntap", "add", "name", tap, "mode", "tap", "user", str(os.getuid()), *flags)
        )
        if tap in bridges:
            before.append((ip, "link", "set", tap, "master", bridges[tap]))
        before.append((ip, "link", "set", tap, "up"))
        after.append((ip, "link", "delete", tap))
    return tuple(before), tuple(after)


# ---------------------------------------------------------------------- macvtap interfaces

#: Creates one macvtap interface (``ip link add … type macvtap``) and hands its
#: ``/dev/tap<ifindex>`` to the user nixgen runs as.
MACVTAP_UP = Path(__file__).with_name("macvtap-up.sh")


def _tap_device(interface: str) -> Path | None:
    """``/dev/tap<ifindex>`` of a macvtap interface of this network namespace."""
    import socket

    try:
        return Path(f"/dev/tap{socket.if_nametoindex(interface)}")
    except OSError:
        return None


def macvtap_commands(
    name: str, info: RunnerInfo
) -> tuple[tuple[tuple[str, ...], ...], tuple[tuple[str, ...], ...]]:
    """Commands that create (before) and remove (after) the guest's macvtap interfaces.

    As microvm.nix's ``microvm-macvtap-interfaces@`` unit does (``bin/macvtap-up``:
    ``ip link add link LINK name ID address MAC type macvtap mode MODE``,
    all-multicast, no IPv6, up) and then, when nixgen is not root, gives the
    interface's ``/dev/tap<ifindex>``, which the runner opens, to nixgen's
    user.  Interfaces that exist already are used as they are and left in
    place, once their ``/dev/tap<ifindex>`` is found usable.  Refuses, before
    anything starts, what cannot be done.
    """
    if not info.macvtap_interfaces:
        return (), ()
    problems: list[str] = []
    missing: list[MacvtapInterface] = []
    for iface in info.macvtap_interfaces:
        if not _link_exists(iface.id):
            missing.append(iface)
            continue
        device = _tap_device(iface.id)
        if device is None or not device.exists():
            problems.append(f"{device or '/dev/tap<ifindex>'} of macvtap {iface.id} is missing")
        elif not os.access(device, os.R_OK | os.W_OK):
            problems.append(f"{device} of macvtap {iface.id} is not writable by uid {os.getuid()}")
    ip = _find_ip()
    root = os.geteuid() == 0
    if missing:
        if ip is None:
            problems.append("the `ip` command (Debian: apt-get install iproute2)")
        rights = [
            cap
            for cap, bit in (("CAP_NET_ADMIN", _CAP_NET_ADMIN), ("CAP_CHOWN", _CAP_CHOWN))
            if not _has_capability(bit)
        ]
        if rights:
            problems.append(
                f"root, or CAP_NET_ADMIN and CAP_CHOWN (nixgen runs as uid {os.geteuid()} "
                f"without {' and '.join(rights)})"
            )
        for iface in missing:
            if iface.link is None or iface.mac is None or iface.mode is None:
                problems.append(
                    f"the link, MAC and mode of macvtap {iface.id} (its runner does not "
                    "name them: set microvm.interfaces.*.macvtap.link and .mode)"
                )
            elif not _link_exists(iface.link):
                problems.append(
                    f"the link {iface.link!r} that macvtap {iface.id} sits on (it does not exist)"
                )
    if problems:
        first = (missing or list(info.macvtap_interfaces))[0]
        ids = ", ".join(i.id for i in missing)
        what = (
            f"its macvtap interface(s) {ids} do not exist and creating them needs "
            if missing
            else "its macvtap interface(s) cannot be used: "
        )
        raise StartError(
            name,
            what + "; ".join(problems),
            hint="run nixgen as root, or create them beforehand: "
            f"ip link add link {first.link or 'LINK'} name {first.id} "
            f"address {first.mac or 'MAC'} type macvtap mode {first.mode or 'bridge'} && "
            f"ip link set {first.id} up && "
            f"chown {os.getuid()} /dev/tap$(cat /sys/class/net/{first.id}/ifindex)",
        )
    assert ip is not None or not missing
    before: list[tuple[str, ...]] = []
    after: list[tuple[str, ...]] = []
    for iface in missing:
        assert ip is not None and iface.mac and iface.link and iface.mode
        owner = () if root else (str(os.getuid()),)
        before.append(
            ("sh", str(MACVTAP_UP), ip, iface.id, iface.mac, iface.link, iface.mode, *owner)
        )
        after.append((ip, "link", "delete", iface.id))
    return tuple(before), tuple(after)
