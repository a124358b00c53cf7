"""``nixgen.toml`` read for what it declares, without building the model.

Commands that only need the names of the guests (``nixgen list``, ``status``)
read them here with tomli (the standard library's TOML parser, compiled: a
fifth of tomllib's import time); the model, its validation and the
comment-keeping editor cost tens of milliseconds to import
(:func:`nixgen.model.convert.load_flake_file` reads the whole file).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["SOURCE_NAME", "declared_guests"]

#: The data file of a nixgen project, in its folder.
SOURCE_NAME = "nixgen.toml"


def declared_guests(project: Path) -> list[str]:
    """The names of the ``[guests.NAME]`` tables of ``project``'s nixgen.toml, in
    order; empty when there is no such file or it does not read as TOML.

    The guests' settings are not looked at: a guest with a mistake in them is
    still declared (``nixgen check`` reports the mistake).
    """
    import tomli  # (here: render and check import SOURCE_NAME and read no names)

    try:
        raw = (project / SOURCE_NAME).read_bytes()
        # A byte-order mark (some editors write one) is not part of the TOML.
        data = tomli.loads(raw.decode("utf-8").removeprefix("\ufeff"))
    except (OSError, UnicodeDecodeError, tomli.TOMLDecodeError, RecursionError):
        return []
    guests = data.get("guests")
    return [str(name) for name in guests] if isinstance(guests, dict) else []
