"""What an evaluation of the flake says, and edits placed by it.

The flake layer does not run nix: :class:`Evaluator` is any callable that
turns a flake folder into an :class:`EvaluatedFlake` (nixgen's own is
:class:`nixgen.evaluate.FlakeEvaluator`, one ``nix eval`` for every
configuration).  Here the evaluation's definitions are placed in the files
of the flake (:func:`place`: the binding that wins, read with the same
parser as everything else), and an edit of a computed guest is planned
(:func:`plan_set`, :func:`plan_unset`): the winning definition is changed in
its own file when it is a literal, refused with its ``file:line`` and
expression otherwise.  :func:`compare` says what an edit changed, once the
flake is evaluated again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Protocol

import attrs

from nixgen.errors import NixgenError
from nixgen.flake.errors import EvaluationError, FlakeEditError
from nixgen.nix import edit
from nixgen.nix.emit import application, argument, attr_path, binding, to_nix
from nixgen.nix.parse import CONTAINER_TYPES, Document, unwrap

if TYPE_CHECKING:
    from tree_sitter import Node

__all__ = [
    "EvalConfiguration",
    "EvalDefinition",
    "EvalOption",
    "EvaluatedFlake",
    "EvaluationError",
    "Evaluator",
    "Placed",
    "Planned",
    "as_json",
    "compare",
    "display",
    "place",
    "plan_set",
    "plan_unset",
]

#: Priorities of the module system (``lib.mkDefault`` is 1000).
DEFAULT_PRIO = 1000
NORMAL_PRIO = 100

# `lib.mkDefault 1` and friends: the literal inside is what is edited.
_WRAPPERS = frozenset({"mkDefault", "mkForce", "mkOverride", "mkOptionDefault"})


@attrs.frozen
class EvalDefinition:
    """One definition of an option as the module system records it (the
    highest-priority ones only): its file relative to the flake folder (None:
    outside it, e.g. an input), whether it is an inline module, its value
    (JSON-safe: packages, functions and paths are ``{"_nixgen": …}`` tags)."""

    file: PurePosixPath | None
    inline: bool
    value: object


@attrs.frozen
class EvalOption:
    """An option the flake's author defines: merged value, winning definitions,
    and where inline modules write it (file, line, column, depth, priority)."""

    key: str
    path: tuple[str, ...]
    value: object
    highest_prio: int
    definitions: tuple[EvalDefinition, ...]
    inline_positions: tuple[tuple[PurePosixPath | None, int, int, int, int], ...] = ()


@attrs.frozen
class EvalConfiguration:
    """One ``nixosConfigurations`` entry: ``kind`` is ``guest`` (imports the
    microvm guest module), ``host`` (has ``microvm.vms``), ``other``, or
    ``error`` (it throws: a module system error, a failed assertion; the others
    are still read)."""

    name: str
    kind: str
    system: str | None
    options: Mapping[str, EvalOption]
    runs: tuple[str, ...] = ()
    #: microvm.hypervisor, vcpu and mem of a guest, whoever defines them
    summary: Mapping[str, object] = attrs.field(factory=dict)

    def values(self) -> dict[str, object]:
        return {k: o.value for k, o in self.options.items()}


@attrs.frozen
class EvaluatedFlake:
    """Every ``nixosConfigurations`` entry of a flake, as evaluated."""

    configurations: Mapping[str, EvalConfiguration]

    def guests(self) -> list[str]:
        return [n for n, c in self.configurations.items() if c.kind == "guest"]

    def hosts(self) -> list[str]:
        return [n for n, c in self.configurations.items() if c.kind == "host"]

    def failed(self) -> list[str]:
        """The configurations that throw when evaluated."""
        return [n for n, c in self.configurations.items() if c.kind == "error"]


class Evaluator(Protocol):
    """Evaluates the flake in a folder (see :class:`nixgen.evaluate.FlakeEvaluator`)."""

    def __call__(self, root: Path) -> EvaluatedFlake: ...


# --------------------------------------------------------------------------- placing definitions


@attrs.frozen
class Placed:
    """Where one winning definition is written.

    ``file``/``line``: the binding; ``text``: its value as written;
    ``target``/``keys``: the attribute set and the path in it to edit (None
    when it cannot be edited, then ``reason`` says why); ``literal``: the
    node to replace when the literal sits inside ``lib.mkDefault …``.
    """

    file: Path | None
    line: int | None
    text: str
    reason: str | None = None
    target: Node | None = attrs.field(default=None, eq=False, repr=False)
    keys: tuple[str, ...] = ()
    literal: Node | None = attrs.field(default=None, eq=False, repr=False)
    wrapper: str | None = None

    def where(self, root: Path) -> str:
        if self.file is None:
            return "an input of the flake"
        shown = _relative(self.file, root)
        return f"{shown}:{self.line}" if self.line is not None else shown


Loader = Callable[[Path], Document]
#: The text of a file as the evaluation saw it (None: as it is now).
Origin = Callable[[Path], bytes | None]


def place(
    root: Path,
    option: EvalOption,
    definition: EvalDefinition,
    load: Loader,
    origin: Origin | None = None,
) -> list[Placed]:
    """The bindings of the flake that make ``definition`` (several when more than
    one inline module writes it at the winning priority)."""
    if definition.inline:
        spots = [
            p for p in option.inline_positions if p[0] is not None and p[4] == option.highest_prio
        ]
        if not spots:
            return [
                Placed(
                    None if definition.file is None else root / definition.file,
                    None,
                    short(display(definition.value)),
                    reason="it is written in an inline module nixgen cannot place "
                    "(a module built by a function, or from mkMerge/mkIf)",
                )
            ]
        placed = []
        for file, line, column, depth, _prio in spots:
            assert file is not None
            doc = load(root / file)
            before = origin(root / file) if origin is not None else None
            placed.append(_at_position(doc, root / file, line, column, option.path, depth, before))
        return placed
    if definition.file is None:
        return [Placed(None, None, short(display(definition.value)), reason="an input defines it")]
    path = root / definition.file
    if path.is_dir():  # a module given as a folder: its default.nix, as Nix imports it
        path = path / "default.nix"
    doc = load(path)
    return [_in_module(doc, path, option.path)]


def _at_position(
    doc: Document,
    path: Path,
    line: int,
    column: int,
    option: tuple[str, ...],
    depth: int,
    before: bytes | None = None,
) -> Placed:
    """The binding the evaluation saw at ``line``:``column``; ``before`` is the
    file's text then, when an earlier assignment of the command changed it."""
    if before is not None and before != doc.source:
        moved = _moved(before, doc.source, _offset(before, line, column))
        if moved is None:
            return Placed(
                path, line, "?", reason="an earlier assignment of this command changed it"
            )
        offset = moved
    else:
        offset = _offset(doc.source, line, column)
    node: Node | None = doc.tree.root_node.descendant_for_byte_range(offset, offset)
    while node is not None and node.type not in ("binding", "inherit", "inherit_from"):
        node = node.parent
    if node is None or node.parent is None or node.parent.parent is None:
        return Placed(path, line, "?", reason="nixgen found no binding at this place")
    container = node.parent.parent
    if node.type != "binding":
        return Placed(
            path, line, doc.text_of(node), reason="it is inherited from a variable, an expression"
        )
    attrpath = node.child_by_field_name("attrpath")
    assert attrpath is not None
    written, dynamic = doc.attr_keys(attrpath)
    value = node.child_by_field_name("expression")
    text = doc.text_of(value) if value is not None else "?"
    keys = option[max(0, depth - len(written)) : depth]
    if dynamic or keys != written or container.type not in CONTAINER_TYPES or value is None:
        return Placed(path, line, text, reason="its name is computed")
    if depth < len(option):
        return Placed(
            path,
            line,
            text,
            reason=f"`{attr_path(written)}` is an expression ({short(text)}), "
            f"which holds {attr_path(option)}",
        )
    return _judge(doc, path, line, container, keys, value)


