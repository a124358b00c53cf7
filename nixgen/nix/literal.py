"""Nix literals given as text (on the command line) as Python data."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath

from tree_sitter import Node

from nixgen.errors import NixgenError, OptionError
from nixgen.nix.emit import Nix
from nixgen.nix.parse import Document

__all__ = ["parse_literal"]

_NOT_LITERAL = frozenset(
    {"uri_expression", "path_expression", "hpath_expression", "spath_expression"}
)


def parse_literal(text: str, *, key: str = "VALUE") -> object:
    """A Nix literal (``1024``, ``true``, ``null``, ``"qemu"``, ``[ … ]``, ``{ … }``) as data.

    Read with the same tree-sitter parser as flakes.  Anything else (a bare
    word, a path, an expression) raises :class:`OptionError` saying how to
    write it.
    """
    hint = (
        f'write a number, true, false, null, a "string" or a list/set of those; '
        f"the shell eats double quotes, so quote them: {key}='\"{text}\"'"
    )
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
