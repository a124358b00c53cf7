"""Edits of a :class:`~nixgen.nix.parse.Document` that leave every other byte alone.

Every edit is a set of byte-range replacements.  They are applied to a copy
of the syntax tree with ``Tree.edit`` and the text is reparsed incrementally;
the result must parse (and must not use constructs nixgen refuses), and a
lookup in the new document must show the intended change, or the edit raises
and the original Document stays as it was (Documents are immutable).

Text given to these functions is Nix as :func:`nixgen.nix.emit.to_nix`
prints it at level 0: the first line unindented, further lines indented by
two spaces per level.  It is moved to the indentation of the place it goes
(tabs or four-space steps where the file uses them); lines inside strings are
shifted only where that cannot change the string's value.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

import attrs
from tree_sitter import Node, Point

from nixgen.nix.emit import attr_name, attr_path
from nixgen.nix.errors import NixEditError, NixSyntaxError
from nixgen.nix.parse import (
    Binding,
    Document,
    Lookup,
    Place,
    Step,
    check_tree,
    new_parser,
)

__all__ = [
    "Replacement",
    "Target",
    "apply",
    "diff",
    "insert_binding",
    "insert_element",
    "remove_element",
    "rename",
    "set_value",
    "text_diff",
    "unset",
]

Target = Node | Sequence[Step]

# Expressions that can stand as a list element without parentheses.
_LIST_SAFE = frozenset(
    {
        "variable_expression",
        "select_expression",
        "parenthesized_expression",
        "attrset_expression",
        "rec_attrset_expression",
        "let_attrset_expression",
        "list_expression",
        "string_expression",
        "indented_string_expression",
        "path_expression",
        "hpath_expression",
        "spath_expression",
        "uri_expression",
        "integer_expression",
        "float_expression",
    }
)
_STRING_TYPES = frozenset({"string_expression", "indented_string_expression"})


@attrs.frozen
class Replacement:
    """Replace ``source[start:end]`` with ``text``."""

    start: int
    end: int
    text: bytes


# --------------------------------------------------------------------------- low level


def apply(doc: Document, replacements: Sequence[Replacement]) -> Document:
    """A new Document with the replacements made, reparsed incrementally.

    Raises :class:`NixSyntaxError` (and changes nothing) if the result does
    not parse.
    """
    reps = _merge(replacements)
    if not reps:
        return doc
    source = doc.source
    tree = doc.tree.copy()
    pieces: list[bytes] = []
    cursor = 0
    for rep in reps:
        pieces.append(source[cursor : rep.start])
        pieces.append(rep.text)
        cursor = rep.end
    pieces.append(source[cursor:])
    new_source = b"".join(pieces)
    # Edit the tree from the last replacement to the first: positions before a
    # replacement are still those of the original text when it is applied.
    for rep in reversed(reps):
        start_point = _point(source, rep.start)
        old_end_point = _point(source, rep.end)
        new_end_point = _advance(start_point, rep.text)
        tree.edit(
            rep.start,
            rep.end,
            rep.start + len(rep.text),
            start_point,
            old_end_point,
            new_end_point,
        )
    new_tree = new_parser().parse(new_source, tree)
    try:
        check_tree(new_source, new_tree, doc.path)
    except NixSyntaxError as err:
        raise NixSyntaxError(
            f"edit refused, the result would not be valid: {err.message}",
            file=err.file,
            line=err.line,
            column=err.column,
            hint=err.hint,
        ) from None
    return Document(new_source, new_tree, doc.path)


def _merge(replacements: Sequence[Replacement]) -> list[Replacement]:
    reps = sorted(replacements, key=lambda r: (r.start, r.end))
    out: list[Replacement] = []
    for rep in reps:
        if rep.start > rep.end:
            raise ValueError(f"replacement with start {rep.start} after end {rep.end}")
        if out and rep.start < out[-1].end:
            last = out[-1]
            if rep.text or last.text:
                raise NixEditError(
                    f"overlapping edits at bytes {last.start}-{last.end} and {rep.start}-{rep.end}"
                )
            out[-1] = Replacement(last.start, max(last.end, rep.end), b"")
            continue
        out.append(rep)
    return out


def _point(source: bytes, offset: int) -> Point:
    line_start = source.rfind(b"\n", 0, offset) + 1
    return Point(source.count(b"\n", 0, line_start), offset - line_start)


def _advance(start: Point, text: bytes) -> Point:
    lines = text.count(b"\n")
    if not lines:
        return Point(start.row, start.column + len(text))
    return Point(start.row + lines, len(text) - text.rfind(b"\n") - 1)


def diff(old: Document, new: Document, *, label: str | None = None, context: int = 3) -> str:
    """A unified diff from ``old`` to ``new`` ("" when they are the same)."""
    name = label or str(new.path or old.path or "<text>")
    return text_diff(old.text, new.text, name, context=context)


def text_diff(old: str | None, new: str | None, label: str, *, context: int = 3) -> str:
    """A unified diff of two versions of file ``label``; ``None`` is a file that
    does not exist (``/dev/null``, for files created or removed)."""
    lines = difflib.unified_diff(
        _lines(old) if old is not None else [],
        _lines(new) if new is not None else [],
        f"a/{label}" if old is not None else "/dev/null",
        f"b/{label}" if new is not None else "/dev/null",
        n=context,
    )
    out: list[str] = []
    for line in lines:
        if not line.endswith("\n"):
            line += "\n\\ No newline at end of file\n"
        out.append(line)
    return "".join(out)


def _lines(text: str) -> list[str]:
    # str.splitlines also splits on \x0c, \u2028 …: Nix files only break on \n.
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


# --------------------------------------------------------------------------- bindings


def set_value(doc: Document, target: Target, path: Sequence[str], value: str) -> Document:
    """Bind ``path`` (below the attribute set ``target``) to the expression ``value``.

    An existing binding keeps its form (dotted or nested) and only its value
    changes; a new one goes next to the bindings it shares the longest prefix
    with, inside a nested set when one exists (``microvm = { … };``), dotted
    otherwise, following the neighbours' indentation.
    """
    keys = _keys(path)
    _check_expression(value, "value")
    place = doc.locate(target)
    full = place.prefix + keys
    found = doc.lookup(place.container, full)
    _refuse_blocked(doc, found, "set")
    reps: list[Replacement] = []
    if found.exact:
        first, *others = found.exact
        reps.extend(_replace_binding_value(doc, first, value))
        for other in [*others, *found.inner]:
            reps.extend(_remove_binding(doc, other))
    elif found.inner:
        first, *others = sorted(found.inner, key=lambda b: b.node.start_byte)
        rel = full[len(first.prefix) :]
        base = _line_indent(doc.source, first.node.start_byte)
        laid = _layout(doc, value, base, unit=_unit(doc, first.container))
        text = f"{attr_path(rel)} = {laid};"
        reps.append(Replacement(first.node.start_byte, first.node.end_byte, text.encode()))
        for other in others:
            if other.node != first.node:
                reps.extend(_remove_binding(doc, other))
    else:
        rel = full[len(found.prefix) :]
        reps.extend(_insert_bindings(doc, found.container, rel, f"{attr_path(rel)} = {value};"))
    new = apply(doc, reps)
    _verify_value(new, place, full)
    return new


def unset(
    doc: Document, target: Target, path: Sequence[str], *, missing_ok: bool = True
) -> Document:
    """Remove every binding of ``path``, with its line and the comment lines above it."""
    keys = _keys(path)
    place = doc.locate(target)
    full = place.prefix + keys
    found = doc.lookup(place.container, full)
    _refuse_blocked(doc, found, "unset")
    if not found.found:
        if missing_ok:
            return doc
        raise NixEditError(f"`{attr_path(full)}` is not set in {doc.path or 'the document'}")
    reps: list[Replacement] = []
    for b in found.all:
        reps.extend(_remove_binding(doc, b))
    new = apply(doc, reps)
    after = new.lookup(_relocate(new, place.container), full)
    if after.found:
        raise NixEditError(f"internal: `{attr_path(full)}` is still set after unset")
    return new


def rename(doc: Document, target: Target, path: Sequence[str], new_name: str) -> Document:
    """Rename the last key of ``path`` to ``new_name`` wherever it is written."""
    keys = _keys(path)
    _keys([new_name])
    place = doc.locate(target)
    full = place.prefix + keys
    renamed = (*full[:-1], new_name)
    found = doc.lookup(place.container, full)
    _refuse_blocked(doc, found, "rename")
    if not found.found:
        raise NixEditError(f"`{attr_path(full)}` is not set in {doc.path or 'the document'}")
    clash = doc.lookup(place.container, renamed)
    if clash.found or clash.blocker is not None:
        raise NixEditError(f"`{attr_path(renamed)}` is already set; rename refused")
    reps: list[Replacement] = []
    for b in found.all:
        if b.inherited:
            raise NixEditError(
                f"{doc.span(b.node)}: `{attr_path(full)}` is inherited; "
                "rename it by writing `new = old;` instead",
            )
        attrpath = b.node.child_by_field_name("attrpath")
        assert attrpath is not None
        attr = attrpath.children_by_field_name("attr")[len(full) - len(b.prefix) - 1]
        reps.append(Replacement(attr.start_byte, attr.end_byte, attr_name(new_name).encode()))
    new = apply(doc, reps)
    container = _relocate(new, place.container)
    if new.lookup(container, full).found or not new.lookup(container, renamed).found:
        raise NixEditError(f"internal: renaming `{attr_path(full)}` did not take effect")
    return new


def insert_binding(
    doc: Document, target: Target, text: str, *, after: Sequence[str] | None = None
) -> Document:
    """Add whole bindings (``text``, possibly many lines) to an attribute set.

    They go after the binding of ``after`` when given, else next to the
    bindings sharing the longest prefix with the first new one, else last.
    Bindings that are already defined are refused.
    """
    parsed = _parse_bindings(text)
    place = doc.locate(target)
    if place.prefix:
        text = _prefix_bindings(text, place.prefix)
        parsed = _parse_bindings(text)
    for keys in parsed:
        clash = doc.lookup(place.container, keys)
        if clash.found or clash.blocker is not None:
            raise NixEditError(f"`{attr_path(keys)}` is already set; insert refused")
    anchor = parsed[0]
    if after is not None:
        anchor = place.prefix + _keys(after)
    reps = _insert_bindings(doc, place.container, anchor, text, exact_after=after is not None)
    new = apply(doc, reps)
    container = _relocate(new, place.container)
    for keys in parsed:
        if not new.lookup(container, keys).found:
            raise NixEditError(f"internal: `{attr_path(keys)}` missing after insert")
    return new


# --------------------------------------------------------------------------- lists


def insert_element(doc: Document, target: Target, text: str, index: int | None = None) -> Document:
    """Insert the expression ``text`` into a list literal (at the end by default).

    Expressions that a list would split (``f x``, ``-1``) are parenthesised.
    """
    root = _check_expression(text, "element")
    if root.type not in _LIST_SAFE:
        text = f"({text})"
    lst = doc.locate_list(target)
    elements = doc.list_elements(lst)
    at = len(elements) if index is None else index
    if at < 0:
        at += len(elements)
    if not 0 <= at <= len(elements):
        raise NixEditError(f"index {index} is outside a list of {len(elements)} elements")
    open_, close = _delimiters(lst, "[", "]")
    reps = _insert_item(doc, lst, open_, close, elements, at, text)
    new = apply(doc, reps)
    new_list = _relocate(new, lst)
    new_elements = new.list_elements(new_list)
    if len(new_elements) != len(elements) + 1:
        raise NixEditError("internal: the list did not grow by one element")
    return new


def remove_element(doc: Document, target: Target, index: int) -> Document:
    """Remove one element of a list literal, with its line when it has one."""
    lst = doc.locate_list(target)
    elements = doc.list_elements(lst)
    if not -len(elements) <= index < len(elements):
        raise NixEditError(f"index {index} is outside a list of {len(elements)} elements")
    start, end = _removal_range(doc, elements[index])
    new = apply(doc, [Replacement(start, end, b"")])
    if len(new.list_elements(_relocate(new, lst))) != len(elements) - 1:
        raise NixEditError("internal: the list did not shrink by one element")
    return new


# --------------------------------------------------------------------------- internals


def _keys(path: Sequence[str]) -> tuple[str, ...]:
    if isinstance(path, str):
        raise TypeError("an attribute path is a sequence of names, e.g. ['microvm', 'mem']")
    keys = tuple(path)
    if not keys or not all(isinstance(k, str) for k in keys):
        raise NixEditError(f"an attribute path needs one or more string keys, got {path!r}")
    return keys


def _check_expression(text: str, what: str) -> Node:
    if not text.strip():
        raise NixEditError(f"the {what} is empty", hint="give Nix text, e.g. to_nix(value)")
    try:
        parsed = Document.parse(text)
    except NixSyntaxError as err:
        raise NixSyntaxError(
            f"the {what} to write is not a Nix expression: {err.message}",
            hint="produce it with nixgen.nix.emit.to_nix",
        ) from None
    return parsed.expression()


def _parse_bindings(text: str) -> list[tuple[str, ...]]:
    """The key paths of the bindings in ``text`` (which must be only bindings)."""
    try:
        parsed = Document.parse("{\n" + text + "\n}")
    except NixSyntaxError as err:
        raise NixSyntaxError(
            f"the bindings to insert do not parse: {err.message}",
            hint="give complete bindings ending in `;`, e.g. `web = { … };`",
        ) from None
    aset = parsed.expression()
    if aset.type != "attrset_expression":
        raise NixEditError("the text to insert is not a list of bindings")
    keys = [b.path for b in parsed.iter_bindings(aset)]
    if not keys:
        raise NixEditError("the text to insert holds no binding")
    return keys


def _prefix_bindings(text: str, prefix: tuple[str, ...]) -> str:
    parsed = Document.parse("{\n" + text + "\n}")
    source = parsed.source
    out: list[bytes] = []
    cursor = 2
    for node in parsed.bindings(parsed.expression()):
        if node.type != "binding":
            raise NixEditError(
                f"cannot insert `inherit` below `{attr_path(prefix)}`, which is only "
                "written as dotted paths"
            )
        out.append(source[cursor : node.start_byte])
        out.append(attr_path(prefix).encode() + b".")
        cursor = node.start_byte
    out.append(source[cursor:-2])
    return b"".join(out).decode()


def _refuse_blocked(doc: Document, found: Lookup, verb: str) -> None:
    blocker = found.blocker
    if blocker is None:
        return
    shown = doc.text_of(blocker.value) if blocker.value is not None else "inherited"
    shown = " ".join(shown.split())
    if len(shown) > 50:
        shown = shown[:49] + "…"
    raise NixEditError(
        f"{doc.span(blocker.node)}: cannot {verb} `{attr_path(found.path)}`: "
        f"`{attr_path(blocker.path)}` is `{shown}`, not an attribute set literal",
        hint="change that expression by hand, or replace it as a whole",
    )


def _relocate(new: Document, old: Node) -> Node:
    """The node of ``new`` that corresponds to ``old`` (edits stay inside it)."""
    found = new.node_at(old.start_byte, old.type)
    if found is None:
        raise NixEditError("internal: lost track of the edited node")
    return found


def _verify_value(new: Document, place: Place, full: tuple[str, ...]) -> None:
    container = _relocate(new, place.container)
    found = new.lookup(container, full)
    if len(found.exact) != 1 or found.inner:
        raise NixEditError(f"internal: setting `{attr_path(full)}` did not take effect")


def _replace_binding_value(doc: Document, b: Binding, value: str) -> list[Replacement]:
    base = _line_indent(doc.source, b.node.start_byte)
    laid = _layout(doc, value, base, unit=_unit(doc, b.container))
    if not b.inherited:
        assert b.value is not None
        return [Replacement(b.value.start_byte, b.value.end_byte, laid.encode())]
    binding_text = f"{attr_name(b.written[-1])} = {laid};"
    names = _inherited_names(b.node)
    if len(names) == 1:
        return [Replacement(b.node.start_byte, b.node.end_byte, binding_text.encode())]
    # `inherit a b c;`: take the name out and bind it on its own line after.
    assert b.name is not None
    reps = [_remove_word(doc, b.name)]
    reps.extend(_insert_after(doc, b.container, b.node, binding_text))
    return reps


def _inherited_names(node: Node) -> list[Node]:
    attrs_node = node.child_by_field_name("attrs")
    return [] if attrs_node is None else attrs_node.children_by_field_name("attr")


def _remove_binding(doc: Document, b: Binding) -> list[Replacement]:
    if b.inherited and len(_inherited_names(b.node)) > 1:
        assert b.name is not None
        return [_remove_word(doc, b.name)]
    start, end = _removal_range(doc, b.node)
    return [Replacement(start, end, b"")]


def _remove_word(doc: Document, node: Node) -> Replacement:
    source = doc.source
    start, end = node.start_byte, node.end_byte
    while end < len(source) and source[end : end + 1] in (b" ", b"\t"):
        end += 1
    if end == node.end_byte:
        while start > 0 and source[start - 1 : start] in (b" ", b"\t"):
            start -= 1
    return Replacement(start, end, b"")


def _insert_bindings(
    doc: Document,
    container: Node,
    keys: tuple[str, ...],
    text: str,
    *,
    exact_after: bool = False,
) -> list[Replacement]:
    items = doc.bindings(container)
    index = len(items)
    if items:
        per_item: dict[int, list[tuple[str, ...]]] = {}
        for b in doc.iter_bindings(container):
            per_item.setdefault(b.node.start_byte, []).append(b.written)
        best = 0
        for i, node in enumerate(items):
            for written in per_item.get(node.start_byte, []):
                score = _common(written, keys)
                if exact_after:
                    score = len(keys) + 1 if written == keys else 0
                if score and score >= best:
                    best = score
                    index = i + 1
        if exact_after and not best:
            raise NixEditError(f"`{attr_path(keys)}` is not written in this attribute set")
    if container.type in ("let_expression",):
        open_, close = _delimiters(container, "let", "in")
    else:
        open_, close = _delimiters(container, "{", "}")
    return _insert_item(doc, container, open_, close, items, index, text)


def _common(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _delimiters(node: Node, opening: str, closing: str) -> tuple[Node, Node]:
    open_ = close = None
    for child in node.children:
        if child.type == opening and open_ is None:
            open_ = child
        elif child.type == closing:
            close = child
    if open_ is None or close is None:
        raise NixEditError(f"internal: `{opening}`…`{closing}` not found")
    return open_, close


def _insert_after(doc: Document, container: Node, node: Node, text: str) -> list[Replacement]:
    """A new item right after ``node`` (on its own line when ``node`` has one)."""
    source = doc.source
    binding = container.type != "list_expression"
    unit = _unit(doc, container)
    indent = _line_indent(source, node.start_byte)
    laid = _layout(doc, text, indent, binding=binding, unit=unit)
    if _ends_line(source, node.end_byte):
        eol = _line_end(source, node.end_byte)
        nl = _newline_at(doc, eol)
        # Items separated by blank lines get a blank line too.
        gap = nl * 2 if _blank_line_follows(doc, container, node, eol) else nl
        return [Replacement(eol, eol, (gap + indent + laid).encode())]
    return [Replacement(node.end_byte, node.end_byte, (" " + laid).encode())]


def _blank_line_follows(doc: Document, container: Node, node: Node, eol: int) -> bool:
    source = doc.source
    next_start = source.find(b"\n", eol) + 1
    if next_start == 0:
        return False
    next_end = _line_end(source, next_start)
    if source[next_start:next_end].strip(b" \t"):
        return False
    return any(item.start_byte > node.end_byte for item in _items_of(container))


def _insert_item(
    doc: Document,
    container: Node,
    open_: Node,
    close: Node,
    items: list[Node],
    index: int,
    text: str,
) -> list[Replacement]:
    source = doc.source
    binding = container.type != "list_expression"
    unit = _unit(doc, container)
    multi = open_.start_point[0] != close.start_point[0]
    single_text = "\n" not in text
    if items:
        if not multi and not single_text:
            return _expand(doc, container, open_, close, index, text)
        if index > 0:
            # After the previous item: the next item keeps its comments above it.
            return _insert_after(doc, container, items[index - 1], text)
        if index < len(items):
            ref = items[index]
            start = _block_start(doc, ref.start_byte)
            if multi and _first_on_line(source, ref.start_byte):
                indent = _line_indent(source, ref.start_byte)
                laid = _layout(doc, text, indent, binding=binding, unit=unit)
                nl = _newline_at(doc, start)
                return [Replacement(start, start, (indent + laid + nl).encode())]
            indent = _line_indent(source, ref.start_byte)
            laid = _layout(doc, text, indent, binding=binding, unit=unit)
            return [Replacement(ref.start_byte, ref.start_byte, (laid + " ").encode())]
        return _insert_after(doc, container, items[-1], text)
    indent = _line_indent(source, open_.start_byte)
    inner = indent + unit
    if multi and _first_on_line(source, close.start_byte):
        start = _line_start(source, close.start_byte)
        laid = _layout(doc, text, inner, binding=binding, unit=unit)
        return [Replacement(start, start, (inner + laid + _newline_at(doc, start)).encode())]
    if single_text and not multi:
        gap = source[open_.end_byte : close.start_byte]
        if not gap.strip():
            laid = _layout(doc, text, indent, binding=binding, unit=unit)
            return [Replacement(open_.end_byte, close.start_byte, f" {laid} ".encode())]
        return [Replacement(close.start_byte, close.start_byte, f"{text} ".encode())]
    return _expand(doc, container, open_, close, index, text)


def _expand(
    doc: Document, container: Node, open_: Node, close: Node, index: int, text: str
) -> list[Replacement]:
    """Rewrite a one-line set or list as one item a line, with the new item at ``index``."""
    source = doc.source
    indent = _line_indent(source, open_.start_byte)
    unit = _unit(doc, container)
    inner = indent + unit
    binding = container.type != "list_expression"
    children: list[Node] = []
    for child in container.children:
        if open_.end_byte <= child.start_byte and child.end_byte <= close.start_byte:
            if child.type == "binding_set":
                children.extend(child.named_children)
            else:
                children.append(child)
    nl = _newline_at(doc, open_.end_byte)
    lines: list[str] = []
    position = 0
    laid = _layout(doc, text, inner, binding=binding, unit=unit)
    for child in children:
        if child.type != "comment" and position == index:
            lines.append(inner + laid)
        if child.type != "comment":
            position += 1
        lines.append(inner + doc.text_of(child))
    if position == index:
        lines.append(inner + laid)
    body = nl + nl.join(lines) + nl + indent
    return [Replacement(open_.end_byte, close.start_byte, body.encode())]


def _removal_range(doc: Document, node: Node) -> tuple[int, int]:
    """Bytes to delete to remove ``node``: its whole line(s) when it has them."""
    source = doc.source
    start, end = node.start_byte, node.end_byte
    if _first_on_line(source, start) and _ends_line(source, end):
        eol = _line_end(source, end)
        terminator = 2 if source[eol : eol + 2] == b"\r\n" else (1 if eol < len(source) else 0)
        return _block_start(doc, start), eol + terminator
    after = end
    while after < len(source) and source[after : after + 1] in (b" ", b"\t"):
        after += 1
    if after > end and source[after : after + 1] not in (b"\n", b"\r", b""):
        return start, after
    before = start
    while before > 0 and source[before - 1 : before] in (b" ", b"\t"):
        before -= 1
    if before < start and not _first_on_line(source, start):
        return before, end
    return start, end


def _line_start(source: bytes, offset: int) -> int:
    return source.rfind(b"\n", 0, offset) + 1


def _line_end(source: bytes, offset: int) -> int:
    """Offset of the line terminator (``\\r\\n`` or ``\\n``) after ``offset``, or EOF."""
    nl = source.find(b"\n", offset)
    if nl == -1:
        return len(source)
    return nl - 1 if nl > 0 and source[nl - 1 : nl] == b"\r" else nl


def _line_indent(source: bytes, offset: int) -> str:
    start = _line_start(source, offset)
    if start == 0 and source.startswith(b"\xef\xbb\xbf"):
        start = 3
    end = start
    while end < len(source) and source[end : end + 1] in (b" ", b"\t"):
        end += 1
    return source[start:end].decode()


def _first_on_line(source: bytes, offset: int) -> bool:
    start = _line_start(source, offset)
    before = source[start:offset]
    if start == 0:
        before = before.removeprefix(b"\xef\xbb\xbf")
    return not before.strip(b" \t")


def _ends_line(source: bytes, offset: int) -> bool:
    """Only blanks, or a comment running to the end of the line, follow ``offset``."""
    rest = source[offset : _line_end(source, offset)].strip(b" \t")
    if not rest or rest.startswith(b"#"):
        return True
    return bool(rest.startswith(b"/*") and rest.endswith(b"*/") and rest.count(b"*/") == 1)


def _block_start(doc: Document, offset: int) -> int:
    """Start of the line at ``offset``, moved up over comment lines directly above."""
    source = doc.source
    start = _line_start(source, offset)
    if not _first_on_line(source, offset):
        return offset
    while start > 0:
        previous = _line_start(source, start - 1)
        line = source[previous:start].rstrip(b"\r\n")
        stripped = line.strip(b" \t")
        if previous == 0:
            stripped = stripped.removeprefix(b"\xef\xbb\xbf").strip(b" \t")
        if not stripped:
            break
        if previous == 0 and line.startswith(b"\xef\xbb\xbf"):
            line = b"   " + line[3:]  # keep offsets, hide the BOM
        first = previous + (len(line) - len(line.lstrip(b" \t")))
        comment = _comment_at(doc, first)
        if comment is not None and _line_end(source, comment.end_byte) == _line_end(source, first):
            start = previous
            continue
        if stripped.endswith(b"*/"):
            last = previous + len(line.rstrip(b" \t")) - 1
            block = _comment_at(doc, last, ending=True)
            if block is not None and _first_on_line(source, block.start_byte):
                start = _line_start(source, block.start_byte)
                continue
        break
    return start


def _comment_at(doc: Document, offset: int, *, ending: bool = False) -> Node | None:
    node = doc.tree.root_node.descendant_for_byte_range(offset, offset + 1)
    if node is None or node.type != "comment":
        return None
    if ending:
        return node if node.end_byte == offset + 1 else None
    return node if node.start_byte == offset else None


def _newline_at(doc: Document, offset: int) -> str:
    """The line terminator used around ``offset`` (CRLF files stay CRLF)."""
    source = doc.source
    nl = source.find(b"\n", offset)
    if nl == -1:
        nl = source.rfind(b"\n", 0, offset)
    if nl > 0 and source[nl - 1 : nl] == b"\r":
        return "\r\n"
    return "\n"


def _unit(doc: Document, container: Node) -> str:
    """One level of indentation as the file writes it."""
    source = doc.source
    outer = _line_indent(source, container.start_byte)
    for child in _items_of(container):
        if _first_on_line(source, child.start_byte):
            inner = _line_indent(source, child.start_byte)
            if inner.startswith(outer) and len(inner) > len(outer):
                return inner[len(outer) :]
    return _document_unit(doc)


def _items_of(node: Node) -> list[Node]:
    out: list[Node] = []
    for child in node.named_children:
        if child.type == "binding_set":
            out.extend(child.named_children)
        else:
            out.append(child)
    return out


def _document_unit(doc: Document) -> str:
    smallest = 0
    for line in doc.source.split(b"\n", 400)[:400]:
        if line.startswith(b"\t"):
            return "\t"
        spaces = len(line) - len(line.lstrip(b" "))
        if spaces and line.strip() and (smallest == 0 or spaces < smallest):
            smallest = spaces
    return " " * smallest if 2 <= smallest <= 8 else "  "


_LEADING = re.compile(rb"[ ]*")


def _layout(doc: Document, text: str, base: str, *, unit: str, binding: bool = False) -> str:
    """Re-indent ``text`` (two spaces a level, first line bare) for a line at ``base``.

    Lines of code get ``base`` plus the file's own indentation unit per level
    and the file's line terminator; lines inside an indented string are
    shifted by spaces only when that keeps the string's value; lines inside a
    ``"…"`` string are left alone.
    """
    if "\n" not in text:
        return text
    raw = text.encode()
    wrapped = b"{\n" + raw + b"\n}" if binding else raw
    offset = 2 if binding else 0
    tree = new_parser().parse(wrapped)
    step = unit.encode()
    nl = _newline_at(doc, 0).encode()
    shift = b" " * len(base.replace("\t", "  "))
    out: list[bytes] = []
    cursor = 0
    for match in re.finditer(rb"\n", raw):
        p = match.start()
        out.append(raw[cursor:p])
        next_start = p + 1
        line_end = raw.find(b"\n", next_start)
        line = raw[next_start : len(raw) if line_end == -1 else line_end]
        node = tree.root_node.descendant_for_byte_range(p + offset, p + offset + 1)
        string = _enclosing_string(node)
        if string is not None and string.type == "string_expression":
            out.append(b"\n")
        elif string is not None:
            # Every non-empty line moves by the same spaces (whitespace-only
            # lines too: their spaces beyond the margin are part of the value).
            keep = _shiftable(wrapped, string)
            out.append(b"\n" + (shift if keep and line else b""))
        else:
            lead = _LEADING.match(line)
            width = lead.end() if lead else 0
            if line.strip():
                levels, rest = divmod(width, 2)
                out.append(nl + base.encode() + step * levels + b" " * rest)
                next_start += width
            else:
                out.append(nl)
                next_start += len(line)
        cursor = next_start
    out.append(raw[cursor:])
    return b"".join(out).decode()


def _enclosing_string(node: Node | None) -> Node | None:
    found = None
    while node is not None:
        if node.type in _STRING_TYPES:
            found = node
        node = node.parent
    return found


def _shiftable(source: bytes, string: Node) -> bool:
    """Whether adding spaces to every line of an indented string keeps its value.

    True when the opening line holds nothing but spaces (Nix drops it), so
    every content line is indented relative to the same margin.
    """
    body = source[string.start_byte + 2 : string.end_byte]
    first = body.split(b"\n", 1)[0]
    return b"\n" in body and not first.strip(b" ")