def _in_module(doc: Document, path: Path, option: tuple[str, ...]) -> Placed:
    root = doc.attrset_of(doc.expression(), through=())
    if root is None:
        return Placed(path, 1, "?", reason="the module is not an attribute set nixgen can read")
    found = doc.lookup(root, option)
    if not found.exact and not found.blocker:
        config = doc.lookup(root, ("config", *option))
        if config.exact or config.blocker:
            found = config
    if found.blocker is not None:
        b = found.blocker
        text = doc.text_of(b.value) if b.value is not None else doc.text_of(b.node)
        return Placed(
            path,
            doc.span(b.node).line,
            text,
            reason=f"`{attr_path(b.path)}` is an expression ({short(text)}), "
            f"which holds {attr_path(option)}",
        )
    if len(found.exact) != 1:
        many = len(found.exact)
        return Placed(
            path,
            doc.span(found.exact[0].node).line if many else None,
            "?",
            reason=f"it is written {many} times in this file"
            if many
            else "nixgen cannot find "
            "where in this file (a computed name, a let-bound module, an import)",
        )
    b = found.exact[0]
    if b.value is None:
        return Placed(path, doc.span(b.node).line, doc.text_of(b.node), reason="it is inherited")
    container = b.container
    if container.type not in CONTAINER_TYPES and container.parent is not None:
        container = container.parent
    return _judge(doc, path, doc.span(b.node).line, container, b.written, b.value)


