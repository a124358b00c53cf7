"""Where a flake's outputs name a guest, as syntax: the queries and node walks that
adding, removing and renaming a guest need (``nixosConfigurations.<name>``, its runner
package ``packages.<system>.<name>``, a ``default`` that points at it).

Everything here works on :class:`~nixgen.nix.parse.Document` nodes; callers
above the Nix language layer get nodes back and hand them on, without
importing tree-sitter themselves.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence

from tree_sitter import Node, Query, QueryCursor

from nixgen.nix import edit
from nixgen.nix.emit import attr_name
from nixgen.nix.errors import NixEditError
from nixgen.nix.parse import BINDING_TYPES, Document, Span, Step, load_language, unwrap
from nixgen.nix.read import DeclaredGuest, read_guests

FLAKE_NAME = "flake.nix"
RUNNER_TAIL = ("config", "microvm", "declaredRunner")


def binding_node(doc: Document, span: Span) -> Node:
    """The binding (or inherit) that starts at ``span``."""
    node = doc.node_at(span.start, BINDING_TYPES)
    if node is None:
        raise NixEditError(f"internal: no binding at {span}")
    return node


def guest_span(doc: Document, name: str) -> Span:
    """Where guest ``name`` is declared in ``doc`` (module files are not followed)."""
    found = read_guests(doc, follow_files=False)
    for guest in found.guests:
        if guest.name == name:
            return guest.span
    raise NixEditError(f"internal: guest {name!r} is gone from {FLAKE_NAME}")


def container_of(node: Node) -> Node:
    """The attribute set (or ``let``) a binding is written in."""
    bset = node.parent
    container = bset.parent if bset is not None else None
    if container is None:
        raise NixEditError("internal: a binding outside an attribute set")
    return container


def written_keys(doc: Document, node: Node) -> tuple[str, ...]:
    """The keys a binding writes (``packages.x86_64-linux.web``); an inherit: its first name."""
    if node.type == "binding":
        attrpath = node.child_by_field_name("attrpath")
        assert attrpath is not None
        return doc.attr_keys(attrpath)[0]
    attrs_node = node.child_by_field_name("attrs")
    names = [] if attrs_node is None else attrs_node.children_by_field_name("attr")
    return (doc.text_of(names[0]),) if names else ()


def value_of(node: Node) -> Node:
    """A binding's value."""
    value = node.child_by_field_name("expression")
    if value is None:
        raise NixEditError("internal: a binding without a value")
    return value


@functools.cache
def _select_query() -> Query:
    return Query(load_language(), "(select_expression) @select")


def components(doc: Document, select: Node) -> list[tuple[str | None, Node | None]]:
    """A selection as its names: ``self.packages.x.web`` → self, packages, x, web."""
    base = select.child_by_field_name("expression")
    attrpath = select.child_by_field_name("attrpath")
    out: list[tuple[str | None, Node | None]] = []
    if base is not None:
        inner = unwrap(base)
        out.append((doc.text_of(inner) if inner.type == "variable_expression" else None, None))
    if attrpath is not None:
        for attr in attrpath.children_by_field_name("attr"):
            out.append((doc.attr_key(attr), attr))
    return out


def references(doc: Document, name: str) -> list[tuple[Node, Node]]:
    """Selections naming guest ``name``: ``…nixosConfigurations.<name>…``, ``…packages.<x>.<name>``.

    Each as (the selection, the attribute node holding the name).
    """
    out: list[tuple[Node, Node]] = []
    captures = QueryCursor(_select_query()).captures(doc.tree.root_node)
    for select in captures.get("select", []):
        comps = components(doc, select)
        for i, (key, _) in enumerate(comps):
            target: Node | None = None
            if key == "nixosConfigurations" and i + 1 < len(comps) and comps[i + 1][0] == name:
                target = comps[i + 1][1]
            elif key == "packages" and i + 2 < len(comps) and comps[i + 2][0] == name:
                target = comps[i + 2][1]
            if target is not None:
                out.append((select, target))
                break
    return out


def runner_bindings(doc: Document, name: str) -> list[tuple[Node, Node]]:
    """Bindings ``<…>.<key> = self.nixosConfigurations.<name>.config.microvm.declaredRunner;``."""
    out = []
    for select, ref in references(doc, name):
        comps = [k for k, _ in components(doc, select)]
        if tuple(comps[-3:]) != RUNNER_TAIL:
            continue
        binding = select.parent
        if binding is None or binding.type != "binding" or value_of(binding) != select:
            continue
        if "packages" not in key_chain(doc, binding):
            continue
        out.append((binding, ref))
    return out


def rewrite_runners(
    doc: Document, name: str, key: str, change: Callable[[Document, Node], Document]
) -> Iterator[tuple[Document, Document]]:
    """``change`` each runner binding of guest ``name`` whose key is ``key``, one at a time.

    Yields (before, after) for each: the next binding is looked for in the
    document the last change gave, since its nodes are those of a new tree.
    The caller stops a ``change`` that changes nothing (it would come back).
    """
    while True:
        keyed = [n for n, _ in runner_bindings(doc, name) if written_keys(doc, n)[-1] == key]
        if not keyed:
            return
        changed = change(doc, keyed[0])
        yield doc, changed
        doc = changed


def default_bindings(doc: Document, name: str) -> list[tuple[Node, Node]]:
    """Bindings ``…default = <a reference to the guest>;`` (the flake's default package)."""
    out = []
    for select, ref in references(doc, name):
        binding = select.parent
        if binding is None or binding.type != "binding" or value_of(binding) != select:
            continue
        if written_keys(doc, binding)[-1:] == ("default",):
            out.append((binding, ref))
    return out


