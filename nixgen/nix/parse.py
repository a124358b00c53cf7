"""Lossless Nix documents: the original bytes plus a tree-sitter syntax tree.

A :class:`Document` never changes its bytes: printing it gives back exactly
what was read (CRLF, BOM, tabs, trailing spaces and all).  Edits
(:mod:`nixgen.nix.edit`) produce a new Document and leave the old one alone.

Besides parsing, this module navigates the tree the way a person reads a
flake: through ``let … in``, ``with``, ``rec``, function headers and
``nixpkgs.lib.nixosSystem { … }`` applications, looking attributes up by path
whether they were written dotted (``microvm.mem = 1;``) or nested
(``microvm = { mem = 1; };``), and turning literal nodes into Python values.
What is not a literal comes back as :class:`~nixgen.nix.emit.Nix` holding the
source text: nixgen never guesses what an expression evaluates to.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import cast

import attrs
from tree_sitter import Language, Node, Parser, Query, QueryCursor, Tree

from nixgen.errors import NixgenError
from nixgen.files import write_atomically
from nixgen.nix.emit import Nix
from nixgen.nix.errors import NixPathError, NixSyntaxError, UnsupportedSyntaxError

__all__ = [
    "ATTRSET_TYPES",
    "CONTAINER_TYPES",
    "Binding",
    "Document",
    "Lookup",
    "Place",
    "Span",
    "Step",
    "check_tree",
    "load_language",
    "new_parser",
    "unwrap",
]

ATTRSET_TYPES = frozenset({"attrset_expression", "rec_attrset_expression"})
BINDING_TYPES = frozenset({"binding", "inherit", "inherit_from"})
# Nodes whose bindings can be looked up and edited: attribute sets and `let`.
CONTAINER_TYPES = ATTRSET_TYPES | {"let_expression", "let_attrset_expression"}
# Functions whose attribute-set argument is "the" configuration.
DEFAULT_THROUGH = ("nixosSystem",)
# A step of a locator: an attribute name, or an index into a list.
Step = str | int

_BOM = b"\xef\xbb\xbf"
# An attribute path of plain identifiers, nothing else in between.
_SIMPLE_ATTRPATH = re.compile(rb"[A-Za-z_][A-Za-z0-9_'-]*(?:\.[A-Za-z_][A-Za-z0-9_'-]*)*\Z")
# What can follow `//` for the grammar to read a path.
_PATH_CONTINUES = re.compile(rb"[A-Za-z0-9._+~$-]")
_INT_MIN = -(2**63)
_INT_MAX = 2**63 - 1
_MAX_DEPTH = 64
# Nodes that bind names for the expressions inside them.
_SCOPE_TYPES = frozenset(
    {"let_expression", "rec_attrset_expression", "let_attrset_expression", "function_expression"}
)
_ScopeIndex = tuple[list[Node], list[int], list[int]]
# Expressions whose value is their `body`, as far as finding a set goes.
_BODY_TYPES = frozenset(
    {"let_expression", "with_expression", "assert_expression", "function_expression"}
)  # how far variable/wrapper chains are followed before giving up


# --------------------------------------------------------------------------- grammar


@functools.cache
@functools.cache
def load_language() -> Language:
    """The tree-sitter grammar for Nix.  The only place that names its source.

    The nix grammar of ``tree-sitter-language-pack`` 0.13 comes first because
    PyPI's ``tree-sitter-nix`` 0.1.0 cannot parse trailing commas in function
    formals, which nixfmt prints everywhere.  A ``tree_sitter_nix`` module
    (e.g. nixpkgs' ``tree-sitter-grammars.tree-sitter-nix``) is taken when the
    pack is absent, provided its grammar reads such formals.
    """
    try:
        from tree_sitter_language_pack import get_language
    except ImportError:
        return _standalone_grammar()
    language = get_language("nix")
    if not isinstance(language, Language):  # pragma: no cover - defensive
        raise TypeError("tree_sitter_language_pack.get_language('nix') returned no Language")
    return language


def _standalone_grammar() -> Language:
    hint = "pip install 'tree-sitter-language-pack==0.13.0' (its nix grammar reads modern Nix)"
    try:
        import tree_sitter_nix
    except ImportError:
        raise NixgenError("no tree-sitter grammar for Nix is installed", hint=hint) from None
    language = Language(tree_sitter_nix.language())
    probe = Parser(language).parse(b"{\n  a,\n  b,\n}: a")
    if probe.root_node.has_error:
        raise NixgenError(
            "the installed tree_sitter_nix grammar cannot read trailing commas in "
            "function arguments (as nixfmt writes them)",
            hint=hint,
        )
    return language


def new_parser() -> Parser:
    """A fresh parser (parsers are cheap and not safe to share between threads)."""
    return Parser(load_language())


@functools.cache
def _scope_query() -> Query:
    return Query(
        load_language(),
        "[(let_expression) (rec_attrset_expression) (let_attrset_expression) "
        "(function_expression)] @scope",
    )


# --------------------------------------------------------------------------- value classes


@attrs.frozen
class Span:
    """Where a node sits: byte range, and 1-based line and column (in characters)."""

    file: Path | None
    start: int
    end: int
    line: int
    column: int
    end_line: int

    def __str__(self) -> str:
        return f"{self.file if self.file is not None else '<text>'}:{self.line}:{self.column}"


@attrs.frozen
class Binding:
    """One binding that defines (part of) an attribute path.

    ``node`` is a ``binding``, ``inherit`` or ``inherit_from`` node; an
    ``inherit`` of several names gives one Binding per name.  ``path`` is the
    full attribute path from where the lookup started, ``written`` the part
    spelled in this binding itself (``("microvm", "mem")`` for
    ``microvm.mem = 1;``).  ``value`` is the expression node, or ``None`` for
    an inherited name (see :meth:`Document.binding_value`).
    """

    node: Node = attrs.field(eq=False, repr=False)
    container: Node = attrs.field(eq=False, repr=False)
    path: tuple[str, ...]
    written: tuple[str, ...]
    value: Node | None = attrs.field(eq=False, repr=False)
    name: Node | None = attrs.field(eq=False, repr=False, default=None)
    dynamic: bool = False

    @property
    def inherited(self) -> bool:
        return self.node.type != "binding"

    @property
    def prefix(self) -> tuple[str, ...]:
        """The path of the attribute set this binding is written in."""
        return self.path[: len(self.path) - len(self.written)]


@attrs.frozen
class Lookup:
    """Everything that defines ``path`` below an attribute set.

    - ``exact``: bindings whose path is ``path`` (Nix allows one, or several
      attribute-set literals that it merges);
    - ``inner``: bindings below ``path`` (``microvm.mem = 1;`` when looking up
      ``microvm``);
    - ``blocker``: a binding of a prefix of ``path`` whose value is not an
      attribute-set literal (``microvm = cfg;``): what is below it cannot be
      known statically;
    - ``container``/``prefix``: the deepest attribute-set literal on the way,
      and its path; that is where a missing binding would be added.
    """

    path: tuple[str, ...]
    exact: tuple[Binding, ...]
    inner: tuple[Binding, ...]
    blocker: Binding | None
    container: Node = attrs.field(eq=False, repr=False)
    prefix: tuple[str, ...]
    dynamic: tuple[Binding, ...] = ()

    @property
    def found(self) -> bool:
        return bool(self.exact or self.inner)

    @property
    def all(self) -> tuple[Binding, ...]:
        return self.exact + self.inner


@attrs.frozen
class Place:
    """An attribute set to edit: a container node plus a path inside it.

    ``prefix`` is non-empty when the set exists only through dotted bindings
    (``nixosConfigurations.web = …;``) or not at all yet.
    """

    container: Node = attrs.field(eq=False, repr=False)
    prefix: tuple[str, ...] = ()


# --------------------------------------------------------------------------- the document


@attrs.frozen(eq=False)
class Document:
    """Nix source bytes and their syntax tree.  Immutable: edits make new Documents."""

    source: bytes
    tree: Tree = attrs.field(repr=False)
    path: Path | None = None
    # Derived data computed on demand (the document itself never changes).
    _memo: dict[str, object] = attrs.field(factory=dict, init=False, repr=False)

    # ------------------------------------------------------------------ creation

    @classmethod
    def parse(cls, text: str | bytes, path: Path | None = None) -> Document:
        """Parse Nix text; raise :class:`NixSyntaxError` (file:line:col) on bad input."""
        source = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        _check_utf8(source, path)
        tree = new_parser().parse(source)
        check_tree(source, tree, path)
        return cls(source, tree, path)

    @classmethod
    def load(cls, path: Path | str) -> Document:
        """Read and parse a file, keeping its bytes exactly."""
        file = Path(path)
        return cls.parse(file.read_bytes(), file)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Document):
            return NotImplemented
        return self.source == other.source and self.path == other.path

    def __hash__(self) -> int:
        return hash((self.source, self.path))

    @property
    def text(self) -> str:
        return self.source.decode("utf-8")

    def __str__(self) -> str:
        return self.text

    def sexp(self) -> str:
        """The tree as an S-expression (for comparing parses)."""
        return str(self.tree.root_node)

    def save_atomic(self, path: Path | str | None = None) -> Path:
        """Write the bytes through a temporary file in the same folder + ``os.replace``."""
        target = Path(path) if path is not None else self.path
        if target is None:
            raise NixgenError("this document has no path to save to", hint="pass a path")
        write_atomically(target, self.source)
        return target

    # ------------------------------------------------------------------ text and positions

    def expression(self) -> Node:
        """The top-level expression (the file's single expression)."""
        root = self.tree.root_node
        expr = root.child_by_field_name("expression")
        if expr is None:
            raise NixSyntaxError("the file holds no Nix expression", file=self.path, line=1)
        return expr

    def bytes_of(self, node: Node) -> bytes:
        return self.source[node.start_byte : node.end_byte]

    def text_of(self, node: Node) -> str:
        return self.source[node.start_byte : node.end_byte].decode("utf-8")

    def position(self, offset: int) -> tuple[int, int]:
        """1-based line and column (in characters, BOM not counted) of a byte offset."""
        line_start = self.source.rfind(b"\n", 0, offset) + 1
        line = self.source.count(b"\n", 0, line_start) + 1
        return line, _column(self.source, line_start, offset)

    def span(self, node: Node) -> Span:
        row, col_bytes = node.start_point
        start = node.start_byte
        line_start = start - col_bytes
        return Span(
            file=self.path,
            start=start,
            end=node.end_byte,
            line=row + 1,
            column=_column(self.source, line_start, start),
            end_line=node.end_point[0] + 1,
        )

    def span_of_range(self, start: int, end: int) -> Span:
        line, column = self.position(start)
        end_line, _ = self.position(end)
        return Span(self.path, start, end, line, column, end_line)

    # ------------------------------------------------------------------ structure

    def bindings(self, container: Node) -> list[Node]:
        """The binding/inherit nodes of an attribute set or ``let``, in order."""
        bset = _binding_set(container)
        if bset is None:
            return []
        return [c for c in bset.named_children if c.type in BINDING_TYPES]

    def attr_keys(self, attrpath: Node) -> tuple[tuple[str, ...], bool]:
        """The keys of an ``attrpath`` and whether any of them is dynamic.

        A dynamic key (``${x}``, ``"a${x}"``) is returned as its source text.
        """
        raw = self.source[attrpath.start_byte : attrpath.end_byte]
        if _SIMPLE_ATTRPATH.match(raw):
            # Plain dotted identifiers (nearly all of them): no need to visit the nodes.
            return tuple(raw.decode("ascii").split(".")), False
        keys: list[str] = []
        dynamic = False
        for attr in attrpath.children_by_field_name("attr"):
            key = self.attr_key(attr)
            if key is None:
                dynamic = True
                keys.append(self.text_of(attr))
            else:
                keys.append(key)
        return tuple(keys), dynamic

    def attr_key(self, attr: Node) -> str | None:
        """The name of one attribute (identifier or static string), else None."""
        if attr.type == "identifier":
            return self.text_of(attr)
        if attr.type == "string_expression":
            value = self._string(attr)
            return value if isinstance(value, str) else None
        if attr.type == "interpolation":
            inner = attr.child_by_field_name("expression")
            if inner is not None and inner.type == "string_expression":
                value = self._string(inner)
                return value if isinstance(value, str) else None
        return None

    def iter_bindings(self, container: Node, base: tuple[str, ...] = ()) -> Iterator[Binding]:
        """One :class:`Binding` per attribute written directly in ``container``."""
        for node in self.bindings(container):
            yield from self._bindings_of(node, container, base)

    def _bindings_of(self, node: Node, container: Node, base: tuple[str, ...]) -> Iterator[Binding]:
        if node.type == "binding":
            attrpath = node.child_by_field_name("attrpath")
            if attrpath is None:  # pragma: no cover - the grammar requires it
                return
            written, dynamic = self.attr_keys(attrpath)
            yield Binding(
                node=node,
                container=container,
                path=base + written,
                written=written,
                value=node.child_by_field_name("expression"),
                dynamic=dynamic,
            )
            return
        attrs_node = node.child_by_field_name("attrs")
        if attrs_node is not None:
            for ident in attrs_node.children_by_field_name("attr"):
                key = self.attr_key(ident)
                dynamic = key is None
                name = self.text_of(ident) if key is None else key
                yield Binding(
                    node=node,
                    container=container,
                    path=(*base, name),
                    written=(name,),
                    value=None,
                    name=ident,
                    dynamic=dynamic,
                )

    def lookup(self, container: Node, path: Sequence[str], base: Sequence[str] = ()) -> Lookup:
        """Find what defines ``path`` below ``container`` (dotted and nested forms)."""
        wanted = tuple(base) + tuple(path)
        exact: list[Binding] = []
        inner: list[Binding] = []
        dynamic: list[Binding] = []
        blocker: list[Binding] = []
        deepest: list[tuple[Node, tuple[str, ...]]] = [(container, tuple(base))]
        self._lookup(container, wanted, tuple(base), exact, inner, dynamic, blocker, deepest)
        node, prefix = deepest[-1]
        return Lookup(
            path=wanted,
            exact=tuple(exact),
            inner=tuple(inner),
            blocker=blocker[0] if blocker else None,
            container=node,
            prefix=prefix,
            dynamic=tuple(dynamic),
        )

    def _lookup(
        self,
        container: Node,
        wanted: tuple[str, ...],
        base: tuple[str, ...],
        exact: list[Binding],
        inner: list[Binding],
        dynamic: list[Binding],
        blocker: list[Binding],
        deepest: list[tuple[Node, tuple[str, ...]]],
    ) -> None:
        key = wanted[len(base)].encode() if len(wanted) > len(base) else None
        source = self.source
        for node in self.bindings(container):
            if key is not None:
                # Cheap rejects on the first key: sets with thousands of bindings are common.
                if node.type != "binding":
                    if key not in source[node.start_byte : node.end_byte]:
                        continue
                else:
                    attrpath = node.child_by_field_name("attrpath")
                    first = attrpath.named_child(0) if attrpath is not None else None
                    if (
                        first is not None
                        and first.type == "identifier"
                        and source[first.start_byte : first.end_byte] != key
                    ):
                        continue
            self._lookup_node(
                node, container, wanted, base, exact, inner, dynamic, blocker, deepest
            )

    def _lookup_node(
        self,
        node: Node,
        container: Node,
        wanted: tuple[str, ...],
        base: tuple[str, ...],
        exact: list[Binding],
        inner: list[Binding],
        dynamic: list[Binding],
        blocker: list[Binding],
        deepest: list[tuple[Node, tuple[str, ...]]],
    ) -> None:
        for b in self._bindings_of(node, container, base):
            if b.dynamic:
                dynamic.append(b)
                continue
            full = b.path
            n = min(len(full), len(wanted))
            if full[:n] != wanted[:n]:
                continue
            if len(full) == len(wanted):
                exact.append(b)
            elif len(full) > len(wanted):
                inner.append(b)
            else:
                value = unwrap(b.value) if b.value is not None else None
                if value is not None and not b.inherited and value.type in ATTRSET_TYPES:
                    deepest.append((value, full))
                    self._lookup(value, wanted, full, exact, inner, dynamic, blocker, deepest)
                else:
                    blocker.append(b)

    def get(self, container: Node, path: Sequence[str]) -> Node | None:
        """The value node bound at exactly ``path`` (inherits resolved), or None."""
        found = self.lookup(container, path)
        if len(found.exact) != 1 or found.inner:
            return None
        return self.binding_value(found.exact[0])

    def binding_value(self, binding: Binding) -> Node | None:
        """The value of a binding; for ``inherit`` the node it inherits, if static."""
        if not binding.inherited:
            return binding.value
        name = binding.written[-1]
        if binding.node.type == "inherit":
            return self.resolve_variable(name, binding.container, skip=binding.container)
        source = binding.node.child_by_field_name("expression")
        if source is None:
            return None
        aset = self.attrset_of(source, through=())
        return None if aset is None else self.get(aset, (name,))

    def list_elements(self, node: Node) -> list[Node]:
        """The elements of a list literal (comments left out)."""
        return node.children_by_field_name("element")

    # ------------------------------------------------------------------ scopes

    def resolve_variable(self, name: str, at: Node, *, skip: Node | None = None) -> Node | None:
        """The expression a variable names at ``at``, when bound by ``let`` or ``rec``.

        Function parameters and names that may come from ``with`` are not
        resolved (None): lexical bindings always win over ``with`` in Nix, so
        only a miss is ambiguous.  ``skip`` is a scope not to search (the set
        an ``inherit`` sits in).  Follows chains of variables.
        """
        return self._resolve_variable(name, at, 0, skip)

    def _resolve_variable(
        self, name: str, at: Node, depth: int, skip: Node | None = None
    ) -> Node | None:
        if depth > _MAX_DEPTH:
            return None
        scopes = [scope for scope in self._scopes_around(at) if scope != skip]
        if not scopes:
            return None
        # The answer depends only on the innermost scope: the same names are
        # looked up from thousands of places in a big flake.
        key = f"var:{name}:{scopes[0].id}"
        if key in self._memo:
            return cast("Node | None", self._memo[key])
        result = self._resolve_in(name, scopes, depth)
        self._memo[key] = result
        return result

    def _resolve_in(self, name: str, scopes: list[Node], depth: int) -> Node | None:
        for scope in scopes:
            names = self._scope_names(scope)
            if name not in names:
                continue
            found = names[name]
            if found is None:
                return None  # a function parameter, or only `let name.x = …;`
            if found.node.type == "inherit":
                # `inherit x;` takes x from the scope around this one.
                return self._resolve_variable(name, scope, depth + 1, scope)
            value = self.binding_value(found) if found.inherited else found.value
            return None if value is None else self._resolve(value, depth + 1)
        return None

    def index_scopes(self) -> None:
        """Index the scopes of the whole file once, for many variable lookups.

        ``Node.parent`` walks down from the root in tree-sitter, which costs
        a lot inside sets with thousands of bindings; after this call scopes
        are found by byte offset instead.
        """
        if "scopes" in self._memo:
            return
        captures = QueryCursor(_scope_query()).captures(self.tree.root_node)
        nodes = sorted(captures.get("scope", []), key=lambda n: (n.start_byte, -n.end_byte))
        parents: list[int] = []
        stack: list[int] = []
        for i, node in enumerate(nodes):
            while stack and nodes[stack[-1]].end_byte <= node.start_byte:
                stack.pop()
            parents.append(stack[-1] if stack else -1)
            stack.append(i)
        self._memo["scopes"] = (nodes, [n.start_byte for n in nodes], parents)

    def _scopes_around(self, at: Node) -> Iterator[Node]:
        """The scope nodes (let, rec, let-set, function) enclosing ``at``, innermost first."""
        index = self._memo.get("scopes")
        if index is None:
            node: Node | None = at
            while node is not None:
                if node.type in _SCOPE_TYPES:
                    yield node
                node = node.parent
            return
        nodes, starts, parents = cast(_ScopeIndex, index)
        offset = at.start_byte
        end = at.end_byte
        i = bisect.bisect_right(starts, offset) - 1
        while i >= 0:
            scope = nodes[i]
            if scope.start_byte <= offset and end <= scope.end_byte:
                yield scope
            i = parents[i]

    def _scope_names(self, scope: Node) -> dict[str, Binding | None]:
        """The names a scope binds (memoised): for ``let``/``rec`` the binding
        (None when only dotted, ``let a.b = 1;``), for functions None."""
        key = f"names:{scope.id}"
        cached = self._memo.get(key)
        if cached is not None:
            return cast("dict[str, Binding | None]", cached)
        names: dict[str, Binding | None] = {}
        if scope.type == "function_expression":
            universal = scope.child_by_field_name("universal")
            if universal is not None:
                names[self.text_of(universal)] = None
            formals = scope.child_by_field_name("formals")
            if formals is not None:
                for formal in formals.children_by_field_name("formal"):
                    ident = formal.child_by_field_name("name")
                    if ident is not None:
                        names[self.text_of(ident)] = None
        else:
            for b in self.iter_bindings(scope):
                if b.written and not b.dynamic and b.written[0] not in names:
                    names[b.written[0]] = b if len(b.written) == 1 else None
        self._memo[key] = names
        return names

    def resolve(self, node: Node) -> Node:
        """Follow parentheses, ``let``-bound variables and static selections."""
        return self._resolve(node, 0)

    def _resolve(self, node: Node, depth: int) -> Node:
        while depth < _MAX_DEPTH:
            depth += 1
            node = unwrap(node)
            if node.type == "variable_expression":
                name = self.text_of(node)
                if name in ("true", "false", "null"):
                    return node
                target = self._resolve_variable(name, node, depth)
                if target is None:
                    return node
                node = target
                continue
            if node.type == "select_expression" and node.child_by_field_name("default") is None:
                base = node.child_by_field_name("expression")
                attrpath = node.child_by_field_name("attrpath")
                if base is None or attrpath is None:
                    return node
                keys, dynamic = self.attr_keys(attrpath)
                resolved = self._resolve(base, depth)
                aset = unwrap(resolved)
                if dynamic or aset.type not in ATTRSET_TYPES:
                    return node
                value = self.get(aset, keys)
                if value is None:
                    return node
                node = value
                continue
            return node
        return node

    # ------------------------------------------------------------------ navigation

    def attrset_of(self, node: Node, *, through: Collection[str] = DEFAULT_THROUGH) -> Node | None:
        """The attribute-set literal an expression amounts to, if it is one.

        Follows parentheses, ``let … in``, ``with``, ``assert``, function
        bodies, ``let``-bound variables and applications of the functions named
        in ``through`` (by their last name: ``nixpkgs.lib.nixosSystem``).
        """
        for _ in range(_MAX_DEPTH):
            node = self.resolve(node)
            kind = node.type
            if kind in ATTRSET_TYPES:
                return node
            if kind == "let_attrset_expression":
                # `let { …; body = …; }`: the value is its `body`.
                body = self.get(node, ("body",))
                if body is None:
                    return None
                node = body
            elif kind in _BODY_TYPES:
                body = node.child_by_field_name("body")
                if body is None:
                    return None
                node = body
            elif kind == "apply_expression" and through:
                function = node.child_by_field_name("function")
                argument = node.child_by_field_name("argument")
                if function is None or argument is None:
                    return None
                if self.callee_name(function) not in through:
                    return None
                node = argument
            else:
                return None
        return None

    def callee_name(self, function: Node) -> str | None:
        """``nixosSystem`` for ``nixpkgs.lib.nixosSystem`` (the last static name)."""
        function = unwrap(function)
        if function.type == "variable_expression":
            return self.text_of(function)
        if function.type == "select_expression" and function.child_by_field_name("default") is None:
            attrpath = function.child_by_field_name("attrpath")
            if attrpath is not None:
                keys, dynamic = self.attr_keys(attrpath)
                if keys and not dynamic:
                    return keys[-1]
        return None

    def root_attrset(self) -> Node | None:
        """The flake's top-level attribute set (``{ inputs = …; outputs = …; }``)."""
        return self.attrset_of(self.expression(), through=())

    def outputs(self) -> Node | None:
        """The attribute set a flake's ``outputs`` function returns, if it is a literal."""
        root = self.root_attrset()
        if root is None:
            return None
        value = self.get(root, ("outputs",))
        if value is None:
            return None
        value = unwrap(value)
        if value.type != "function_expression":
            return None
        return self.attrset_of(value, through=())

    def locate(self, target: Node | Sequence[Step]) -> Place:
        """The attribute set a target names: a node, or a locator from the file's top.

        A locator is a sequence of attribute names and list indices, e.g.
        ``("outputs", "nixosConfigurations", "web", "modules", 1)``; names
        are looked up with :meth:`lookup` (dotted or nested) and expressions
        are followed with :meth:`attrset_of`.
        """
        if isinstance(target, Node):
            if target.type in CONTAINER_TYPES:
                return Place(target)
            aset = self.attrset_of(target)
            if aset is None:
                raise NixPathError(
                    f"{self.span(target)}: `{_short(self.text_of(target))}` "
                    "is not an attribute set literal"
                )
            return Place(aset)
        found = self._walk(tuple(target))
        if isinstance(found, Place):
            return found
        aset = self.attrset_of(found)
        if aset is None:
            raise NixPathError(
                f"{self.span(found)}: {_describe(target)} is "
                f"`{_short(self.text_of(found))}`, not an attribute set literal",
                hint="nixgen only edits what is written literally in the file",
            )
        return Place(aset)

    def locate_node(self, target: Node | Sequence[Step]) -> Node:
        """The expression node a locator leads to (it must exist)."""
        if isinstance(target, Node):
            return target
        found = self._walk(tuple(target))
        if isinstance(found, Place):
            raise NixPathError(
                f"{_describe(target)} is not written as one expression in "
                f"{self.path or 'the document'}"
            )
        return found

    def locate_list(self, target: Node | Sequence[Step]) -> Node:
        """The list literal a target names."""
        node = self.resolve(self.locate_node(target))
        if node.type != "list_expression":
            raise NixPathError(
                f"{self.span(node)}: `{_short(self.text_of(node))}` is not a list literal"
            )
        return node

    def _walk(self, steps: tuple[Step, ...]) -> Node | Place:
        current = self.expression()
        i = 0
        while i < len(steps):
            step = steps[i]
            if isinstance(step, int):
                lst = self.resolve(current)
                if lst.type != "list_expression":
                    raise NixPathError(
                        f"{_describe(steps[:i])} is `{_short(self.text_of(lst))}`, not a list"
                    )
                elements = self.list_elements(lst)
                if not -len(elements) <= step < len(elements):
                    raise NixPathError(
                        f"{_describe(steps[: i + 1])}: the list has {len(elements)} elements"
                    )
                current = elements[step]
                i += 1
                continue
            j = i
            while j < len(steps) and isinstance(steps[j], str):
                j += 1
            run = tuple(str(s) for s in steps[i:j])
            found = self._lookup_in(current, run, steps[:i])
            if len(found.exact) == 1 and not found.inner:
                value = self.binding_value(found.exact[0])
                if value is None:
                    raise NixPathError(f"{_describe(steps[:j])} is inherited from outside the file")
                current = value
                i = j
                continue
            if found.blocker is not None and found.blocker.value is not None:
                current = found.blocker.value
                i += len(found.blocker.path)
                continue
            if found.blocker is not None:
                value = self.binding_value(found.blocker)
                if value is None:
                    raise NixPathError(f"{_describe(steps[:j])} cannot be followed statically")
                current = value
                i += len(found.blocker.path)
                continue
            if j == len(steps) and not found.exact:
                return Place(found.container, run[len(found.prefix) :])
            raise NixPathError(
                f"{_describe(steps[:j])} is defined more than once or not at all "
                f"in {self.path or 'the document'}"
            )
        return current

    def merge_operands(self, node: Node, *, bodies: bool = False) -> list[Node]:
        """The operands of a chain of ``//`` (one element when it is no merge).

        With ``bodies``, ``let``/``with``/``assert`` and function bodies are
        entered first, on the whole and on each operand.
        """
        node = self.resolve(node)
        while bodies and node.type in _BODY_TYPES:
            body = node.child_by_field_name("body")
            if body is None:
                break
            node = self.resolve(body)
        if node.type == "binary_expression":
            operator = node.child_by_field_name("operator")
            left = node.child_by_field_name("left")
            right = node.child_by_field_name("right")
            if operator is not None and operator.type == "//" and left and right:
                return self.merge_operands(left, bodies=bodies) + self.merge_operands(
                    right, bodies=bodies
                )
        return [node]

    def _lookup_in(self, current: Node, run: tuple[str, ...], where: Sequence[Step]) -> Lookup:
        # In `a // b` the right operand wins: search literal operands right to left.
        operands = self.merge_operands(current, bodies=True)
        first: Lookup | None = None
        for operand in reversed(operands):
            aset = self.attrset_of(operand)
            if aset is None:
                continue
            found = self.lookup(aset, run)
            if first is None:
                first = found
            if found.found or found.blocker is not None:
                return found
        if first is None:
            raise NixPathError(
                f"{self.span(current)}: {_describe(where) or 'the file'} is "
                f"`{_short(self.text_of(current))}`, not an attribute set literal",
                hint="nixgen only follows what is written literally in the file",
            )
        return first

    # ------------------------------------------------------------------ literal values

    def literal(self, node: Node) -> object:
        """A Python value for a literal node; ``Nix(source)`` for anything else.

        int, float, bool, None, str (no interpolation), PurePosixPath (path
        literals, as written), list, dict.  Strings whose meaning differs
        between Nix versions (raw carriage returns, some indented-string
        escapes) stay ``Nix``.
        """
        value = self._literal(node)
        return Nix(self.text_of(node)) if value is _OPAQUE else value

    def is_literal(self, node: Node) -> bool:
        return self._literal(node) is not _OPAQUE

    def _literal(self, node: Node) -> object:
        node = unwrap(node)
        kind = node.type
        if kind == "integer_expression":
            number = int(self.text_of(node))
            return number if number <= _INT_MAX else _OPAQUE
        if kind == "float_expression":
            return float(self.text_of(node))
        if kind == "unary_expression":
            return self._negative(node)
        if kind == "binary_expression":
            return self._negative_zero(node)
        if kind == "variable_expression":
            return {"true": True, "false": False, "null": None}.get(self.text_of(node), _OPAQUE)
        if kind == "string_expression":
            return self._string(node)
        if kind == "indented_string_expression":
            return self._indented_string(node)
        if kind == "uri_expression":
            return self.text_of(node)
        if kind == "path_expression":
            if node.named_child_count == 1 and node.named_children[0].type == "path_fragment":
                return PurePosixPath(self.text_of(node))
            return _OPAQUE
        if kind == "list_expression":
            items = [self._literal(e) for e in self.list_elements(node)]
            return _OPAQUE if any(i is _OPAQUE for i in items) else items
        if kind == "attrset_expression":
            return self._attrset_literal(node, opaque_values=False)
        if kind == "rec_attrset_expression":
            # Values in a rec set may name their siblings: only all-literal sets are data.
            return self._attrset_literal(node, opaque_values=False)
        return _OPAQUE

    def value(self, node: Node) -> object:
        """Like :meth:`literal`, but an attribute-set literal with some
        non-literal values is still a dict (with ``Nix`` values inside)."""
        node = unwrap(node)
        if node.type == "attrset_expression":
            result = self._attrset_literal(node, opaque_values=True)
            return Nix(self.text_of(node)) if result is _OPAQUE else result
        if node.type == "list_expression":
            return [self.value(e) for e in self.list_elements(node)]
        return self.literal(node)

    def _negative(self, node: Node) -> object:
        operator = node.child(0)
        argument = node.child_by_field_name("argument")
        if operator is None or argument is None or self.text_of(operator) != "-":
            return _OPAQUE
        if argument.type == "integer_expression":
            number = -int(self.text_of(argument))
            return number if number >= _INT_MIN else _OPAQUE
        if argument.type == "float_expression":
            # Nix has no negative literals: `-x` is `0 - x`, so `-0.0` is +0.0.
            return 0 - float(self.text_of(argument))
        return _OPAQUE

    def _negative_zero(self, node: Node) -> object:
        """``0.0 * -1``: how nixgen's emitter spells -0.0, which has no literal."""
        text = re.sub(r"\s+", " ", self.text_of(node))
        return -0.0 if text == "0.0 * -1" else _OPAQUE

    def _attrset_literal(self, node: Node, *, opaque_values: bool) -> object:
        result: dict[str, object] = {}
        for b in self.iter_bindings(node):
            if b.dynamic:
                return _OPAQUE
            if b.inherited:
                if not opaque_values:
                    return _OPAQUE
                value: object = Nix(self._inherit_text(b))
            elif b.value is None:  # pragma: no cover - grammar guarantees a value
                return _OPAQUE
            else:
                value = self.value(b.value) if opaque_values else self._literal(b.value)
                if value is _OPAQUE:
                    return _OPAQUE
            if not _merge_into(result, b.written, value):
                return _OPAQUE  # Nix would reject the duplicate: do not pretend
        return result

    def _inherit_text(self, b: Binding) -> str:
        name = b.written[-1]
        if b.node.type == "inherit":
            return name
        source = b.node.child_by_field_name("expression")
        text = self.text_of(source) if source is not None else "null"
        simple = source is not None and unwrap(source).type in ("variable_expression",)
        return f"{text}.{name}" if simple else f"({text}).{name}"

    def _string(self, node: Node) -> object:
        raw = self.bytes_of(node)
        if b"\r" in raw:
            return _OPAQUE  # Nix versions disagree about CR/CRLF inside strings
        out: list[str] = []
        for child in node.named_children:
            kind = child.type
            text = self.text_of(child)
            if kind == "string_fragment":
                out.append(text)
            elif kind == "escape_sequence":
                out.append(_PLAIN_ESCAPES.get(text[1:], text[1:]))
            elif kind == "dollar_escape":
                continue  # the `$` it protects is in the next fragment
            elif kind == "comment":
                continue
            else:
                return _OPAQUE
        return "".join(out)

    def _indented_string(self, node: Node) -> object:
        raw = self.bytes_of(node)
        if b"\r" in raw:
            return _OPAQUE
        tokens: list[tuple[str, bool]] = []  # (text, is_escape)
        position = node.start_byte + 2
        for child in node.named_children:
            if child.start_byte != position:
                return _OPAQUE  # a gap the grammar did not cover: do not guess
            kind = child.type
            text = self.text_of(child)
            if kind == "string_fragment":
                tokens.append((text, False))
            elif kind == "escape_sequence":
                produced = "''" if text == "'''" else _PLAIN_ESCAPES.get(text[3:], text[3:])
                if produced in (" ", "\n"):
                    # Nix 2.8 treats these as indentation/line breaks, newer Nix does not.
                    return _OPAQUE
                tokens.append((produced, True))
            elif kind == "dollar_escape":
                tokens.append(("", True))
            else:
                return _OPAQUE
            position = child.end_byte
        if position != node.end_byte - 2:
            return _OPAQUE
        return _strip_indentation(tokens)

    def node_at(self, start: int, kind: str | Collection[str] | None = None) -> Node | None:
        """The outermost node of ``kind`` starting at byte ``start``."""
        kinds = {kind} if isinstance(kind, str) else kind
        node: Node | None = self.tree.root_node.descendant_for_byte_range(start, start)
        best: Node | None = None
        while node is not None and node.start_byte == start:
            if kinds is None or node.type in kinds:
                best = node
            node = node.parent
        return best


# --------------------------------------------------------------------------- helpers


class _Opaque:
    """Marker for "not a literal" inside the converter (never escapes it)."""


_OPAQUE = _Opaque()
_PLAIN_ESCAPES = {"n": "\n", "r": "\r", "t": "\t"}


def unwrap(node: Node) -> Node:
    """Drop parentheses around an expression."""
    while node.type == "parenthesized_expression":
        inner = node.child_by_field_name("expression")
        if inner is None:
            break
        node = inner
    return node


def application(node: Node) -> tuple[Node, list[Node]] | None:
    """``f a b`` as its function ``f`` (unwrapped) and its arguments ``[a, b]``, in
    order; None when ``node`` is not a whole application."""
    if node.type != "apply_expression":
        return None
    arguments: list[Node] = []
    while node.type == "apply_expression":
        function = node.child_by_field_name("function")
        argument = node.child_by_field_name("argument")
        if function is None or argument is None:
            return None
        arguments.insert(0, argument)
        node = unwrap(function)
    return node, arguments


def _binding_set(container: Node) -> Node | None:
    for child in container.named_children:
        if child.type == "binding_set":
            return child
    return None


def _merge_into(target: dict[str, object], keys: tuple[str, ...], value: object) -> bool:
    """Put ``value`` at ``keys`` (creating nested dicts); False on a clash Nix rejects."""
    current = target
    for key in keys[:-1]:
        existing = current.get(key)
        if existing is None and key not in current:
            new: dict[str, object] = {}
            current[key] = new
            current = new
        elif isinstance(existing, dict):
            current = existing
        else:
            return False
    last = keys[-1]
    if last in current:
        old = current[last]
        if isinstance(old, dict) and isinstance(value, dict):
            return all(_merge_into(old, (k,), v) for k, v in value.items())
        return False
    current[last] = value
    return True


def _strip_indentation(tokens: list[tuple[str, bool]]) -> str:
    """The value of an indented string, from its literal and escaped pieces.

    Follows Nix: the opening line is dropped when it holds only spaces, the
    smallest indentation (in spaces) of the lines with content is removed from
    every line, and a last line of only spaces is dropped.
    """
    if tokens and not tokens[0][1]:
        first = re.match(r" *\n", tokens[0][0])
        if first:
            tokens = [(tokens[0][0][first.end() :], False), *tokens[1:]]
    at_start = True
    indent = 0
    min_indent = 1_000_000
    for text, escaped in tokens:
        if escaped:
            if at_start:
                at_start = False
                min_indent = min(min_indent, indent)
            continue
        for ch in text:
            if at_start:
                if ch == " ":
                    indent += 1
                elif ch == "\n":
                    indent = 0
                else:
                    at_start = False
                    min_indent = min(min_indent, indent)
            elif ch == "\n":
                at_start = True
                indent = 0
    pieces: list[str] = []
    at_start = True
    dropped = 0
    for text, escaped in tokens:
        if escaped:
            at_start = False
            dropped = 0
            pieces.append(text)
            continue
        out: list[str] = []
        for ch in text:
            if at_start:
                if ch == " ":
                    if dropped >= min_indent:
                        out.append(ch)
                    dropped += 1
                elif ch == "\n":
                    dropped = 0
                    out.append(ch)
                else:
                    at_start = False
                    dropped = 0
                    out.append(ch)
            else:
                out.append(ch)
                if ch == "\n":
                    at_start = True
        pieces.append("".join(out))
    if tokens and not tokens[-1][1]:
        last = pieces[-1]
        cut = last.rfind("\n")
        if cut != -1 and not last[cut + 1 :].strip(" "):
            pieces[-1] = last[: cut + 1]
    return "".join(pieces)


def _column(source: bytes, line_start: int, offset: int) -> int:
    prefix = source[line_start:offset]
    if prefix.isascii():
        return len(prefix) + 1
    if line_start == 0 and prefix.startswith(_BOM):
        prefix = prefix[len(_BOM) :]
    return len(prefix.decode("utf-8", "replace")) + 1


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _describe(steps: Sequence[Step]) -> str:
    out = ""
    for step in steps:
        if isinstance(step, int):
            out += f"[{step}]"
        else:
            out += ("." if out else "") + step
    return out


def _check_utf8(source: bytes, path: Path | None) -> None:
    try:
        source.decode("utf-8")
    except UnicodeDecodeError as err:
        line = source.count(b"\n", 0, err.start) + 1
        column = err.start - (source.rfind(b"\n", 0, err.start) + 1) + 1
        raise NixSyntaxError(
            "the file is not valid UTF-8",
            file=_where(path),
            line=line,
            column=column,
            hint="save the file as UTF-8",
        ) from None


def check_tree(source: bytes, tree: Tree, path: Path | None) -> None:
    """Raise for syntax errors and for constructs the grammar reads wrongly."""
    root = tree.root_node
    if root.has_error:
        bad = _first_error(root)
        _raise_error(source, bad, path)
    # `a//b` is `a // b` to Nix but a path to the grammar.  Searching the
    # bytes finds the few candidates much faster than a tree query.
    offset = source.find(b"//")
    while offset != -1:
        node = _misread_path(source, root, offset)
        if node is not None:
            line, column = _line_col(source, offset)
            shown = source[node.start_byte : node.end_byte].decode("utf-8", "replace")
            raise UnsupportedSyntaxError(
                f"`{shown}`: Nix reads `//` without spaces around it as the attribute-set "
                "update operator, but nixgen's parser reads a path here",
                file=_where(path),
                line=line,
                column=column,
                hint="write it with spaces: `a // b`",
            )
        offset = source.find(b"//", offset + 1)


def _where(path: Path | None) -> Path | str:
    return path if path is not None else "<text>"


def _misread_path(source: bytes, root: Node, offset: int) -> Node | None:
    """The path fragment the grammar made of the `//` at ``offset``, if any."""
    if offset > 0 and source[offset - 1 : offset] == b":":
        return None  # a URL
    if not _PATH_CONTINUES.match(source, offset + 2):
        return None
    node = root.descendant_for_byte_range(offset, offset + 2)
    if node is None or node.type != "path_fragment":
        return None
    parent = node.parent
    if parent is None or parent.type not in ("path_expression", "hpath_expression"):
        return None
    if node.prev_named_sibling is not None:
        return None  # after an interpolation Nix accepts `//` inside a path
    return node


def _first_error(node: Node) -> Node:
    while True:
        if node.is_error or node.is_missing:
            return node
        for child in node.children:
            if child.has_error or child.is_missing:
                node = child
                break
        else:
            return node


def _line_col(source: bytes, offset: int) -> tuple[int, int]:
    line_start = source.rfind(b"\n", 0, offset) + 1
    return source.count(b"\n", 0, line_start) + 1, _column(source, line_start, offset)


def _excerpt(source: bytes, offset: int, column: int) -> str:
    """The offending line with a caret under ``column``, for error messages."""
    start = source.rfind(b"\n", 0, offset) + 1
    end = source.find(b"\n", offset)
    text = source[start : len(source) if end == -1 else end].rstrip(b"\r")
    if start == 0:
        text = text.removeprefix(_BOM)
    shown = text.decode("utf-8", "replace").expandtabs(1)
    if len(shown) > 120:
        return ""
    return f"\n    | {shown}\n    | {' ' * (column - 1)}^"


def _raise_error(source: bytes, bad: Node, path: Path | None) -> None:
    start = bad.start_byte
    line, column = _line_col(source, start)
    excerpt = _excerpt(source, start, column)
    if bad.is_missing:
        parent = bad.parent
        if bad.type == "identifier" and parent is not None and parent.type == "inherited_attrs":
            raise UnsupportedSyntaxError(
                "an `inherit` without names is valid Nix but nixgen's parser cannot read it"
                + excerpt,
                file=_where(path),
                line=line,
                column=column,
                hint="remove the empty `inherit …;`, it does nothing",
            )
        raise NixSyntaxError(
            f"syntax error: missing `{bad.type}`{excerpt}",
            file=_where(path),
            line=line,
            column=column,
        )
    text = source[start : bad.end_byte]
    around = source[max(0, start - 1) : bad.end_byte + 1]
    shown = _short(text.decode("utf-8", "replace")) or "end of file"
    if b"|>" in around or b"<|" in around:
        raise UnsupportedSyntaxError(
            "the pipe operators `|>` and `<|` are not supported",
            file=_where(path),
            line=line,
            column=column,
            hint="write the function application out: `f x` instead of `x |> f`",
        )
    if text.startswith(b"~/${"):
        raise UnsupportedSyntaxError(
            "interpolation directly after `~/` (`~/${…}`) is not supported by nixgen's parser",
            file=_where(path),
            line=line,
            column=column,
            hint='write the path another way, e.g. `~/. + "/${…}"`',
        )
    if text.startswith(b"'${") and _inside(bad, "indented_string_expression"):
        raise UnsupportedSyntaxError(
            "a `'` directly before `${` in an indented string ('' … '') is not supported "
            "by nixgen's parser",
            file=_where(path),
            line=line,
            column=column,
            hint='put the quote in a plain string: `${"\'"}${…}`',
        )
    raise NixSyntaxError(
        f"syntax error near `{shown}`{excerpt}", file=_where(path), line=line, column=column
    )


def _inside(node: Node, kind: str) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.type == kind:
            return True
        parent = parent.parent
    return False
