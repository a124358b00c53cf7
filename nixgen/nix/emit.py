"""Python values → Nix text, in nixfmt (RFC 166) layout.

This is the only place nixgen turns data into Nix source.  Templates call it
through the ``nix`` and ``nix_bindings`` filters, so escaping is the same
everywhere and no string a user gives can ever become code.

Supported values: ``None``, ``bool``, ``int``, ``float``, ``str``,
:class:`~pathlib.PurePath` (as Nix path literals), lists/tuples, mappings with
string keys, and :class:`Nix` for verbatim expressions.
"""

from __future__ import annotations

import functools
import math
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import PurePath, PurePosixPath
from typing import TypeAlias

from nixgen.errors import NixEmitError, keyed
from nixgen.model.attrpath import parse_attr_path
from nixgen.model.expr import Nix
from nixgen.model.frozen import MAX_DEPTH
from nixgen.nix.errors import NixSyntaxError

__all__ = [
    "INDENT",
    "Nix",
    "application",
    "argument",
    "attr_name",
    "attr_path",
    "binding",
    "bindings",
    "parse_attr_path",
    "quote_string",
    "selection",
    "to_nix",
]

INDENT = "  "
LINE_WIDTH = 100

# Keywords can never be bare attribute names; quoting them is always safe.
_KEYWORDS = frozenset({"if", "then", "else", "assert", "with", "let", "in", "rec", "inherit", "or"})
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_'-]*\Z")
# What the Nix lexer accepts as one path literal (no interpolation).
_PATH_CHARS = re.compile(r"[A-Za-z0-9._+-]+\Z")
_INT_MIN = -(2**63) + 1  # -2**63 cannot be written as a literal: it is `-` applied to 2**63
_INT_MAX = 2**63 - 1
# Nix has no negative literals: `-0.0` is `0 - 0.0`, which is +0.0.
_NEGATIVE_ZERO = "0.0 * -1"


_QUOTE_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "${": "\\${"}
_NEEDS_QUOTE_ESCAPE = re.compile(r'[\\"\n\r\t]|\$\{')


def quote_string(value: str) -> str:
    """A double-quoted Nix string literal whose value is exactly ``value``."""
    _check_string(value)
    return _quoted(value)


def _quoted(value: str) -> str:
    """:func:`quote_string` of a string that was checked."""
    if _NEEDS_QUOTE_ESCAPE.search(value) is None:
        return f'"{value}"'
    return '"' + _NEEDS_QUOTE_ESCAPE.sub(lambda m: _QUOTE_ESCAPES[m.group()], value) + '"'


# Attribute names already spelled: a fleet's modules repeat the same few dozen.
_ATTR_NAMES: dict[str, str] = {}
_ATTR_NAMES_LIMIT = 100_000


def attr_name(key: str) -> str:
    """An attribute name: bare when it is an identifier, quoted otherwise."""
    if type(key) is str:
        known = _ATTR_NAMES.get(key)
        if known is not None:
            return known
    elif not isinstance(key, str):
        raise NixEmitError(
            f"attribute names must be strings, got {type(key).__name__} {key!r}",
            hint="convert the key with str() before handing it to nixgen",
        )
    name = key if _IDENTIFIER.match(key) and key not in _KEYWORDS else quote_string(key)
    if len(_ATTR_NAMES) >= _ATTR_NAMES_LIMIT:
        _ATTR_NAMES.clear()
    _ATTR_NAMES[key] = name
    return name


def attr_path(keys: Sequence[str]) -> str:
    """A dotted attribute path, each component quoted only where needed."""
    return ".".join(attr_name(k) for k in keys)


def selection(base: str, keys: Sequence[str]) -> Nix:
    """``base.keys…`` as a verbatim expression (``pkgs.htop``, ``self.nixosModules.web``);
    ``base`` is a variable name, each key is quoted only where needed."""
    return Nix(".".join([base, *(attr_name(k) for k in keys)]))


def to_nix(value: object, indent: int = 0) -> str:
    """Nix text for ``value``.

    The first line carries no indentation (the caller places it); every further
    line is indented for nesting level ``indent`` (two spaces a level).
    """
    return _emit(value, indent, "value", LINE_WIDTH - len(INDENT) * indent, 0)


def binding(keys: Sequence[str], value: object, indent: int = 0) -> str:
    """One binding, ``a.b.c = value;``, as a person would write it in a module."""
    return f"{attr_path(keys)} = {to_nix(value, indent)};"


def argument(value: object) -> str:
    """Nix text for ``value`` where it is a function's argument, parenthesised
    where Nix needs it, as a list element is (``(-1)``, ``(pkgs.f x)``)."""
    return _list_item(value, 0, "argument", LINE_WIDTH, 0)