def key_chain(doc: Document, binding: Node) -> list[str]:
    """Every attribute name on the way from the file's top down to ``binding``."""
    keys: list[str] = []
    node: Node | None = binding
    while node is not None:
        if node.type == "binding":
            keys = list(written_keys(doc, node)) + keys
        node = node.parent
    return keys


def retarget(doc: Document, value: Node, ref: Node, name: str) -> str:
    """The text of ``value`` with the guest name at ``ref`` replaced."""
    start = value.start_byte
    source = doc.source
    text = (
        source[start : ref.start_byte]
        + attr_name(name).encode()
        + source[ref.end_byte : value.end_byte]
    )
    return text.decode("utf-8")


def replacement_guest(
    doc: Document, default: Node, ref: Node, remaining: Sequence[DeclaredGuest], system: object
) -> str | None:
    """Another guest a default package can point at instead (None: remove the default)."""
    comps = [k for k, _ in components(doc, value_of(default))]
    candidates = [g for g in remaining if g.system == system] or []
    if "nixosConfigurations" in comps:
        return candidates[0].name if candidates else None
    container = container_of(default)
    for guest in candidates:
        for node, _ in runner_bindings(doc, guest.name):
            if container_of(node) == container:
                return guest.name
    return None


def tidy(old: Document, doc: Document) -> Document:
    """After removing whole lines: no blank line left doubled, or left before a closing brace."""
    a, b = old.source, doc.source
    limit = min(len(a), len(b))
    cut = 0
    while cut < limit and a[cut] == b[cut]:
        cut += 1
    start = b.rfind(b"\n", 0, cut) + 1
    if start == 0:
        return doc
    line_end = b.find(b"\n", start)
    if line_end == -1:
        return doc
    previous = b.rfind(b"\n", 0, start - 1) + 1
    before = b[previous : start - 1].strip(b" \t\r")
    here = b[start:line_end].strip(b" \t\r")
    if not here and (not before or before.endswith((b"{", b"["))):
        return edit.apply(doc, [edit.Replacement(start, line_end + 1, b"")])
    if before:
        return doc
    if here.startswith((b"}", b"]")):
        return edit.apply(doc, [edit.Replacement(previous, start, b"")])
    return doc


def key_text(doc: Document, binding: Node) -> str:
    attrpath = binding.child_by_field_name("attrpath")
    return doc.text_of(attrpath) if attrpath is not None else doc.text_of(binding)


def drop_binding(doc: Document, node: Node) -> Document:
    """Remove one binding: its whole line when it has one, else the binding and its blanks."""
    source = doc.source
    start, end = node.start_byte, node.end_byte
    line_start = source.rfind(b"\n", 0, start) + 1
    line_end = source.find(b"\n", end)
    line_end = len(source) if line_end == -1 else line_end
    if not source[line_start:start].strip() and not source[end:line_end].strip():
        return edit.apply(doc, [edit.Replacement(line_start, min(line_end + 1, len(source)), b"")])
    after = end
    while after < len(source) and source[after : after + 1] in (b" ", b"\t"):
        after += 1
    return edit.apply(doc, [edit.Replacement(start, after, b"")])


def rename_binding(doc: Document, node: Node, old: str, new: str) -> Document:
    """Rename the last key of a binding (``nixosConfigurations.web``, ``packages.${system}.web``)."""
    attrpath = node.child_by_field_name("attrpath")
    names = attrpath.children_by_field_name("attr") if attrpath is not None else []
    if not names or doc.attr_key(names[-1]) != old:
        raise NixEditError(f"internal: {doc.span(node)} does not bind {old!r}")
    last = names[-1]
    return edit.apply(
        doc, [edit.Replacement(last.start_byte, last.end_byte, attr_name(new).encode())]
    )


def foreign_references(doc: Document, name: str, guest_node: Node) -> list[Node]:
    """References to guest ``name`` other than its binding, its runner packages and defaults."""
    allowed: list[Node] = [guest_node]
    allowed += [n for n, _ in runner_bindings(doc, name) if written_keys(doc, n)[-1] == name]
    allowed += [n for n, _ in default_bindings(doc, name)]
    out = []
    for select, _ in references(doc, name):
        if not any(
            a.start_byte <= select.start_byte and select.end_byte <= a.end_byte for a in allowed
        ):
            out.append(select)
    return out


def nixos_system_call(
    doc: Document, locator: Sequence[Step]
) -> tuple[str, list[tuple[tuple[str, ...], str]]]:
    """A guest's ``nixosSystem`` call as text: the function called
    (``nixpkgs.lib.nixosSystem``) and each binding of its argument set, with the keys it
    binds.  The callee is ``nixpkgs.lib.nixosSystem`` when it cannot be told."""
    value = doc.resolve(doc.locate_node(locator))
    function = value.child_by_field_name("function") if value.type == "apply_expression" else None
    callee = doc.text_of(function) if function is not None else "nixpkgs.lib.nixosSystem"
    args_set = doc.locate(locator).container
    return callee, [(written_keys(doc, node), doc.text_of(node)) for node in doc.bindings(args_set)]


def attrset_at(doc: Document, span: Span) -> Node | None:
    """The attribute set of the module written at ``span`` (behind a function header or
    a ``let``), or None."""
    node = doc.tree.root_node.descendant_for_byte_range(span.start, span.end)
    return doc.attrset_of(node, through=()) if node is not None else None
