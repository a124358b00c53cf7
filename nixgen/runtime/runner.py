"""What a runner package says about its guest, read off its files without Nix.

A microvm.nix runner holds ``bin/microvm-run`` (always),
``bin/microvm-shutdown`` and ``bin/microvm-balloon`` where the hypervisor
has them, and ``share/microvm/hypervisor``; a host manager reads those
instead of evaluating Nix again.  The number of vCPUs, the memory and the
QMP socket are read from the hypervisor's command line in the run script
(or, for a running guest, from the live process: see :func:`qmp_socket_of`).
"""

from __future__ import annotations

import functools
import re
import shlex
from collections.abc import Iterable
from pathlib import Path

import attrs

from nixgen._repr import attrs_repr

__all__ = [
    "ForwardedPort",
    "MacvtapInterface",
    "RunnerInfo",
    "VirtiofsShare",
    "qmp_socket_from_args",
]

_SCRIPT_LIMIT = 1 << 20

# First match wins. Scripts quote their words (`'-m' '384M'`), or not.
_Q = "['\"]?"
# Patterns, compiled by re on first use (and cached there): `nixgen list` reads
# no runner script of a guest never built, and compiling them all costs 2-3 ms.
_VCPU = [
    rf"(?:^|[\s'\"])-smp{_Q}\s+{_Q}(?:cpus=)?(\d+)",
    rf"--cpus{_Q}\s+{_Q}boot=(\d+)",
    rf"--cpus{_Q}\s+{_Q}(\d+)",
    r"\"vcpu_count\"\s*:\s*(\d+)",
    r"\bvcpu=(\d+)",  # the stand-in runner of the tests prints `vcpu=N mem=N`
]
_MEM = [
    rf"(?:^|[\s'\"])-m{_Q}\s+{_Q}(?:size=)?(\d+)([MmGg]?)\b",
    rf"--memory{_Q}\s+{_Q}(?:[a-z]+=[a-z]+,)*size=(\d+)M",
    rf"--mem{_Q}\s+{_Q}(\d+)",
    r"\"mem_size_mib\"\s*:\s*(\d+)",
    r"\bmem=(\d+)",
]
# qemu user networking: hostfwd=tcp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT
_HOSTFWD = r"hostfwd=(tcp|udp):([^:,'\"\s]*):(\d+)-([^:,'\"\s]*):(\d+)"
_QMP_SCRIPT = rf"-qmp(?:-pretty)?{_Q}\s+{_Q}unix:([^,'\"\s]+)"


def qmp_socket_from_args(args: Iterable[str]) -> str | None:
    """The path of ``-qmp unix:PATH,…`` in a qemu argv (as written: maybe relative)."""
    items = list(args)
    for index, arg in enumerate(items):
        value: str | None = None
        if arg in ("-qmp", "-qmp-pretty") and index + 1 < len(items):
            value = items[index + 1]
        elif arg.startswith(("-qmp=", "-qmp-pretty=")):
            value = arg.split("=", 1)[1]
        if value and value.startswith("unix:"):
            return value[len("unix:") :].split(",", 1)[0] or None
    return None


def _first(patterns: list[str], text: str) -> int | None:
    """The number the first matching pattern finds (MiB: a ``G`` suffix counts 1024)."""
    for pattern in patterns:
        match = re.search(pattern, text)
        if match:
            unit = match.group(2) if match.re.groups > 1 else ""
            return int(match.group(1)) * (1024 if unit in ("G", "g") else 1)
    return None


@attrs.frozen
class VirtiofsShare:
    """One virtiofs share as the runner records it (``share/microvm/virtiofs/<tag>/``)."""

    tag: str
    #: where virtiofsd listens (relative paths: in the state folder)
    socket: str
    #: the host folder it serves
    source: str

    __repr__ = attrs_repr


@attrs.frozen
class MacvtapInterface:
    """One ``type = "macvtap"`` interface as the runner records it: a line
    ``ID MAC LINK MODE`` of ``share/microvm/macvtap-interfaces`` (upstream
    writes one for each interface whose ``macvtap.link`` and ``mode`` are set).
    The runner opens ``/dev/tap<ifindex of ID>`` itself."""

    id: str
    mac: str | None = None
    #: the host interface it sits on
    link: str | None = None
    #: ``bridge``, ``vepa``, ``private``, ``passthru`` or ``source``
    mode: str | None = None

    __repr__ = attrs_repr


@attrs.frozen
class ForwardedPort:
    """A qemu user-networking port forward (``microvm.forwardPorts``)."""

    proto: str
    host_address: str
    host_port: int
    guest_port: int

    __repr__ = attrs_repr