def application(function: str, value: object) -> Nix:
    """``function value`` as a verbatim expression (``lib.mkForce 4096``);
    ``function`` is trusted Nix text, a name such as ``lib.mkForce``."""
    return Nix(f"{function} {argument(value)}")


def bindings(values: Mapping[str, object], indent: int = 0) -> str:
    """The bindings of an attribute set, one per line, each ending in ``;``.

    Lines are indented for level ``indent``; there is no trailing newline.
    Nested single-binding sets are written as dotted paths
    (``services.openssh.enable = true;``), as a person would write them.
    """
    lines = _bindings(values, indent, "value", 0)
    if not lines:
        return ""
    pad = INDENT * indent
    return pad + ("\n" + pad).join(lines)


# --------------------------------------------------------------------------- internals


# Where a value sits, for messages: the root's name, then (parent, key) for a
# binding or (parent, index) for a list element.  Spelled out only for an error
# (a 1,000-guest render emits some 100,000 values and no error).
_Where: TypeAlias = "str | tuple[_Where, str | int]"


def _text(where: _Where) -> str:
    """The path of ``where`` as messages show it: ``value["a"]["b"][0]``."""
    steps: list[str | int] = []
    while isinstance(where, tuple):
        where, step = where
        steps.append(step)
    text = where
    for step in reversed(steps):
        text = f"{text}[{step}]" if isinstance(step, int) else keyed(text, step)
    return text


def _check_string(value: str, where: _Where = "") -> None:
    try:
        if not value.isascii():  # ASCII text holds no lone surrogate
            value.encode("utf-8")
    except UnicodeEncodeError as err:
        at = f"{_short_path(_text(where))}: " if where else ""
        raise NixEmitError(
            f"{at}a Nix string holds UTF-8 text; {_short(value)} has a lone surrogate",
            hint="decode the text properly before handing it to nixgen",
        ) from err
    if "\x00" in value:
        at = f"{_short_path(_text(where))}: " if where else ""
        raise NixEmitError(
            f"{at}a Nix string cannot hold a NUL character: {_short(value)}",
            hint="remove the \\x00 character from the value",
        )


