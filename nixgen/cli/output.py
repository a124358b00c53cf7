"""How the command line shows things to people (and to scripts, with --json).

The conventions (also in ``nixgen --help`` and docs/output.md): results go to
stdout, progress and problems to stderr; ``--json`` prints one JSON document
on stdout, on success and on failure; colour only where ``NO_COLOR`` is unset
and ``TERM`` is not ``dumb``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence

from nixgen.cli import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, TYPE_CHECKING
from nixgen.cli.parsing import current, option

if TYPE_CHECKING:
    from typing import Any, TypeVar

    from nixgen.errors import NixgenError, Problem
    from nixgen.model import Flake, MicroVM

    F = TypeVar("F", bound=Callable[..., Any])

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "confirm",
    "echo",
    "error_json",
    "failure",
    "json_option",
    "problems",
    "secho",
    "verbose",
]


def json_option(help: str) -> Callable[[F], F]:
    """``--json`` (``as_json``): a failure of the command is printed as JSON too."""
    return option("--json", dest="as_json", action="store_true", help=help)


def verbose() -> bool:
    """nixgen was given -v: errors show the full commands behind them."""
    return current().verbose


def echo(text: str = "", *, nl: bool = True, err: bool = False) -> None:
    """Print a line on stdout (or stderr), at once: progress and results interleave as they come."""
    stream = sys.stderr if err else sys.stdout
    stream.write(f"{text}\n" if nl else text)
    stream.flush()


def colour_allowed() -> bool:
    """False when the user asked for no colour (https://no-color.org) or the terminal has none."""
    return not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


#: the ANSI colours nixgen uses
_COLOURS = {"red": 31, "green": 32, "yellow": 33}


def secho(text: str, *, fg: str | None = None, err: bool = False, bold: bool = False) -> None:
    """Print in colour, on a terminal only, and never where NO_COLOR or TERM=dumb says no."""
    stream = sys.stderr if err else sys.stdout
    if (fg or bold) and colour_allowed() and stream.isatty():
        codes = [str(_COLOURS[fg])] if fg else []
        codes += ["1"] if bold else []
        text = f"\x1b[{';'.join(codes)}m{text}\x1b[0m"
    echo(text, err=err)


def confirm(question: str) -> None:
    """Ask ``question [y/N]`` on the terminal; anything but yes stops the command (exit 130)."""
    echo(f"{question} [y/N]: ", nl=False)
    answer = sys.stdin.readline().strip().lower()
    if answer not in ("y", "yes"):
        echo("aborted", err=True)
        raise SystemExit(EXIT_INTERRUPTED)


def problems(found: Sequence[Problem]) -> None:
    for problem in found:
        colour = "yellow" if problem.warning else "red"
        secho(str(problem), fg=colour, err=True)


def problem_json(problem: Problem) -> dict[str, Any]:
    return {
        "severity": "warning" if problem.warning else "error",
        "path": problem.path,
        "message": problem.message,
        "hint": problem.hint,
        "value": None if problem.value is None else _jsonable(problem.value),
    }


def _jsonable(value: object) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


def error_json(err: NixgenError) -> dict[str, Any]:
    """A failure as data: what ``--json`` prints on stdout when a command fails."""
    data: dict[str, Any] = {"type": type(err).__name__, "message": err.message, "text": str(err)}
    if err.hint:
        data["hint"] = err.hint
    # imported only once something failed: `nixgen build`'s no-op needs no attrs
    from nixgen.build import GuestEvalError
    from nixgen.errors import ValidationError
    from nixgen.process.errors import CommandError

    if isinstance(err, ValidationError):
        data["problems"] = [problem_json(p) for p in [*err.problems, *err.warnings]]
    if isinstance(err, CommandError):
        data["command"] = list(err.command)
        data["exit_code"] = err.exit_code
    if isinstance(err, GuestEvalError):
        data["guests"] = {name: error_json(e) for name, e in err.errors.items()}
    return data


def full_commands(err: BaseException) -> Iterator[str]:
    """Every command behind an error, in full (``--verbose``)."""
    from nixgen.build import GuestEvalError
    from nixgen.process.errors import CommandError

    if isinstance(err, CommandError) and err.command:
        import shlex  # (only with -v, once something failed)

        yield shlex.join(err.command)
    if isinstance(err, GuestEvalError):
        for inner in err.errors.values():
            yield from full_commands(inner)


def failure(err: NixgenError, *, as_json: bool, verbose: bool) -> None:
    """Show a failure: the message on stderr, and with --json the error as JSON on stdout."""
    from nixgen.errors import ValidationError

    if as_json:
        echo(json.dumps({"ok": False, "error": error_json(err)}, indent=2))
    if isinstance(err, ValidationError):
        secho(f"nixgen: {err.message.splitlines()[0]}", fg="red", err=True)
        problems([*err.problems, *err.warnings])
    else:
        secho(f"nixgen: {err}", fg="red", err=True)
    if verbose:
        for command in full_commands(err):
            echo(f"  full command: {command}", err=True)


def guest_row(vm: MicroVM) -> dict[str, Any]:
    return {
        "name": vm.name,
        "system": vm.system,
        "hypervisor": vm.hypervisor,
        "vcpu": vm.vcpu,
        "mem": vm.mem,
        "interfaces": [f"{i.type}:{i.id}" for i in vm.interfaces],
        "shares": [f"{s.proto}:{s.tag}" for s in vm.shares],
        "volumes": [v.image for v in vm.volumes],
    }


def guests(flake: Flake, *, as_json: bool) -> None:
    rows = [guest_row(vm) for vm in flake.guests]
    if as_json:
        echo(json.dumps(rows, indent=2))
        return
    headers = ["name", "hypervisor", "vcpu", "mem", "interfaces", "shares", "volumes"]
    table = [
        [
            str(r["name"]),
            str(r["hypervisor"]),
            str(r["vcpu"]),
            f"{r['mem']} MiB",
            ", ".join(r["interfaces"]) or "-",
            ", ".join(r["shares"]) or "-",
            ", ".join(r["volumes"]) or "-",
        ]
        for r in rows
    ]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(headers)]
    echo("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in table:
        echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
