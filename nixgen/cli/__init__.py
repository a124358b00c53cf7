"""The command line: thin commands over the library, one module per command group.

Only this package prints.  Every command is a call a script can make through
:mod:`nixgen` too.
"""

from __future__ import annotations

import sys

import click

from nixgen import __version__
from nixgen.cli import build, check, deploy, edit, init, output, render, run
from nixgen.errors import NixgenError

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_USAGE", "cli", "main"]

EXIT_FAILED = output.EXIT_FAILED
EXIT_USAGE = output.EXIT_USAGE
EXIT_INTERRUPTED = output.EXIT_INTERRUPTED

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
  130  interrupted (Ctrl-C)
  run --foreground exits with the guest's own status
"""


class _Group(click.Group):
    """Turns every NixgenError into its message on stderr (and JSON on stdout) and exit 1."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except NixgenError as err:
            output.failure(
                err,
                as_json=bool(ctx.meta.get(output.JSON_KEY)),
                verbose=bool(ctx.meta.get(output.VERBOSE_KEY)),
            )
            ctx.exit(EXIT_FAILED)


@click.group(
    cls=_Group,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=CONVENTIONS,
)
@click.version_option(__version__, prog_name="nixgen")
@click.option("-v", "--verbose", is_flag=True, help="Show the full commands behind an error.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """Declare NixOS micro-VM guests (microvm.nix) and get a readable flake."""
    ctx.meta[output.VERBOSE_KEY] = verbose


for module in (init, check, render, build, run, edit, deploy):
    module.register(cli)


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
