"""The command line: thin commands over the library, one module per command group.

Only this package prints.  Every command is a call a script can make through
:mod:`nixgen` too.
"""

from __future__ import annotations

import sys

import click

from nixgen import __version__
from nixgen.cli import build, check, deploy, edit, graph, init, render, run
from nixgen.errors import NixgenError

__all__ = ["cli", "main"]


class _Group(click.Group):
    """Turns every NixgenError into its message on stderr and exit code 1."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except NixgenError as err:
            click.echo(f"nixgen: {err}", err=True)
            ctx.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nixgen")
def cli() -> None:
    """Declare NixOS micro-VM guests (microvm.nix) and get a readable flake."""


for module in (init, check, render, build, run, edit, deploy, graph):
    module.register(cli)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `nixgen` script and `python -m nixgen`."""
    try:
        # standalone_mode=False hands back ctx.exit()'s code instead of exiting.
        code = cli.main(args=argv, prog_name="nixgen", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
