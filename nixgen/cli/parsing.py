"""Commands declared beside the function they run, parsed with the standard library.

A small declarative layer over :mod:`argparse`: ``@command``, ``@argument`` and
``@option`` read like the decorators of click, which nixgen used before; click
alone took longer to import than a whole ``nixgen list --no-eval`` may take
(benchmarks/bench_startup.py), argparse imports in about 2 ms.

Like click, options and arguments may come in any order, a usage error exits
2, and an option given no value takes its default (or its environment
variable's value).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

# typing costs ~4 ms to import and nothing here needs it at run time (mypy
# reads a TYPE_CHECKING of one's own as typing's): the command line starts fast.
TYPE_CHECKING = False

if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any, NoReturn, TypeVar

    F = TypeVar("F", bound=Callable[..., Any])

__all__ = [
    "USAGE_STATUS",
    "Command",
    "Invocation",
    "argument",
    "columns",
    "command",
    "current",
    "directory",
    "existing_directory",
    "existing_file",
    "file",
    "int_at_least",
    "option",
    "usage_error",
]

#: The exit status of a usage error (argparse's too).
USAGE_STATUS = 2


def usage_error(usage: str | None, prog: str, message: str) -> str:
    """What a usage error prints on stderr: the usage, where to get help, what is wrong."""
    lines = [f"usage: {usage}"] if usage else []
    lines.append(f"Try '{prog} --help' for help.")
    return "\n".join([*lines, "", f"error: {message}"]) + "\n"


class Invocation:
    """What the whole command line asked for besides the command's own arguments:
    -v, and whether the command was given --json (a failure is printed as JSON then)."""

    __slots__ = ("as_json", "verbose")

    def __init__(self, *, verbose: bool = False, as_json: bool = False) -> None:
        self.verbose = verbose
        self.as_json = as_json


_current = Invocation()


def current() -> Invocation:
    """The invocation being run (one at a time, like a process)."""
    return _current


def begin(invocation: Invocation) -> None:
    global _current
    _current = invocation


# ----------------------------------------------------------------- value types


def _fail(message: str) -> NoReturn:
    raise argparse.ArgumentTypeError(message)


def directory(text: str) -> Path:
    """A folder, which need not exist yet (but is not a file)."""
    from pathlib import Path  # (4 ms: only once a path is given)

    path = Path(text)
    if path.exists() and not path.is_dir():
        _fail(f"directory {text!r} is a file")
    return path


def existing_directory(text: str) -> Path:
    path = directory(text)
    if not path.exists():
        _fail(f"directory {text!r} does not exist")
    return path


def file(text: str) -> Path:
    """A file, which need not exist yet (but is not a folder)."""
    from pathlib import Path

    path = Path(text)
    if path.is_dir():
        _fail(f"file {text!r} is a directory")
    return path


def existing_file(text: str) -> Path:
    path = file(text)
    if not path.exists():
        _fail(f"file {text!r} does not exist")
    return path


def int_at_least(minimum: int) -> Callable[[str], int]:
    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            _fail(f"{text!r} is not a whole number")
        if value < minimum:
            _fail(f"{value} is not in the range x>={minimum}")
        return value

    convert.__name__ = f"integer >= {minimum}"
    return convert


# ----------------------------------------------------------------- declarations


class _Param:
    """One ``add_argument`` call, kept until the command's parser is built."""

    __slots__ = ("envvar", "flags", "kwargs", "to_tuple")

    def __init__(
        self, flags: tuple[str, ...], kwargs: dict[str, Any], envvar: str | None, to_tuple: bool
    ) -> None:
        self.flags = flags
        self.kwargs = kwargs
        self.envvar = envvar
        self.to_tuple = to_tuple


def _params(function: Callable[..., Any]) -> list[_Param]:
    found: list[_Param] = function.__dict__.setdefault("_nixgen_params", [])
    return found


def option(
    *flags: str,
    dest: str | None = None,
    envvar: str | None = None,
    show_default: bool = False,
    **kwargs: Any,
) -> Callable[[F], F]:
    """An ``--option``; ``nargs=2, action="append"`` options arrive as tuples of tuples,
    ``envvar`` is read when the option is not given."""
    if dest is not None:
        kwargs["dest"] = dest
    if show_default and kwargs.get("default") is not None:
        kwargs["help"] = f"{kwargs.get('help') or ''}  [default: {kwargs['default']}]".lstrip()
    appended = kwargs.get("action") == "append"
    if appended:
        kwargs.setdefault("default", [])
    if "help" in kwargs:
        kwargs["help"] = kwargs["help"].replace("%", "%%")

    def decorate(function: F) -> F:
        _params(function).insert(0, _Param(flags, kwargs, envvar, appended))
        return function

    return decorate


def argument(
    name: str, *, metavar: str | None = None, required: bool = True, **kwargs: Any
) -> Callable[[F], F]:
    """A positional argument; ``nargs="*"``/``"+"`` ones arrive as tuples."""
    kwargs["metavar"] = metavar or name.upper()
    if not required:
        kwargs.setdefault("nargs", "?")
    many = kwargs.get("nargs") in ("*", "+")
    if kwargs.get("nargs") == "*":
        kwargs.setdefault("default", [])  # (else argparse lists it as required)

    def decorate(function: F) -> F:
        _params(function).insert(0, _Param((name,), kwargs, None, many))
        return function

    return decorate