def _emit(value: object, indent: int, where: _Where, width: int, depth: int) -> str:
    """``width``: the columns left on the first line, to decide what fits on one line;
    ``depth``: how many lists and sets enclose ``value``."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    kind = type(value)  # the common cases first, by exact type
    if kind is str:
        return _string(value, indent, where)  # type: ignore[arg-type]
    if kind is int:
        return _int(value, where)  # type: ignore[arg-type]
    if isinstance(value, Nix):
        _check_expression(value.text, where)
        return _reindent(value.text, indent)
    if isinstance(value, int):
        return _int(value, where)
    if isinstance(value, float):
        return _float(value, where)
    if isinstance(value, str):
        return _string(value, indent, where)
    if isinstance(value, PurePath):
        return _path(value, where)
    if isinstance(value, Mapping | list | tuple) and depth >= MAX_DEPTH:
        raise NixEmitError(
            f"{_short_path(_text(where))}: lists and sets are nested more than {MAX_DEPTH} levels deep",
            hint="flatten the value, or write it as Nix('…') built by a function",
        )
    if isinstance(value, Mapping):
        return _attrset(value, indent, where, depth + 1)
    if isinstance(value, list | tuple):
        return _list(value, indent, where, width, depth + 1)
    raise NixEmitError(
        f"{_text(where)}: no Nix spelling for a {type(value).__name__}: {value!r}",
        hint="use None, bool, int, float, str, a path, a list, a dict, or Nix('expression')",
    )


def _int(value: int, where: _Where) -> str:
    if not _INT_MIN <= value <= _INT_MAX:
        raise NixEmitError(
            f"{_text(where)}: {value} does not fit in Nix's 64-bit integers",
            hint=f"use a value between {_INT_MIN} and {_INT_MAX}",
        )
    return str(value)


def _float(value: float, where: _Where) -> str:
    if not math.isfinite(value):
        raise NixEmitError(
            f"{_text(where)}: Nix has no literal for {value!r}",
            hint="use a finite number",
        )
    if value != 0 and abs(value) < sys.float_info.min:
        raise NixEmitError(
            f"{_text(where)}: Nix cannot read the subnormal number {value!r}",
            hint="use 0.0 or a number of at least 2.3e-308",
        )
    if value == 0 and math.copysign(1.0, value) < 0:
        return _NEGATIVE_ZERO
    text = repr(abs(value))
    mantissa, _, exponent = text.partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    text = mantissa + (f"e{exponent}" if exponent else "")
    return f"-{text}" if math.copysign(1.0, value) < 0 else text


def _string(value: str, indent: int, where: _Where) -> str:
    _check_string(value, where)
    if "\n" in value.rstrip("\n") and _fits_indented(value):
        return _indented_string(value, indent)
    return _quoted(value)


def _fits_indented(value: str) -> bool:
    """Whether ``''…''`` can hold ``value`` exactly, with nixgen's layout.

    Nix strips the common indentation of an indented string, keeps tabs and
    carriage returns literally, and drops a whitespace-only first line; rather
    than fight those rules we fall back to ``"…"`` whenever one could bite.
    """
    if any(ch in value for ch in "\r\t") or any(ord(ch) < 0x20 and ch != "\n" for ch in value):
        return False
    lines = value.split("\n")
    body = lines[:-1] if value.endswith("\n") else lines
    content = [line for line in body if line]
    if any(not line.strip() for line in content):
        return False  # whitespace-only lines lose their spaces
    if not content or all(line.startswith(" ") for line in content):
        return False  # common leading spaces would be stripped
    # A final quote would merge with the closing '' into an escape.
    return value.endswith("\n") or not value.endswith("'")


def _escape_indented(line: str) -> str:
    out = []
    i = 0
    while i < len(line):
        if line.startswith("''", i):
            out.append("'''")
            i += 2
        elif line.startswith("${", i):
            out.append("''${")
            i += 2
        elif line.startswith("'${", i):
            # A lone quote just before the ''${ escape would fuse with it into
            # ''' (an escaped ''): spell the quote as ''\' instead.
            out.append("''\\'")
            i += 1
        else:
            out.append(line[i])
            i += 1
    return "".join(out)


def _indented_string(value: str, indent: int) -> str:
    pad = INDENT * (indent + 1)
    lines = value.split("\n")
    trailing_newline = value.endswith("\n")
    if trailing_newline:
        lines = lines[:-1]
    rendered = [pad + _escape_indented(line) if line else "" for line in lines]
    if trailing_newline:
        return "''\n" + "\n".join(rendered) + "\n" + INDENT * indent + "''"
    return "''\n" + "\n".join(rendered) + "''"


def _path(value: PurePath, where: _Where) -> str:
    text = str(value) if type(value) is PurePosixPath else PurePosixPath(value).as_posix()
    if value.is_absolute():
        parts = text.split("/")[1:]
        if parts and all(_PATH_CHARS.match(p) for p in parts):
            return text
        return "/. + " + quote_string(text)
    rel = text
    if rel == ".":
        return "./."
    if not rel.startswith(("./", "../")):
        rel = "./" + rel
    parts = [p for p in rel.split("/") if p]
    if all(_PATH_CHARS.match(p) for p in parts):
        return rel
    raise NixEmitError(
        f"{_text(where)}: relative path {text!r} has characters a Nix path literal cannot hold",
        hint="rename the file to use only letters, digits and . _ + -",
    )


def _is_scalar(value: object) -> bool:
    if type(value) in _SCALARS:
        return True
    return not isinstance(value, Mapping | list | tuple) and not (
        isinstance(value, Nix) and "\n" in value.text
    )


def _list(values: Sequence[object], indent: int, where: _Where, width: int, depth: int) -> str:
    if not values:
        return "[ ]"
    inner_width = LINE_WIDTH - len(INDENT) * (indent + 1)
    items = [
        _list_item(v, indent + 1, (where, i), inner_width, depth) for i, v in enumerate(values)
    ]
    if all(map(_is_scalar, values)) and "\n" not in "".join(items):
        one_line = "[ " + " ".join(items) + " ]"
        if len(one_line) <= width:
            return one_line
    pad = INDENT * (indent + 1)
    return "[\n" + pad + ("\n" + pad).join(items) + "\n" + INDENT * indent + "]"


_SCALARS = frozenset({str, int, bool, type(None)})


def _list_item(value: object, indent: int, where: _Where, width: int, depth: int) -> str:
    text = _emit(value, indent, where, width, depth)
    if type(value) is str:
        return text  # a string literal stands as an element
    # List elements are not full expressions: negative numbers, function
    # applications and other operators need parentheses.
    needs_parens = (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and (text.startswith("-") or text == _NEGATIVE_ZERO)
    ) or (isinstance(value, Nix) and not _is_simple_expression(value.text))
    if isinstance(value, PurePath) and text.startswith("/. +"):
        needs_parens = True
    return f"({text})" if needs_parens else text


_SIMPLE_EXPR = re.compile(r"[A-Za-z_][A-Za-z0-9_'.-]*\Z")


def _is_simple_expression(text: str) -> bool:
    """Whether a verbatim expression can stand as a list element unparenthesised."""
    stripped = text.strip()
    if _SIMPLE_EXPR.match(stripped):
        return True
    if stripped[:1] in '[{("' and _balanced_wrapper(stripped):
        return True
    # One ''…'' string: no unescaped '' inside (''' ''$ ''\ are escapes).
    inner = stripped[2:-2].replace("'''", "")
    return (
        len(stripped) >= 4
        and stripped.startswith("''")
        and stripped.endswith("''")
        and re.search(r"''(?![$\\])", inner) is None
    )


def _balanced_wrapper(text: str) -> bool:
    """True when the whole text is one bracketed/quoted group (cheap, conservative)."""
    pairs = {"[": "]", "{": "}", "(": ")", '"': '"'}
    opener = text[0]
    closer = pairs[opener]
    if not text.endswith(closer) or opener == '"':
        return opener == '"' and text.endswith('"') and text.count('"') == 2 and "\\" not in text
    depth = 0
    for i, ch in enumerate(text):
        if ch in "\"'":
            return False  # strings could hide brackets: be conservative
        if ch == opener:
            depth += 1
        elif ch == closer:
            depth -= 1
            if depth == 0 and i != len(text) - 1:
                return False
    return depth == 0


def _attrset(values: Mapping[str, object], indent: int, where: _Where, depth: int) -> str:
    if not values:
        return "{ }"
    pad = INDENT * (indent + 1)
    body = pad + ("\n" + pad).join(_bindings(values, indent + 1, where, depth))
    return "{\n" + body + "\n" + INDENT * indent + "}"


def _bindings(values: Mapping[str, object], indent: int, where: _Where, depth: int) -> list[str]:
    """One text per binding; lines after the first are already indented."""
    out: list[str] = []
    for key, value in values.items():
        path = [key]
        inner = value
        # Collapse chains of one-binding sets into a dotted path.
        while (type(inner) is dict or isinstance(inner, Mapping)) and len(inner) == 1:
            ((k, v),) = inner.items()
            path.append(k)
            inner = v
            depth += 1
        if len(path) == 1:
            sub: _Where = (where, str(key))
            key = attr_name(key)
        else:
            sub = where
            for step in path:
                sub = (sub, str(step))
            key = attr_path(path)
        width = LINE_WIDTH - len(INDENT) * indent - len(key) - len(" = ;")
        out.append(f"{key} = {_emit(inner, indent, sub, width, depth)};")
    return out


def _check_expression(text: str, where: _Where) -> None:
    """A verbatim expression must be one whole Nix expression, or the file will not parse."""
    _check_string(text, where)
    problem = _syntax_problem(text)
    if problem is not None:
        message, hint = problem
        raise NixEmitError(
            f"{_text(where)}: Nix({_short(text)}) is not a whole Nix expression: {message}",
            hint=hint or "fix the expression (it is written into the file as it is)",
        )


# `pkgs.htop`, `self`, `lib.mkDefault`: a name or a selection of names is one whole
# expression; most verbatim Nix of a fleet (its packages) is this, and is let through
# without loading the parser.
_NAME = r"[A-Za-z_][A-Za-z0-9_'-]*"
_SELECTION = re.compile(rf"{_NAME}(?:\.{_NAME})*\Z")


@functools.lru_cache(maxsize=4096)
def _syntax_problem(text: str) -> tuple[str, str | None] | None:
    if _SELECTION.match(text) and not _KEYWORDS.intersection(text.split(".")):
        return None
    from nixgen.nix.parse import Document  # parse imports this module

    try:
        Document.parse(text)
    except NixSyntaxError as err:
        return err.message, err.hint
    return None


def _short_path(where: str, limit: int = 80) -> str:
    return where if len(where) <= limit else where[: limit - 1] + "…"


def _short(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _reindent(text: str, indent: int) -> str:
    """Place a multi-line verbatim expression at the current nesting level."""
    if "\n" not in text:
        return text
    lines = text.split("\n")
    if any(len(re.findall(r'(?<!\\)"', line)) % 2 for line in lines):
        return text  # a "…" string spans lines: shifting would change its value
    rest = [line for line in lines[1:] if line.strip()]
    common = min((len(line) - len(line.lstrip(" ")) for line in rest), default=0)
    pad = INDENT * indent
    shifted = [lines[0]] + [(pad + line[common:]) if line.strip() else "" for line in lines[1:]]
    return "\n".join(shifted)


def iter_lines(text: str) -> Iterable[str]:
    """Split emitted text into lines (a helper for templates and tests)."""
    return text.split("\n")