def _judge(
    doc: Document, path: Path, line: int, container: Node, keys: tuple[str, ...], value: Node
) -> Placed:
    text = doc.text_of(value)
    inner = unwrap(value)
    if doc.is_literal(inner):
        return Placed(path, line, text, target=container, keys=keys)
    if inner.type == "apply_expression":
        function = inner.child_by_field_name("function")
        argument = inner.child_by_field_name("argument")
        name = doc.callee_name(function) if function is not None else None
        if name in _WRAPPERS and argument is not None and doc.is_literal(unwrap(argument)):
            return Placed(
                path, line, text, target=container, keys=keys, literal=argument, wrapper=name
            )
    # The binding can still be removed (unset): target and keys are kept.
    parameter = _parameter(doc, inner)
    if parameter is not None:
        return Placed(
            path,
            line,
            text,
            reason=f"its value comes from the function argument `{parameter}` "
            "(every guest made by that function shares this line)",
            target=container,
            keys=keys,
        )
    return Placed(
        path,
        line,
        text,
        reason=f"its value is an expression ({short(text)})",
        target=container,
        keys=keys,
    )


def _parameter(doc: Document, node: Node) -> str | None:
    """The function parameter an expression reads (``cfg`` in ``cfg.mem``), if any."""
    head = node
    while head.type == "select_expression":
        inner = head.child_by_field_name("expression")
        if inner is None:
            break
        head = unwrap(inner)
    if head.type != "variable_expression":
        return None
    name = doc.text_of(head)
    scope: Node | None = head.parent
    while scope is not None:
        if scope.type == "function_expression":
            universal = scope.child_by_field_name("universal")
            if universal is not None and doc.text_of(universal) == name:
                return name
            formals = scope.child_by_field_name("formals")
            if formals is not None:
                for formal in formals.named_children:
                    ident = formal.child_by_field_name("name")
                    if ident is not None and doc.text_of(ident) == name:
                        return name
        scope = scope.parent
    return None


def _moved(before: bytes, after: bytes, offset: int) -> int | None:
    """Where ``offset`` of ``before`` is in ``after`` (one changed region between
    them), or None when it was inside the change."""
    limit = min(len(before), len(after))
    start = 0
    while start < limit and before[start] == after[start]:
        start += 1
    end = 0
    while end < limit - start and before[-1 - end] == after[-1 - end]:
        end += 1
    if offset < start:
        return offset
    if offset >= len(before) - end:
        return offset + len(after) - len(before)
    return None


def _offset(source: bytes, line: int, column: int) -> int:
    start = 0
    for _ in range(line - 1):
        found = source.find(b"\n", start)
        if found < 0:
            return len(source)
        start = found + 1
    return min(len(source), start + max(0, column - 1))


# --------------------------------------------------------------------------- planning edits


@attrs.frozen
class Planned:
    """An edit of one file and what the next evaluation must show."""

    path: Path
    doc: Document
    key: str
    expect: object  # the JSON value the option must have; _GONE for unset
    where: str


GONE = "<unset>"


def owner(
    evaluated: EvaluatedFlake, name: str, key: str
) -> tuple[EvalConfiguration, EvalOption | None]:
    config = evaluated.configurations.get(name)
    if config is None:
        known = ", ".join(evaluated.guests()) or "none"
        raise FlakeEditError(
            f"no guest {name!r} in the flake's evaluated nixosConfigurations (guests: {known})",
            hint="see `nixgen show` for the guests",
        )
    if config.kind == "error":
        raise FlakeEditError(
            f"{name!r} does not evaluate, so nixgen cannot tell where its options are defined",
            hint=f"see the error with `nix eval .#nixosConfigurations.{name}.config.microvm` "
            "and fix it first",
        )
    if config.kind != "guest":
        what = "a host (it runs guests)" if config.kind == "host" else "not a microvm guest"
        raise FlakeEditError(
            f"{name!r} is {what}; nixgen edits guests only",
            hint="edit its configuration by hand",
        )
    return config, config.options.get(key)  # None: not defined by the flake's files


