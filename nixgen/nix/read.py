"""Read micro-VM guests out of an existing flake, statically.

For each ``nixosConfigurations.<name> = nixpkgs.lib.nixosSystem { … };``
nixgen reads the ``system``, the ``modules`` list and, from every module it
can see (inline sets, ``let``-bound sets, relative module files such as
``./vms/web.nix``), a flat mapping of the settings written in it:
``{"microvm.mem": 1024, "networking.hostName": "web", …}``.  Literal values
become Python values; anything else is kept as ``Nix(source)``.  Every
setting records where it was written, so an edit can go back to it:
``edit.set_value(document, setting.locator, setting.path, new_text)``.

Nothing is evaluated.  Guests built by functions (``genAttrs``,
``listToAttrs``, ``import ./hosts.nix``, a local ``mkVm``) are reported in
:attr:`FlakeGuests.unreadable` with the reason, never guessed at.

Hosts — configurations that run guests with microvm.nix's host module — are
not guests: they are listed in :attr:`FlakeGuests.hosts` (see
:class:`HostConfig` for how they are recognised).
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Literal

import attrs
from tree_sitter import Node

from nixgen.errors import NixgenError
from nixgen.model.memo import ByIdentity
from nixgen.nix.emit import Nix, attr_path, to_nix
from nixgen.nix.parse import ATTRSET_TYPES, Binding, Document, Span, Step, application, unwrap

__all__ = [
    "NEEDS_NIX",
    "PLAIN_PRIORITY",
    "Decision",
    "DeclaredGuest",
    "FlakeGuests",
    "HostConfig",
    "Module",
    "Setting",
    "UnreadModule",
    "Unreadable",
    "decide",
    "priority",
    "read_guests",
    "read_module",
]

ModuleKind = Literal["inline", "file", "reference", "opaque"]

# Top-level names of a module that are not option settings.
_MODULE_META = frozenset({"imports", "_file", "key", "disabledModules", "_class"})
# Expressions a module can be written as (after following variables).
_MODULE_SHAPES = ATTRSET_TYPES | {
    "function_expression",
    "let_expression",
    "with_expression",
    "assert_expression",
    "let_attrset_expression",
}
# Options only microvm.nix's host module has: a configuration setting one is a host.
_HOST_OPTIONS = frozenset({"host", "vms", "autostart"})
# Functions known to compute attribute sets, for clearer reasons.
_COMPUTING = {
    "genAttrs": "lib.genAttrs",
    "listToAttrs": "builtins.listToAttrs",
    "mapAttrs": "lib.mapAttrs",
    "mapAttrs'": "lib.mapAttrs'",
    "import": "import",
    "foldl'": "foldl'",
    "mkMerge": "lib.mkMerge",
}
#: The priority of a plain definition in the NixOS module system (lower wins).
PLAIN_PRIORITY = 100
# The priorities nixpkgs' lib/modules.nix gives its wrappers.
_PRIORITIES = {
    "mkOptionDefault": 1500,
    "mkDefault": 1000,
    "mkImageMediaOverride": 60,
    "mkForce": 50,
    "mkVMOverride": 10,
}
# Wrappers that order list elements: the definition keeps the plain priority.
_ORDERING = frozenset({"mkBefore", "mkAfter", "mkOrder"})
# Expressions whose value cannot be an override, whatever they hold.
_PLAIN_SHAPES = frozenset(
    {
        "integer_expression",
        "float_expression",
        "string_expression",
        "indented_string_expression",
        "path_expression",
        "hpath_expression",
        "spath_expression",
        "uri_expression",
        "list_expression",
        "attrset_expression",
        "rec_attrset_expression",
        "function_expression",
        "unary_expression",
    }
)
#: What reading a computed part of a flake takes.
NEEDS_NIX = (
    "reading it needs nix: install nix (and drop --no-eval); offline, point every input "
    "at a local copy with --override-input NAME path:DIR"
)


@attrs.frozen
class Setting:
    """One option value written in a module.

    ``key`` is the dotted path as Nix writes it (``fileSystems."/".device``),
    ``path`` the same as a tuple.  ``locator`` names the attribute set the
    path is relative to, in the document ``span.file`` (None: the flake read
    from text); together they are what :func:`nixgen.nix.edit.set_value` takes.
    """

    key: str
    path: tuple[str, ...]
    value: object
    span: Span
    binding: Span
    locator: tuple[Step, ...] | None


@attrs.frozen
class Module:
    """One element of a guest's ``modules`` (or of a module's ``imports``).

    ``kind``: ``inline`` (an attribute set, possibly behind a function header
    or a ``let``-bound name), ``file`` (a relative path, read too),
    ``reference`` (``microvm.nixosModules.microvm``: named, not read) or
    ``opaque`` (any other expression).
    """

    kind: ModuleKind
    text: str
    span: Span
    file: Path | None = None
    locator: tuple[Step, ...] | None = None
    settings: tuple[Setting, ...] = ()
    imports: tuple[Module, ...] = ()
    arguments: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    #: why nixgen could not read what the module sets (None: read, or a library module)
    unread: str | None = None

    def walk(self) -> Iterator[Module]:
        """This module and, depth first, every module it imports."""
        yield self
        for sub in self.imports:
            yield from sub.walk()


@attrs.frozen
class DeclaredGuest:
    """One ``nixosConfigurations.<name>`` read statically."""

    name: str
    system: object
    modules: tuple[Module, ...]
    settings: Mapping[str, object]
    definitions: Mapping[str, tuple[Setting, ...]]
    span: Span
    locator: tuple[Step, ...] | None
    system_span: Span | None = None
    problems: tuple[str, ...] = ()

    def setting(self, key: str) -> Setting | None:
        """The one definition of ``key``, or None (absent or defined several times)."""
        found = self.definitions.get(key, ())
        return found[0] if len(found) == 1 else None

    @property
    def unread(self) -> tuple[UnreadModule, ...]:
        """Its modules nixgen could not read: what they set is unknown."""
        return tuple(
            UnreadModule(text=m.text, reason=m.unread, span=m.span)
            for top in self.modules
            for m in top.walk()
            if m.unread is not None
        )

    def decision(self, key: str) -> Decision:
        """Which of the definitions of ``key`` give its value, as far as the text tells."""
        return decide(self.definitions.get(key, ()))

    if not TYPE_CHECKING:  # mypy would take every attribute name as valid

        def __getattr__(self, name: str) -> object:
            # Only unset slots come here: the modules and definitions of a guest an
            # edit moved, made from the guest it was moved from on first use.
            if name in ("modules", "definitions"):
                _materialise(self)
            return object.__getattribute__(self, name)


@attrs.frozen
class UnreadModule:
    """A module of a guest that nixgen could not read (a missing file, ``import ./f.nix
    { … }``, a reference into the flake): the options it sets are unknown.

    ``text`` is the module as written, ``span`` where it is listed (in ``modules`` or in
    an ``imports`` list).
    """

    text: str
    reason: str
    span: Span


@attrs.frozen
class Decision:
    """What the definitions of one option amount to, read without evaluating.

    ``winners`` are the definitions the value comes from: one, or several
    when the module system merges them (lists, or equal values) — then
    ``value`` is the merged value.  Empty when only evaluation can tell
    (``undecided`` says why); ``value`` is then None.
    """

    definitions: tuple[Setting, ...]
    winners: tuple[Setting, ...]
    value: object = None
    undecided: str | None = None

    @property
    def merged(self) -> bool:
        return len(self.winners) > 1

    @property
    def losers(self) -> tuple[Setting, ...]:
        """The definitions a higher priority overrides (empty when undecided)."""
        if not self.winners:
            return ()
        return tuple(d for d in self.definitions if d not in self.winners)


def priority(value: object) -> int | None:
    """The module system's priority of a definition as written (``lib.mkDefault x``:
    1000, a plain value: 100, ``lib.mkForce x``: 50, ``lib.mkOverride N x``: N);
    None when only evaluation can tell (``lib.mkIf``, ``lib.mkMerge``, a variable or
    another function's result, which may be an override)."""
    if not isinstance(value, Nix):
        return PLAIN_PRIORITY
    return _text_priority(value.text)


@functools.lru_cache(maxsize=4096)
def _text_priority(text: str) -> int | None:
    try:
        doc = Document.parse(text)
    except NixgenError:
        return None
    node = unwrap(doc.expression())
    if node.type in _PLAIN_SHAPES:
        return PLAIN_PRIORITY
    if node.type == "binary_expression":
        operator = node.child_by_field_name("operator")
        # `//` keeps the attributes of an override (`_type`); the others make new values.
        return None if operator is None or operator.type == "//" else PLAIN_PRIORITY
    applied = application(node)
    if applied is None:
        return None
    function, arguments = applied
    callee = doc.callee_name(function)
    if callee in _PRIORITIES and len(arguments) == 1:
        return _PRIORITIES[callee]
    if callee == "mkOverride" and len(arguments) == 2:
        level = doc.literal(unwrap(arguments[0]))
        return level if isinstance(level, int) and not isinstance(level, bool) else None
    if callee in _ORDERING:
        return PLAIN_PRIORITY
    return None


def decide(definitions: Sequence[Setting]) -> Decision:
    """Which definitions of one option win, by the priorities written (see :func:`priority`).

    The lowest priority wins; several definitions at that priority merge when
    they are all lists (concatenated in the order read) or equal numbers,
    booleans or nulls.  Anything else is undecided: nix decides (it merges
    some strings and sets, and refuses other different values).
    """
    defs = tuple(definitions)
    if len(defs) == 1:
        return Decision(defs, defs, defs[0].value)
    if not defs:
        return Decision((), (), None, "not defined")
    levels = [priority(d.value) for d in defs]
    unknown = [d for d, level in zip(defs, levels, strict=True) if level is None]
    if unknown:
        shown = ", ".join(f"`{_short(_text(d.value), 40)}`" for d in unknown)
        return Decision(defs, (), None, f"the priority of {shown} is only known after evaluation")
    best = min(level for level in levels if level is not None)
    winners = tuple(d for d, level in zip(defs, levels, strict=True) if level == best)
    if len(winners) == 1:
        return Decision(defs, winners, winners[0].value)
    values = [w.value for w in winners]
    lists = [v for v in values if isinstance(v, list)]
    if len(lists) == len(values):
        return Decision(defs, winners, [item for v in lists for item in v])
    first = values[0]
    scalar = first is None or isinstance(first, bool | int | float)
    if scalar and all(type(v) is type(first) and v == first for v in values):
        return Decision(defs, winners, first)
    return Decision(
        defs, (), None, f"{len(winners)} definitions at the same priority with different values"
    )


def _text(value: object) -> str:
    try:
        return to_nix(value)
    except NixgenError:  # a value Nix cannot spell: Python's view of it
        return repr(value)


def is_host_option(path: tuple[str, ...]) -> bool:
    """``microvm.host.*``, ``microvm.vms.*``, ``microvm.autostart``: options of hosts only."""
    return len(path) >= 2 and path[0] == "microvm" and path[1] in _HOST_OPTIONS


@attrs.frozen
class HostConfig:
    """A host found in the flake: a machine that runs guests, not a guest.

    ``kind`` is ``"configuration"`` for a ``nixosConfigurations.<name>`` that
    is a host, recognised by its modules (followed into module files and
    their ``imports``): it imports ``<microvm input>.nixosModules.host``, or
    a host module of the flake (``self.nixosModules.<h>``, or ``import
    ./hosts/<h>.nix …`` as nixgen renders hosts), or sets ``microvm.host.*``,
    ``microvm.vms.*`` or ``microvm.autostart``.  A configuration that also
    imports microvm.nix's guest module (``nixosModules.microvm``) is a guest
    (a nested host), as for ``nix build``.  ``kind`` is ``"module"`` for a
    ``nixosModules.<name>`` that sets those host options and that no host
    configuration of the flake imports (nixgen renders every host so).

    ``span`` is where the host is declared in flake.nix; ``reason`` says how it
    was recognised; ``module`` is its host module when nixgen could read it;
    ``configuration`` the configuration as read (modules, settings).
    """

    name: str
    kind: Literal["configuration", "module"]
    span: Span
    reason: str
    system: object = None
    configuration: DeclaredGuest | None = None
    module: Module | None = None

    @property
    def file(self) -> Path | None:
        """The file of its host module (``hosts/<name>.nix``), when it has one."""
        if self.module is not None and self.module.kind == "file":
            return self.module.file
        return None

    @property
    def settings(self) -> tuple[Setting, ...]:
        """Every setting written in its modules (its host module included)."""
        tops = list(self.configuration.modules) if self.configuration is not None else []
        if self.module is not None:
            tops.append(self.module)
        out: dict[tuple[Path | None, int], Setting] = {}
        for top in tops:
            for m in top.walk():
                for s in m.settings:
                    out.setdefault((s.span.file, s.binding.start), s)
        return tuple(out.values())

    @property
    def runs(self) -> tuple[str, ...]:
        """The guests it declares in ``microvm.vms`` (as far as they are written literally)."""
        names: dict[str, None] = {}
        for s in self.settings:
            if len(s.path) >= 3 and s.path[:2] == ("microvm", "vms"):
                names.setdefault(s.path[2], None)
            elif s.path == ("microvm", "vms") and isinstance(s.value, Mapping):
                names.update(dict.fromkeys(str(k) for k in s.value))
        return tuple(names)

    def mentions(self, guest: str) -> tuple[Setting, ...]:
        """Its settings that name ``guest``: ``microvm.vms.<guest>…``, ``microvm.autostart``."""

        def names(s: Setting) -> bool:
            if s.path[:3] == ("microvm", "vms", guest):
                return True
            listed = s.path in (("microvm", "vms"), ("microvm", "autostart"))
            return listed and isinstance(s.value, Mapping | list) and guest in s.value

        return tuple(s for s in self.settings if names(s))

    def computed(self) -> tuple[Setting, ...]:
        """``microvm.vms``/``microvm.autostart`` written as expressions: whom they name is unknown."""
        return tuple(
            s
            for s in self.settings
            if s.path in (("microvm", "vms"), ("microvm", "autostart"))
            and not isinstance(s.value, Mapping | list)
        )


@attrs.frozen
class Unreadable:
    """A guest (``name``) or a set of guests (``name is None``) nixgen cannot read.

    ``reason`` names the expression that computes it and where, then why:
    ``flake.nix:16: nixosConfigurations = lib.genAttrs names mkVm: … computed by
    `lib.genAttrs` …``; reading it needs nix (:data:`NEEDS_NIX`).
    """

    name: str | None
    why: str
    span: Span | None
    #: the binding that computes it, as written (shortened), and where it is
    written: str | None = None
    binding: Span | None = None
    #: the flake's folder, which file names in ``reason`` are relative to
    root: Path | None = attrs.field(default=None, repr=False)

    @property
    def reason(self) -> str:
        if self.binding is None or self.written is None:
            return self.why
        return f"{place(self.binding, self.root)}: {self.written}: {self.why}; reading it needs nix"


@attrs.frozen
class FlakeGuests:
    """The guests of one flake."""

    guests: tuple[DeclaredGuest, ...]
    unreadable: tuple[Unreadable, ...]
    notes: tuple[str, ...] = ()
    documents: Mapping[Path, Document] = attrs.field(factory=dict, repr=False)
    #: configurations (and modules) that are hosts, not guests, in the order declared
    hosts: tuple[HostConfig, ...] = ()

    def host(self, name: str) -> HostConfig | None:
        return next((h for h in self.hosts if h.name == name), None)

    def __getitem__(self, name: str) -> DeclaredGuest:
        for guest in self.guests:
            if guest.name == name:
                return guest
        raise KeyError(name)

    def names(self) -> list[str]:
        return [g.name for g in self.guests]


# --------------------------------------------------------------------------- entry points


def read_guests(
    doc: Document,
    *,
    follow_files: bool = True,
    documents: Mapping[Path, Document] | None = None,
) -> FlakeGuests:
    """The guests of a flake Document (see the module docstring).

    ``documents`` are module files already parsed, by resolved path: they are
    used instead of the files on disk (edits not saved yet, files not written
    yet).
    """
    reader = _Reader(doc, follow_files=follow_files, documents=documents)
    return reader.read()


def read_module(doc: Document) -> Module:
    """The settings of a NixOS module file (``{ config, lib, pkgs, ... }: { … }``)."""
    reader = _Reader(doc, follow_files=True)
    return reader.module_file(doc, doc.expression(), frozenset())


# --------------------------------------------------------------------------- the reader


class _Reader:
    def __init__(
        self,
        doc: Document,
        *,
        follow_files: bool,
        documents: Mapping[Path, Document] | None = None,
    ) -> None:
        self.doc = doc
        self.follow_files = follow_files
        self.documents: dict[Path, Document] = dict(documents or {})
        self.guests: list[DeclaredGuest] = []
        self.unreadable: list[Unreadable] = []
        self.notes: list[str] = []
        self.hosts: list[HostConfig] = []
        # nixosModules.<name> that are host modules: (module, where it is bound)
        self.host_modules: dict[str, tuple[Module, Span]] = {}
        self.claimed: set[str] = set()
        self.microvm_inputs: frozenset[str] = frozenset({"microvm"})
        self._refs: dict[tuple[frozenset[str], str], frozenset[str]] = {}
        # messages name files relative to the flake's folder
        self.root = doc.path.parent if doc.path is not None else None
        # whether `outputs` names nixosConfigurations at all
        self.configurations = False

    def _place(self, span: Span) -> str:
        return place(span, self.root)

    def _place_file(self) -> str:
        assert self.doc.path is not None
        return relative_name(self.doc.path, self.root)

    def read(self) -> FlakeGuests:
        self.doc.index_scopes()
        outputs = self._outputs()
        if outputs is not None:
            self.microvm_inputs = self._microvm_inputs()
            self._host_modules(outputs)
            self._configurations(outputs)
            # Said only when nothing else in `outputs` may hold them (no note of a part
            # nixgen cannot read).
            if not self.configurations and not self.notes and not self.unreadable:
                shown = "the flake" if self.doc.path is None else self._place_file()
                self.notes.append(
                    f"{shown} has no nixosConfigurations, so it declares no guests; a guest "
                    "is `nixosConfigurations.<name> = nixpkgs.lib.nixosSystem { … };` in "
                    "`outputs`"
                )
        hosts = list(self.hosts)
        for name, (module, span) in self.host_modules.items():
            if name not in self.claimed:
                first = next(s for m in module.walk() for s in m.settings if is_host_option(s.path))
                hosts.append(
                    HostConfig(
                        name=name,
                        kind="module",
                        span=span,
                        reason=f"sets {first.key}",
                        module=module,
                    )
                )
        hosts.sort(key=lambda h: h.span.start)
        return FlakeGuests(
            guests=tuple(self.guests),
            unreadable=tuple(self.unreadable),
            notes=tuple(self.notes),
            documents=dict(self.documents),
            hosts=tuple(hosts),
        )

    # ------------------------------------------------------------------ where the guests are

    def _outputs(self) -> list[Node] | None:
        doc = self.doc
        root = doc.root_attrset()
        if root is None:
            self._unreadable(None, "the file is not an attribute set literal", doc.expression())
            return None
        found = doc.lookup(root, ("outputs",))
        if len(found.exact) != 1:
            self._unreadable(None, "the flake has no `outputs` binding nixgen can read", root)
            return None
        value = doc.binding_value(found.exact[0])
        if value is None or unwrap(value).type != "function_expression":
            self._unreadable(None, "`outputs` is not written as a function", root)
            return None
        body = unwrap(value).child_by_field_name("body")
        assert body is not None
        sets = self._literal_sets(body, "outputs")
        if not sets:
            self.notes.clear()
            self._unreadable(
                None,
                _computed_reason(doc, _strip_scopes(doc, body), "`outputs`"),
                body,
                body,
                f"outputs = …: {_short(doc.text_of(_strip_scopes(doc, body)), 60)}",
            )
        return sets

    def _literal_sets(self, node: Node, what: str) -> list[Node]:
        """The attribute-set literals an expression merges with ``//``; notes the rest."""
        doc = self.doc
        sets: list[Node] = []
        for operand in doc.merge_operands(_strip_scopes(doc, node)):
            aset = doc.attrset_of(operand, through=())
            if aset is None:
                inner = _strip_scopes(doc, operand)
                merged = doc.merge_operands(inner)
                if len(merged) > 1:
                    sets.extend(self._literal_sets(inner, what))
                    continue
                self.notes.append(
                    f"{self._place(doc.span(operand))}: {what} include "
                    f"`{_short(doc.text_of(operand))}`, "
                    "which nixgen cannot read without evaluating it; it may define more "
                    "guests"
                )
                continue
            sets.append(aset)
        return sets

    def _configurations(self, outputs: list[Node]) -> None:
        doc = self.doc
        seen: dict[str, int] = {}
        for aset in outputs:
            found = doc.lookup(aset, ("nixosConfigurations",))
            for b in found.dynamic:
                if b.path and b.path[0] == "nixosConfigurations":
                    self._unreadable(None, "a guest name is computed", b.node, b.node)
            for b in found.exact:
                value = doc.binding_value(b)
                if value is None:
                    reason = "`nixosConfigurations` is inherited from outside the file"
                    self._unreadable(None, reason, b.node, b.node)
                    continue
                self._configuration_set(value, seen, b.node)
            for b in found.inner:
                self._guest_binding(b.path[1], b, seen, direct=True)
            self.configurations = self.configurations or bool(
                found.exact or found.inner or found.dynamic
            )

    def _configuration_set(self, value: Node, seen: dict[str, int], binding: Node) -> None:
        doc = self.doc
        resolved = doc.resolve(value)
        operands = doc.merge_operands(resolved)
        for operand in operands:
            target = doc.resolve(operand)
            if target.type in ATTRSET_TYPES:
                for b in doc.iter_bindings(target):
                    if b.dynamic:
                        self._unreadable(None, "a guest name is computed", b.node, b.node)
                        continue
                    self._guest_binding(b.path[0], b, seen, direct=False)
                continue
            reason = _computed_reason(doc, target, "nixosConfigurations")
            if len(operands) > 1:  # one side of a `//`: that side is what is computed
                written = f"nixosConfigurations = … // {_short(doc.text_of(operand))}"
                self._unreadable(None, reason, target, operand, written)
                continue
            if not _inside(target, binding):
                reason += f" (`{_short(doc.text_of(target))}`, {self._place(doc.span(target))})"
            self._unreadable(None, reason, target, binding)

    def _guest_binding(self, name: str, b: Binding, seen: dict[str, int], *, direct: bool) -> None:
        doc = self.doc
        rel = b.path[1:] if direct else b.path
        if len(rel) != 1:
            self._unreadable(
                name, "the guest is written in parts, not as one nixosSystem call", b.node, b.node
            )
            return
        value = doc.binding_value(b)
        if value is None:
            self._unreadable(name, "the guest is inherited from outside the file", b.node, b.node)
            return
        if name in seen:
            self._unreadable(name, "the guest is defined more than once", b.node, b.node)
            return
        seen[name] = len(self.guests)
        self._guest(name, value, b.node)

    # ------------------------------------------------------------------ one guest

    def _guest(self, name: str, value: Node, binding: Node) -> None:
        doc = self.doc
        target = doc.resolve(value)
        if target.type != "apply_expression":
            reason = _computed_reason(doc, target, "the guest")
            if not _inside(target, binding):
                reason += f" (`{_short(doc.text_of(target))}`, {self._place(doc.span(target))})"
            self._unreadable(name, reason, target, binding)
            return
        function = target.child_by_field_name("function")
        argument = target.child_by_field_name("argument")
        callee = doc.callee_name(function) if function is not None else None
        if callee != "nixosSystem" or argument is None:
            shown = _short(doc.text_of(function)) if function is not None else "?"
            self._unreadable(
                name,
                f"the guest is built by `{shown} …`, not by nixosSystem; nixgen cannot "
                "follow that function statically",
                target,
                binding,
            )
            return
        args = doc.attrset_of(argument, through=())
        if args is None:
            self._unreadable(
                name,
                f"the nixosSystem argument is `{_short(doc.text_of(argument))}`, "
                "not an attribute set literal",
                argument,
                binding,
            )
            return
        locator: tuple[Step, ...] = ("outputs", "nixosConfigurations", name)
        problems: list[str] = []
        system: object = None
        system_span: Span | None = None
        # One pass over the (small) argument set instead of a lookup per name.
        top: dict[str, list[Binding]] = {}
        for b in doc.iter_bindings(args):
            if len(b.written) == 1:
                top.setdefault(b.written[0], []).append(b)
        found = top.get("system", [])
        if len(found) == 1:
            system_node = doc.binding_value(found[0])
            if system_node is None:
                system = Nix("system")
                problems.append("`system` is inherited from a scope nixgen cannot read")
                system_span = doc.span(found[0].node)
            else:
                # `system = hostSystem;` with a let-bound literal: follow it.
                system = doc.literal(doc.resolve(system_node))
                if isinstance(system, Nix):
                    system = Nix(doc.text_of(system_node))
                system_span = doc.span(system_node)
        modules: list[Module] = []
        found = top.get("modules", [])
        if len(found) == 1:
            modules_node = doc.binding_value(found[0])
            if modules_node is None:
                problems.append("`modules` is inherited from a scope nixgen cannot read")
                modules = [
                    Module(
                        kind="opaque",
                        text=_short(doc.text_of(found[0].node)),
                        span=doc.span(found[0].node),
                        file=doc.path,
                        unread="`modules` is inherited from a scope nixgen cannot read",
                    )
                ]
            else:
                modules = self._modules(modules_node, (*locator, "modules"), problems)
        elif not found:
            problems.append("the guest has no `modules`")
        definitions: dict[str, list[Setting]] = {}
        for module in modules:
            for sub in module.walk():
                for setting in sub.settings:
                    definitions.setdefault(setting.key, []).append(setting)
        settings: dict[str, object] = {}
        for key, defs in definitions.items():
            if len(defs) == 1:
                settings[key] = defs[0].value
                continue
            # Several definitions: the one that wins by priority, or the merged lists;
            # undecided ones are left out (the flake editor says why).
            decision = decide(defs)
            if decision.winners:
                settings[key] = decision.value
        guest = DeclaredGuest(
            name=name,
            system=system,
            modules=tuple(modules),
            settings=settings,
            definitions={k: tuple(v) for k, v in definitions.items()},
            span=doc.span(binding),
            locator=locator,
            system_span=system_span,
            problems=tuple(problems),
        )
        host = self._host_reason(guest)
        if host is None:
            self.guests.append(guest)
            return
        reason, host_module = host
        self.hosts.append(
            HostConfig(
                name=name,
                kind="configuration",
                span=guest.span,
                reason=reason,
                system=system,
                configuration=guest,
                module=host_module,
            )
        )

    # ------------------------------------------------------------------ hosts

    def _microvm_inputs(self) -> frozenset[str]:
        """The names of the flake's inputs that are microvm.nix (``microvm`` always counts)."""
        doc = self.doc
        names = {"microvm"}
        root = doc.root_attrset()
        if root is None:
            return frozenset(names)
        found = doc.lookup(root, ("inputs",))
        specs: list[tuple[tuple[str, ...], object]] = []
        for b in found.all:
            value = doc.binding_value(b)
            if value is not None:
                specs.append((b.path[1:], doc.value(value)))
        for rel, data in specs:
            items: list[tuple[str, object]] = []
            if not rel and isinstance(data, Mapping):
                items = [(str(k), v) for k, v in data.items()]
            elif len(rel) == 1:
                items = [(rel[0], data)]
            elif len(rel) == 2 and rel[1] == "url":
                items = [(rel[0], {"url": data})]
            for name, spec in items:
                url = spec.get("url") if isinstance(spec, Mapping) else spec
                if isinstance(url, str) and "microvm" in url:
                    names.add(name)
        return frozenset(names)

    def _module_refs(self, output: str) -> frozenset[str]:
        """How a module of microvm.nix is written: ``microvm.nixosModules.host``, …"""
        key = (self.microvm_inputs, output)
        refs = self._refs.get(key)
        if refs is None:
            refs = frozenset(
                f"{prefix}{name}.nixosModules.{output}"
                for name in self.microvm_inputs
                for prefix in ("", "inputs.", "self.inputs.")
            )
            self._refs[key] = refs
        return refs

    def _host_modules(self, outputs: list[Node]) -> None:
        """``nixosModules.<name>`` that set host options (``import ./hosts/<name>.nix …``)."""
        doc = self.doc
        entries: list[tuple[str, Node, Node]] = []
        for aset in outputs:
            found = doc.lookup(aset, ("nixosModules",))
            for b in found.exact:
                value = doc.binding_value(b)
                target = doc.resolve(value) if value is not None else None
                if target is None or target.type not in ATTRSET_TYPES:
                    continue
                for sub in doc.iter_bindings(target):
                    sub_value = doc.binding_value(sub)
                    if not sub.dynamic and len(sub.path) == 1 and sub_value is not None:
                        entries.append((sub.path[0], sub_value, sub.node))
            for b in found.inner:
                value = doc.binding_value(b)
                if not b.dynamic and len(b.path) == 2 and value is not None:
                    entries.append((b.path[1], value, b.node))
        for name, value, node in entries:
            imported = _import_path(doc, value)
            if imported is not None:
                module = self._module_path(
                    doc.path, imported, doc.text_of(value), doc.span(value), frozenset()
                )
            else:
                module = self._module(doc, value, None, frozenset())
            if _sets_host_options(module):
                self.host_modules.setdefault(name, (module, doc.span(node)))

    def _host_reason(self, guest: DeclaredGuest) -> tuple[str, Module | None] | None:
        """Why a configuration is a host (and its host module), or None for a guest."""
        guest_refs = self._module_refs("microvm")
        host_refs = self._module_refs("host")
        reasons: list[str] = []
        module: Module | None = None
        claimed: list[str] = []
        for top in guest.modules:
            for m in top.walk():
                if m.kind == "reference":
                    ref = _compact(m.text)
                    if ref in guest_refs:
                        return None  # a guest, perhaps one that runs guests itself
                    if ref in host_refs:
                        reasons.append(f"imports {ref}")
                    elif ref.startswith("self.nixosModules."):
                        name = ref.removeprefix("self.nixosModules.")
                        found = self.host_modules.get(name)
                        if found is not None:
                            claimed.append(name)
                            module = module or found[0]
                            reasons.append(f"imports {ref}, a host module")
                elif m.kind == "opaque" and m.file is not None and "import" in m.text:
                    host_module = self._imported_host_module(m)
                    if host_module is not None:
                        module = module or host_module
                        reasons.append(f"imports {_short(m.text)}, a host module")
                for s in m.settings:
                    if is_host_option(s.path):
                        reasons.append(f"sets {s.key}")
        if not reasons:
            return None
        self.claimed.update(claimed)
        return reasons[0], module

    def _imported_host_module(self, module: Module) -> Module | None:
        """The module of ``import ./hosts/<name>.nix { … }`` in a modules list, if a host's."""
        try:
            expression = Document.parse(module.text)
        except NixgenError:
            return None
        imported = _import_path(expression, expression.expression())
        if imported is None or module.file is None:
            return None
        found = self._module_path(module.file, imported, module.text, module.span, frozenset())
        return found if _sets_host_options(found) else None

    def _modules(
        self, node: Node, locator: tuple[Step, ...] | None, problems: list[str]
    ) -> list[Module]:
        doc = self.doc
        resolved = doc.resolve(node)
        if resolved.type == "list_expression":
            return [
                self._module(doc, element, None if locator is None else (*locator, i), frozenset())
                for i, element in enumerate(doc.list_elements(resolved))
            ]
        parts = _concatenation(doc, resolved)
        if len(parts) > 1:
            out: list[Module] = []
            for part in parts:
                # Indices in a `++` chain are not list indices: no locators inside.
                out.extend(self._modules(part, None, problems))
            return out
        problems.append(f"`modules` is `{_short(doc.text_of(node))}`, not a list literal")
        return [
            Module(
                kind="opaque",
                text=doc.text_of(node),
                span=doc.span(node),
                unread="`modules` is not a list nixgen can read",
            )
        ]

    def _module(
        self,
        doc: Document,
        element: Node,
        locator: tuple[Step, ...] | None,
        visiting: frozenset[Path],
    ) -> Module:
        text = doc.text_of(element)
        span = doc.span(element)
        target = doc.resolve(element)
        if target.type == "path_expression":
            literal = doc.literal(target)
            if isinstance(literal, PurePosixPath):
                return self._module_path(doc.path, literal, text, span, visiting)
        function_args: tuple[str, ...] = ()
        if target.type == "function_expression":
            function_args = _formals(doc, target)
        # Only these can amount to an attribute set; skip the rest cheaply.
        aset = doc.attrset_of(target, through=()) if target.type in _MODULE_SHAPES else None
        if aset is not None:
            settings, imports, problems = self._module_body(doc, aset, locator, visiting)
            return Module(
                kind="inline",
                text=text,
                span=span,
                file=doc.path,
                locator=locator,
                settings=settings,
                imports=imports,
                arguments=function_args,
                problems=problems,
            )
        kind: ModuleKind = (
            "reference" if target.type in ("variable_expression", "select_expression") else "opaque"
        )
        unread = None if _library_module(text) else _unread_reason(doc, target, kind)
        return Module(kind=kind, text=text, span=span, file=doc.path, unread=unread)

    def _module_path(
        self,
        written_in: Path | None,
        literal: PurePosixPath,
        text: str,
        span: Span,
        visiting: frozenset[Path],
    ) -> Module:
        """The module file ``literal``, written in the file ``written_in``."""
        if written_in is None or not self.follow_files:
            reason = "not followed" if written_in is not None else "the flake was read from text"
            return Module(
                kind="file", text=text, span=span, problems=(f"{text}: {reason}",), unread=reason
            )
        file = Path(literal) if literal.is_absolute() else written_in.parent / Path(literal)
        if file.is_dir():
            file = file / "default.nix"
        try:
            resolved = file.resolve()
        except OSError:
            resolved = file
        if resolved in visiting:
            # Read once already, higher up: nothing is unknown.
            return Module(
                kind="file",
                text=text,
                span=span,
                file=file,
                problems=(f"{text}: imported in a cycle",),
            )
        try:
            module_doc = self.documents.get(resolved) or Document.load(file)
        except OSError as err:
            shown = relative_name(file, self.root)
            if isinstance(err, FileNotFoundError):
                reason = f"no such file {shown}"
            else:
                reason = f"cannot read {shown}: {err.strerror or err}"
            return Module(
                kind="file",
                text=text,
                span=span,
                file=file,
                problems=(f"{text}: {reason}",),
                unread=reason,
            )
        except NixgenError as err:
            reason = err.message
            named = getattr(err, "file", None)
            if named is not None:
                reason = reason.replace(str(named), relative_name(Path(named), self.root), 1)
            return Module(
                kind="file",
                text=text,
                span=span,
                file=file,
                problems=(f"{text}: {reason}",),
                unread=reason,
            )
        self.documents[resolved] = module_doc
        module = self.module_file(module_doc, module_doc.expression(), visiting | {resolved})
        return attrs.evolve(module, text=text, span=span)

    def module_file(self, doc: Document, expression: Node, visiting: frozenset[Path]) -> Module:
        target = doc.resolve(expression)
        arguments = _formals(doc, target) if target.type == "function_expression" else ()
        aset = doc.attrset_of(target, through=())
        span = doc.span(expression)
        if aset is None:
            reason = f"the module is `{_short(doc.text_of(target))}`, not an attribute set literal"
            return Module(
                kind="file",
                text=doc.text_of(expression),
                span=span,
                file=doc.path,
                arguments=arguments,
                problems=(f"{self._place(span)}: {reason}",),
                unread=f"{self._place(span)}: {reason}",
            )
        settings, imports, problems = self._module_body(doc, aset, (), visiting)
        return Module(
            kind="file",
            text=doc.text_of(expression),
            span=span,
            file=doc.path,
            locator=(),
            settings=settings,
            imports=imports,
            arguments=arguments,
            problems=problems,
        )

    def _module_body(
        self,
        doc: Document,
        aset: Node,
        locator: tuple[Step, ...] | None,
        visiting: frozenset[Path],
    ) -> tuple[tuple[Setting, ...], tuple[Module, ...], tuple[str, ...]]:
        problems: list[str] = []
        imports: list[Module] = []
        bindings = list(doc.iter_bindings(aset))
        tops = {b.written[0] for b in bindings if b.written}
        full_form = "config" in tops or "options" in tops
        settings: list[Setting] = []
        for b in bindings:
            top = b.written[0] if b.written else ""
            if top == "imports" and len(b.written) == 1:
                value = doc.binding_value(b)
                if value is None:
                    problems.append("`imports` is inherited from a scope nixgen cannot read")
                    imports.append(_unread_imports(doc, b.node, "inherited from another scope"))
                    continue
                resolved = doc.resolve(value)
                if resolved.type != "list_expression":
                    problems.append(f"`imports` is `{_short(doc.text_of(value))}`, not a list")
                    imports.append(_unread_imports(doc, b.node, "not a list nixgen can read"))
                    continue
                for element in doc.list_elements(resolved):
                    imports.append(self._module(doc, element, None, visiting))
                continue
            if top in _MODULE_META or (full_form and top != "config"):
                continue
            if full_form:
                settings.extend(
                    self._flatten(doc, b, 1, None if locator is None else (*locator, "config"))
                )
            else:
                settings.extend(self._flatten(doc, b, 0, locator))
        for s in settings:
            if s.key.startswith("${") or "${" in s.key:
                problems.append(f"{s.binding}: `{s.key}` has a computed attribute name")
        return tuple(settings), tuple(imports), tuple(problems)

    def _flatten(
        self, doc: Document, b: Binding, drop: int, locator: tuple[Step, ...] | None
    ) -> list[Setting]:
        path = b.path[drop:]
        if b.inherited:
            value_node = b.name if b.name is not None else b.node
            return [
                Setting(
                    key=_key(path) if path else "",
                    path=path,
                    value=Nix(_inherit_expression(doc, b)),
                    span=doc.span(value_node),
                    binding=doc.span(b.node),
                    locator=locator,
                )
            ]
        value = b.value
        assert value is not None
        inner = unwrap(value)
        if inner.type == "attrset_expression" and not b.dynamic:
            # Nested sets are flattened: `microvm = { mem = 1; }` is `microvm.mem`.
            out: list[Setting] = []
            for sub in doc.iter_bindings(inner, b.path):
                out.extend(self._flatten(doc, sub, drop, locator))
            if out:
                return out
        if not path:
            return [
                Setting(
                    key="config",
                    path=(),
                    value=doc.value(value),
                    span=doc.span(value),
                    binding=doc.span(b.node),
                    locator=locator,
                )
            ]
        return [
            Setting(
                key=_key(path) if not b.dynamic else ".".join(path),
                path=path,
                value=doc.value(value),
                span=doc.span(value),
                binding=doc.span(b.node),
                locator=locator,
            )
        ]

    # ------------------------------------------------------------------ reporting

    def _unreadable(
        self,
        name: str | None,
        reason: str,
        node: Node,
        binding: Node | None = None,
        written: str | None = None,
    ) -> None:
        """``binding``: the binding that computes it (``written``: how to show it), named
        first in the reason as ``flake.nix:16: nixosConfigurations = lib.genAttrs …: why``."""
        binding_span = None
        if binding is not None:
            if written is None:
                written = _short(self.doc.text_of(binding).rstrip().rstrip(";"), 70)
            binding_span = self.doc.span(binding)
        self.unreadable.append(
            Unreadable(
                name=name,
                why=reason,
                span=self.doc.span(node),
                written=written,
                binding=binding_span,
                root=self.root,
            )
        )


# --------------------------------------------------------------------------- helpers


def place(span: Span, root: Path | None) -> str:
    """``vms/web.nix:12``: a span's file relative to the flake folder ``root`` (absolute
    only outside it), and its line."""
    if span.file is None:
        return f"<text>:{span.line}"
    return f"{relative_name(span.file, root)}:{span.line}"


def relative_name(file: Path, root: Path | None) -> str:
    """``file`` relative to ``root`` (absolute when outside it, or without a root)."""
    if root is None:
        return str(file)
    try:
        return _resolved(file).relative_to(_resolved(root)).as_posix()
    except ValueError:
        return str(file)


# Modules of the flake's inputs (nixpkgs', microvm.nix's): libraries, not the guest's own.
_LIBRARY = re.compile(r"\bnixosModules\.|modulesPath|\$\{[\w.]*nixpkgs\}|<nixpkgs")


def _library_module(text: str) -> bool:
    compact = _compact(text)
    if compact.startswith(("self.", "inputs.self.")):
        return False
    return _LIBRARY.search(compact) is not None


def _unread_reason(doc: Document, target: Node, kind: ModuleKind) -> str:
    if kind == "reference":
        return f"`{_short(doc.text_of(target))}` is not a module nixgen can follow"
    applied = application(target)
    if applied is not None:
        function, arguments = applied
        if doc.callee_name(function) == "import":
            return (
                f"made by `import {_short(doc.text_of(arguments[0]))}` with arguments, "
                "a function nixgen does not call"
            )
        return f"the result of `{_short(doc.text_of(function))} …`, which nixgen does not run"
    return "an expression nixgen does not evaluate"


def _unread_imports(doc: Document, binding: Node, why: str) -> Module:
    return Module(
        kind="opaque",
        text=_short(doc.text_of(binding)),
        span=doc.span(binding),
        file=doc.path,
        unread=f"`imports` is {why}",
    )


@functools.lru_cache(maxsize=4096)
def _key(path: tuple[str, ...]) -> str:
    # The same few option paths come up for every guest.
    return attr_path(path)


def _strip_scopes(doc: Document, node: Node) -> Node:
    """Go through ``let … in``/``with``/``assert`` to the expression they return."""
    for _ in range(64):
        node = doc.resolve(node)
        if node.type in ("let_expression", "with_expression", "assert_expression"):
            body = node.child_by_field_name("body")
            if body is None:
                break
            node = body
            continue
        break
    return node


def _concatenation(doc: Document, node: Node) -> list[Node]:
    node = unwrap(node)
    if node.type == "binary_expression":
        operator = node.child_by_field_name("operator")
        left = node.child_by_field_name("left")
        right = node.child_by_field_name("right")
        if operator is not None and operator.type == "++" and left and right:
            return _concatenation(doc, left) + _concatenation(doc, right)
    return [node]


def _formals(doc: Document, function: Node) -> tuple[str, ...]:
    formals = function.child_by_field_name("formals")
    if formals is None:
        universal = function.child_by_field_name("universal")
        return () if universal is None else (doc.text_of(universal),)
    names: list[str] = []
    for formal in formals.children_by_field_name("formal"):
        ident = formal.child_by_field_name("name")
        if ident is not None:
            names.append(doc.text_of(ident))
    if formals.child_by_field_name("ellipses") is not None:
        names.append("...")
    return tuple(names)


def _inherit_expression(doc: Document, b: Binding) -> str:
    name = b.written[-1]
    if b.node.type == "inherit":
        return name
    source = b.node.child_by_field_name("expression")
    text = doc.text_of(source) if source is not None else "null"
    if source is not None and unwrap(source).type in ("variable_expression", "select_expression"):
        return f"{text}.{name}"
    return f"({text}).{name}"


def _computed_reason(doc: Document, node: Node, what: str) -> str:
    node = unwrap(node)
    shown = _short(doc.text_of(node))
    applied = application(node)
    if applied is not None:
        callee = doc.callee_name(applied[0])
        if callee == "import":
            return (
                f"{what} is imported from another file; nixgen does not follow "
                "`import` with arguments"
            )
        if callee in _COMPUTING:
            return (
                f"{what} is computed by `{_COMPUTING[callee]}`; the names are only "
                "known after evaluation"
            )
        return f"{what} is the result of a function call, which nixgen does not run"
    if node.type == "binary_expression":
        return f"{what} is computed"
    if node.type in ("variable_expression", "select_expression"):
        return f"{what} refers to `{shown}`, which is not defined literally in this file"
    return f"{what} is not something nixgen can read statically"


def _inside(node: Node, outer: Node) -> bool:
    return outer.start_byte <= node.start_byte and node.end_byte <= outer.end_byte


def _compact(text: str) -> str:
    """A module reference without blanks or parentheses: ``microvm.nixosModules.host``."""
    text = "".join(text.split())
    while text.startswith("(") and text.endswith(")"):
        text = text[1:-1]
    return text


def _import_path(doc: Document, node: Node) -> PurePosixPath | None:
    """The path of ``import ./x.nix`` or ``import ./x.nix { … }`` (None: something else)."""
    applied = application(unwrap(node))
    if applied is None or doc.callee_name(applied[0]) != "import":
        return None
    arguments = applied[1]
    literal = doc.literal(unwrap(arguments[0]))
    return literal if isinstance(literal, PurePosixPath) else None


def _sets_host_options(module: Module) -> bool:
    return any(is_host_option(s.path) for m in module.walk() for s in m.settings)


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------- reading again


def reread_guests(
    found: FlakeGuests,
    old: Document,
    new: Document,
    *,
    changed: Path | None = None,
    documents: Mapping[Path, Document] | None = None,
) -> FlakeGuests | None:
    """``found`` (read from the flake ``old``) brought up to date after one edit, reading
    again only the guests the edit can change; None when that cannot be told without
    reading the whole flake (the caller then calls :func:`read_guests`).

    ``new`` is the flake after the edit.  ``changed`` names the module file the edit
    changed (its new text in ``documents``); without it the edit is in the flake
    itself, and must lie inside one guest's own binding: that guest is read again and
    the places of the guests after it move by what the edit added.  Flakes with hosts
    or notes are always read whole (what they share is not local to one guest).
    """
    if found.hosts or found.notes:
        return None
    if changed is None:
        if old.path != new.path:
            return None
        return _reread_in_flake(found, old, new, documents)
    touched = [
        g
        for g in found.guests
        if any(
            m.file is not None and _resolved(m.file) == changed
            for t in unmoved(g).modules  # which files it reads: the same however it moved
            for m in t.walk()
        )
    ]
    if not touched or old.source != new.source:
        return None
    reader = _single_reader(new, documents)
    fresh: dict[str, DeclaredGuest] = {}
    for guest in touched:
        again = _read_one(reader, new, guest, guest.span.start)
        if again is None:
            return None
        fresh[guest.name] = again
    return attrs.evolve(
        found,
        guests=tuple(fresh.get(g.name, g) for g in found.guests),
        documents={**found.documents, **reader.documents},
    )


def _reread_in_flake(
    found: FlakeGuests, old: Document, new: Document, documents: Mapping[Path, Document] | None
) -> FlakeGuests | None:
    if old.source == new.source:
        return found
    start, old_end, new_end = _changed_range(old.source, new.source)
    inside = [  # the cheap comparisons first: a flake may have thousands of guests
        g
        for g in found.guests
        if g.span.start <= start and old_end <= g.span.end and g.span.file == old.path
    ]
    if len(inside) != 1:
        return None
    (guest,) = inside
    delta = new_end - old_end
    lines = new.source.count(b"\n", start, new_end) - old.source.count(b"\n", start, old_end)
    # Something after the guest on its last line would move in column too: read all.
    line_end = old.source.find(b"\n", guest.span.end)
    line_end = len(old.source) if line_end == -1 else line_end
    if old.source[guest.span.end : line_end].strip():
        return None
    reader = _single_reader(new, documents)
    again = _read_one(reader, new, guest, guest.span.start)
    if again is None or again.span.end != guest.span.end + delta:
        return None
    moved = _Mover(old.path, old_end, delta, lines)
    shifted = bool(delta or lines)  # a change of the same length moves nothing
    guests = tuple(
        again if g is guest else (moved.guest(g) if shifted and g.span.start >= old_end else g)
        for g in found.guests
    )
    unreadable = (
        tuple(moved.unreadable(u) for u in found.unreadable) if shifted else found.unreadable
    )
    return FlakeGuests(
        guests=guests,
        unreadable=unreadable,
        notes=found.notes,
        documents={**found.documents, **reader.documents},
        hosts=found.hosts,
    )


@functools.lru_cache(maxsize=4096)
def _resolved(path: Path) -> Path:
    return path.resolve()


def _changed_range(old: bytes, new: bytes) -> tuple[int, int, int]:
    """The byte range an edit replaced: ``(start, old end, new end)``."""
    limit = min(len(old), len(new))
    start = _common_length(old, new, limit, forward=True)
    tail = _common_length(old, new, limit - start, forward=False)
    return start, len(old) - tail, len(new) - tail


def _common_length(a: bytes, b: bytes, limit: int, *, forward: bool) -> int:
    """How many bytes ``a`` and ``b`` share at their start (or end), at most ``limit``:
    whole blocks compared first (each a memcmp), then bytes."""
    block = 1 << 16
    done = 0
    while done < limit:
        size = min(block, limit - done)
        if forward:
            same = a[done : done + size] == b[done : done + size]
        else:
            same = (
                a[len(a) - done - size : len(a) - done] == b[len(b) - done - size : len(b) - done]
            )
        if not same:
            if size == 1:
                break
            block = max(1, size // 16)
            continue
        done += size
    return done


def _single_reader(doc: Document, documents: Mapping[Path, Document] | None) -> _Reader:
    reader = _Reader(doc, follow_files=True, documents=documents)
    reader.microvm_inputs = reader._microvm_inputs()
    return reader


def _read_one(
    reader: _Reader, doc: Document, guest: DeclaredGuest, at: int
) -> DeclaredGuest | None:
    """Guest ``guest`` read again from its binding at byte ``at`` of ``doc``; None when it
    is no longer a plain guest binding there (renamed, gone, a host now)."""
    node = doc.node_at(at, "binding")
    if node is None:
        return None
    attrpath = node.child_by_field_name("attrpath")
    value = node.child_by_field_name("expression")
    if attrpath is None or value is None:
        return None
    keys, dynamic = doc.attr_keys(attrpath)
    if dynamic or not keys or keys[-1] != guest.name:
        return None
    before = (len(reader.guests), len(reader.hosts), len(reader.unreadable))
    reader._guest(guest.name, value, node)
    if (len(reader.hosts), len(reader.unreadable)) != before[1:] or len(reader.guests) != before[
        0
    ] + 1:
        return None
    again = reader.guests[-1]
    return again if again.locator == guest.locator else None


@attrs.frozen
class _Mover:
    """Moves the places after an edit of ``file`` (at byte ``at``) by what it added."""

    file: Path | None
    at: int
    delta: int
    lines: int

    def span(self, span: Span) -> Span:
        if span.start < self.at or (span.file is not self.file and span.file != self.file):
            return span
        return Span(
            span.file,
            span.start + self.delta,
            span.end + self.delta,
            span.line + self.lines,
            span.column,
            span.end_line + self.lines,
        )

    def setting(self, s: Setting) -> Setting:
        if s.span.file is not self.file and s.span.file != self.file:
            return s
        return Setting(s.key, s.path, s.value, self.span(s.span), self.span(s.binding), s.locator)

    def module(self, m: Module) -> Module:
        if m.span.file is not self.file and m.span.file != self.file:
            return m  # in a module file: nothing in it moved
        return Module(
            kind=m.kind,
            text=m.text,
            span=self.span(m.span),
            file=m.file,
            locator=m.locator,
            settings=tuple([self.setting(s) for s in m.settings]),
            imports=tuple([self.module(i) for i in m.imports]),
            arguments=m.arguments,
            problems=m.problems,
            unread=m.unread,
        )

    def guest(self, g: DeclaredGuest) -> DeclaredGuest:
        """``g`` moved.  A guest whose places in the flake all lie inside its own binding
        moves as a whole: it is moved lazily (see :func:`_moved_lazily`); the others
        (modules bound elsewhere in the flake) are moved here, place by place."""
        same_file = g.span.file is self.file or g.span.file == self.file
        if same_file and g.span.start >= self.at:
            pending = _PENDING.get(g)
            if pending is not None:  # moved before, not looked into since
                base, delta, lines = pending
                return _moved_lazily(g, base, delta + self.delta, lines + self.lines, self)
            if _contained(g):
                return _moved_lazily(g, g, self.delta, self.lines, self)
        modules, definitions = self.parts(g)
        return DeclaredGuest(
            name=g.name,
            system=g.system,
            modules=modules,
            settings=g.settings,
            definitions=definitions,
            span=self.span(g.span),
            locator=g.locator,
            system_span=None if g.system_span is None else self.span(g.system_span),
            problems=g.problems,
        )

    def parts(self, g: DeclaredGuest) -> tuple[tuple[Module, ...], dict[str, tuple[Setting, ...]]]:
        """The modules and definitions of ``g``, moved."""
        modules = tuple(self.module(m) for m in g.modules)
        # The definitions in the order the reader makes them: module by module.
        definitions: dict[str, list[Setting]] = {}
        for top in modules:
            for sub in top.walk():
                for setting in sub.settings:
                    definitions.setdefault(setting.key, []).append(setting)
        return modules, {k: tuple(v) for k, v in definitions.items()}

    def unreadable(self, u: Unreadable) -> Unreadable:
        return attrs.evolve(
            u,
            span=None if u.span is None else self.span(u.span),
            binding=None if u.binding is None else self.span(u.binding),
        )


# --------------------------------------------------------------------------- moving lazily
#
# After an edit that changes the length of the text, every guest after it moves.
# Moving one means new places for each of its modules and settings: at 1,000
# guests, most of what an edit costs, for places nobody may read.  So a guest that
# moves as a whole gets new objects only for its name and binding; its modules and
# definitions are made from the guest it was moved from (the base, never itself a
# lazy one) when first asked for.  A guest moved again before that still refers to
# the same base, by the sum of the moves.

#: the guests moved lazily, each with its base and by how much it moved (bytes, lines)
_PENDING: ByIdentity[DeclaredGuest, tuple[DeclaredGuest, int, int]] = ByIdentity()
_MATERIALISING = threading.RLock()  # re-entered only if a base were itself lazy


def _moved_lazily(
    g: DeclaredGuest, base: DeclaredGuest, delta: int, lines: int, mover: _Mover
) -> DeclaredGuest:
    """``g`` moved by ``mover``: ``base`` moved by ``delta`` bytes and ``lines`` lines
    in all, its modules and definitions to be made on first use."""
    moved = object.__new__(DeclaredGuest)
    put = object.__setattr__.__get__(moved)
    # every field but modules and definitions (a test compares with a fresh read)
    put("name", g.name)
    put("system", g.system)
    put("settings", g.settings)
    put("span", mover.span(g.span))
    put("locator", g.locator)
    put("system_span", None if g.system_span is None else mover.span(g.system_span))
    put("problems", g.problems)
    _PENDING.put(moved, (base, delta, lines))
    return moved


def _materialise(guest: DeclaredGuest) -> None:
    """Give a lazily moved guest its modules and definitions (nothing for another)."""
    with _MATERIALISING:
        pending = _PENDING.get(guest)
        if pending is None:  # not a lazy one, or made already
            return
        base, delta, lines = pending
        # All of the base's places in its file are inside its binding: all move.
        modules, definitions = _Mover(base.span.file, 0, delta, lines).parts(base)
        object.__setattr__(guest, "modules", modules)
        object.__setattr__(guest, "definitions", definitions)
        _PENDING.pop(guest)


def _contained(g: DeclaredGuest) -> bool:
    """Whether every place of the modules of ``g`` in the file it is declared in lies
    inside its binding (no module of it is bound elsewhere in that file): then an edit
    before it moves all of them alike."""
    file, start, end = g.span.file, g.span.start, g.span.end

    def inside(s: Span) -> bool:
        if s.file is not file and s.file != file:
            return True  # another file: an edit of this one does not move it
        return start <= s.start and s.end <= end

    # (``system_span`` may be elsewhere, `inherit system;`: a moved guest's is moved at once)
    return all(
        inside(m.span) and all(inside(s.span) and inside(s.binding) for s in m.settings)
        for top in g.modules
        for m in top.walk()
    )


def unmoved(guest: DeclaredGuest) -> DeclaredGuest:
    """``guest`` as read before edits of its file moved it: the same modules and
    settings, and the same places in every other file (its module files); ``guest``
    itself when it was read so, or its modules have been looked at since.

    For what does not depend on places in the flake (the module files a guest reads,
    the settings it reads from them): worked out once for the guest read, it holds for
    the guest however often it moves, and asking does not make its moved modules."""
    pending = _PENDING.get(guest)
    return guest if pending is None else pending[0]
