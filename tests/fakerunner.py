"""Stand-in runner folders for the runtime tests and benchmark.

A microvm.nix runner is a folder with ``bin/microvm-run`` (and maybe
``bin/microvm-shutdown``, ``bin/microvm-balloon``, ``share/microvm/hypervisor``).
:func:`make_runner` writes one with shell scripts given as text;
:data:`FAKE_QEMU` is a small QMP server that stands in for qemu (greeting,
``qmp_capabilities``, ``query-status``, ``query-balloon``, Ctrl-Alt-Del,
``system_powerdown``, ``quit``), for the QMP code paths without a real VM.

:func:`leftovers` finds processes that belong to a test folder, so fixtures
can make sure none stays behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from nixgen.process import proc

__all__ = [
    "BOOTS",
    "EXITS_3",
    "FAKE_QEMU",
    "HANGS",
    "IGNORES_TERM",
    "SHUTDOWN_USR1",
    "fake_qemu_runner",
    "favoured",
    "kill_leftovers",
    "leftovers",
    "make_runner",
]

#: Boots at once, stops cleanly on SIGUSR1 (what SHUTDOWN_USR1 sends) or SIGTERM.
BOOTS = """\
echo $$ > runner.pid
trap 'echo clean-shutdown; exit 0' USR1
trap 'echo got-term; exit 0' TERM
echo "booting {tag}"
echo NIXGEN-GUEST-BOOTED
while :; do sleep 0.05; done
"""
#: Boots, then ignores SIGTERM (so does its sleep): only SIGKILL ends it.
IGNORES_TERM = """\
trap '' TERM
echo NIXGEN-GUEST-BOOTED
while :; do sleep 0.05; done
"""
#: Never prints a boot marker.
HANGS = """\
echo "loading kernel..."
echo "stuck at 42%"
while :; do sleep 0.05; done
"""
#: Fails before booting.
EXITS_3 = """\
echo "starting"
echo "boom: no root file system" >&2
exit 3
"""
#: microvm-shutdown that asks a BOOTS runner to stop.
SHUTDOWN_USR1 = """\
kill -USR1 "$(cat runner.pid)"
"""

FAKE_QEMU = r"""
import json, os, socket, sys

args = sys.argv[1:]
path = args[args.index("-qmp") + 1].split(":", 1)[1].split(",")[0]
run_state = args[args.index("--state") + 1] if "--state" in args else "running"
ignore = set(args[args.index("--ignore") + 1].split(",")) if "--ignore" in args else set()
if "--no-marker" not in args:
    print("NIXGEN-GUEST-BOOTED", flush=True)
try:
    os.unlink(path)
except FileNotFoundError:
    pass
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(path)
server.listen(4)
decoder = json.JSONDecoder()
greeting = {"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""},
                    "capabilities": []}}


def send(conn, msg):
    conn.sendall(json.dumps(msg).encode() + b"\r\n")


def serve(conn):
    send(conn, greeting)
    buf = ""
    while True:
        data = conn.recv(65536)
        if not data:
            return
        buf += data.decode()
        while buf.strip():
            try:
                msg, end = decoder.raw_decode(buf.lstrip())
            except ValueError:
                break
            buf = buf.lstrip()[end:]
            cmd = msg.get("execute")
            # a log of its own: on the console it would look like the guest reacting
            with open("qmp.log", "a") as log:
                print("qmp:", cmd, file=log)
            reply = {"return": {}}
            leave = False
            if cmd == "query-status":
                reply = {"return": {"status": run_state, "running": run_state == "running",
                                    "singlestep": False}}
            elif cmd == "query-balloon":
                reply = {"return": {"actual": 448 << 20}}
            elif cmd == "query-cpus-fast":
                reply = {"return": [{"cpu-index": 0}, {"cpu-index": 1}]}
            elif cmd == "query-memory-size-summary":
                reply = {"return": {"base-memory": 512 << 20}}
            elif cmd == "input-send-event":
                leave = "cad" not in ignore
            elif cmd == "system_powerdown":
                leave = "powerdown" not in ignore
            elif cmd == "quit":
                leave = True
            elif cmd != "qmp_capabilities":
                reply = {"error": {"class": "CommandNotFound", "desc": f"no {cmd}"}}
            if "id" in msg:
                reply["id"] = msg["id"]
            send(conn, reply)
            if leave:
                print(f"fake-qemu: leaving after {cmd}", flush=True)
                os.unlink(path)
                sys.exit(0)


