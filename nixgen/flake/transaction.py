"""One edit of a flake (:class:`Edit`): option changes placed where they are written.

An edit works on copies of the documents; :class:`~nixgen.flake.FlakeFile`
checks the result and takes it or drops it whole.  Adding, removing and
renaming guests are in :mod:`nixgen.flake.guests`; keeping nixgen.toml in
step is :mod:`nixgen.flake.sync`.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from nixgen.errors import OptionError, Problem, ValidationError, keyed
from nixgen.flake.errors import FlakeEditError
from nixgen.flake.state import (
    Files,
    GuestState,
    by_module,
    common_length,
    configurations,
    flatten_value,
    guest_locator,
    guest_states,
    key_path,
    read_files,
    read_value,
    refuse_missing,
    related_settings,
    resolved,
    short,
    short_span,
    show,
    where,
)
from nixgen.model.memo import ByIdentity
from nixgen.nix import edit, outputs
from nixgen.nix.emit import attr_path, to_nix
from nixgen.nix.errors import NixPathError, NixSyntaxError
from nixgen.nix.parse import Document, Span
from nixgen.nix.read import (
    PLAIN_PRIORITY,
    DeclaredGuest,
    FlakeGuests,
    Module,
    Setting,
    decide,
    priority,
    relative_name,
    unmoved,
)
from nixgen.render import option_module
from nixgen.settings import (
    HOSTNAME,
    SYSTEM,
    UNSET,
    check_path,
    set_option,
    unset_option,
)


class Edit:
    """The edits of one call: applied to copies, checked, then taken or dropped whole."""

    def __init__(
        self,
        files: Files,
        original: Mapping[Path, bytes | None],
        found: FlakeGuests | None = None,
        states: dict[str, GuestState] | None = None,
    ) -> None:
        """``found`` and ``states``: what reading ``files`` gave (the FlakeFile has it),
        so that an edit starts without reading the flake again."""
        self.files = files
        self.known = original
        self.original: dict[Path, bytes | None] = {}
        self.notes: list[str] = []
        self.requested: dict[str, dict[str, object]] = {}
        self.old_toml = files.toml
        self.renamed: dict[str, str] = {}  # new name → old name
        self.gone: list[str] = []  # guests removed or renamed: no host may name them
        # the text of each file when this edit began (earlier edits not saved yet included)
        self.start = {path: doc.source for path, doc in files.docs.items()}
        self._read_from: tuple[dict[Path, Document], frozenset[Path]] | None = None
        if found is None or states is None:
            self.reread()
        else:
            self._take(found, states)

    def reread(self) -> None:
        """Read the guests again, when a document changed since they were last read."""
        if self._read_from is not None:
            docs, removed = self._read_from
            same = removed == self.files.removed and docs.keys() == self.files.docs.keys()
            if same and all(self.files.docs[p] is d for p, d in docs.items()):
                return
        earlier = self._read_from[0] if self._read_from is not None else None
        found = read_files(self.files, self.found if earlier is not None else None, earlier)
        self._take(
            found,
            guest_states(found, self.states if earlier is not None else None, root=self.files.root),
        )

    def _take(self, found: FlakeGuests, states: dict[str, GuestState]) -> None:
        for path, doc in found.documents.items():
            if path not in self.files.docs and path not in self.files.removed:
                self.files.docs[path] = doc
                if path not in self.known:
                    self.original[path] = doc.source
        self.found = found
        self.states = states
        self._read_from = (dict(self.files.docs), frozenset(self.files.removed))

    def state(self, name: str) -> GuestState:
        state = self.states.get(name)
        if state is None:
            refuse_missing(self.found, name, self.files)
        _refuse_broken_modules(state, self.files.root)
        return state

    def doc(self, path: Path | None) -> Document:
        key = self.files.flake if path is None else resolved(path)
        doc = self.files.docs.get(key)
        if doc is None:
            doc = Document.load(key)
            self.files.docs[key] = doc
            if key not in self.known:
                self.original[key] = doc.source
        return doc

    def put(self, doc: Document) -> None:
        assert doc.path is not None
        self.files.docs[resolved(doc.path)] = doc

    @property
    def flake_doc(self) -> Document:
        return self.doc(None)

    def request(self, name: str, changes: Mapping[str, object]) -> None:
        if self.files.toml is None:
            return
        toml = self.files.toml
        vm = toml.guest(name)
        for key, value in changes.items():
            if key == HOSTNAME:
                raise OptionError(
                    "networking.hostName is the guest's name",
                    hint="rename the guest instead (`nixgen rename OLD NEW`)",
                )
            if value is UNSET:
                try:
                    vm = unset_option(vm, key)
                except OptionError:
                    continue  # not in nixgen.toml (a hand edit of the flake): nothing to do
            else:
                vm = set_option(vm, key, value)
        self.files.toml = toml.with_guest(vm)
        self.requested.setdefault(name, {}).update(changes)

    @functools.cached_property
    def owners(self) -> dict[tuple[Path | None, int], set[str]]:
        """The configurations that read each setting written outside their own binding
        (in a module file, a let-bound module, another configuration's binding).

        A setting written inside one configuration's own binding belongs to it, and is
        shared only with those that reach it from outside, which are in this map: so
        only those settings are listed, not every setting of every guest.
        """
        owners: dict[tuple[Path | None, int], set[str]] = {}
        for config in configurations(self.found):
            for place in _read_from_outside(config):
                owners.setdefault(place, set()).add(config.name)
        return owners

    @functools.cached_property
    def file_owners(self) -> dict[Path, set[str]]:
        owners: dict[Path, set[str]] = {}
        for guest in configurations(self.found):
            for top in unmoved(guest).modules:  # which files it reads: the same however it moved
                for m in top.walk():
                    if m.kind == "file" and m.file is not None:
                        owners.setdefault(resolved(m.file), set()).add(guest.name)
        return owners

    def fresh_sharing(self) -> None:
        self.__dict__.pop("owners", None)
        self.__dict__.pop("file_owners", None)

    def shared_with(self, name: str, setting: Setting) -> set[str]:
        readers = set(self.owners.get(where(setting), ()))
        if readers:  # read from outside: the configuration it is written in reads it too
            readers.update(
                c.name for c in configurations(self.found) if _within(setting.binding, c.span)
            )
        return readers - {name}

    def module_shared(self, name: str, module: Module) -> bool:
        if (
            module.kind == "file"
            and module.file is not None
            and self.file_owners.get(resolved(module.file), set()) - {name}
        ):
            return True
        return any(self.shared_with(name, s) for s in module.settings)

    def put_option(self, name: str, path: tuple[str, ...], value: object) -> None:
        state = self.state(name)
        key = attr_path(path)
        text = to_nix(value)
        if path == (SYSTEM,):
            self.edit_flake(lambda d: edit.set_value(d, guest_locator(state), ("system",), text))
            self.verify(name, key, text)
            return
        if path == tuple(HOSTNAME.split(".")) and value != name:
            raise OptionError(
                "networking.hostName is the guest's name",
                hint="rename the guest instead (`nixgen rename OLD NEW`)",
            )
        check_path(path)
        related = related_settings(state, path)
        self.refuse_blocked(state, path, related)
        inside = [s for s in related if len(s.path) >= len(path)]
        # Definitions a higher priority overrides already stay as they are: the new
        # value replaces the winning one only.
        losers = self.overridden(name, path, inside)
        inside = [s for s in inside if s not in losers]
        shared = [s for s in inside if self.shared_with(name, s)]
        own = [s for s in inside if not self.shared_with(name, s)]
        for s in shared:
            # the NixOS way: a plain definition in the guest's own module overrides it
            if s.path != path or not _below_plain(s):
                self.refuse_shared(name, s, "set")
        modules = self.modules_of(state)
        groups = by_module(own, modules)
        if groups:
            exact = [g for g in groups if any(s.path == path for s in groups[g][1])]
            target = exact[0] if exact else next(iter(groups))
            for group, (module, _) in groups.items():
                if group == target:
                    self.in_module(module, lambda d, t, p: edit.set_value(d, t, p, text), path)
                else:
                    self.in_module(module, lambda d, t, p: edit.unset(d, t, p), path)
        else:
            empty = [s for s in related if len(s.path) < len(path) and s.value == {}]
            home = modules.get(where(empty[0])) if empty else self.home(state, path)
            if home is None:
                self.new_module(state, path, text)
            else:
                self.in_module(home, lambda d, t, p: edit.set_value(d, t, p, text), path)
        self.verify(name, key, text)

    def drop_option(self, name: str, path: tuple[str, ...], *, missing_ok: bool = False) -> None:
        state = self.state(name)
        key = attr_path(path)
        if path == (SYSTEM,):
            if state.guest.system is None:
                if missing_ok:
                    return
                raise OptionError(f"guest {name!r} does not set system")
            self.edit_flake(lambda d: edit.unset(d, guest_locator(state), ("system",)))
            return
        if path[: len(HOSTNAME.split("."))] == tuple(HOSTNAME.split(".")) or path == (
            "networking",
        ):
            raise OptionError(
                "networking.hostName is the guest's name and cannot be removed",
                hint="rename the guest instead (`nixgen rename OLD NEW`)",
            )
        check_path(path)
        related = related_settings(state, path)
        self.refuse_blocked(state, path, related)
        inside = [s for s in related if len(s.path) >= len(path)]
        if not inside:
            if missing_ok:
                return
            close = difflib.get_close_matches(key, list(state.guest.definitions), n=1, cutoff=0.8)
            raise OptionError(
                f"guest {name!r} does not set {key}",
                hint=f"did you mean {close[0]}?" if close else "see `nixgen show NAME`",
            )
        # Only the winning definitions go; the one they overrode applies again.
        exact = [s for s in inside if s.path == path]
        decision = decide(exact) if len(exact) > 1 else None
        if decision is not None and decision.losers:
            inside = [s for s in inside if s not in decision.losers]
            applies = decide(decision.losers)
            for d in applies.winners or decision.losers:
                self.notes.append(
                    f"{key} of {name!r}: {short(d.value)} "
                    f"({short_span(d.span, self.files.root)}) now applies"
                )
        own = []
        for s in inside:
            if self.shared_with(name, s):
                if not _below_plain(s):
                    self.refuse_shared(name, s, "remove")
                self.notes.append(
                    f"{key} of {name!r} still has the default written in a module other "
                    f"guests share ({short_span(s.span, self.files.root)})"
                )
            else:
                own.append(s)
        for module, _ in by_module(own, self.modules_of(state)).values():
            self.in_module(module, lambda d, t, p: edit.unset(d, t, p), path)
        self.reread()
        self.fresh_sharing()

    def verify(self, name: str, key: str, text: str) -> None:
        self.reread()
        self.fresh_sharing()
        expected = read_value(text)
        state = self.states.get(name)
        if key == SYSTEM:
            wanted: dict[str, object] = {key: expected}
            got: dict[str, object] = {key: state.guest.system if state else None}
        else:
            wanted = dict(flatten_value(key_path(key), expected))
            got = {k: state.settings.get(k, UNSET) if state else UNSET for k in wanted}
        for k, value in wanted.items():
            bad = state.unmodelled.get(k) if state else None
            if bad is not None and bad.hint is not None:
                raise ValidationError(
                    [
                        Problem(
                            path=f"{keyed('guests', name)}.{k}",
                            message=bad.reason,
                            hint=bad.hint,
                        )
                    ],
                    source=str(self.files.flake),
                )
            if got[k] != value:
                raise FlakeEditError(
                    f"after the edit, {k} of {name!r} reads as {show(got[k])}, not {show(value)}",
                    hint="another definition of the option decides its value; "
                    "edit the flake by hand",
                )

    def overridden(self, name: str, path: tuple[str, ...], inside: list[Setting]) -> list[Setting]:
        """The definitions of ``path`` that lose already, by the priorities written, and
        that a plain value written in place of the winning one overrides as well."""
        exact = [s for s in inside if s.path == path]
        if len(exact) < 2:
            return []
        decision = decide(exact)
        if not decision.losers:
            return []
        level = priority(decision.winners[0].value)
        strong = [d for d in decision.losers if (priority(d.value) or 0) <= PLAIN_PRIORITY]
        if level is not None and level < PLAIN_PRIORITY and strong:
            root = self.files.root
            winner = decision.winners[0]
            others = ", ".join(f"`{short(d.value)}` ({short_span(d.span, root)})" for d in strong)
            raise FlakeEditError(
                f"{short_span(winner.span, root)}: {attr_path(path)} of {name!r} is "
                f"`{short(winner.value)}`, which wins over {others}; nixgen writes a plain "
                "value, which would not win over those",
                hint=f"change the value inside `{short(winner.value)}` by hand, or remove "
                "the definitions it overrides first",
            )
        return list(decision.losers)

    def refuse_blocked(
        self, state: GuestState, path: tuple[str, ...], related: list[Setting]
    ) -> None:
        for s in related:
            if len(s.path) < len(path) and s.value != {}:
                raise FlakeEditError(
                    f"{short_span(s.span, self.files.root)}: {attr_path(path)} of {state.guest.name!r} is inside "
                    f"`{s.key} = {short(s.value)}`, which nixgen cannot look into",
                    hint=f"change {s.key} by hand, or set {s.key} as a whole",
                )

    def refuse_shared(self, name: str, s: Setting, verb: str) -> None:
        others = ", ".join(sorted(self.shared_with(name, s)))
        raise FlakeEditError(
            f"{short_span(s.span, self.files.root)}: {s.key} of {name!r} is written in a module that "
            f"{others} also use{'s' if ',' not in others else ''}; "
            f"nixgen will not {verb} it for them too",
            hint="edit that module by hand, or write it there as lib.mkDefault so each "
            "guest can override it",
        )

    def modules_of(self, state: GuestState) -> dict[tuple[Path | None, int], Module]:
        """The module each setting of a guest is written in, by where the setting is."""
        out: dict[tuple[Path | None, int], Module] = {}
        for top in state.guest.modules:
            for m in top.walk():
                for setting in m.settings:
                    out[where(setting)] = m
        return out

    def in_module(
        self,
        module: Module,
        change: Callable[[Document, edit.Target, tuple[str, ...]], Document],
        path: tuple[str, ...],
    ) -> None:
        """Edit one module: by its locator, or (in `imports`, a `++` of lists) by its place."""
        doc = self.doc(module.file)
        locator = module.settings[0].locator if module.settings else module.locator
        if locator is not None:
            self.put(change(doc, locator, path))
            return
        aset = outputs.attrset_at(doc, module.span)
        if aset is None:
            raise FlakeEditError(
                f"{short_span(module.span, self.files.root)}: nixgen cannot find the module `{short(module.text)}`",
                hint="edit it by hand",
            )
        tops = {b.written[0] for b in doc.iter_bindings(aset) if b.written}
        prefix: tuple[str, ...] = ("config",) if {"config", "options"} & tops else ()
        self.put(change(doc, aset, prefix + path))

    def home(self, state: GuestState, path: tuple[str, ...]) -> Module | None:
        """The guest's own module that a new option goes to: closest neighbours first."""
        best: tuple[tuple[int, int, int], Module] | None = None
        index = 0
        for top in state.guest.modules:
            for m in top.walk():
                index += 1
                if m.kind not in ("inline", "file") or (m.locator is None and not m.settings):
                    continue
                if self.module_shared(state.guest.name, m):
                    continue
                score = max((common_length(path, s.path) for s in m.settings), default=0)
                host = any(s.key == HOSTNAME for s in m.settings)
                rank = (score, int(host), -index)
                if best is None or rank > best[0]:
                    best = (rank, m)
        return None if best is None else best[1]

    def new_module(self, state: GuestState, path: tuple[str, ...], text: str) -> None:
        """No module of the guest's own to write to: add ``{ path = value; }`` to its modules."""
        module = option_module(path, text)
        locator = (*guest_locator(state), "modules")
        try:
            self.edit_flake(lambda d: edit.insert_element(d, locator, module))
        except NixPathError:
            raise FlakeEditError(
                f"guest {state.guest.name!r} has no module of its own to write "
                f"{attr_path(path)} to, and its `modules` is not a list nixgen can add to",
                hint="add a module `{ }` to the guest's modules by hand",
            ) from None
        self.notes.append(
            f"{state.guest.name!r} had no module of its own; nixgen added one to its modules"
        )

    def edit_file(self, file: Path | None, change: Any) -> None:
        doc = self.doc(file)
        self.put(change(doc))

    def edit_flake(self, change: Any) -> None:
        self.edit_file(None, change)


def progress(old: Document, new: Document) -> Document:
    if new.source == old.source:
        raise FlakeEditError("internal: an edit of flake.nix changed nothing; nothing was written")
    return new


def _below_plain(setting: Setting) -> bool:
    """``lib.mkDefault …``, ``lib.mkOptionDefault …``: any plain definition overrides it."""
    level = priority(setting.value)
    return level is not None and level > PLAIN_PRIORITY


# What each configuration read reads from outside its binding: a guest that an edit
# did not touch (read again or moved) is the same object, or one moved from it, and
# is not looked at again.
_OUTSIDE: ByIdentity[DeclaredGuest, tuple[tuple[Path | None, int], ...]] = ByIdentity()


def _read_from_outside(config: DeclaredGuest) -> tuple[tuple[Path | None, int], ...]:
    """Where the settings are that ``config`` reads from outside its own binding."""
    # A guest moved whole reads from outside what it read before: settings in other
    # files, which its moves did not move.
    read = unmoved(config)
    known = _OUTSIDE.get(read)
    if known is None:
        known = _outside_places(read)
        _OUTSIDE.put(read, known)
    return known


def _outside_places(config: DeclaredGuest) -> tuple[tuple[Path | None, int], ...]:
    return tuple(
        where(s)
        for defs in config.definitions.values()
        for s in defs
        if not _within(s.binding, config.span)
    )


def _within(inner: Span, outer: Span) -> bool:
    same_file = inner.file is outer.file or inner.file == outer.file
    return same_file and outer.start <= inner.start and inner.end <= outer.end


def _refuse_broken_modules(state: GuestState, root: Path) -> None:
    """A module file of the guest that does not parse stops the edit: the
    setting would otherwise land in another file, beside a broken one."""
    for top in state.guest.modules:
        for module in top.walk():
            if module.file is None or not module.problems or not module.file.is_file():
                continue
            try:
                Document.load(module.file)
            except NixSyntaxError as err:
                message = err.message
                if err.file is not None:  # named relative to the flake
                    message = message.replace(str(err.file), relative_name(Path(err.file), root), 1)
                raise FlakeEditError(
                    f"guest {state.guest.name!r} imports a module that nixgen cannot read, "
                    f"so nothing was changed: {message}",
                    hint="fix that file (or remove it from the guest's modules), then redo the edit",
                ) from None
