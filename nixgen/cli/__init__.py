"""The command line: thin commands over the library, one module per command group.

Only this package prints.  Every command is a call a script can make through
:mod:`nixgen` too.  A command's module is imported when that command runs
(``nixgen --help`` imports none of them), so each command pays only for the
parts of nixgen it uses.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from nixgen import _gc
from nixgen.cli.parsing import (
    USAGE_STATUS,
    Command,
    Invocation,
    begin,
    columns,
    current,
    new_parser,
    usage_error,
)

# typing costs ~4 ms to import and nothing here needs it at run time (mypy
# reads a TYPE_CHECKING of one's own as typing's): the command line starts fast.
TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import NoReturn

__all__ = [
    "COMMANDS",
    "EXIT_FAILED",
    "EXIT_FILES",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_LOCKED",
    "EXIT_USAGE",
    "help_text",
    "invoke",
    "main",
]

#: what nixgen reports as failed: bad input, a failing nix, an unknown guest
EXIT_FAILED = 1
#: the command line itself is wrong: an unknown option, a missing argument (argparse's code too)
EXIT_USAGE = USAGE_STATUS
#: a file could not be read or written: read-only, disk full, not a folder, …
EXIT_FILES = 3
#: another nixgen command held the project lock for too long
EXIT_LOCKED = 4
#: a bug in nixgen (EX_SOFTWARE); NIXGEN_DEBUG=1 shows the traceback
EXIT_INTERNAL = 70
#: stopped with Ctrl-C
EXIT_INTERRUPTED = 130

_USAGE = "nixgen [OPTIONS] COMMAND [ARGS]..."

CONVENTIONS = """\
Output:
  stdout   results (tables, paths, JSON)
  stderr   progress, notes, warnings and errors
  --json   one JSON document on stdout, on success and on failure
           ({"ok": false, "error": {...}} when the command failed)
  colour   off when NO_COLOR is set or TERM=dumb
  -v       errors show the full commands nixgen ran

Exit status:
  0    done
  1    failed: invalid input, a nix or guest error, an unknown guest
  2    usage error: an unknown option, a missing or malformed argument
  3    a file could not be read or written (read-only, disk full, not a folder)
  4    the project lock was held too long by another nixgen command
  70   a bug in nixgen (NIXGEN_DEBUG=1 shows the traceback)
  130  interrupted (Ctrl-C)
  run --foreground exits with the guest's own status
"""

#: Each command: its module, the :class:`Command` in it, and the first paragraph
#: of its help (what ``nixgen --help`` lists; a test keeps it equal to the
#: command's own).
COMMANDS: dict[str, tuple[str, str, str]] = {
    "add": (
        "nixgen.cli.edit",
        "add_command",
        "Add guest NAME, shaped like the guests already in the flake.",
    ),
    "balloon": (
        "nixgen.cli.run",
        "balloon_command",
        "Set guest NAME's memory balloon target to MB MiB (bin/microvm-balloon).",
    ),
    "build": (
        "nixgen.cli.build",
        "build_command",
        "Build guests NAMES (default: all) in one nix call and list their artifacts.",
    ),
    "check": (
        "nixgen.cli.check",
        "check_command",
        "Validate the guests, then evaluate them (and the hosts) with nix without building.",
    ),
    "console": (
        "nixgen.cli.run",
        "console_command",
        "Follow guest NAME's console (like tail -f); Ctrl-C leaves the guest running.",
    ),
    "deploy": (
        "nixgen.cli.deploy",
        "deploy_command",
        "Deploy HOSTS (default: every host with a full configuration).",
    ),
    "destroy": (
        "nixgen.cli.run",
        "destroy_command",
        "Remove guests NAMES' state: state folder, volumes, console logs, GC roots.",
    ),
    "graph": (
        "nixgen.cli.graph",
        "graph_command",
        "Draw the hosts, networks and guests of the project in DIRECTORY.",
    ),
    "hypervisors": (
        "nixgen.cli.render",
        "hypervisors_command",
        "Print what each hypervisor supports (Markdown table).",
    ),
    "init": (
        "nixgen.cli.init",
        "init_command",
        "Create a nixgen project (nixgen.toml, flake.nix, vms/) in DIRECTORY.",
    ),
    "list": (
        "nixgen.cli.run",
        "list_command",
        "List every guest with its state, like microvm.nix's `microvm -l`.",
    ),
    "rename": (
        "nixgen.cli.edit",
        "rename_command",
        "Rename guest OLD to NEW: its name, networking.hostName, runner package, own module file.",
    ),
    "render": (
        "nixgen.cli.render",
        "render_command",
        "Validate nixgen.toml, then (re)write the flake files it generates.",
    ),
    "rm": (
        "nixgen.cli.edit",
        "rm_command",
        "Remove guest NAME and its runner package (and its module file, if nixgen generated it).",
    ),
    "run": (
        "nixgen.cli.run",
        "run_command",
        "Build guest NAME if needed and start it in the background.",
    ),
    "ssh": (
        "nixgen.cli.run",
        "ssh_command",
        "SSH into running guest NAME: over vsock when it has a vsock CID (as microvm.nix's "
        "`microvm -s`), else to a port forwarded to its port 22, else to its address on a "
        "network of the project.",
    ),
    "set": (
        "nixgen.cli.edit",
        "set_command",
        "Set options of guest NAME, in place: KEY is an option path, VALUE a Nix literal.",
    ),
    "show": (
        "nixgen.cli.edit",
        "show_command",
        "Show the guests of a flake and their settings (nix eval where the text is computed).",
    ),
    "status": (
        "nixgen.cli.run",
        "status_command",
        "Show guests NAMES (default: all): state, pid, uptime, hypervisor, vcpu, mem, "
        "and whether they are current, outdated or stale.",
    ),
    "stop": (
        "nixgen.cli.run",
        "stop_command",
        "Stop guests NAMES: cleanly where the runner can, else by signals.",
    ),
    "unset": (
        "nixgen.cli.edit",
        "unset_command",
        "Remove options of guest NAME: every binding that sets them (microvm.nix's default applies).",
    ),
    "update": (
        "nixgen.cli.run",
        "update_command",
        "Rebuild guests NAMES (default: all) in one nix build and switch their `current` "
        "runner; with --restart, restart those running an old runner.",
    ),
}


def _load(name: str) -> Command:
    """The command called ``name``, imported from its module now that it runs."""
    module, attribute, _ = COMMANDS[name]
    command = getattr(importlib.import_module(module), attribute)
    assert isinstance(command, Command)
    return command


def help_text() -> str:
    """``nixgen --help``: the options, every command's first paragraph, the conventions."""
    import textwrap

    width = max(columns() - 2, 40)
    column = max(len(name) for name in COMMANDS) + 4
    rows = []
    for name in sorted(COMMANDS):
        lines = textwrap.wrap(COMMANDS[name][2], max(width - column, 20), break_on_hyphens=False)
        rows.append(f"  {name.ljust(column - 2)}{lines[0]}")
        rows.extend(" " * column + line for line in lines[1:])
    epilog = "commands:\n" + "\n".join(rows) + "\n\n" + CONVENTIONS
    return _top_parser(epilog).format_help()


