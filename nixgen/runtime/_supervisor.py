"""nixgen's guest supervisor: runs one ``microvm-run`` and records how it ended.

Started by :mod:`nixgen.runtime.guest` as ``python -I -S _supervisor.py MODE
STATE LOG READY_FD PROGRAM [ARGS…]``; it imports nothing but the standard
library (and little of it: it is on the path from ``nixgen run`` to a booted
guest).

- ``background``: detaches (fork, the first process exits at once, the second
  calls setsid), so the guest outlives nixgen and belongs to a session and
  process group of its own; stdin is /dev/null, stdout and stderr go to LOG.
- ``foreground``: stays in the caller's process group with its terminal.

Both become a child subreaper, start PROGRAM with the working directory
STATE (relative sockets and volumes land there, as under microvm.nix's
``microvm@`` unit), report ``ok PID`` or ``error …`` on READY_FD, write the
``pid`` file, wait for the runner, write ``exit.json``, then end whatever the
runner left behind (helpers, orphans) and remove the ``pid`` file.  It
ignores SIGTERM/SIGINT/SIGHUP, which are meant for the runner's group.

File formats: see :mod:`nixgen.runtime.state` (JSON, written atomically).
"""

# os.path and open() on purpose: pathlib would cost import time on every start.
# ruff: noqa: PTH108, PTH110, PTH118, PTH120, PTH123, PTH208

import os
import signal
import sys
import time

_IGNORED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
# Python itself ignores these; a runner must get the default back.
_RESET = (*_IGNORED, signal.SIGPIPE, signal.SIGXFSZ, signal.SIGQUIT)
_LEFTOVER_GRACE = 3.0


def _quote(text: str) -> str:
    out = ['"']
    for char in text:
        if char in '"\\' or ord(char) < 0x20:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _json(record: dict[str, object]) -> str:
    parts = []
    for key, value in record.items():
        if value is None:
            shown = "null"
        elif value is True or value is False:
            shown = "true" if value else "false"
        elif isinstance(value, (int, float)):
            shown = repr(value)
        else:
            shown = _quote(str(value))
        parts.append(_quote(key) + ": " + shown)
    return "{" + ", ".join(parts) + "}\n"


def _write(path: str, record: dict[str, object]) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(_json(record))
    os.replace(tmp, path)


def _stat(pid: int) -> tuple[str, int, int, int, int] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()
    try:
        return fields[0], int(fields[1]), int(fields[2]), int(fields[3]), int(fields[19])
    except (IndexError, ValueError):
        return None


def _boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="utf-8") as handle:
            return handle.read().strip() or None
    except OSError:
        return None


def _subreaper() -> None:
    """Orphans of the runner's helpers become our children, so they can be ended."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except Exception:  # not Linux, or no libc: helpers are still found by process group
        pass


def _leftovers(me: int, group: int) -> list[int]:
    """Live processes that belong to the guest: our children, and our group/session."""
    try:
        entries = [int(e) for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return []
    found = []
    for pid in entries:
        if pid == me:
            continue
        info = _stat(pid)
        if info is None or info[0] in ("Z", "X", "x"):
            continue
        if info[1] == me or (group and (info[2] == group or info[3] == group)):
            found.append(pid)
    return found


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _end_leftovers(me: int, group: int) -> None:
    for number, wait in ((signal.SIGTERM, _LEFTOVER_GRACE), (signal.SIGKILL, 2.0)):
        pids = _leftovers(me, group)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, number)
            except OSError:
                continue
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            _reap()
            if not _leftovers(me, group):
                break
            time.sleep(0.02)
    _reap()


def main(argv: list[str]) -> int:
    mode, state, log, ready, program = argv[1:6]
    args = argv[5:]
    ready_fd = int(ready)
    background = mode == "background"
    if background:
        if os.fork() > 0:
            os._exit(0)
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        out = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.dup2(out, 2)  # our own complaints, if any, end up beside the console
        os.close(null)
    else:
        out = -1
    for ignored in _IGNORED:
        signal.signal(ignored, signal.SIG_IGN)
    _subreaper()
    me = os.getpid()
    group = os.getpgrp() if background else 0
    check_r, check_w = os.pipe()  # close-on-exec: EOF means exec worked
    started_at = time.time()
    runner = os.fork()
    if runner == 0:
        try:
            os.close(check_r)
            for reset in _RESET:
                signal.signal(reset, signal.SIG_DFL)
            os.chdir(state)
            # What the runner creates here (volume images, sockets) is the
            # guest's private data: readable by this user only.
            os.umask(0o077)
            if background:
                os.dup2(out, 1)
                os.dup2(out, 2)
                os.close(out)
            os.close(ready_fd)
            os.execv(program, args)
        except OSError as err:
            os.write(check_w, f"{program}: {err.strerror}".encode())
        except BaseException as err:
            os.write(check_w, f"{program}: {err!r}".encode())
        os._exit(127)
    os.close(check_w)
    failure = b""
    while True:
        chunk = os.read(check_r, 4096)
        if not chunk:
            break
        failure += chunk
    os.close(check_r)
    pid_file = os.path.join(state, "pid")
    info = _stat(runner)
    ticks = info[4] if info else None
    boot = _boot_id()
    if failure:
        os.waitpid(runner, 0)
        os.write(ready_fd, b"error " + failure.replace(b"\n", b" ") + b"\n")
        os.close(ready_fd)
        return 1
    me_info = _stat(me)
    _write(
        pid_file,
        {
            "pid": runner,
            "start_ticks": ticks,
            "supervisor": me,
            "supervisor_ticks": me_info[4] if me_info else None,
            "pgid": group or None,
            "boot_id": boot,
            "started_at": started_at,
            "runner": os.path.dirname(os.path.dirname(program)),
            "program": program,
            "foreground": not background,
        },
    )
    os.write(ready_fd, b"ok %d\n" % runner)
    os.close(ready_fd)
    status = 0
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        if pid == runner:
            break
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    _write(
        os.path.join(state, "exit.json"),
        {
            "pid": runner,
            "start_ticks": ticks,
            "exit_code": code,
            "signal": sig,
            "started_at": started_at,
            "ended_at": time.time(),
            "requested": os.path.exists(os.path.join(state, "stopping")),
            "boot_id": boot,
            "runner": os.path.dirname(os.path.dirname(program)),
        },
    )
    _end_leftovers(me, group)
    try:
        with open(pid_file, encoding="utf-8") as handle:
            mine = f'"pid": {runner},' in handle.read()
        if mine:
            os.unlink(pid_file)
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
