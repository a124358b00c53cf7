"""nixgen's guest supervisor: runs one ``microvm-run`` and records how it ended.

Started by :mod:`nixgen.runtime.guest` as ``python -I -S _supervisor.py MODE
STATE LOG READY_FD SPEC PROGRAM [ARGS…]``; it imports nothing but the standard
library (and little of it: it is on the path from ``nixgen run`` to a booted
guest).

SPEC is ``-`` or the JSON of :class:`nixgen.runtime.helpers.Prestart`: commands
to run first (``before``: tap devices), daemons to start and whose sockets to
wait for before the runner starts (``daemons``: virtiofsd), and commands to run
once the runner and the daemons are gone (``after``).  Daemons write to
``STATE/<name>.log``, and get SIGTERM from the kernel should the supervisor
die (``PR_SET_PDEATHSIG``): they never outlive the guest.

- ``background``: detaches (fork, the first process exits at once, the second
  calls setsid), so the guest outlives nixgen and belongs to a session and
  process group of its own; the runner's stdin is the FIFO ``STATE/console.in``
  (``nixgen console --attach`` writes to it), stdout and stderr go to LOG.
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
# ruff: noqa: PTH108, PTH110, PTH116, PTH118, PTH120, PTH123, PTH208

import os
import signal
import stat
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


def _prctl(option: int, value: int) -> None:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(option, value, 0, 0, 0)
    except Exception:  # not Linux, or no libc: helpers are still found by process group
        pass


def _subreaper() -> None:
    """Orphans of the runner's helpers become our children, so they can be ended."""
    _prctl(36, 1)  # PR_SET_CHILD_SUBREAPER


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by signal {os.WTERMSIG(status)}"
    return f"failed with exit code {os.WEXITSTATUS(status)}"


def _spawn(argv: list[str], state: str, out: int, log: str | None = None) -> int:
    """Start a helper in STATE; its pid.

    A daemon (``log`` given) gets default signal handling; a command (tap
    set-up) keeps ignoring SIGTERM/SIGINT/SIGHUP as we do: a stop signals the
    guest's whole group, and ``ip link delete`` must not die half-way.
    """
    pid = os.fork()
    if pid == 0:
        try:
            for reset in _RESET if log is not None else (s for s in _RESET if s not in _IGNORED):
                signal.signal(reset, signal.SIG_DFL)
            os.chdir(state)
            if log is not None:
                _prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: never outlive us
                out = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            if out >= 0:
                os.dup2(out, 1)
                os.dup2(out, 2)
            os.execvp(argv[0], argv)
        except BaseException as err:
            os.write(2, f"nixgen supervisor: cannot run {argv[0]}: {err}\n".encode())
        os._exit(127)
    return pid


def _run_all(commands: list[list[str]], state: str, out: int, *, every: bool = False) -> str | None:
    """Run each command to its end (with ``every``, also after one failed); how
    the first that failed failed."""
    problem = None
    for argv in commands:
        _, status = os.waitpid(_spawn(argv, state, out), 0)
        if status != 0 and problem is None:
            problem = f"{' '.join(argv)} {_describe(status)}"
            if not every:
                break
    return problem


def _tail(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()[-5:]
    except OSError:
        return ""
    return ("; its log " + path + ": " + " | ".join(lines)) if lines else ""


def _is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


class _Spec:
    """The SPEC argument, read into plain lists."""

    def __init__(self, text: str) -> None:
        self.before: list[list[str]] = []
        self.after: list[list[str]] = []
        #: (name, argv, sockets)
        self.daemons: list[tuple[str, list[str], list[str]]] = []
        self.timeout = 10.0
        if text == "-":
            return
        import json

        data = json.loads(text)
        self.before = [[str(a) for a in c] for c in data.get("before", [])]
        self.after = [[str(a) for a in c] for c in data.get("after", [])]
        self.daemons = [
            (str(d["name"]), [str(a) for a in d["argv"]], [str(s) for s in d["sockets"]])
            for d in data.get("daemons", [])
        ]
        self.timeout = float(data.get("timeout", 10.0))


def _start_daemons(spec: _Spec, state: str, out: int) -> str | None:
    """Start the daemons and wait for their sockets; what went wrong, if anything."""
    started = []
    for name, argv, sockets in spec.daemons:
        log = os.path.join(state, name + ".log")
        started.append((_spawn(argv, state, out, log), name, log, sockets))
    deadline = time.monotonic() + spec.timeout
    while True:
        waiting: list[str] = []
        for pid, name, log, sockets in started:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return f"{name} {_describe(status)} before the guest started{_tail(log)}"
            waiting += [s for s in sockets if not _is_socket(os.path.join(state, s))]
        if not waiting:
            return None
        if time.monotonic() > deadline:
            return f"no socket {waiting[0]} after {spec.timeout:g} s{_tail(started[0][2])}"
        time.sleep(0.01)


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
    mode, state, log, ready, spec_text, program = argv[1:7]
    args = argv[6:]
    spec = _Spec(spec_text)
    ready_fd = int(ready)
    background = mode == "background"
    if background:
        if os.fork() > 0:
            os._exit(0)
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        out = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
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
    os.set_inheritable(ready_fd, False)  # for nixgen only, not for helpers
    after = spec.after
    problem = _run_all(spec.before, state, out)
    if problem is None and spec.daemons:
        problem = _start_daemons(spec, state, out)
    if problem is not None:
        _end_leftovers(me, group)
        _run_all(after, state, out, every=True)
        # READY_FD stays open until we exit: nixgen reads to its end, so it
        # sees no supervisor of a failed start still about
        os.write(ready_fd, b"error " + problem.encode() + b"\n")
        return 1
    # The serial console's input: a FIFO that `nixgen console --attach` writes
    # to.  The runner holds it open for reading and writing, so it never sees
    # an end of input, whoever comes and goes.
    console_in = -1
    if background:
        fifo = os.path.join(state, "console.in")
        try:
            if not stat.S_ISFIFO(os.lstat(fifo).st_mode):
                os.unlink(fifo)
                os.mkfifo(fifo, 0o600)
        except FileNotFoundError:
            os.mkfifo(fifo, 0o600)
        console_in = os.open(fifo, os.O_RDWR)
    check_r, check_w = os.pipe()  # close-on-exec: EOF means exec worked
    started_at = time.time()
    runner = os.fork()
    if runner == 0:
        try:
            os.close(check_r)
            for reset in _RESET:
                signal.signal(reset, signal.SIG_DFL)
            os.chdir(state)
            if background:
                os.dup2(console_in, 0)
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
    if console_in >= 0:
        os.close(console_in)
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
        _end_leftovers(me, group)
        _run_all(after, state, out, every=True)
        os.write(ready_fd, b"error " + failure.replace(b"\n", b" ") + b"\n")
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
    _run_all(after, state, out, every=True)
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