def own_files(evaluated: EvaluatedFlake, name: str) -> list[PurePosixPath]:
    """The flake's files that define options of guest ``name`` and of no other configuration."""
    mine: dict[PurePosixPath, int] = {}
    others: set[PurePosixPath] = set()
    for config in evaluated.configurations.values():
        for option in config.options.values():
            for d in option.definitions:
                if d.file is None or d.inline:
                    continue
                if config.name == name:
                    mine[d.file] = mine.get(d.file, 0) + 1
                else:
                    others.add(d.file)
    own = [f for f in mine if f not in others]
    return sorted(own, key=lambda f: -mine[f])


def sharers(
    evaluated: EvaluatedFlake, name: str, option: EvalOption, placed: Placed, root: Path
) -> list[str]:
    """The other configurations that use the place of a definition: the same inline
    binding of the option, or (a module file) any definition from that file."""
    out = []
    for config in evaluated.configurations.values():
        if config.name == name:
            continue
        for other in config.options.values():
            if placed.file is not None and any(
                d.file is not None
                and not d.inline
                and placed.file in (root / d.file, root / d.file / "default.nix")
                for d in other.definitions
            ):
                out.append(config.name)
                break
            if other.key == option.key and any(
                p[0] is not None and (root / p[0], p[1]) == (placed.file, placed.line)
                for p in other.inline_positions
            ):
                out.append(config.name)
                break
    return out


def plan_set(
    evaluated: EvaluatedFlake,
    root: Path,
    name: str,
    key: str,
    path: tuple[str, ...],
    value: object,
    load: Loader,
    origin: Origin | None = None,
) -> Planned:
    """Where ``key = value`` goes for guest ``name``, as an edited document."""
    _config, option = owner(evaluated, name, key)
    writes = _Binding(binding(path, value), binding(path, application("lib.mkForce", value)))
    if option is None:
        return _add_to_own(evaluated, root, name, key, path, value, load, writes, origin)
    winner = _winner(evaluated, root, name, option, load, writes, origin)
    if winner.wrapper == "mkDefault" and sharers(evaluated, name, option, winner, root):
        # The NixOS way: a plain definition in the guest's own module wins over it.
        own = own_files(evaluated, name)
        if own:
            return _add_to_own(evaluated, root, name, key, path, value, load, writes, origin)
        raise FlakeEditError(
            f"{name}: {key} is `{short(winner.text)}` at {winner.where(root)}, a lib.mkDefault in "
            f"a module shared with {', '.join(sharers(evaluated, name, option, winner, root))}, "
            f"and {name} has no module file of its own to override it in",
            hint=f"add a module only {name} uses, holding `{writes.plain}`",
        )
    _refuse_shared(evaluated, root, name, option, winner, writes)
    assert winner.file is not None and winner.target is not None
    doc = load(winner.file)
    if winner.literal is not None:
        # the literal may be a wrapper's argument (`lib.mkDefault 1024`)
        new_text = argument(value)
        new = edit.apply(
            doc,
            [
                edit.Replacement(
                    winner.literal.start_byte, winner.literal.end_byte, new_text.encode()
                )
            ],
        )
    else:
        new = edit.set_value(doc, winner.target, winner.keys, to_nix(value))
    return Planned(winner.file, new, key, as_json(value), winner.where(root))


def plan_unset(
    evaluated: EvaluatedFlake,
    root: Path,
    name: str,
    key: str,
    load: Loader,
    origin: Origin | None = None,
) -> Planned:
    """Remove the winning literal binding of ``key`` for guest ``name``."""
    _config, option = owner(evaluated, name, key)
    if option is None:
        raise FlakeEditError(
            f"{name}: {key} is not defined in the flake's own files (nothing to unset)",
            hint="see `nixgen show " + name + "` for the options it defines",
        )
    winner = _winner(evaluated, root, name, option, load, None, origin)
    _refuse_shared(evaluated, root, name, option, winner, None)
    assert winner.file is not None and winner.target is not None
    doc = load(winner.file)
    new = edit.unset(doc, winner.target, winner.keys, missing_ok=False)
    return Planned(winner.file, new, key, GONE, winner.where(root))