@attrs.frozen
class RunnerInfo:
    """Facts about one runner folder (``/nix/store/…-microvm-qemu-NAME``)."""

    path: Path
    hypervisor: str | None
    vcpu: int | None
    mem: int | None
    #: the QMP socket the run script passes to qemu (relative to the state folder when relative)
    qmp_socket: str | None
    virtiofs: tuple[VirtiofsShare, ...] = ()
    #: ids of the ``type = "tap"`` interfaces (``share/microvm/tap-interfaces``)
    tap_interfaces: tuple[str, ...] = ()
    #: ``share/microvm/tap-flags`` (``vnet_hdr``, ``multi_queue``)
    tap_flags: tuple[str, ...] = ()
    #: the ``type = "macvtap"`` interfaces (``share/microvm/macvtap-interfaces``)
    macvtap_interfaces: tuple[MacvtapInterface, ...] = ()
    vsock_cid: int | None = None
    forwarded_ports: tuple[ForwardedPort, ...] = ()

    @property
    def run_script(self) -> Path:
        return self.path / "bin" / "microvm-run"

    @property
    def shutdown_script(self) -> Path | None:
        script = self.path / "bin" / "microvm-shutdown"
        return script if script.is_file() else None

    @property
    def balloon_script(self) -> Path | None:
        script = self.path / "bin" / "microvm-balloon"
        return script if script.is_file() else None

    @property
    def virtiofsd_script(self) -> Path | None:
        """``bin/virtiofsd-run``: runs one virtiofsd per share, in the foreground."""
        script = self.path / "bin" / "virtiofsd-run"
        return script if script.is_file() else None

    @classmethod
    def read(cls, path: Path) -> RunnerInfo:
        """Read a runner folder; store paths never change, so those are read once."""
        path = Path(path)
        if str(path).startswith("/nix/store/"):
            return _read_cached(path)
        return _read(path)

    __repr__ = attrs_repr


@functools.lru_cache(maxsize=256)
def _read_cached(path: Path) -> RunnerInfo:
    return _read(path)


def _read(path: Path) -> RunnerInfo:
    hypervisor: str | None
    try:
        hypervisor = (path / "share" / "microvm" / "hypervisor").read_text().strip() or None
    except OSError:
        hypervisor = None
    try:
        with (path / "bin" / "microvm-run").open(encoding="utf-8", errors="replace") as handle:
            script = handle.read(_SCRIPT_LIMIT)
    except OSError:
        script = ""
    qmp = None
    match = re.search(_QMP_SCRIPT, script)
    if match:
        qmp = match.group(1)
    else:
        # a script that spells the argv one word per line, quoted
        for line in script.splitlines():
            if "-qmp" in line:
                try:
                    qmp = qmp_socket_from_args(shlex.split(line, comments=True))
                except ValueError:
                    qmp = None
                if qmp:
                    break
    share = path / "share" / "microvm"
    vsock = _read_text(share / "vsock-cid")
    return RunnerInfo(
        path=path,
        hypervisor=hypervisor,
        vcpu=_first(_VCPU, script),
        mem=_first(_MEM, script),
        qmp_socket=qmp,
        virtiofs=_virtiofs(share / "virtiofs"),
        tap_interfaces=tuple(_read_text(share / "tap-interfaces").split()),
        tap_flags=tuple(_read_text(share / "tap-flags").split()),
        macvtap_interfaces=_macvtaps(_read_text(share / "macvtap-interfaces")),
        vsock_cid=int(vsock) if vsock.strip().isdigit() else None,
        forwarded_ports=tuple(
            ForwardedPort(m[0], m[1] or "127.0.0.1", int(m[2]), int(m[4]))
            for m in re.findall(_HOSTFWD, script)
        ),
    )


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _macvtaps(text: str) -> tuple[MacvtapInterface, ...]:
    """``ID MAC LINK MODE`` per line; a line of bare ids names interfaces only."""
    found: list[MacvtapInterface] = []
    for line in text.splitlines():
        words = line.split()
        if len(words) == 4:
            found.append(MacvtapInterface(*words))
        else:
            found.extend(MacvtapInterface(word) for word in words)
    return tuple(found)


def _virtiofs(folder: Path) -> tuple[VirtiofsShare, ...]:
    try:
        tags = sorted(p for p in folder.iterdir() if p.is_dir())
    except OSError:
        return ()
    return tuple(
        VirtiofsShare(
            tag.name,
            _read_text(tag / "socket").strip(),
            _read_text(tag / "source").strip(),
        )
        for tag in tags
        if (tag / "socket").is_file()
    )
