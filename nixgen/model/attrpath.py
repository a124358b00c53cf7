"""Dotted attribute paths as data files and the model write them.

``'environment.etc."x.conf".text'`` names four attributes: data follows Nix's
own syntax, where a component with dots or other special characters is
written in double quotes.  Reading such a key is a model concern (the
validator and the renderer both need it), so it lives here, below the Nix
language layer, which re-exports it.
"""

from __future__ import annotations

import functools

from nixgen.errors import NixEmitError

__all__ = ["parse_attr_path"]


def parse_attr_path(text: str) -> list[str]:
    """``'environment.etc."x.conf".text'`` → ``["environment", "etc", "x.conf", "text"]``.

    Dotted keys in data follow Nix's own syntax: a component with dots or
    other special characters is written in double quotes.
    """
    if type(text) is str:  # a fleet's guests repeat the same few dozen keys
        return list(_parsed(text))
    return _parse(text)


@functools.lru_cache(maxsize=4096)
def _parsed(text: str) -> tuple[str, ...]:
    return tuple(_parse(text))  # (a path that does not parse raises: nothing is kept)


def _parse(text: str) -> list[str]:
    parts: list[str] = []
    i = 0
    while i <= len(text):
        if text.startswith('"', i):
            end = i + 1
            buf = []
            while end < len(text) and text[end] != '"':
                if text[end] == "\\" and end + 1 < len(text):
                    end += 1
                buf.append(text[end])
                end += 1
            if end >= len(text):
                raise NixEmitError(
                    f"unterminated quote in attribute path {text!r}", hint='close the "…"'
                )
            parts.append("".join(buf))
            i = end + 1
        else:
            end = text.find(".", i)
            end = len(text) if end == -1 else end
            parts.append(text[i:end])
            i = end
        if i < len(text) and text[i] != ".":
            raise NixEmitError(f"bad attribute path {text!r}", hint="separate components with .")
        i += 1
    if any(p == "" for p in parts):
        raise NixEmitError(f"empty component in attribute path {text!r}", hint="remove the extra .")
    return parts
