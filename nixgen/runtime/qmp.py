"""A plain synchronous client for QEMU's monitor protocol (QMP).

Built on the ``qemu.qmp`` library's asynchronous :class:`QMPClient` (which
reads the greeting, negotiates capabilities and keeps events apart from
command replies), each call run to completion on a private event loop::

    with QMP("/var/lib/microvms/web/control.socket") as qmp:
        qmp.status()            # 'running', 'paused', 'internal-error', …
        qmp.balloon_mib()       # the guest's memory after ballooning, or None
        qmp.execute("query-cpus-fast")

``qemu.qmp`` is imported only when a QMP connection is made.  That, and the
asyncio it runs on, cost more than the few messages nixgen exchanges while it
waits for a boot or stops a guest: :func:`execute_once` does one command over
a plain socket (greeting, ``qmp_capabilities``, the command, events skipped),
for those hot paths.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from nixgen.runtime.errors import QMPCommandError, QMPConnectionError

if TYPE_CHECKING:
    import asyncio
    import socket

__all__ = ["QMP", "ctrl_alt_del_events", "execute_once", "socket_accepts"]

# Ctrl-Alt-Del as QEMU key events: what microvm.nix's clean shutdown of a
# qemu guest sends (with -no-reboot, the guest's reboot makes QEMU exit).
_CTRL_ALT_DEL = ("ctrl", "alt", "delete")


#: sun_path holds 108 bytes with its NUL; longer paths are reached through /proc.
_SUN_PATH_MAX = 107


def connect_unix(path: Path, timeout: float) -> socket.socket:
    """A connected unix stream socket, even when ``path`` is longer than a
    socket address may be (through ``/proc/self/fd/DIRFD/NAME`` on Linux)."""
    import socket  # (with logging, 7 ms of imports `nixgen list` does without)

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        if len(os.fsencode(path)) <= _SUN_PATH_MAX:
            sock.connect(str(path))
            return sock
        folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            sock.connect(f"/proc/self/fd/{folder}/{path.name}")
        finally:
            os.close(folder)
    except BaseException:
        sock.close()
        raise
    return sock


def socket_accepts(path: Path, timeout: float = 0.5) -> bool:
    """Whether something listens on the unix socket ``path`` (connects and hangs up)."""
    try:
        connect_unix(path, timeout).close()
    except OSError:
        return False
    return True


def execute_once(
    path: Path, command: str, arguments: Mapping[str, Any] | None = None, *, timeout: float = 2.0
) -> Any:
    """Run one QMP command in a session of its own; its ``return`` value.

    A plain socket and JSON lines: read the greeting, negotiate
    capabilities, send the command, skip events until its reply.  Raises
    :class:`QMPConnectionError` when nothing answers as QMP, and
    :class:`QMPCommandError` when QEMU refuses the command.
    """
    import json

    try:
        with connect_unix(path, timeout) as sock, sock.makefile("rb") as replies:
            greeting = _message(replies)
            if "QMP" not in greeting:
                raise QMPConnectionError(f"no QMP server at {path}: greeted with {greeting!r}")
            for name, args in (("qmp_capabilities", None), (command, arguments)):
                request: dict[str, Any] = {"execute": name}
                if args:
                    request["arguments"] = dict(args)
                sock.sendall(json.dumps(request).encode() + b"\n")
                while "event" in (reply := _message(replies)):
                    pass
                if "error" in reply:
                    error = reply["error"]
                    raise QMPCommandError(name, str(error.get("class")), str(error.get("desc")))
            return reply.get("return")
    except (OSError, ValueError, EOFError) as err:
        if command == "quit" and isinstance(err, EOFError):
            return None  # QEMU may hang up before its reply
        raise QMPConnectionError(f"QMP {command} on {path} failed: {err!r}") from err


def _message(replies: Any) -> dict[str, Any]:
    import json

    line = replies.readline()
    if not line:
        raise EOFError("QEMU closed the connection")
    data = json.loads(line)
    if not isinstance(data, dict):
        raise ValueError(f"not a QMP message: {line!r}")
    return data


def ctrl_alt_del_events() -> dict[str, Any]:
    """The arguments of ``input-send-event`` that press Ctrl-Alt-Del."""
    return {
        "events": [
            {"type": "key", "data": {"down": down, "key": {"type": "qcode", "data": key}}}
            for down in (True, False)
            for key in _CTRL_ALT_DEL
        ]
    }


class QMP:
    """A QMP session over a unix socket; use as a context manager or call close()."""

    def __init__(self, path: Path | str, *, timeout: float = 5.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Any = None

    # ---------------------------------------------------------------- session

    def connect(self) -> QMP:
        import asyncio  # heavy, like qemu.qmp: only when a connection is made
        import logging

        from qemu.qmp import QMPClient

        logging.getLogger("qemu.qmp").addHandler(logging.NullHandler())
        self._loop = asyncio.new_event_loop()
        self._client = QMPClient("nixgen")
        try:
            sock = connect_unix(self.path, self.timeout)
            sock.setblocking(False)
            self._run(self._client.connect(sock))
        except Exception as err:
            self.close()
            raise QMPConnectionError(f"no QMP server at {self.path}: {err}") from err
        return self

    def close(self) -> None:
        loop, client = self._loop, self._client
        self._loop = self._client = None
        if loop is None:
            return
        import asyncio

        try:
            if client is not None:
                loop.run_until_complete(asyncio.wait_for(client.disconnect(), self.timeout))
        except Exception:  # a server that hung up (after `quit`) is fine
            pass
        finally:
            loop.close()

    def __enter__(self) -> QMP:
        return self.connect() if self._client is None else self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def _run(self, work: Any) -> Any:
        if self._loop is None:
            raise QMPConnectionError(f"QMP session to {self.path} is not open")
        import asyncio

        return self._loop.run_until_complete(asyncio.wait_for(work, self.timeout))

    # ---------------------------------------------------------------- commands

    def execute(self, command: str, arguments: Mapping[str, Any] | None = None) -> Any:
        """Run one QMP command and return its ``return`` value."""
        from qemu.qmp import ExecuteError

        try:
            return self._run(self._client.execute(command, dict(arguments or {}) or None))
        except ExecuteError as err:
            error = err.error.error
            raise QMPCommandError(command, error.class_, error.desc) from err
        except (TimeoutError, OSError, EOFError) as err:
            raise QMPConnectionError(f"QMP {command} on {self.path} failed: {err!r}") from err
        except Exception as err:
            # ExecInterruptedError, StateError: the connection went away mid-command
            raise QMPConnectionError(f"QMP {command} on {self.path} failed: {err!r}") from err

    def status(self) -> str:
        """The VM's run state: ``running``, ``paused``, ``shutdown``, ``internal-error``, …"""
        result = self.execute("query-status")
        return str(result.get("status")) if isinstance(result, dict) else "unknown"

    def balloon_mib(self) -> int | None:
        """The guest's memory after ballooning in MiB; None without a balloon device."""
        try:
            result = self.execute("query-balloon")
        except QMPCommandError:
            return None
        actual = result.get("actual") if isinstance(result, dict) else None
        return int(actual) // (1 << 20) if isinstance(actual, int) else None

    def vcpus(self) -> int | None:
        result = self.execute("query-cpus-fast")
        return len(result) if isinstance(result, list) else None

    def memory_mib(self) -> int | None:
        """The guest's base memory in MiB."""
        try:
            result = self.execute("query-memory-size-summary")
        except QMPCommandError:
            return None
        base = result.get("base-memory") if isinstance(result, dict) else None
        return int(base) // (1 << 20) if isinstance(base, int) else None

    def ctrl_alt_del(self) -> None:
        """Press Ctrl-Alt-Del on the guest's keyboard (a NixOS guest reboots, and
        QEMU with ``-no-reboot`` exits)."""
        self.execute("input-send-event", ctrl_alt_del_events())

    def powerdown(self) -> None:
        """Press the ACPI power button (only a guest that listens for it reacts)."""
        self.execute("system_powerdown")

    def quit(self) -> None:
        """End QEMU at once (the guest gets no say)."""
        with contextlib.suppress(QMPConnectionError):  # QEMU may hang up before its reply
            self.execute("quit")