while True:
    conn, _ = server.accept()
    try:
        serve(conn)
    except OSError:
        pass
    finally:
        conn.close()
"""


def _script(path: Path, body: str) -> None:
    path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
    path.chmod(0o755)


def make_runner(
    folder: Path,
    run: str,
    *,
    shutdown: str | None = None,
    balloon: str | None = None,
    hypervisor: str = "qemu",
    tag: str = "",
) -> Path:
    """A runner folder at ``folder`` whose ``bin/microvm-run`` runs ``run`` (sh)."""
    (folder / "bin").mkdir(parents=True, exist_ok=True)
    (folder / "share" / "microvm").mkdir(parents=True, exist_ok=True)
    _script(folder / "bin" / "microvm-run", run.replace("{tag}", tag or folder.name))
    if shutdown is not None:
        _script(folder / "bin" / "microvm-shutdown", shutdown)
    if balloon is not None:
        _script(folder / "bin" / "microvm-balloon", balloon)
    (folder / "share" / "microvm" / "hypervisor").write_text(hypervisor)
    return folder


def fake_qemu_runner(folder: Path, *flags: str, socket: str = "control.socket") -> Path:
    """A qemu runner without microvm-shutdown whose "qemu" is :data:`FAKE_QEMU`."""
    make_runner(folder, "")
    (folder / "bin" / "fake-qemu.py").write_text(FAKE_QEMU, encoding="utf-8")
    words = " ".join(flags)
    _script(
        folder / "bin" / "microvm-run",
        f'exec {sys.executable} -I "{folder}/bin/fake-qemu.py" -name fake -m 512 -smp 2 '
        f"-qmp unix:{socket},server,nowait {words}\n",
    )
    return folder


def leftovers(folder: Path) -> list[int]:
    """Live processes whose working folder or command line lies under ``folder``."""
    needle = str(folder.resolve())
    own = os.getpid()
    found: list[int] = []
    for item in proc.processes():
        if item.gone or item.pid == own:
            continue
        try:
            cwd = str(Path(f"/proc/{item.pid}/cwd").readlink())
        except OSError:
            continue
        if cwd.startswith(needle) or needle in " ".join(proc.cmdline(item.pid)):
            found.append(item.pid)
    return found


def kill_leftovers(folder: Path, timeout: float = 5.0) -> list[str]:
    """SIGKILL every process :func:`leftovers` finds; the ones it found, each as
    ``PID (STATE): COMMAND LINE`` so that a failure says what was left."""
    # A process in its last instant as the test ends (exiting, not yet reaped)
    # is not left behind: each gets a moment to go, woken by its exit.
    deadline = time.monotonic() + 1.0
    for pid in leftovers(folder):
        proc.wait_gone(pid, None, deadline - time.monotonic())
    found = [_describe(pid) for pid in leftovers(folder)]
    deadline = time.monotonic() + timeout
    while True:
        pids = leftovers(folder)
        if not pids or time.monotonic() > deadline:
            return found
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def _describe(pid: int) -> str:
    item = proc.stat(pid)
    if item is None:
        return f"{pid} (gone)"
    return f"{pid} ({item.state}): {' '.join(proc.cmdline(pid))}"


@contextlib.contextmanager
def favoured(nice: int = -10) -> Iterator[None]:
    """Run the block, and the processes it starts, ahead of the machine's other work.

    For a claim about time ("stops a hung guest in under 3 s"): it is nixgen's
    time that is measured, not the load other programs put on a shared machine
    (with both CPUs busy elsewhere, the same stop took up to 3.5 s).  Raising
    the priority needs root; elsewhere the block runs as it is.
    """
    before = os.getpriority(os.PRIO_PROCESS, 0)
    try:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    except PermissionError:
        yield
        return
    try:
        yield
    finally:
        os.setpriority(os.PRIO_PROCESS, 0, before)
