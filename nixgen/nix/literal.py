"""Nix literals given as text (on the command line) as Python data."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from pathlib import PurePosixPath

import attrs
from tree_sitter import Node

from nixgen.errors import NixgenError, OptionError
from nixgen.nix.emit import Nix, to_nix
from nixgen.nix.parse import Document

__all__ = ["Suggestion", "parse_literal"]

_NOT_LITERAL = frozenset(
    {"uri_expression", "path_expression", "hpath_expression", "spath_expression"}
)


@attrs.frozen
class Suggestion:
    """What a value that is not a literal may have meant: ``values`` (at most one,
    and only one the option accepts) and what the option takes, in words."""

    values: tuple[object, ...] = ()
    takes: str | None = None


def parse_literal(
    text: str, *, key: str = "VALUE", suggest: Callable[[str], Suggestion] | None = None
) -> object:
    """A Nix literal (``1024``, ``true``, ``null``, ``"qemu"``, ``[ … ]``, ``{ … }``) as data.

    Read with the same tree-sitter parser as flakes.  Anything else (a bare
    word, a path, an expression) raises :class:`OptionError` saying how to
    write it.  ``suggest`` says which value the text may have meant (see
    :func:`nixgen.flake.suggest.suggest_value`); the hint offers only that
    one, and without it the text as a string.
    """
    hint = _hint(text, key, suggest)
    if not text.strip():
        raise OptionError(f"{key}: the value is empty", hint=hint)
    try:
        doc = Document.parse(text)
    except NixgenError as err:
        raise OptionError(
            f"{key}: `{text}` is not a Nix literal ({err.message})", hint=hint
        ) from None
    expression = doc.expression()
    bad = _first_non_literal(expression)
    value = doc.literal(expression)
    if bad is not None or _has_nix(value):
        raise OptionError(f"{key}: `{text}` is not a Nix literal", hint=hint)
    return value


def _hint(text: str, key: str, suggest: Callable[[str], Suggestion] | None) -> str:
    found = Suggestion(values=(text.strip(),)) if suggest is None else suggest(text.strip())
    general = 'write a number, true, false, null, a "string" or a list/set of those'
    if found.values:
        value = found.values[0]
        shown = shlex.quote(to_nix(value))
        if value == text.strip():
            return f"{general}; the shell eats double quotes, so quote them: {key}={shown}"
        return (
            f"{general}; did you mean {key}={shown}? (quoted, so the shell keeps the double quotes)"
        )
    takes = f"{key} takes {found.takes}; " if found.takes else ""
    return f'{takes}{general} (quote "strings" for the shell)'


def _first_non_literal(node: Node) -> Node | None:
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type in _NOT_LITERAL:
            return current
        stack.extend(current.named_children)
    return None


def _has_nix(value: object) -> bool:
    if isinstance(value, Nix | PurePosixPath):
        return True
    if isinstance(value, Mapping):
        return any(_has_nix(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_nix(v) for v in value)
    return False
