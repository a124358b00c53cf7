"""``nixgen run/stop/status/list/update/console/balloon``: run and manage guests.

Thin commands over :mod:`nixgen.runtime`; see docs/running-guests.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

from nixgen.cli import nixopts, output
from nixgen.cli.output import echo
from nixgen.cli.parsing import argument, command, directory, file, int_at_least, option
from nixgen.errors import NixgenError
from nixgen.process.errors import CommandError
from nixgen.runtime import (
    DEFAULT_BOOT_TIMEOUT,
    DEFAULT_STOP_TIMEOUT,
    GuestRuntime,
    GuestState,
    GuestStatus,
    Runtime,
    UpdateResult,
)
from nixgen.runtime.console import DETACH_KEY, reader_after_tail
from nixgen.runtime.errors import BootError
from nixgen.runtime.manager import environ_state_root

F = TypeVar("F", bound=Callable[..., Any])


def _state_option(function: F) -> F:
    return option(
        "--state-dir",
        type=directory,
        metavar="DIR",
        default=None,
        envvar="NIXGEN_STATE_DIR",
        help="Folder holding one state folder per guest (default: PROJECT/.nixgen/vms; "
        "microvm.nix's host module uses /var/lib/microvms). Env: NIXGEN_STATE_DIR.",
    )(function)


def _runtime(
    flake_dir: Path | None,
    state_dir: Path | None,
    override_inputs: tuple[tuple[str, str], ...] = (),
    nix_option: tuple[tuple[str, str], ...] = (),
    nix_timeout: float | None = None,
    **kw: Any,
) -> Runtime:
    project = _project(flake_dir)
    state_dir = state_dir or environ_state_root()
    if project is None and state_dir is None:
        raise NixgenError(
            f"{Path().resolve()} is not a project (no flake.nix or nixgen.toml here)",
            hint="run nixgen in the project folder, pass --flake DIR, or --state-dir DIR",
        )
    # No nix settings given: no Nix runner either (its import costs `nixgen list` 10 ms).
    given = override_inputs or nix_option or nix_timeout is not None
    nix = nixopts.make_nix(override_inputs, nix_option, nix_timeout) if given else None
    return Runtime(project, state_root=state_dir, nix=nix, **kw)


def _project(flake_dir: Path | None) -> Path | None:
    """``--flake DIR``, else the current folder when it holds a flake or a nixgen.toml."""
    if flake_dir is not None:
        return flake_dir
    here = Path()
    if (here / "flake.nix").exists() or (here / "nixgen.toml").exists():
        return here
    return None


def _cached_runner(
    project: Path,
    name: str,
    override_inputs: tuple[tuple[str, str], ...],
    nix_option: tuple[tuple[str, str], ...],
) -> Path | None:
    """The runner of ``name`` that the build cache holds for these nix settings,
    read as a no-op ``nixgen build`` reads it (before nix's side of nixgen, the
    Nix runner and its event classes, is imported); None when nix must run."""
    from nixgen.buildcache import STATE_DIR, cached_entries, fingerprint

    root = project.resolve()
    key = fingerprint(root, override_inputs=dict(override_inputs), options=dict(nix_option))
    hit = cached_entries(root / STATE_DIR, key, [name])
    return Path(hit[name]["runner"]) if hit is not None else None


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    return f"{hours // 24}d{hours % 24}h"


# ---------------------------------------------------------------------- run


@command("run")
@argument("name")
@nixopts.flake_option
@_state_option
@nixopts.nix_options
@option("--foreground", action="store_true", help="Run attached to this terminal until it exits.")
@option("--wait", action="store_true", help="Return once the guest has booted.")
@option(
    "--wait-for",
    choices=["marker", "socket", "either"],
    default="marker",
    show_default=True,
    help="What --wait waits for: the boot marker on the console, or a control socket.",
)
@option("--marker", default=None, metavar="REGEX", help="Boot marker (a regex).")
@option(
    "--timeout",
    type=float,
    default=DEFAULT_BOOT_TIMEOUT,
    show_default=True,
    metavar="SECONDS",
    help="How long --wait waits.",
)
@option("--no-build", action="store_true", help="Start what `current` points at; do not build.")
@option(
    "--keep-on-failure",
    action="store_true",
    help="Leave a guest that did not boot running (--wait).",
)
def run_command(
    name: str,
    flake_dir: Path | None,
    state_dir: Path | None,
    override_inputs: tuple[tuple[str, str], ...],
    nix_option: tuple[tuple[str, str], ...],
    nix_timeout: float | None,
    foreground: bool,
    wait: bool,
    wait_for: str,
    marker: str | None,
    timeout: float,
    no_build: bool,
    keep_on_failure: bool,
) -> None:
    """Build guest NAME if needed and start it in the background.

    Its console goes to STATE/NAME/console.log (`nixgen console NAME`);
    --foreground runs it attached to this terminal instead.
    """
    project = _project(flake_dir)
    build = project is not None and not no_build
    # The build cache's answer needs no progress display, nor nix's side of nixgen.
    runner = None
    if project is not None and build:
        runner = _cached_runner(project, name, override_inputs, nix_option)
    if runner is not None:
        # The override inputs only choose what is built; a GC root is registered
        # with nix's options alone (no Nix runner when none was given).
        override_inputs = ()
    runtime = _runtime(flake_dir, state_dir, override_inputs, nix_option, nix_timeout)
    guest = runtime.guest(name)
    if build and runner is None:
        from nixgen.cli.progress import progress

        with progress("building") as report:
            guest.on_event = report
            runner = guest.build()
    if foreground:
        ended = guest.run_foreground(build=False, runner=runner)
        code = ended.returncode if ended is not None else None
        if ended is not None and ended.crashed:
            echo(f"nixgen: guest {name!r} ended: {ended.describe()}", err=True)
        raise SystemExit(code or 0)
    started = guest.start(build=False, runner=runner)
    echo(f"started {name} (pid {started.pid}); console: {started.console}")
    if not wait:
        return
    try:
        seconds = guest.wait_booted(
            timeout,
            marker=marker,
            until=wait_for,  # type: ignore[arg-type]  # the parser's choices checked it
        )
    except BootError:
        if not keep_on_failure and guest.is_running():
            guest.stop()
            echo(f"stopped {name}, which did not boot (--keep-on-failure keeps it)", err=True)
        raise
    echo(f"{name} booted in {seconds:.2f} s")


# ---------------------------------------------------------------------- stop


@command("stop")
@argument("names", nargs="+")
@nixopts.flake_option
@_state_option
@option(
    "--timeout",
    type=float,
    default=DEFAULT_STOP_TIMEOUT,
    show_default=True,
    metavar="SECONDS",
    help="A booted guest that reacts gets 2/3 of it to shut down cleanly; then SIGKILL.",
)
def stop_command(
    names: tuple[str, ...], flake_dir: Path | None, state_dir: Path | None, timeout: float
) -> None:
    """Stop guests NAMES: cleanly where the runner can, else by signals."""
    runtime = _runtime(flake_dir, state_dir)
    for name in names:
        result = runtime.guest(name).stop(timeout=timeout)
        if not result.was_running:
            echo(f"{name} was not running")
            continue
        how = result.exit.describe() if result.exit else "exit unknown"
        where = f"{result.phase}; " if result.phase and result.phase != "booted" else ""
        # a loaded machine gives the guest more time to react: say why it took longer
        busy = f"{result.cpu_wait:.2f} s of it for a busy CPU; " if result.cpu_wait >= 0.05 else ""
        echo(f"stopped {name} with {result.method} in {result.seconds:.2f} s ({where}{busy}{how})")
        if len(result.steps) > 1:  # it took escalating: say what was tried
            for step in result.steps:
                echo(f"  {step}")


# ---------------------------------------------------------------------- status / list


def _status_lines(status: GuestStatus) -> list[str]:
    head = f"{status.name}: {status.state}"
    if status.running:
        head += f", pid {status.pid}, up {_duration(status.uptime)}"
        if status.managed_by == "other":
            head += " (not started by nixgen)"
    elif status.exit is not None:
        ago = (
            f", {_duration(time.time() - status.exit.ended_at)} ago" if status.exit.ended_at else ""
        )
        head += f" ({status.exit.describe()}{ago})"
    lines = [head]
    facts = []
    if status.hypervisor:
        facts.append(status.hypervisor)
    if status.vcpu is not None:
        facts.append(f"{status.vcpu} vCPU")
    if status.mem is not None:
        facts.append(f"{status.mem} MiB")
    if status.balloon_mib is not None:
        facts.append(f"balloon {status.balloon_mib} MiB")
    if status.run_state is not None:
        facts.append(f"QMP: {status.run_state}")
    if facts:
        lines.append("  " + ", ".join(facts))
    lines.append(f"  runner   {status.current or '-'} ({status.freshness})")
    if status.booted is not None and status.booted != status.current:
        lines.append(f"  booted   {status.booted}")
    if status.outdated and status.expected is not None:
        lines.append(f"  flake    {status.expected} (run `nixgen update {status.name}`)")
    if status.stale:
        lines.append(f"  restart to boot current: `nixgen update {status.name} --restart`")
    lines.append(f"  state    {status.state_dir}")
    lines.extend(f"  note: {note}" for note in status.notes)
    if status.console_tail:
        lines.append("  console (last lines):")
        lines.extend(f"    {line}" for line in status.console_tail)
    return lines


def _collect(
    runtime: Runtime, names: Sequence[str], no_eval: bool, lines: int
) -> list[GuestStatus]:
    declared = runtime.declaration(evaluate=not no_eval)
    if declared.names and declared.complete:  # every guest is known: catch typos
        known = {*declared.names, *runtime.known()}
        unknown = [n for n in names if n not in known]
        if unknown:
            # the same failure, and exit status, as `nixgen show NOSUCH`
            raise NixgenError(
                f"no guest(s) {', '.join(unknown)} in {runtime.project}",
                hint="the guests are: " + ", ".join(sorted(known)),
            )
    _declaration_notes(declared.notes)
    return runtime.status(
        list(names) or None, evaluate=not no_eval, tail_lines=lines, declaration=declared
    )


def _declaration_notes(notes: Sequence[str]) -> None:
    """What was not read of the flake (the guests' own notes say why it was not evaluated)."""
    for note in notes:
        if not note.startswith("not evaluated"):
            output.secho(f"note: {note}", fg="yellow", err=True)


@command("status")
@argument("names", nargs="*")
@nixopts.flake_option
@_state_option
@nixopts.nix_options
@output.json_option("Print the status as JSON.")
@option("--no-eval", action="store_true", help="Do not evaluate the flake (outdated unknown).")
@option("-n", "--lines", type=int, default=10, show_default=True, help="Console lines.")
def status_command(
    names: tuple[str, ...],
    flake_dir: Path | None,
    state_dir: Path | None,
    override_inputs: tuple[tuple[str, str], ...],
    nix_option: tuple[tuple[str, str], ...],
    nix_timeout: float | None,
    as_json: bool,
    no_eval: bool,
    lines: int,
) -> None:
    """Show guests NAMES (default: all): state, pid, uptime, hypervisor, vcpu,
    mem, and whether they are current, outdated or stale."""
    runtime = _runtime(flake_dir, state_dir, override_inputs, nix_option, nix_timeout)
    found = _collect(runtime, names, no_eval, lines)
    if as_json:
        echo(json.dumps([s.to_json() for s in found], indent=2))
        return
    if not found:
        echo("no guests")
    for index, status in enumerate(found):
        if index:
            echo()
        colour = {"running": "green", "crashed": "red"}.get(str(status.state))
        first, *rest = _status_lines(status)
        output.secho(first, fg=colour)
        for line in rest:
            echo(line)


@command("list")
@nixopts.flake_option
@_state_option
@nixopts.nix_options
@output.json_option("Print the guests as JSON.")
@option("--no-eval", action="store_true", help="Do not evaluate the flake (outdated unknown).")
def list_command(
    flake_dir: Path | None,
    state_dir: Path | None,
    override_inputs: tuple[tuple[str, str], ...],
    nix_option: tuple[tuple[str, str], ...],
    nix_timeout: float | None,
    as_json: bool,
    no_eval: bool,
) -> None:
    """List every guest with its state, like microvm.nix's `microvm -l`."""
    runtime = _runtime(flake_dir, state_dir, override_inputs, nix_option, nix_timeout)
    declared = runtime.declaration(evaluate=not no_eval)
    found = runtime.status(evaluate=not no_eval, live=False, tail_lines=0, declaration=declared)
    _declaration_notes(declared.notes)
    if as_json:
        echo(json.dumps([s.to_json() for s in found], indent=2))
        return
    headers = ["name", "state", "pid", "uptime", "hypervisor", "vcpu", "mem", "runner"]
    rows = [
        [
            s.name,
            str(s.state)
            if s.state is not GuestState.CRASHED or s.exit is None
            # e.g. "crashed (3)" / "crashed (SIGKILL)"
            else f"crashed ({s.exit.describe().split()[-1]})",
            str(s.pid) if s.pid else "-",
            _duration(s.uptime),
            s.hypervisor or "-",
            str(s.vcpu) if s.vcpu is not None else "-",
            f"{s.mem} MiB" if s.mem is not None else "-",
            s.freshness,
        ]
        for s in found
    ]
    if rows:
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
        echo("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
        for row in rows:
            echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    else:
        echo("no guests")
    failed = [*declared.notes, *(n for s in found for n in s.notes)]
    for note in sorted({n for n in failed if n.startswith("not evaluated")}):
        output.secho(f"note: {note}", fg="yellow", err=True)


# ---------------------------------------------------------------------- update


def _update_lines(result: UpdateResult) -> list[str]:
    if not result.changed:
        lines = [f"{result.name}: unchanged ({result.new})"]
        if result.restarted:  # an earlier update switched it; it ran the old runner
            lines.append("  restarted: it was running an older runner")
        return lines
    what = f"{result.old} → {result.new}" if result.old else f"new {result.new}"
    state = (
        "restarted"
        if result.restarted
        else ("running the old runner: restart it (--restart)" if result.running else "stopped")
    )
    lines = [f"{result.name}: {what}", f"  {state}"]
    if result.diff:
        lines.append("  nix store diff-closures:")
        lines.extend(f"    {line}" for line in result.diff.splitlines())
    elif result.diff is not None:
        lines.append("  (no package versions or sizes changed)")
    return lines


@command("update")
@argument("names", nargs="*")
@nixopts.flake_option
@_state_option
@nixopts.nix_options
@option("-R", "--restart", action="store_true", help="Restart running guests whose runner changed.")
@option("--no-diff", action="store_true", help="Do not compare the closures.")
@nixopts.jobs_option
@output.json_option("Print what was done as JSON.")
def update_command(
    names: tuple[str, ...],
    flake_dir: Path | None,
    state_dir: Path | None,
    override_inputs: tuple[tuple[str, str], ...],
    nix_option: tuple[tuple[str, str], ...],
    nix_timeout: float | None,
    restart: bool,
    no_diff: bool,
    jobs: int | Literal["auto"] | None,
    as_json: bool,
) -> None:
    """Rebuild guests NAMES (default: all) in one nix build and switch their
    `current` runner; with --restart, restart those running an old runner."""
    from nixgen.cli.progress import progress

    with progress("building") as report:
        runtime = _runtime(
            flake_dir, state_dir, override_inputs, nix_option, nix_timeout, on_event=report
        )
        results = runtime.update(list(names) or None, restart=restart, diff=not no_diff, jobs=jobs)
    if as_json:
        echo(json.dumps([r.to_json() for r in results], indent=2))
        return
    for result in results:
        for line in _update_lines(result):
            echo(line)


# ---------------------------------------------------------------------- console / balloon


@command("console")
@argument("name")
@nixopts.flake_option
@_state_option
@option("-n", "--lines", type=int, default=20, show_default=True, help="Lines shown first.")
@option("--no-follow", action="store_true", help="Print the last lines and exit.")
@option(
    "--attach",
    action="store_true",
    help="Type into the console too (a terminal: Ctrl-] detaches); the guest keeps running.",
)
def console_command(
    name: str,
    flake_dir: Path | None,
    state_dir: Path | None,
    lines: int,
    no_follow: bool,
    attach: bool,
) -> None:
    """Follow guest NAME's console (like tail -f); Ctrl-C leaves the guest running.

    With --attach, what you type goes to the guest's serial console; Ctrl-]
    detaches. Piped input is sent as it is, and the command detaches at its end.
    """
    guest = _runtime(flake_dir, state_dir).guest(name)
    if not guest.state.console.exists():
        raise NixgenError(
            f"guest {name!r} has no console log ({guest.state.console})",
            hint=f"start it with `nixgen run {name}`",
        )
    if attach:
        _attach(guest, lines)
        return
    if no_follow:
        for line in guest.console_tail(lines):
            echo(line)
        return
    try:
        for text in guest.follow_console(lines=lines):
            echo(text, nl=False)
    except KeyboardInterrupt:
        echo(f"\n(left the console; {name} keeps running)", err=True)


def _attach(guest: GuestRuntime, lines: int) -> None:
    """Relay the terminal to the guest's console until Ctrl-], the end of input or the guest's end."""
    import termios
    import tty

    name = guest.name
    sink = guest.console_input()
    start, reader = reader_after_tail(guest.state.console, lines)
    stdin = sys.stdin.fileno()
    terminal = os.isatty(stdin)
    saved = termios.tcgetattr(stdin) if terminal else None
    how = "detached"
    try:
        if terminal:
            tty.setraw(stdin, termios.TCSANOW)  # (not TCSAFLUSH: keep what was typed ahead)
        end = "\r\n" if terminal else "\n"  # raw: no newline translation
        banner = f"attached to {name}'s console" + ("; Ctrl-] detaches" if terminal else "")
        echo(banner + end, nl=False, err=True)
        for line in start:
            echo(line + end, nl=False)
        ended_input = None  # when the piped input ended
        next_check = time.monotonic()
        while True:
            if ended_input is None:
                ready, _, _ = select.select([stdin], [], [], 0.02)
            else:
                ready = []
                time.sleep(0.02)
            if ready:
                data = os.read(stdin, 4096)
                if not data:
                    ended_input = time.monotonic()
                elif DETACH_KEY in data:
                    sink.send(data[: data.index(DETACH_KEY)])
                    break
                else:
                    sink.send(data)
            text = reader.read()
            if text:
                echo(text, nl=False)
                if ended_input is not None:
                    ended_input = time.monotonic()
            elif ended_input is not None and time.monotonic() - ended_input > 0.5:
                break  # piped input sent and the guest quiet since: done
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + 0.5
                if not guest.is_running():
                    echo(reader.read(), nl=False)
                    how = "the guest stopped"
                    break
    finally:
        if saved is not None:
            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
        sink.close()
        reader.close()
    keeps = f"; {name} keeps running" if how == "detached" else ""
    echo(f"\r\n({how}{keeps})", err=True)


@command("ssh", unknown_options_are_arguments=True)
@argument("name")
@argument("args", nargs="*")
@nixopts.flake_option
@_state_option
@option("-l", "--login", dest="user", default="root", show_default=True, help="User to log in as.")
@option("-i", "--identity", type=file, default=None, metavar="KEY", help="ssh's -i KEY.")
@option(
    "--print", dest="print_only", action="store_true", help="Print the ssh command; do not run it."
)
def ssh_command(
    name: str,
    args: tuple[str, ...],
    flake_dir: Path | None,
    state_dir: Path | None,
    user: str,
    identity: str | None,
    print_only: bool,
) -> None:
    """SSH into running guest NAME: over vsock when it has a vsock CID (as
    microvm.nix's `microvm -s`), else to a port forwarded to its port 22, else
    to its address on a network of the project.

    ARGS: a command to run there."""
    import shlex

    options = ("-i", identity) if identity else ()
    guest = _runtime(flake_dir, state_dir).guest(name)
    command = guest.ssh_command(args, user=user, options=options)
    if print_only:
        echo(shlex.join(command.argv))
        return
    echo(f"connecting to {name} over {command.via}", err=True)
    from nixgen import process

    try:
        client = process.spawn(command.argv, quiet=False)
    except CommandError as err:
        raise NixgenError(
            f"cannot run {command.argv[0]}: {err.message}",
            hint="install an ssh client (Debian: apt-get install openssh-client)",
        ) from err
    # ssh owns the terminal now: a Ctrl-C is its business (or the remote's)
    with _ignoring_interrupts():
        code = client.wait()
    raise SystemExit(code)


@contextlib.contextmanager
def _ignoring_interrupts() -> Iterator[None]:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@command("destroy")
@argument("names", nargs="+")
@nixopts.flake_option
@_state_option
@option("-y", "--yes", action="store_true", help="Do not ask.")
@option("--stop", action="store_true", help="Stop a running guest first (else it is refused).")
def destroy_command(
    names: tuple[str, ...], flake_dir: Path | None, state_dir: Path | None, yes: bool, stop: bool
) -> None:
    """Remove guests NAMES' state: state folder, volumes, console logs, GC roots.

    The flake is left as it is (`nixgen rm NAME` removes a guest from it).
    Asks first unless --yes.
    """
    runtime = _runtime(flake_dir, state_dir)
    plans = {name: runtime.destroy_plan(name) for name in names}
    if not any(plans.values()):
        echo("nothing to remove")
        return
    for name, paths in plans.items():
        echo(f"{name}: " + ("nothing to remove" if not paths else "would remove"))
        for path in paths:
            echo(f"  {path}")
    if not yes:
        if not sys.stdin.isatty():
            raise NixgenError(
                "nixgen destroy removes data and asks first, but there is no terminal to ask on",
                hint="pass --yes to remove without asking",
            )
        output.confirm("remove these?")
    for name, paths in plans.items():
        if not paths:
            continue
        result = runtime.destroy(name, stop=stop)
        if result.stopped is not None and result.stopped.was_running:
            echo(f"stopped {name} with {result.stopped.method}")
        echo(f"destroyed {name} ({len(result.removed)} removed)")


@command("balloon")
@argument("name")
@argument("mib", type=int_at_least(0), metavar="MB")
@nixopts.flake_option
@_state_option
def balloon_command(name: str, mib: int, flake_dir: Path | None, state_dir: Path | None) -> None:
    """Set guest NAME's memory balloon target to MB MiB (bin/microvm-balloon)."""
    answer = _runtime(flake_dir, state_dir).guest(name).balloon(mib)
    if answer.strip():
        echo(answer.rstrip("\n"))