def _winner(
    evaluated: EvaluatedFlake,
    root: Path,
    name: str,
    option: EvalOption,
    load: Loader,
    writes: _Binding | None,
    origin: Origin | None = None,
) -> Placed:
    """The one definition that wins, as a literal binding nixgen can edit; else a
    refusal.  ``writes``: the binding ``set`` would write (None for ``unset``)."""
    found = [p for d in option.definitions for p in place(root, option, d, load, origin)]
    # Inline definitions share their places (each lists every inline spot): once each.
    places = list({(p.file, p.line, p.text): p for p in found}.values())
    count = max(len(option.definitions), len(places))
    if count != 1:
        spots = ", ".join(f"{p.where(root)} ({short(p.text)})" for p in places)
        raise FlakeEditError(
            f"{name}: {option.key} is defined {count} times at the same priority "
            f"({spots}); the module system merges them, so no one binding holds the value",
            hint="change them by hand"
            if writes is None
            else f"change them by hand, or replace them all for {name} in a module only it "
            f"uses: `{writes.forced}`",
        )
    winner = places[0]
    if writes is None and winner.target is not None:
        return winner  # unset removes the whole binding, whatever its value
    if winner.reason is not None:
        where = winner.where(root)
        forced = writes.forced if writes is not None else ""
        if writes is None:
            instead = f"remove it by hand at {where}"
        elif "function argument" in winner.reason:
            instead = (
                f"change the argument where {name} is made, or override it in a module only "
                f"{name} uses: `{forced}`"
            )
        elif winner.file is not None and not sharers(evaluated, name, option, winner, root):
            instead = f"write it as a literal at {where}: `{writes.plain}`"
        else:
            instead = f"override it for {name} alone, in a module only {name} uses: `{forced}`"
        raise FlakeEditError(
            f"{name}: {option.key} is defined at {where} as `{short(winner.text)}`: "
            f"{winner.reason}; nixgen edits only literal definitions",
            hint=instead,
        )
    return winner


def _refuse_shared(
    evaluated: EvaluatedFlake,
    root: Path,
    name: str,
    option: EvalOption,
    winner: Placed,
    writes: _Binding | None,
) -> None:
    shared = sharers(evaluated, name, option, winner, root)
    if shared:
        if writes is None:
            hint = (
                f"remove it by hand, if {', '.join(shared)} should lose it too; to give "
                f"{name} the option's default, set it in a module only {name} uses"
            )
        else:
            hint = f"override it for {name} alone, in a module only {name} uses: `{writes.forced}`"
        raise FlakeEditError(
            f"{name}: {option.key} is defined at {winner.where(root)} "
            f"(`{short(winner.text)}`), a place it shares with {', '.join(shared)}: "
            f"changing it would change them too",
            hint=hint,
        )


@attrs.frozen
class _Binding:
    """What ``set`` would write, as text for hints: plain, and as ``lib.mkForce``
    (which wins over every other definition) for a module of the guest's own."""

    plain: str
    forced: str


def _add_to_own(
    evaluated: EvaluatedFlake,
    root: Path,
    name: str,
    key: str,
    path: tuple[str, ...],
    value: object,
    load: Loader,
    writes: _Binding,
    origin: Origin | None = None,
) -> Planned:
    own = own_files(evaluated, name)
    if not own:
        inline = _own_inline(evaluated, root, name, path, load, origin)
        if inline is not None:
            spot, keys, at = inline
            added = edit.set_value(load(at), spot, keys, to_nix(value))
            return Planned(at, added, key, as_json(value), _relative(at, root))
        raise FlakeEditError(
            f"{name}: {key} is not defined in a file nixgen can edit, and {name} has no "
            "module file of its own to add it to",
            hint=f"write `{writes.plain}` in a module that only {name} uses "
            f"(e.g. a new ./vms/{name}.nix listed in its modules)",
        )
    file = root / own[0]
    doc = load(file)
    target = doc.attrset_of(doc.expression(), through=())
    if target is None:
        raise FlakeEditError(
            f"{_relative(file, root)}: the module of {name} is not an attribute set nixgen "
            "can add to",
            hint=f"write `{writes.plain}` in it by hand",
        )
    config = doc.get(target, ("config",))
    if config is not None and unwrap(config).type in CONTAINER_TYPES:
        target = unwrap(config)
    new = edit.set_value(doc, target, path, to_nix(value))
    return Planned(file, new, key, as_json(value), _relative(file, root))


