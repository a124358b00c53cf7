"""Terminal escape sequences in what programs print.

nix colours even its JSON messages, and a guest's console carries the colours
and cursor moves of its boot; both are read as plain text.  Standard library
only: the runtime reads consoles without importing nix's event parser.
"""

from __future__ import annotations

import re

__all__ = ["strip_ansi"]

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def strip_ansi(text: str) -> str:
    """``text`` without terminal colour codes and cursor moves."""
    return _ANSI.sub("", text)