def _cleandoc(text: str) -> str:
    """``inspect.cleandoc`` without importing inspect (a start-up cost of its own)."""
    lines = text.expandtabs().splitlines()
    indents = [len(line) - len(line.lstrip()) for line in lines[1:] if line.strip()]
    margin = min(indents, default=0)
    body = [lines[0].strip(), *(line[margin:].rstrip() for line in lines[1:])] if lines else []
    return "\n".join(body).strip("\n")


class _Parser(argparse.ArgumentParser):
    """Hands usage errors back as exceptions: the command prints them with its usage."""

    def error(self, message: str) -> NoReturn:
        raise argparse.ArgumentError(None, message)


def columns() -> int:
    """The terminal's width, as shutil tells it (shutil itself costs 3 ms to import)."""
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    if sys.__stdout__ is None:
        return 80
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80
    except (ValueError, OSError):
        return 80


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Help laid out by argparse, the description kept as written (its examples too)."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=columns() - 2)


def new_parser(prog: str, usage: str, description: str, epilog: str | None = None) -> _Parser:
    return _Parser(
        prog=prog,
        usage=usage,
        description=description,
        epilog=epilog,
        formatter_class=_Formatter,
        allow_abbrev=False,
    )


class Command:
    """A command of the command line: its name and help, its arguments, the function it runs."""

    def __init__(
        self,
        name: str,
        function: Callable[..., None],
        params: Sequence[_Param],
        *,
        unknown_options_are_arguments: bool = False,
    ) -> None:
        self.name = name
        self.function = function
        self.params = tuple(params)
        self.help = "\n".join(
            line for line in _cleandoc(function.__doc__ or "").splitlines() if line != "\b"
        )
        self.unknown_options_are_arguments = unknown_options_are_arguments

    @property
    def first_paragraph(self) -> str:
        """What ``nixgen --help`` lists for the command."""
        return " ".join(self.help.split("\n\n")[0].split())

    def usage(self) -> str:
        words = [f"nixgen {self.name}", "[OPTIONS]"]
        for param in self.params:
            if param.flags[0].startswith("-"):
                continue
            metavar = param.kwargs["metavar"]
            nargs = param.kwargs.get("nargs")
            if nargs == "*":
                words.append(f"[{metavar}]...")
            elif nargs == "+":
                words.append(f"{metavar}...")
            elif nargs == "?":
                words.append(f"[{metavar}]")
            else:
                words.append(metavar)
        return " ".join(words)

    def parser(self) -> argparse.ArgumentParser:
        parser = new_parser(f"nixgen {self.name}", self.usage(), self.help)
        for param in self.params:
            parser.add_argument(*param.flags, **param.kwargs)
        return parser

    def __call__(self, argv: Sequence[str]) -> None:
        """Parse ``argv`` (the words after the command's name) and run the command.

        A usage error (argparse's, or an ``argparse.ArgumentError`` the command
        raises) is printed with the command's usage, and ends it with exit
        status 2 (``SystemExit``, as ``--help`` ends it with 0)."""
        try:
            self._run(argv)
        except argparse.ArgumentError as err:
            sys.stderr.write(usage_error(self.usage(), f"nixgen {self.name}", str(err)))
            raise SystemExit(USAGE_STATUS) from None

    def _run(self, argv: Sequence[str]) -> None:
        parser = self.parser()
        if self.unknown_options_are_arguments:
            # options first, then "--": the plain parse (the intermixed one misreads "--")
            values = vars(parser.parse_args(_unknown_options_last(parser, list(argv))))
        else:
            values = vars(parser.parse_intermixed_args(list(argv)))
        for param in self.params:
            dest = _dest(param)
            if param.envvar is not None and values[dest] is None:
                given = os.environ.get(param.envvar)
                if given:
                    convert = param.kwargs.get("type")
                    try:
                        values[dest] = convert(given) if convert is not None else given
                    except argparse.ArgumentTypeError as err:
                        parser.error(f"{param.envvar}: {err}")
            if param.to_tuple and values[dest] is not None:
                values[dest] = tuple(
                    tuple(item) if isinstance(item, list) else item for item in values[dest]
                )
        _current.as_json = bool(values.get("as_json"))
        self.function(**values)


def _dest(param: _Param) -> str:
    """The name argparse stores a parameter under (its first long option's, as argparse does)."""
    if "dest" in param.kwargs:
        return str(param.kwargs["dest"])
    flag = next((f for f in param.flags if f.startswith("--")), param.flags[0])
    return flag.lstrip("-").replace("-", "_")


def _unknown_options_last(parser: argparse.ArgumentParser, words: list[str]) -> list[str]:
    """The command's own options where they are; every other word, whatever it looks
    like, an argument (``nixgen ssh web ls -la``: ``-la`` is ls's)."""
    own: list[str] = []
    rest: list[str] = []
    takes = {
        flag: action.nargs if isinstance(action.nargs, int) else 1
        for action in parser._actions
        for flag in action.option_strings
    }
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--":
            rest.extend(words[i + 1 :])
            break
        name = word.split("=", 1)[0]
        if word.startswith("-") and name in takes:
            count = 0 if "=" in word else takes[name]
            own.extend(words[i : i + 1 + count])
            i += 1 + count
            continue
        rest.append(word)
        i += 1
    return [*own, "--", *rest]


def command(name: str, *, unknown_options_are_arguments: bool = False) -> Callable[[F], Command]:
    """Turns a function with ``@argument``/``@option`` decorators into a :class:`Command`."""

    def decorate(function: F) -> Command:
        return Command(
            name,
            function,
            _params(function),
            unknown_options_are_arguments=unknown_options_are_arguments,
        )

    return decorate