def _top_parser(epilog: str | None = None) -> argparse.ArgumentParser:
    """nixgen's own options, for the help: :func:`invoke` reads them itself."""
    parser = new_parser(
        "nixgen",
        _USAGE,
        "Declare NixOS micro-VM guests (microvm.nix) and get a readable flake.",
        epilog,
    )
    parser.add_argument("--version", action="store_true", help="Show the version and exit.")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="Show the full commands behind an error."
    )
    return parser


def _report(err: Exception) -> int:
    """The one place that turns a failure into a message and an exit code: a CLI
    user never sees a traceback (unless NIXGEN_DEBUG=1 asks for it)."""
    # Imported only when something failed: the command line starts fast.
    from nixgen.cli import output
    from nixgen.errors import FileError, NixgenError
    from nixgen.files import file_error
    from nixgen.flake.errors import ProjectLockedError

    if isinstance(err, OSError) and not isinstance(err, NixgenError):
        err = file_error(err, doing="failed")
    if isinstance(err, NixgenError):
        invocation = current()
        output.failure(err, as_json=invocation.as_json, verbose=invocation.verbose)
        if isinstance(err, ProjectLockedError):
            return EXIT_LOCKED
        return EXIT_FILES if isinstance(err, FileError) else EXIT_FAILED
    if os.environ.get("NIXGEN_DEBUG"):
        raise err
    sys.stderr.write(
        f"nixgen: internal error: {type(err).__name__}: {err}\n"
        "  hint: this is a bug in nixgen; run again with NIXGEN_DEBUG=1 for the "
        "traceback and report it\n"
    )
    return EXIT_INTERNAL


def invoke(argv: Sequence[str]) -> int:
    """Run the command line ``argv`` (without the program's name); the exit status.

    (Not ``run``: the module of ``nixgen run`` would hide it once imported.)"""
    invocation = Invocation()
    begin(invocation)
    try:
        words = list(argv)
        # nixgen's own options come before the command's name, as with git
        while words and words[0].startswith("-"):
            word = words.pop(0)
            if word in ("-h", "--help"):
                sys.stdout.write(help_text())
                return 0
            if word == "--version":
                from nixgen._version import __version__

                sys.stdout.write(f"nixgen, version {__version__}\n")
                return 0
            if word not in ("-v", "--verbose"):
                sys.stderr.write(usage_error(_USAGE, "nixgen", f"no such option: {word}"))
                return EXIT_USAGE
            invocation.verbose = True
        if not words:
            sys.stderr.write(help_text())
            return EXIT_USAGE
        name = words.pop(0)
        if name not in COMMANDS:
            sys.stderr.write(usage_error(_USAGE, "nixgen", f"no such command: {name!r}"))
            return EXIT_USAGE
        command = _load(name)
        _gc.start_up_done()
        command(words)
    except SystemExit as ended:  # --help, a usage error, or a command's own exit status
        return ended.code if isinstance(ended.code, int) else int(ended.code is not None)
    except (KeyboardInterrupt, EOFError):
        sys.stderr.write("aborted\n")
        return EXIT_INTERRUPTED
    except Exception as err:
        return _report(err)
    return 0


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point of the `nixgen` script and `python -m nixgen`."""
    _gc.pause_for_start_up()  # (invoke() in a library or test leaves the collector be)
    try:
        code = invoke(sys.argv[1:] if argv is None else argv)
    finally:
        _gc.start_up_done()  # (a --help or a usage error loads no command)
    sys.exit(code)
