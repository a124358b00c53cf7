"""ssh's ProxyCommand for guests reached over vsock: ``python -m nixgen.runtime.sshproxy``.

``vsock CID PORT``: an ``AF_VSOCK`` stream to the guest (qemu, crosvm,
kvmtool: the host kernel's vhost-vsock); ``vsock-mux PATH PORT``: the unix
socket cloud-hypervisor offers for the guest's vsock, which wants
``CONNECT PORT`` first and answers ``OK …``.  This is what upstream's
``microvm -s`` reaches through systemd's ssh proxy (``vsock/CID``,
``vsock-mux/PATH``), without needing systemd.  It relays stdin and stdout
to the stream until either side closes.  Standard library only.
"""

from __future__ import annotations

import os
import select
import socket
import sys


def connect(kind: str, where: str, port: int) -> socket.socket:
    if kind == "vsock":
        family = getattr(socket, "AF_VSOCK", None)
        if family is None:
            raise OSError("this Python has no AF_VSOCK (Linux only)")
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.connect((int(where), port))
        return sock
    if kind == "vsock-mux":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(where)
        sock.sendall(f"CONNECT {port}\n".encode())
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = sock.recv(1)
            if not chunk:
                break
            answer += chunk
        if not answer.startswith(b"OK"):
            raise OSError(f"{where}: CONNECT {port} answered {answer.decode(errors='replace')!r}")
        return sock
    raise ValueError(f"unknown kind {kind!r}: vsock or vsock-mux")


def relay(sock: socket.socket, stdin: int, stdout: int) -> None:
    open_in = True
    net = sock.fileno()
    while True:
        ready, _, _ = select.select([net, stdin] if open_in else [net], [], [])
        if net in ready:
            data = sock.recv(65536)
            if not data:
                return
            view = memoryview(data)
            while view:
                view = view[os.write(stdout, view) :]
        if open_in and stdin in ready:
            data = os.read(stdin, 65536)
            if data:
                sock.sendall(data)
            else:
                open_in = False
                sock.shutdown(socket.SHUT_WR)


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print("usage: sshproxy vsock CID PORT | vsock-mux PATH PORT", file=sys.stderr)
        return 2
    kind, where, port = argv[1], argv[2], int(argv[3])
    try:
        sock = connect(kind, where, port)
    except OSError as err:
        print(f"nixgen ssh proxy: cannot reach {kind} {where} port {port}: {err}", file=sys.stderr)
        return 1
    with sock:
        relay(sock, sys.stdin.fileno(), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
