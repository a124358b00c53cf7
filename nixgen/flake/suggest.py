"""What a bare word given as an option's value may have meant (``microvm.socket=ctl``).

A hint may offer a value only when nixgen would accept it: each candidate (the
word as a string, the closest choice of an enum, a one-element list) is tried
against microvm.nix's option schema, the model and the validator before it is
offered.  When none fits, the hint says what the option takes and offers no
value.
"""

from __future__ import annotations

import difflib
import shlex
from collections.abc import Iterator, Mapping, Sequence

import attrs

from nixgen.errors import NixgenError, ValidationError
from nixgen.model import SYSTEMS, Flake
from nixgen.nix.emit import parse_attr_path, to_nix
from nixgen.nix.literal import Suggestion
from nixgen.schema import Schema, packaged_schema
from nixgen.settings import SYSTEM, model_from_settings
from nixgen.validate import check

__all__ = ["suggest_value", "with_suggestions"]


def suggest_value(key: str, word: str, schema: Schema | None = None) -> Suggestion:
    """A value of option ``key`` that ``word`` may stand for and that nixgen accepts
    (``Suggestion.values``, at most one), and what the option takes, when known."""
    schema = schema or packaged_schema()
    try:
        path = tuple(parse_attr_path(key))
    except NixgenError:
        return Suggestion()
    takes = _takes(path, schema)
    if path[-1:] == ("enable",) and path[0] != "microvm":
        # NixOS' `….enable` options are booleans: "yes" is not meant as a string.
        return Suggestion(takes="true or false")
    for candidate in _candidates(path, word, schema):
        if _accepted(key, path, candidate, schema):
            return Suggestion(values=(candidate,), takes=takes)
    return Suggestion(takes=takes)


def with_suggestions(
    err: ValidationError, values: Mapping[str, object], schema: Schema | None = None
) -> ValidationError:
    """``err`` (an edit setting ``values`` was refused) with a value to try added to the
    hint of each problem about one of those options whose string value was not one the
    option takes, when a close one is (``system="x86"``: ``system='"x86_64-linux"'``)."""
    problems = []
    for problem in err.problems:
        for key, value in values.items():
            if isinstance(value, str) and problem.path.endswith(f".{key}"):
                found = suggest_value(key, value, schema)
                if found.values and found.values[0] != value:
                    shown = shlex.quote(to_nix(found.values[0]))
                    hint = f"{problem.hint}; did you mean {key}={shown}?"
                    problem = attrs.evolve(problem, hint=hint)
                break
        problems.append(problem)
    return ValidationError(problems, source=err.source, warnings=err.warnings)


def _candidates(path: tuple[str, ...], word: str, schema: Schema) -> Iterator[object]:
    choices = _choices(path, schema)
    if choices:
        yield from _closest(word, choices)
        return
    yield word
    yield [word]


def _closest(word: str, choices: Sequence[str]) -> list[str]:
    if word in choices:
        return [word]
    started = [c for c in choices if word and c.startswith(word)]
    return started[:1] or difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)


def _choices(path: tuple[str, ...], schema: Schema) -> tuple[str, ...]:
    if path == (SYSTEM,):
        return SYSTEMS
    option = _option(path, schema)
    if option is None:
        return ()
    typ = option.get("type")
    values = typ.get("values") if isinstance(typ, Mapping) else None
    return tuple(str(v) for v in values) if isinstance(values, list) else ()


def _takes(path: tuple[str, ...], schema: Schema) -> str | None:
    if path == (SYSTEM,):
        return " or ".join(f'"{s}"' for s in SYSTEMS)
    option = _option(path, schema)
    typ = option.get("type") if option is not None else None
    return str(typ.get("description")) if isinstance(typ, Mapping) else None


def _option(path: tuple[str, ...], schema: Schema) -> Mapping[str, object] | None:
    if len(path) < 2 or path[0] != "microvm":
        return None
    found = schema.lookup("guest", path[1:])
    option = getattr(found, "option", None)
    return option if isinstance(option, Mapping) else None


def _accepted(key: str, path: tuple[str, ...], value: object, schema: Schema) -> bool:
    """Whether setting ``key`` to ``value`` on a guest of its own passes every check
    an edit makes: the schema, the model, the validator."""
    if path[0] == "microvm" and any(True for _ in schema.problems("guest", path[1:], value)):
        return False
    vm, unmodelled = model_from_settings("suggested", {key: value})
    if key in unmodelled:
        return False
    return not [p for p in check(Flake(guests=[vm]), schema=schema) if not p.warning]