def _own_inline(
    evaluated: EvaluatedFlake,
    root: Path,
    name: str,
    path: tuple[str, ...],
    load: Loader,
    origin: Origin | None = None,
) -> tuple[Node, tuple[str, ...], Path] | None:
    """An inline module only guest ``name`` has (``mkVM "web" { … }``), as the
    attribute set to add ``path`` to and the path inside it."""
    config = evaluated.configurations[name]
    shared: set[tuple[PurePosixPath | None, int]] = set()
    for other in evaluated.configurations.values():
        if other.name != name:
            for option in other.options.values():
                shared.update((p[0], p[1]) for p in option.inline_positions)
    for option in config.options.values():
        for file, line, column, depth, prio in option.inline_positions:
            if file is None or prio != option.highest_prio or (file, line) in shared:
                continue
            before = origin(root / file) if origin is not None else None
            placed = _at_position(
                load(root / file), root / file, line, column, option.path, depth, before
            )
            if placed.target is None:
                continue
            prefix = option.path[: depth - len(placed.keys)]
            if path[: len(prefix)] == prefix and len(path) > len(prefix):
                return placed.target, path[len(prefix) :], root / file
    return None


# --------------------------------------------------------------------------- checking


def as_json(value: object) -> object:
    """A literal as the evaluation reports it (paths are not compared)."""
    if isinstance(value, PurePosixPath):
        return {"_nixgen": "path"}
    if isinstance(value, Mapping):
        return {str(k): as_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_json(v) for v in value]
    return value


def _same(expected: object, got: object) -> bool:
    if isinstance(expected, Mapping) and expected.get("_nixgen") == "path":
        return isinstance(got, Mapping) and got.get("_nixgen") == "path"
    if isinstance(expected, Mapping) and isinstance(got, Mapping):
        # a submodule's value also holds its options' defaults: what was written must be there
        return all(k in got and _same(v, got[k]) for k, v in expected.items())
    if isinstance(expected, list) and isinstance(got, list):
        return len(expected) == len(got) and all(
            _same(a, b) for a, b in zip(expected, got, strict=True)
        )
    if isinstance(expected, float) or isinstance(got, float):
        if not (isinstance(got, int | float) and isinstance(expected, int | float)):
            return False
        return float(got) == float(expected)
    return expected == got and type(expected) is type(got)


def compare(
    before: EvaluatedFlake, after: EvaluatedFlake, name: str, checks: Sequence[Planned]
) -> list[str]:
    """What is wrong after an edit of guest ``name``: the options edited do not have
    their new values, or another configuration's evaluated values changed."""
    wrong: list[str] = []
    mine = after.configurations.get(name)
    if mine is None:
        return [f"guest {name!r} is gone from nixosConfigurations"]
    for check in checks:
        option = mine.options.get(check.key)
        if check.expect == GONE:
            old = before.configurations[name].options.get(check.key)
            if option is not None and old is not None and option.definitions == old.definitions:
                wrong.append(f"{name}: {check.key} is still defined as before")
        elif option is None or not _same(check.expect, option.value):
            got = "not defined" if option is None else short(display(option.value))
            wrong.append(
                f"{name}: {check.key} is {got}, not {short(display(check.expect))} "
                f"(edited at {check.where})"
            )
    if set(before.configurations) != set(after.configurations):
        wrong.append(
            "the configurations changed: "
            f"{', '.join(sorted(before.configurations))} → {', '.join(sorted(after.configurations))}"
        )
    for other, config in before.configurations.items():
        if other == name or other not in after.configurations:
            continue
        old_values, new_values = config.values(), after.configurations[other].values()
        for key in sorted(set(old_values) | set(new_values)):
            if old_values.get(key, GONE) != new_values.get(key, GONE):
                wrong.append(
                    f"{other}: {key} changed from {short(display(old_values.get(key, GONE)))} "
                    f"to {short(display(new_values.get(key, GONE)))}"
                )
    return wrong


# --------------------------------------------------------------------------- showing values


def display(value: object) -> str:
    """An evaluated value as Nix would print it (tags as ``<package hello>``)."""
    if value == GONE:
        return "unset"
    if isinstance(value, Mapping) and "_nixgen" in value:
        tag = value["_nixgen"]
        if tag == "package":
            return f"<package {value.get('name') or '?'}>"
        if tag == "path":
            return f"<path {value.get('path', '')}>".replace(" >", ">")
        return f"<{tag}>"
    if isinstance(value, Mapping):
        inner = " ".join(f"{attr_path((str(k),))} = {display(v)};" for k, v in value.items())
        return f"{{ {inner} }}" if inner else "{ }"
    if isinstance(value, list):
        return "[ " + " ".join(display(v) for v in value) + " ]" if value else "[ ]"
    try:
        return to_nix(value)
    except NixgenError:
        return repr(value)


def short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()
