"""The command line: thin commands over the library, one module per command group.

Only this package prints.  Every command is a call a script can make through
:mod:`nixgen` too.  A command's module is imported when that command runs
(``nixgen --help`` imports none of them), so each command pays only for the
parts of nixgen it uses.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

__all__ = [
    "COMMANDS",
    "EXIT_FAILED",
    "EXIT_FILES",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_LOCKED",
    "EXIT_USAGE",
    "JSON_KEY",
    "VERBOSE_KEY",
    "cli",
    "main",
]

#: what nixgen reports as failed: bad input, a failing nix, an unknown guest
EXIT_FAILED = 1
#: the command line itself is wrong: an unknown option, a missing argument (click's code)
EXIT_USAGE = 2
#: a file could not be read or written: read-only, disk full, not a folder, …
EXIT_FILES = 3
#: another nixgen command held the project lock for too long
EXIT_LOCKED = 4
#: a bug in nixgen (EX_SOFTWARE); NIXGEN_DEBUG=1 shows the traceback
EXIT_INTERNAL = 70
#: stopped with Ctrl-C
EXIT_INTERRUPTED = 130

#: ``ctx.meta`` keys: the command was given --json; nixgen was given -v
JSON_KEY = "nixgen.json"
VERBOSE_KEY = "nixgen.verbose"

CONVENTIONS = """\b
Output:
  stdout   results (tables, paths, JSON)
  stderr   progress, notes, warnings and errors
  --json   one JSON document on stdout, on success and on failure
           ({"ok": false, "error": {...}} when the command failed)
  colour   off when NO_COLOR is set or TERM=dumb
  -v       errors show the full commands nixgen ran

\b
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

#: Each command: its module, the click command in it, and the first paragraph
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


class _Group(click.Group):
    """Loads each command from its module when it is asked for, and turns every
    failure into a message and an exit code (:func:`_report`)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = COMMANDS.get(cmd_name)
        if spec is None:
            return None
        module, attribute, _ = spec
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from :data:`COMMANDS`, laid out as click lays out its own."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        # a bare stand-in command shortens each help the way the real one would
        rows = [
            (name, click.Command(name, help=COMMANDS[name][2]).get_short_help_str(limit))
            for name in names
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except Exception as err:
            ctx.exit(_report(err, ctx))


def _report(err: Exception, ctx: click.Context) -> int:
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
        output.failure(
            err,
            as_json=bool(ctx.meta.get(JSON_KEY)),
            verbose=bool(ctx.meta.get(VERBOSE_KEY)),
        )
        if isinstance(err, ProjectLockedError):
            return EXIT_LOCKED
        return EXIT_FILES if isinstance(err, FileError) else EXIT_FAILED
    if os.environ.get("NIXGEN_DEBUG"):
        raise err
    click.echo(
        f"nixgen: internal error: {type(err).__name__}: {err}\n"
        "  hint: this is a bug in nixgen; run again with NIXGEN_DEBUG=1 for the "
        "traceback and report it",
        err=True,
    )
    return EXIT_INTERNAL


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from nixgen._version import __version__

    click.echo(f"nixgen, version {__version__}")
    ctx.exit()


@click.group(
    cls=_Group, context_settings={"help_option_names": ["-h", "--help"]}, epilog=CONVENTIONS
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the version and exit.",
)
@click.option("-v", "--verbose", is_flag=True, help="Show the full commands behind an error.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """Declare NixOS micro-VM guests (microvm.nix) and get a readable flake."""
    ctx.meta[VERBOSE_KEY] = verbose


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `nixgen` script and `python -m nixgen`."""
    try:
        # standalone_mode=False hands back ctx.exit()'s code instead of exiting.
        code = cli.main(args=argv, prog_name="nixgen", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
