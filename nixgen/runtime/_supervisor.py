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
die (``PR_SET_PDEATHSIG``): they never outlive the guest.  A daemon that ends
while the guest runs is noticed at once (it is our child): the supervisor says
so in its log and in the console log, records it in ``STATE/daemons.json``
(``nixgen status`` reads it) and starts it again ``restart_delay`` seconds
later, as microvm.nix's ``microvm-virtiofsd@`` unit does (``Restart=always``,
``RestartSec=5s``).

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

# os.path and open() on purpose: pathlib (and contextlib) would cost import
# time on every start.
# ruff: noqa: PTH108, PTH110, PTH116, PTH118, PTH120, PTH123, PTH208, SIM105

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
    if os.WEXITSTATUS(status) == 0:
        return "exited (exit code 0)"
    return f"failed with exit code {os.WEXITSTATUS(status)}"


def _spawn(argv: list[str], state: str, out: int, log: str | None = None, keep: int = -1) -> int:
    """Start a helper in STATE; its pid.  ``keep``: an fd of ours it inherits.

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
                # A group of its own (in the guest's session): what it leaves
                # behind when it dies can be ended with it, as systemd ends a
                # unit's processes before restarting it; no terminal signals.
                os.setpgid(0, 0)
                null = os.open(os.devnull, os.O_RDONLY)
                os.dup2(null, 0)
                os.close(null)
                out = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            if out >= 0:
                os.dup2(out, 1)
                os.dup2(out, 2)
            if keep >= 0:
                os.set_inheritable(keep, True)
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
        #: (name, argv, sockets, the socket to listen on and pass as --fd)
        self.daemons: list[tuple[str, list[str], list[str], str | None]] = []
        self.timeout = 10.0
        self.restart_delay = 5.0
        if text == "-":
            return
        import json

        data = json.loads(text)
        self.before = [[str(a) for a in c] for c in data.get("before", [])]
        self.after = [[str(a) for a in c] for c in data.get("after", [])]
        self.daemons = [
            (
                str(d["name"]),
                [str(a) for a in d["argv"]],
                [str(s) for s in d["sockets"]],
                str(d["listen"]) if d.get("listen") else None,
            )
            for d in data.get("daemons", [])
        ]
        self.timeout = float(data.get("timeout", 10.0))
        self.restart_delay = float(data.get("restart_delay", 5.0))


class _Daemon:
    """One daemon of the guest, and what happened to it while the guest ran."""

    def __init__(
        self, name: str, argv: list[str], sockets: list[str], listen: str | None, state: str
    ) -> None:
        self.name = name
        self.argv = argv
        self.sockets = sockets
        self.listen = listen
        self.listen_fd = -1
        self.state = state
        self.log = os.path.join(state, name + ".log")
        self.pid = 0
        self.ticks: int | None = None
        self.restarts = 0
        self.last_exit: str | None = None
        self.died_at: float | None = None
        #: monotonic time of the next start while it is down
        self.due: float | None = None

    def start(self, out: int) -> None:
        argv = self.argv
        if self.listen is not None:
            if self.listen_fd < 0:
                self.listen_fd = _listen(self.state, self.listen)
            argv = [*argv, f"--fd={self.listen_fd}"]
        else:
            for sock in self.sockets:  # a dead daemon's socket: nobody listens on it
                path = os.path.join(self.state, sock)
                if self.pid and _is_socket(path):
                    try:
                        os.unlink(path)
                    except OSError:
                        pass
        self.pid = _spawn(argv, self.state, out, self.log, keep=self.listen_fd)
        info = _stat(self.pid)
        self.ticks = info[4] if info else None
        self.due = None

    def record(self) -> dict[str, object]:
        return {
            "pid": self.pid,
            "start_ticks": self.ticks,
            "state": "restarting" if self.due is not None else "running",
            "restarts": self.restarts,
            "last_exit": self.last_exit,
            "died_at": self.died_at,
            "log": self.log,
        }


def _listen(state: str, name: str) -> int:
    """A unix socket listening at ``name`` in the state folder; its fd (ours only)."""
    import socket  # only guests with daemons pay for it

    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    os.chdir(state)  # a relative name: the path may be longer than a socket address
    try:
        if _is_socket(name):
            os.unlink(name)
        server.bind(name)
        os.chmod(name, 0o600)
    finally:
        os.chdir("/")
    server.listen(16)
    return server.detach()


def _write_daemons(state: str, daemons: list[_Daemon]) -> None:
    import json  # only guests with daemons pay for it

    path = os.path.join(state, "daemons.json")
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(json.dumps({d.name: d.record() for d in daemons}) + "\n")
    os.replace(tmp, path)


def _say(out: int, log: str, text: str) -> None:
    """A line of ours, in the console log and in the daemon's own log."""
    line = f"nixgen supervisor: {text}\n".encode()
    for where in (out, log):
        try:
            if isinstance(where, int):
                if where >= 0:
                    os.write(where, line)
            else:
                handle = os.open(where, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    os.write(handle, line)
                finally:
                    os.close(handle)
        except OSError:
            pass


def _start_daemons(spec: _Spec, state: str, out: int) -> tuple[str | None, list[_Daemon]]:
    """Start the daemons and wait for their sockets; what went wrong, if anything."""
    started = [_Daemon(*entry, state) for entry in spec.daemons]
    try:
        for daemon in started:
            daemon.start(out)
    except OSError as err:
        return f"cannot listen on {daemon.listen}: {err.strerror}", started
    deadline = time.monotonic() + spec.timeout
    while True:
        waiting: list[str] = []
        for daemon in started:
            done, status = os.waitpid(daemon.pid, os.WNOHANG)
            if done:
                problem = f"{daemon.name} {_describe(status)} before the guest started"
                return problem + _tail(daemon.log), started
            waiting += [s for s in daemon.sockets if not _is_socket(os.path.join(state, s))]
        if not waiting:
            return None, started
        if time.monotonic() > deadline:
            problem = f"no socket {waiting[0]} after {spec.timeout:g} s"
            return problem + _tail(started[0].log), started
        time.sleep(0.01)


def _daemon_ended(daemon: _Daemon, status: int, delay: float, out: int) -> None:
    try:  # what it started (virtiofsd-run's virtiofsd)
        os.killpg(daemon.pid, signal.SIGKILL)
    except OSError:
        pass
    daemon.last_exit = _describe(status)
    daemon.died_at = time.time()
    daemon.due = time.monotonic() + delay
    _say(
        out,
        daemon.log,
        f"{daemon.name} (pid {daemon.pid}) {daemon.last_exit} while the guest ran; "
        f"starting it again in {delay:g} s",
    )


def _wait_for_runner(runner: int, daemons: list[_Daemon], spec: _Spec, state: str, out: int) -> int:
    """Wait for the runner to end (its wait status); restart daemons that end meanwhile."""
    by_pid = {d.pid: d for d in daemons}
    while True:
        down = [d for d in daemons if d.due is not None]
        try:
            pid, status = os.waitpid(-1, os.WNOHANG if down else 0)
        except ChildProcessError:
            return 0
        if pid == runner:
            return status
        if pid in by_pid:
            daemon = by_pid.pop(pid)
            _daemon_ended(daemon, status, spec.restart_delay, out)
            _write_daemons(state, daemons)
            continue
        if pid:
            continue  # an orphan we adopted as subreaper
        now = time.monotonic()
        for daemon in down:
            if daemon.due is not None and daemon.due <= now:
                daemon.restarts += 1
                daemon.start(out)
                by_pid[daemon.pid] = daemon
                _say(out, daemon.log, f"{daemon.name} started again (pid {daemon.pid})")
                _write_daemons(state, daemons)
        due = [d.due for d in daemons if d.due is not None]
        if due:
            time.sleep(min(0.05, max(0.0, min(due) - now)))


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
    os.set_inheritable(ready_fd, False)  # for nixgen only, not for helpers
    after = spec.after
    daemons: list[_Daemon] = []
    problem = _run_all(spec.before, state, out)
    if problem is None and spec.daemons:
        problem, daemons = _start_daemons(spec, state, out)
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
            # What the runner creates here (volume images, sockets) is the
            # guest's private data: readable by this user only.
            os.umask(0o077)
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
    if daemons:
        _write_daemons(state, daemons)
    os.write(ready_fd, b"ok %d\n" % runner)
    os.close(ready_fd)
    status = _wait_for_runner(runner, daemons, spec, state, out)
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
