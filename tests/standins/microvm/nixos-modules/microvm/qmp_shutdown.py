"""bin/microvm-shutdown of the stand-in qemu runner (nixgen tests; stdlib only).

Does what upstream's qemu shutdown does: connects to the QMP socket,
negotiates capabilities, sends Ctrl-Alt-Del as ``input-send-event`` key
events (the guest reboots, and QEMU, started with ``-no-reboot``, exits), then
waits until QEMU closes the connection, that is until it has exited. When
QEMU rejects the key events (a machine without a keyboard) it presses the
ACPI power button (``system_powerdown``) instead.

Usage: ``qmp_shutdown.py SOCKET [TIMEOUT]``. Exits 0 once QEMU is gone (also
when the socket does not exist or nobody listens on it: nothing runs), 1 when
QEMU is still running after TIMEOUT seconds (default: wait for ever, as
upstream does), 2 on a QMP error.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from typing import Any

KEYS = ("ctrl", "alt", "delete")


class QMPError(Exception):
    pass


class QMP:
    """A minimal QMP client: one command at a time, events skipped."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def read(self) -> dict[str, Any] | None:
        """The next message, or None when QEMU closed the connection."""
        while b"\n" not in self.buffer:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        message: dict[str, Any] = json.loads(line)
        return message

    def execute(self, command: str, arguments: dict[str, Any] | None = None) -> Any:
        request: dict[str, Any] = {"execute": command}
        if arguments is not None:
            request["arguments"] = arguments
        self.sock.sendall(json.dumps(request).encode() + b"\n")
        while True:
            message = self.read()
            if message is None:
                raise QMPError(f"{command}: QEMU closed the connection")
            if "return" in message:
                return message["return"]
            if "error" in message:
                raise QMPError(f"{command}: {message['error'].get('desc', message['error'])}")
            # an event (SHUTDOWN, RESET, …) that arrived before the answer: skip it


def key_events(down: bool) -> list[dict[str, Any]]:
    return [
        {"type": "key", "data": {"down": down, "key": {"type": "qcode", "data": key}}}
        for key in KEYS
    ]


def shutdown(path: str, timeout: float | None) -> int:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except (FileNotFoundError, ConnectionRefusedError):
        print(f"microvm-shutdown: nothing listens on {path}: the guest is not running")
        return 0
    qmp = QMP(sock)
    greeting = qmp.read()
    if greeting is None or "QMP" not in greeting:
        print(f"microvm-shutdown: {path} is not a QMP socket", file=sys.stderr)
        return 2
    try:
        qmp.execute("qmp_capabilities")
        try:
            qmp.execute("input-send-event", {"events": key_events(True)})
            qmp.execute("input-send-event", {"events": key_events(False)})
        except QMPError as err:
            print(f"microvm-shutdown: {err}; pressing the power button instead", file=sys.stderr)
            qmp.execute("system_powerdown")
    except QMPError as err:
        if "closed the connection" in str(err):
            return 0  # QEMU exited already
        print(f"microvm-shutdown: {err}", file=sys.stderr)
        return 2
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                print(f"microvm-shutdown: QEMU still runs after {timeout:g} s", file=sys.stderr)
                return 1
            sock.settimeout(left)
        try:
            if qmp.read() is None:
                return 0
        except TimeoutError:
            continue


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print("usage: microvm-shutdown SOCKET [TIMEOUT]", file=sys.stderr)
        return 2
    return shutdown(argv[1], float(argv[2]) if len(argv) == 3 else None)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
