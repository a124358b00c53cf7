"""The command line: thin commands over the library, one module per command group.

Only this package prints.  Every command is a call a script can make through
:mod:`nixgen` too.
"""

from __future__ import annotations

import os
import sys

import click

from nixgen import __version__
from nixgen.cli import build, check, deploy, edit, init, render, run
from nixgen.errors import NixgenError
from nixgen.files import FileError, file_error
from nixgen.lock import ProjectLockedError

__all__ = ["cli", "main"]


# Exit codes, one per kind of failure (documented in docs/validation.md).
EXIT_ERROR = 1  # nixgen refused or failed: invalid input, a failed nix command, …
EXIT_USAGE = 2  # the command line itself is wrong (click's own code)
EXIT_FILES = 3  # a file could not be read or written: read-only, disk full, not a folder, …
EXIT_LOCKED = 4  # another nixgen command held the project lock for too long
EXIT_INTERNAL = 70  # a bug in nixgen (EX_SOFTWARE); NIXGEN_DEBUG=1 shows the traceback
EXIT_INTERRUPTED = 130


class _Group(click.Group):
    """The one place that turns every failure into a message and an exit code:
    a CLI user never sees a traceback (unless NIXGEN_DEBUG=1 asks for it)."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except ProjectLockedError as err:
            click.echo(f"nixgen: {err}", err=True)
            ctx.exit(EXIT_LOCKED)
        except FileError as err:
            click.echo(f"nixgen: {err}", err=True)
            ctx.exit(EXIT_FILES)
        except NixgenError as err:
            click.echo(f"nixgen: {err}", err=True)
            ctx.exit(EXIT_ERROR)
        except OSError as err:
            click.echo(f"nixgen: {file_error(err, doing='failed')}", err=True)
            ctx.exit(EXIT_FILES)
        except Exception as err:
            if os.environ.get("NIXGEN_DEBUG"):
                raise
            click.echo(
                f"nixgen: internal error: {type(err).__name__}: {err}\n"
                "  hint: this is a bug in nixgen; run again with NIXGEN_DEBUG=1 for the "
                "traceback and report it",
                err=True,
            )
            ctx.exit(EXIT_INTERNAL)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nixgen")
def cli() -> None:
    """Declare NixOS micro-VM guests (microvm.nix) and get a readable flake."""


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
