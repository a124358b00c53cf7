"""Existing flakes as models, edited in place: :class:`FlakeFile`.

::

    from nixgen import FlakeFile

    flake = FlakeFile.load("my-vms")          # a folder with flake.nix (or the file)
    flake.names()                             # ["web", "db"]
    flake.hosts()                             # hosts (they run guests): listed apart
    flake.unreadable                          # guests nixgen cannot read, with reasons
    web = flake["web"]                        # a MicroVM of web's literal settings
    flake.guest("web").set("microvm.mem", 1024)
    flake["web"] = web.evolve(vcpu=2)         # only the options that changed are written
    print(flake.diff())                       # unified diff of every file
    flake.save()                              # atomic, per file

Reading goes through :mod:`nixgen.nix.read` (nothing is evaluated) and
:mod:`nixgen.options` (flat settings ↔ :class:`~nixgen.model.MicroVM`).
Every edit is a byte-range edit of :mod:`nixgen.nix.edit` in the file where
the option is written, so comments, layout and every other binding stay as
they are.  Each edit is read back and validated with :mod:`nixgen.validate`
before it is accepted: an edit that introduces an error raises
:class:`~nixgen.errors.ValidationError` and leaves the FlakeFile (and every
file) as it was.  Nothing touches the disk before :meth:`FlakeFile.save`.

In a nixgen project (a ``nixgen.toml`` beside ``flake.nix``) every edit is
applied to ``nixgen.toml`` too, so the two never disagree; see
docs/existing-flakes.md for the rules, and for how the checksum headers of
generated files are kept honest.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import attrs
from tree_sitter import Node, Query, QueryCursor

from nixgen.errors import (
    FlakeEditError,
    NixgenError,
    NixPathError,
    OptionError,
    Problem,
    ProjectError,
    ValidationError,
    keyed,
)
from nixgen.gitutil import track
from nixgen.model import Flake, MicroVM, Nix
from nixgen.model.convert import option_values
from nixgen.network import plan_networks
from nixgen.nix import edit
from nixgen.nix.emit import attr_name, attr_path, parse_attr_path, to_nix
from nixgen.nix.parse import (
    BINDING_TYPES,
    Document,
    Span,
    Step,
    load_language,
    unwrap,
)
from nixgen.nix.read import (
    FlakeGuests,
    Guest,
    HostConfig,
    Module,
    Setting,
    Unreadable,
    read_guests,
    read_module,
)
from nixgen.options import (
    HOSTNAME,
    SYSTEM,
    UNSET,
    Unmodelled,
    check_path,
    is_default_priority,
    model_from_settings,
    set_option,
    settings_of,
    unset_option,
)
from nixgen.project import toml_text
from nixgen.render import (
    GUESTS_DIR,
    SOURCE_NAME,
    atomic_write,
    generated_state,
    guest_module,
    render_files,
)
from nixgen.validate import check

__all__ = ["FlakeFile", "GuestView", "SaveResult"]

FLAKE_NAME = "flake.nix"
_CHECKSUM_LINE = re.compile(r"(\(nixgen checksum )([0-9a-f]{16})(\)\.?)")
_RUNNER_TAIL = ("config", "microvm", "declaredRunner")


@attrs.frozen
class SaveResult:
    """What :meth:`FlakeFile.save` did."""

    written: tuple[Path, ...]
    removed: tuple[Path, ...]


# --------------------------------------------------------------------------- views


@attrs.frozen
class _GuestState:
    guest: Guest
    settings: Mapping[str, object]
    vm: MicroVM
    unmodelled: Mapping[str, Unmodelled]


class GuestView:
    """One guest of a :class:`FlakeFile`, always showing its current (edited) state."""

    def __init__(self, flake: FlakeFile, name: str) -> None:
        self._flake = flake
        self._name = name

    def __repr__(self) -> str:
        return f"GuestView({self._name!r})"

    @property
    def _state(self) -> _GuestState:
        return self._flake._state(self._name)

    @property
    def name(self) -> str:
        return self._name

    @property
    def vm(self) -> MicroVM:
        """The model of the guest's literal settings (see :attr:`unmodelled` for the rest)."""
        return self._state.vm

    @property
    def system(self) -> object:
        """The ``system`` argument: a string, ``Nix(…)``, or None when not given."""
        return self._state.guest.system

    @property
    def settings(self) -> Mapping[str, object]:
        """Every option the guest sets, flat: ``{"microvm.mem": 1024, …}``.

        Literal values are Python values, anything else ``Nix(source)``.  An
        option defined in several modules is left out unless one definition
        wins by priority (a plain one over ``lib.mkDefault``); see
        :attr:`unmodelled`.
        """
        return self._state.settings

    @property
    def unmodelled(self) -> Mapping[str, Unmodelled]:
        """Settings the model cannot hold as written (expressions, wrong types, …), with why."""
        return self._state.unmodelled

    @property
    def definitions(self) -> Mapping[str, tuple[Setting, ...]]:
        """Every definition of every option, with where it is written."""
        return self._state.guest.definitions

    @property
    def modules(self) -> tuple[Module, ...]:
        return self._state.guest.modules

    @property
    def problems(self) -> tuple[str, ...]:
        return self._state.guest.problems

    @property
    def span(self) -> Span:
        """Where the guest is declared in flake.nix."""
        return self._state.guest.span

    def setting(self, key: str) -> Setting | None:
        """The one definition of ``key`` (None: not set, or set several times)."""
        return self._state.guest.setting(key)

    def set(self, key: str, value: object) -> None:
        """Set option ``key`` of this guest (see :meth:`FlakeFile.set`)."""
        self._flake.set(self._name, key, value)

    def unset(self, *keys: str) -> None:
        """Remove options of this guest (see :meth:`FlakeFile.unset`)."""
        self._flake.unset(self._name, *keys)


# --------------------------------------------------------------------------- the files


@attrs.define
class _Files:
    """The text of every file an edit may touch, as it stands (not yet saved)."""

    root: Path
    flake: Path
    docs: dict[Path, Document]
    created: set[Path] = attrs.field(factory=set)
    removed: set[Path] = attrs.field(factory=set)
    moved_from: dict[Path, Path] = attrs.field(factory=dict)
    toml: Flake | None = None
    #: guests renamed in nixgen.toml since it was read: new name -> name in the file
    toml_renamed: dict[str, str] = attrs.field(factory=dict)

    def copy(self) -> _Files:
        return _Files(
            root=self.root,
            flake=self.flake,
            docs=dict(self.docs),
            created=set(self.created),
            removed=set(self.removed),
            moved_from=dict(self.moved_from),
            toml=self.toml,
            toml_renamed=dict(self.toml_renamed),
        )


class FlakeFile:
    """A flake on disk, read statically, with its guests as models; edits are kept until saved.

    Use :meth:`load`.  ``root`` is the flake's folder, ``path`` its
    ``flake.nix``; ``project`` is True when a ``nixgen.toml`` sits beside it.
    """

    def __init__(self, files: _Files, original: dict[Path, bytes | None]) -> None:
        self._files = files
        self._original = original
        self._notes: list[str] = []
        self.warnings: list[Problem] = []
        self._project_error: str | None = None
        self._toml_source: str | None = None
        self._toml_loaded: Flake | None = None
        self._refresh()
        self._baseline = self._errors()
        self._warnings_before = _split(check(self.model()))[1]

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(cls, path: Path | str = ".") -> FlakeFile:
        """Read a flake: a folder holding ``flake.nix``, or the file itself.

        Raises :class:`~nixgen.errors.NixSyntaxError` (file:line:column) when
        flake.nix does not parse, ``FileNotFoundError`` when it is missing.
        """
        given = Path(path)
        flake = given / FLAKE_NAME if given.is_dir() else given
        flake = flake.resolve()
        if not flake.is_file():
            raise ProjectError(
                f"{flake}: no such file",
                hint="pass a folder holding flake.nix (--flake DIR), or the flake.nix itself",
            )
        doc = Document.load(flake)
        files = _Files(root=flake.parent, flake=flake, docs={flake: doc})
        original: dict[Path, bytes | None] = {flake: doc.source}
        source = flake.parent / SOURCE_NAME
        problem: str | None = None
        toml_text_now: str | None = None
        if source.is_file():
            from nixgen.model.convert import load_flake_file

            toml_text_now = source.read_text(encoding="utf-8")
            try:
                files.toml = load_flake_file(source)
            except ValidationError as err:
                problem = f"{source} is not valid, so nixgen cannot keep it in step:\n{err}"
        result = cls(files, original)
        result._toml_source = toml_text_now
        result._toml_loaded = files.toml
        if problem is not None:
            result._project_error = problem
        elif files.toml is not None:
            result._project_error = result._project_mismatch()
        return result

    # ------------------------------------------------------------------ reading

    @property
    def root(self) -> Path:
        return self._files.root

    @property
    def path(self) -> Path:
        return self._files.flake

    @property
    def project(self) -> bool:
        """Whether a ``nixgen.toml`` sits beside flake.nix (edits then change it too)."""
        return self._toml_source is not None

    @property
    def project_model(self) -> Flake | None:
        """The model of ``nixgen.toml`` as edited so far (None outside a project)."""
        return self._files.toml

    @property
    def unreadable(self) -> tuple[Unreadable, ...]:
        """Guests (or sets of guests) that cannot be read without evaluating, and why."""
        return self._found.unreadable

    @property
    def notes(self) -> tuple[str, ...]:
        """What reading noticed (parts of ``outputs`` that may define more guests) and
        what the last edit left for you to do."""
        return (*self._found.notes, *self._notes)

    @property
    def edit_notes(self) -> tuple[str, ...]:
        """What the last edit left for you to do (a runner package to add, a file left in place)."""
        return tuple(self._notes)

    def names(self) -> list[str]:
        """The guests that could be read, in the order the flake declares them."""
        return self._found.names()

    def guest(self, name: str) -> GuestView:
        """A view of one guest; :class:`FlakeEditError` names the known ones otherwise."""
        self._state(name)
        return GuestView(self, name)

    def guests(self) -> list[GuestView]:
        return [GuestView(self, n) for n in self.names()]

    def hosts(self) -> list[HostConfig]:
        """The hosts of the flake (machines that run guests), which are not guests.

        Each has its ``name``, ``kind`` (``"configuration"``: a
        ``nixosConfigurations.<name>``; ``"module"``: a ``nixosModules.<name>``
        only), ``span`` (where it is declared: file and line), ``reason``
        (how nixgen recognised it) and ``runs`` (the guests its
        ``microvm.vms`` names).  nixgen does not edit hosts: an edit naming
        one is refused.
        """
        return list(self._found.hosts)

    def __getitem__(self, name: str) -> MicroVM:
        return self._state(name).vm

    def __setitem__(self, name: str, vm: MicroVM) -> None:
        self.assign(name, vm)

    def __contains__(self, name: object) -> bool:
        return name in self._states

    def model(self) -> Flake:
        """The readable guests as a :class:`~nixgen.model.Flake` (inputs: the defaults)."""
        return Flake(guests=[self._states[n].vm for n in self.names()])

    def _state(self, name: str) -> _GuestState:
        state = self._states.get(name)
        if state is not None:
            return state
        _refuse_host(self._found, name, self._files)
        for item in self._found.unreadable:
            if item.name == name:
                raise FlakeEditError(
                    f"guest {name!r} cannot be read statically: {item.reason}",
                    hint="nixgen only reads and edits what is written literally in the flake",
                )
        known = ", ".join(self.names()) or "none"
        raise FlakeEditError(
            f"no guest {name!r} in {self._files.flake} (guests: {known})",
            hint="see `nixgen show` for the guests nixgen can read",
        )

    def _refresh(self) -> None:
        files = self._files
        found = _read(files)
        self._found = found
        self._states = _states(found)

    # ------------------------------------------------------------------ editing

    def set(self, name: str, key: str, value: object) -> None:
        """Set option ``key`` of guest ``name`` (``"microvm.mem"``, ``"services.nginx.enable"``).

        ``value`` is data (int, float, bool, None, str, lists, dicts, model
        objects such as ``Interface``) or ``Nix("expr")``.  The key ``system``
        is the ``system`` argument of ``nixosSystem``.  The value replaces the
        option where it is written (a dotted binding stays dotted); a new
        option goes next to its closest neighbours in the guest's own module.
        """
        self.update(name, {key: value})

    def unset(self, name: str, *keys: str) -> None:
        """Remove options of guest ``name`` (every binding that defines them)."""
        self.update(name, dict.fromkeys(keys, UNSET))

    def update(self, name: str, changes: Mapping[str, object]) -> None:
        """Several set (value) and unset (:data:`nixgen.options.UNSET`) at once, validated together."""
        paths = {key: _key_path(key) for key in changes}
        values = {key: (v if v is UNSET else _as_value(v)) for key, v in changes.items()}

        def run(tx: _Edit) -> None:
            for key, value in values.items():
                if value is UNSET:
                    tx.drop_option(name, paths[key])
                else:
                    tx.put_option(name, paths[key], value)
            tx.request(name, {attr_path(paths[k]): v for k, v in values.items()})

        self._transaction(run)

    def assign(self, name: str, vm: MicroVM) -> None:
        """Make guest ``name`` look like ``vm``: only the options that differ are written.

        Options the model cannot hold (:attr:`GuestView.unmodelled`) are left
        as written unless ``vm`` changes them.
        """
        if vm.name != name:
            raise FlakeEditError(
                f"the model is named {vm.name!r}, not {name!r}",
                hint=f"rename the guest first: flake.rename({name!r}, {vm.name!r})",
            )
        old = settings_of(self._state(name).vm)
        new = settings_of(vm)
        changes: dict[str, object] = {k: v for k, v in new.items() if old.get(k, UNSET) != v}
        changes.update({k: UNSET for k in old if k not in new})
        if not changes:
            return

        def run(tx: _Edit) -> None:
            for key, value in changes.items():
                path = _key_path(key)
                if value is UNSET:
                    tx.drop_option(name, path, missing_ok=True)
                else:
                    tx.put_option(name, path, value)
            tx.request(name, changes)

        self._transaction(run)

    def add(self, vm: MicroVM) -> None:
        """Add a guest, following the shape of the guests already there."""
        self._transaction(lambda tx: tx.add(vm))

    def remove(self, name: str) -> None:
        """Remove a guest, its runner package and (when nixgen generated it) its module file."""
        self._transaction(lambda tx: tx.remove(name))

    def rename(self, old: str, new: str) -> None:
        """Rename a guest: its nixosConfigurations name, host name, runner package, module file."""
        self._transaction(lambda tx: tx.rename(old, new), renamed={old: new})

    def _transaction(
        self, run: Callable[[_Edit], None], renamed: Mapping[str, str] | None = None
    ) -> None:
        if self._project_error is not None:
            raise FlakeEditError(self._project_error)
        tx = _Edit(self._files.copy(), self._original)
        run(tx)
        tx.sync_project()
        files = tx.files
        found = _read(files)
        _refuse_dangling(found, tx.gone, files)
        states = _states(found)
        model = Flake(guests=[states[n].vm for n in found.names()])
        errors, warnings = _split(check(model))
        known_warnings = {_norm(p, renamed or {}) for p in self._warnings_before}
        fresh_warnings = [p for p in warnings if _norm(p, {}) not in known_warnings]
        project_errors: list[Problem] = []
        if files.toml is not None:
            project_errors, _ = _split(check(files.toml))
        before = {_norm(p, renamed or {}) for p in self._baseline}
        new_errors = [p for p in [*errors, *project_errors] if _norm(p, {}) not in before]
        if new_errors:
            raise ValidationError(new_errors, source=str(files.flake), warnings=fresh_warnings)
        # Accepted: take the new state.
        self._files = files
        self._original.update(tx.original)
        self._notes = tx.notes
        self._found = found
        self._states = states
        self._baseline = errors + project_errors
        self._warnings_before = warnings
        #: warnings the last edit brought (those there before are not repeated)
        self.warnings = fresh_warnings

    def _errors(self) -> list[Problem]:
        errors, _ = _split(check(self.model()))
        if self._files.toml is not None:
            errors += _split(check(self._files.toml))[0]
        return errors

    def _project_mismatch(self) -> str | None:
        toml = self._files.toml
        if toml is None:
            return None
        in_toml = [g.name for g in toml.guests]
        in_flake = self.names()
        unreadable = list(self.unreadable)
        if sorted(in_toml) != sorted(in_flake) or unreadable:
            return (
                f"{SOURCE_NAME} and {FLAKE_NAME} do not declare the same guests "
                f"({SOURCE_NAME}: {', '.join(in_toml) or 'none'}; "
                f"{FLAKE_NAME}: {', '.join(in_flake) or 'none'}"
                + (", and some it cannot read" if unreadable else "")
                + "), so an edit would leave them out of step"
            )
        return None

    # ------------------------------------------------------------------ output

    def changes(self) -> dict[Path, tuple[str | None, str | None]]:
        """Every file whose text would change on :meth:`save`: ``{path: (old, new)}``."""
        out: dict[Path, tuple[str | None, str | None]] = {}
        files = self._files
        for path, doc in files.docs.items():
            old_bytes = self._original.get(path)
            old = old_bytes.decode("utf-8") if old_bytes is not None else None
            new = self._final_text(path, doc)
            if path in files.removed:
                continue
            if new != old:
                out[path] = (old, new)
        for path in files.removed:
            old_bytes = self._original.get(path)
            if old_bytes is not None:
                out[path] = (old_bytes.decode("utf-8"), None)
        if (
            files.toml is not None
            and self._toml_source is not None
            and files.toml != self._toml_loaded
        ):
            new_toml = toml_text(files.toml, old=self._toml_source, renamed=files.toml_renamed)
            if new_toml != self._toml_source:
                out[files.root / SOURCE_NAME] = (self._toml_source, new_toml)
        return dict(sorted(out.items(), key=lambda item: _file_order(files, item[0])))

    @property
    def dirty(self) -> bool:
        return bool(self.changes())

    def diff(self, *, context: int = 3) -> str:
        """A unified diff of every pending change, paths relative to the flake folder."""
        parts = []
        for path, (old, new) in self.changes().items():
            parts.append(edit.text_diff(old, new, self._relative(path), context=context))
        return "".join(parts)

    def _relative(self, path: Path) -> str:
        try:
            return path.relative_to(self._files.root).as_posix()
        except ValueError:
            return str(path)

    def _final_text(self, path: Path, doc: Document) -> str:
        """The text to write: a generated file that was pristine gets its checksum renewed."""
        text = doc.text
        before_path = self._files.moved_from.get(path, path)
        old_bytes = self._original.get(before_path)
        if old_bytes is None:
            return _rehash(text) if generated_state(text) != "foreign" else text
        old = old_bytes.decode("utf-8")
        if text != old and generated_state(old) == "pristine":
            return _rehash(text)
        return text

    def save(self) -> SaveResult:
        """Write every changed file atomically (module files first, flake.nix, then nixgen.toml).

        Refuses (writing nothing) when a file changed on disk since it was read.
        New and removed files are added to git's index inside a work tree,
        since flakes only see tracked files.
        """
        changes = self.changes()
        for path, (old, _) in changes.items():
            on_disk = path.read_text(encoding="utf-8") if path.exists() else None
            expected = old
            if expected is None and path in self._files.created:
                expected = None
            if on_disk != expected:
                raise FlakeEditError(
                    f"{path} changed on disk since nixgen read it; nothing was written",
                    hint="load the flake again and redo the edit",
                )
        written: list[Path] = []
        removed: list[Path] = []
        for path, (_, new) in changes.items():
            if new is None:
                continue
            atomic_write(path, new)
            written.append(path)
        for path, (_, new) in changes.items():
            if new is None:
                path.unlink(missing_ok=True)
                removed.append(path)
        track(self._files.root, [p for p in written if p in self._files.created], removed)
        # What is on disk now is the new baseline.
        for path in written:
            self._original[path] = path.read_bytes()
        for path in removed:
            self._original[path] = None
        if self._files.toml is not None and self._files.toml != self._toml_loaded:
            self._toml_source = toml_text(
                self._files.toml, old=self._toml_source, renamed=self._files.toml_renamed
            )
            self._files.toml_renamed.clear()
            self._toml_loaded = self._files.toml
        self._files.docs = {
            p: (Document.parse(self._original[p] or b"", p) if p in written else d)
            for p, d in self._files.docs.items()
            if p not in self._files.removed
        }
        self._files.created.clear()
        self._files.removed.clear()
        self._files.moved_from.clear()
        self._refresh()
        return SaveResult(tuple(written), tuple(removed))


# --------------------------------------------------------------------------- one transaction


class _Edit:
    """The edits of one call: applied to copies, checked, then taken or dropped whole."""

    def __init__(self, files: _Files, original: Mapping[Path, bytes | None]) -> None:
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
        self.reread()

    # ------------------------------------------------------------------ state

    def reread(self) -> None:
        found = _read(self.files)
        for path, doc in found.documents.items():
            if path not in self.files.docs and path not in self.files.removed:
                self.files.docs[path] = doc
                if path not in self.known:
                    self.original[path] = doc.source
        self.found = found
        self.states = _states(found)

    def state(self, name: str) -> _GuestState:
        state = self.states.get(name)
        if state is None:
            _refuse_host(self.found, name, self.files)
            for item in self.found.unreadable:
                if item.name == name:
                    raise FlakeEditError(
                        f"guest {name!r} cannot be read statically: {item.reason}",
                        hint="change it by hand; nixgen only edits what is written literally",
                    )
            known = ", ".join(self.found.names()) or "none"
            raise FlakeEditError(f"no guest {name!r} in {self.files.flake} (guests: {known})")
        return state

    def doc(self, path: Path | None) -> Document:
        key = self.files.flake if path is None else path.resolve()
        doc = self.files.docs.get(key)
        if doc is None:
            doc = Document.load(key)
            self.files.docs[key] = doc
            if key not in self.known:
                self.original[key] = doc.source
        return doc

    def put(self, doc: Document) -> None:
        assert doc.path is not None
        self.files.docs[doc.path.resolve()] = doc

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

    # ------------------------------------------------------------------ sharing

    @functools.cached_property
    def _owners(self) -> dict[tuple[Path | None, int], set[str]]:
        owners: dict[tuple[Path | None, int], set[str]] = {}
        for guest in _configurations(self.found):
            for defs in guest.definitions.values():
                for s in defs:
                    owners.setdefault(_where(s), set()).add(guest.name)
        return owners

    @functools.cached_property
    def _file_owners(self) -> dict[Path, set[str]]:
        owners: dict[Path, set[str]] = {}
        for guest in _configurations(self.found):
            for top in guest.modules:
                for m in top.walk():
                    if m.kind == "file" and m.file is not None:
                        owners.setdefault(m.file.resolve(), set()).add(guest.name)
        return owners

    def _fresh_sharing(self) -> None:
        self.__dict__.pop("_owners", None)
        self.__dict__.pop("_file_owners", None)

    def shared_with(self, name: str, setting: Setting) -> set[str]:
        return self._owners.get(_where(setting), set()) - {name}

    def module_shared(self, name: str, module: Module) -> bool:
        if (
            module.kind == "file"
            and module.file is not None
            and self._file_owners.get(module.file.resolve(), set()) - {name}
        ):
            return True
        return any(self.shared_with(name, s) for s in module.settings)

    # ------------------------------------------------------------------ set and unset

    def put_option(self, name: str, path: tuple[str, ...], value: object) -> None:
        state = self.state(name)
        key = attr_path(path)
        text = to_nix(value)
        if path == (SYSTEM,):
            self._edit_flake(lambda d: edit.set(d, _locator(state), ("system",), text))
            self._verify(name, key, text)
            return
        if path == tuple(HOSTNAME.split(".")) and value != name:
            raise OptionError(
                "networking.hostName is the guest's name",
                hint="rename the guest instead (`nixgen rename OLD NEW`)",
            )
        check_path(path)
        related = _related(state, path)
        self._refuse_blocked(state, path, related)
        inside = [s for s in related if len(s.path) >= len(path)]
        shared = [s for s in inside if self.shared_with(name, s)]
        own = [s for s in inside if not self.shared_with(name, s)]
        for s in shared:
            if s.path != path or not is_default_priority(s.value):
                self._refuse_shared(name, s, "set")
        modules = self._modules_of(state)
        groups = _by_module(own, modules)
        if groups:
            exact = [g for g in groups if any(s.path == path for s in groups[g][1])]
            target = exact[0] if exact else next(iter(groups))
            for group, (module, _) in groups.items():
                if group == target:
                    self._in_module(module, lambda d, t, p: edit.set(d, t, p, text), path)
                else:
                    self._in_module(module, lambda d, t, p: edit.unset(d, t, p), path)
        else:
            empty = [s for s in related if len(s.path) < len(path) and s.value == {}]
            home = modules.get(_where(empty[0])) if empty else self._home(state, path)
            if home is None:
                self._new_module(state, path, text)
            else:
                self._in_module(home, lambda d, t, p: edit.set(d, t, p, text), path)
        self._verify(name, key, text)

    def drop_option(self, name: str, path: tuple[str, ...], *, missing_ok: bool = False) -> None:
        state = self.state(name)
        key = attr_path(path)
        if path == (SYSTEM,):
            if state.guest.system is None:
                if missing_ok:
                    return
                raise OptionError(f"guest {name!r} does not set system")
            self._edit_flake(lambda d: edit.unset(d, _locator(state), ("system",)))
            return
        if path[: len(HOSTNAME.split("."))] == tuple(HOSTNAME.split(".")) or path == (
            "networking",
        ):
            raise OptionError(
                "networking.hostName is the guest's name and cannot be removed",
                hint="rename the guest instead (`nixgen rename OLD NEW`)",
            )
        check_path(path)
        related = _related(state, path)
        self._refuse_blocked(state, path, related)
        inside = [s for s in related if len(s.path) >= len(path)]
        if not inside:
            if missing_ok:
                return
            close = difflib.get_close_matches(key, list(state.guest.definitions), n=1, cutoff=0.8)
            raise OptionError(
                f"guest {name!r} does not set {key}",
                hint=f"did you mean {close[0]}?" if close else "see `nixgen show NAME`",
            )
        own = []
        for s in inside:
            if self.shared_with(name, s):
                if not is_default_priority(s.value):
                    self._refuse_shared(name, s, "remove")
                self.notes.append(
                    f"{key} of {name!r} still has the default written in a module other "
                    f"guests share ({_short_span(s.span)})"
                )
            else:
                own.append(s)
        for module, _ in _by_module(own, self._modules_of(state)).values():
            self._in_module(module, lambda d, t, p: edit.unset(d, t, p), path)
        self.reread()
        self._fresh_sharing()

    def _verify(self, name: str, key: str, text: str) -> None:
        self.reread()
        self._fresh_sharing()
        expected = _read_value(text)
        state = self.states.get(name)
        if key == SYSTEM:
            wanted: dict[str, object] = {key: expected}
            got: dict[str, object] = {key: state.guest.system if state else None}
        else:
            wanted = dict(_flatten(_key_path(key), expected))
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
                    f"after the edit, {k} of {name!r} reads as {_show(got[k])}, not {_show(value)}",
                    hint="another definition of the option decides its value; "
                    "edit the flake by hand",
                )

    def _refuse_blocked(
        self, state: _GuestState, path: tuple[str, ...], related: list[Setting]
    ) -> None:
        for s in related:
            if len(s.path) < len(path) and s.value != {}:
                raise FlakeEditError(
                    f"{_short_span(s.span)}: {attr_path(path)} of {state.guest.name!r} is inside "
                    f"`{s.key} = {_short(s.value)}`, which nixgen cannot look into",
                    hint=f"change {s.key} by hand, or set {s.key} as a whole",
                )

    def _refuse_shared(self, name: str, s: Setting, verb: str) -> None:
        others = ", ".join(sorted(self.shared_with(name, s)))
        raise FlakeEditError(
            f"{_short_span(s.span)}: {s.key} of {name!r} is written in a module that "
            f"{others} also use{'s' if ',' not in others else ''}; "
            f"nixgen will not {verb} it for them too",
            hint="edit that module by hand, or write it there as lib.mkDefault so each "
            "guest can override it",
        )

    def _modules_of(self, state: _GuestState) -> dict[tuple[Path | None, int], Module]:
        """The module each setting of a guest is written in, by where the setting is."""
        out: dict[tuple[Path | None, int], Module] = {}
        for top in state.guest.modules:
            for m in top.walk():
                for setting in m.settings:
                    out[_where(setting)] = m
        return out

    def _in_module(
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
        node = doc.tree.root_node.descendant_for_byte_range(module.span.start, module.span.end)
        aset = doc.attrset_of(node, through=()) if node is not None else None
        if aset is None:
            raise FlakeEditError(
                f"{_short_span(module.span)}: nixgen cannot find the module `{_short(module.text)}`",
                hint="edit it by hand",
            )
        tops = {b.written[0] for b in doc.iter_bindings(aset) if b.written}
        prefix: tuple[str, ...] = ("config",) if {"config", "options"} & tops else ()
        self.put(change(doc, aset, prefix + path))

    def _home(self, state: _GuestState, path: tuple[str, ...]) -> Module | None:
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
                score = max((_common(path, s.path) for s in m.settings), default=0)
                host = any(s.key == HOSTNAME for s in m.settings)
                rank = (score, int(host), -index)
                if best is None or rank > best[0]:
                    best = (rank, m)
        return None if best is None else best[1]

    def _new_module(self, state: _GuestState, path: tuple[str, ...], text: str) -> None:
        """No module of the guest's own to write to: add ``{ path = value; }`` to its modules."""
        module = "{ " + f"{attr_path(path)} = {text};" + " }"
        if "\n" in text:
            module = "{\n  " + f"{attr_path(path)} = {_indent(text, '  ')};" + "\n}"
        locator = (*_locator(state), "modules")
        try:
            self._edit_flake(lambda d: edit.insert_element(d, locator, module))
        except NixPathError:
            raise FlakeEditError(
                f"guest {state.guest.name!r} has no module of its own to write "
                f"{attr_path(path)} to, and its `modules` is not a list nixgen can add to",
                hint="add a module `{ }` to the guest's modules by hand",
            ) from None
        self.notes.append(
            f"{state.guest.name!r} had no module of its own; nixgen added one to its modules"
        )

    def _edit(self, file: Path | None, change: Any) -> None:
        doc = self.doc(file)
        self.put(change(doc))

    def _edit_flake(self, change: Any) -> None:
        self._edit(None, change)

    # ------------------------------------------------------------------ add

    def add(self, vm: MicroVM) -> None:
        name = vm.name
        self._refuse_taken(name)
        doc = self.flake_doc
        guests = list(self.found.guests)
        neighbour = _pick_neighbour(guests, vm)
        callee = "nixpkgs.lib.nixosSystem"
        system_line = f"system = {to_nix(vm.system)};"
        args: list[str] = []
        common = ["microvm.nixosModules.microvm"]
        layout_file: Path | None = None
        header = False
        if neighbour is not None:
            callee, system_line, args = self._neighbour_call(neighbour, vm)
            common = _common_modules(guests, neighbour)
            own = _own_module(neighbour)
            if (
                own is not None
                and own.kind == "file"
                and own.file is not None
                and own.file.stem == neighbour.name
            ):
                layout_file = own.file.resolve().parent / f"{name}.nix"
                header = generated_state(self.doc(own.file).text) != "foreign"
        if layout_file is not None:
            if layout_file.exists() or layout_file in self.files.docs:
                raise FlakeEditError(f"{layout_file} exists already; nixgen will not overwrite it")
            source = SOURCE_NAME if self.files.toml is not None else None
            text = guest_module(vm, source=source, inputs=any("inputs" in a for a in args))
            if not header:
                text = text.split("\n", 2)[2]
            self.files.docs[layout_file] = Document.parse(text, layout_file)
            self.files.created.add(layout_file)
            self.original[layout_file] = None
            module_text = to_nix(PurePosixPath(_relative(layout_file, self.files.root)))
        else:
            module_text = _inline_module(vm)
        lines = [f"{callee} {{", f"  {system_line}", *(f"  {a}" for a in args), "  modules = ["]
        lines += [f"    {_indent(m, '    ')}" for m in [*common, module_text]]
        lines += ["  ];", "}"]
        guest_text = "\n".join(lines)
        if neighbour is not None:
            node = _binding_node(doc, neighbour.span)
            container = _container(node)
            written = _written(doc, node)
            keys = (*written[:-1], name)
            self.put(
                edit.insert_binding(
                    doc, container, f"{attr_path(keys)} = {guest_text};", after=written
                )
            )
        else:
            self.put(
                edit.insert_binding(
                    doc,
                    ("outputs", "nixosConfigurations"),
                    f"{attr_name(name)} = {guest_text};",
                )
            )
        self._add_runner(vm, neighbour)
        if self.files.toml is not None:
            self.files.toml = self.files.toml.with_guest(vm)
        self.reread()
        self._fresh_sharing()
        state = self.states.get(name)
        if state is None:
            raise FlakeEditError(f"internal: the new guest {name!r} cannot be read back")

    def _neighbour_call(self, neighbour: Guest, vm: MicroVM) -> tuple[str, str, list[str]]:
        doc = self.flake_doc
        value = doc.resolve(doc.locate_node(_locator_of(neighbour)))
        function = (
            value.child_by_field_name("function") if value.type == "apply_expression" else None
        )
        callee = doc.text_of(function) if function is not None else "nixpkgs.lib.nixosSystem"
        args_set = doc.locate(_locator_of(neighbour)).container
        system_line = f"system = {to_nix(vm.system)};"
        others: list[str] = []
        for node in doc.bindings(args_set):
            text = doc.text_of(node)
            written = _written(doc, node)
            if written[:1] == ("system",):
                if neighbour.system == vm.system and "\n" not in text:
                    system_line = text
                continue
            if written[:1] == ("modules",) or "\n" in text:
                continue
            others.append(text)
        # Only what every guest passes alike (specialArgs = { inherit inputs; }, …).
        common = [a for a in others if all(a in self._call_texts(g) for g in self.found.guests)]
        return callee, system_line, common

    def _call_texts(self, guest: Guest) -> set[str]:
        doc = self.flake_doc
        try:
            args_set = doc.locate(_locator_of(guest)).container
        except NixgenError:
            return set()
        return {doc.text_of(n) for n in doc.bindings(args_set)}

    def _add_runner(self, vm: MicroVM, neighbour: Guest | None) -> None:
        doc = self.flake_doc
        alike = [g for g in self.found.guests if g.system == vm.system and g.name != vm.name]
        if neighbour is not None:
            alike.sort(key=lambda g: g.name != neighbour.name)
        for other in alike:
            runners = _runner_bindings(doc, other.name)
            if runners:
                node, ref = runners[-1]
                written = _written(doc, node)
                value = _retarget(doc, _value(node), ref, vm.name)
                keys = (*written[:-1], vm.name)
                self.put(
                    edit.insert_binding(
                        doc, _container(node), f"{attr_path(keys)} = {value};", after=written
                    )
                )
                return
        if generated_state(doc.text) != "foreign":
            runner = f"self.nixosConfigurations.{attr_name(vm.name)}.config.microvm.declaredRunner"
            system = attr_name(vm.system)
            text = (
                f"packages.{system} = {{\n  {attr_name(vm.name)} = {runner};\n"
                f"  default = self.packages.{system}.{attr_name(vm.name)};\n}};"
            )
            outputs = doc.outputs()
            if outputs is not None:
                self.put(edit.insert_binding(doc, outputs, text))
                return
        self.notes.append(
            f"no runner package was added for {vm.name!r}: to start it with "
            f"`nix run .#{vm.name}`, add packages.{vm.system}.{vm.name} = "
            f"self.nixosConfigurations.{vm.name}.config.microvm.declaredRunner;"
        )

    # ------------------------------------------------------------------ remove

    def _refuse_taken(self, name: str) -> None:
        if name in self.found.names() or any(u.name == name for u in self.found.unreadable):
            raise FlakeEditError(f"the flake already has a guest {name!r}")
        host = self.found.host(name)
        if host is not None and host.kind == "configuration":
            raise FlakeEditError(
                f"the flake already has a host {name!r} ({_short_span(host.span)}): "
                f"nixosConfigurations.{attr_name(name)} is taken"
            )
        if self.files.toml is not None and any(
            h.name == name and h.nixos_configuration for h in self.files.toml.hosts
        ):
            raise FlakeEditError(
                f"{SOURCE_NAME} has a host {name!r} with a full configuration: "
                f"nixosConfigurations.{attr_name(name)} is taken"
            )

    def remove(self, name: str) -> None:
        state = self.state(name)
        self.gone.append(name)
        doc = self.flake_doc
        guest_node = _binding_node(doc, state.guest.span)
        others = self._foreign_references(doc, name, guest_node)
        if others:
            places = "; ".join(
                f"{_short_span(doc.span(n))}: `{doc.text_of(n)}`" for n in others[:5]
            )
            raise FlakeEditError(
                f"guest {name!r} is still referred to elsewhere in {FLAKE_NAME} ({places})",
                hint="remove or change those references first",
            )
        remaining = [g for g in self.found.guests if g.name != name]
        # 1. defaults that point at the guest: to another guest, or away
        while True:
            doc = self.flake_doc
            defaults = _default_bindings(doc, name)
            if not defaults:
                break
            node, ref = defaults[0]
            replacement = _replacement_guest(doc, node, ref, remaining, state.guest.system)
            if replacement is None:
                self.put(_progress(doc, _drop_binding(doc, node)))
                self.notes.append(f"removed `{_key_text(doc, node)}`, which pointed at {name!r}")
            else:
                replaced = edit.apply(
                    doc,
                    [
                        edit.Replacement(
                            ref.start_byte, ref.end_byte, attr_name(replacement).encode()
                        )
                    ],
                )
                self.put(_progress(doc, replaced))
                self.notes.append(f"the default package now points at {replacement!r}")
        # 2. runner packages
        while True:
            doc = self.flake_doc
            runners = [
                (n, r) for n, r in _runner_bindings(doc, name) if _written(doc, n)[-1] == name
            ]
            if not runners:
                break
            node, _ = runners[0]
            self.put(_progress(doc, _drop_binding(doc, node)))
        # 3. the guest itself
        doc = self.flake_doc
        node = _binding_node(doc, _find_guest_span(doc, name, state))
        self.put(_tidy(doc, _progress(doc, edit.unset(doc, _container(node), _written(doc, node)))))
        # 4. its own module files
        for top in state.guest.modules:
            for m in top.walk():
                if m.kind != "file" or m.file is None:
                    continue
                file = m.file.resolve()
                if self._file_owners.get(file, set()) - {name}:
                    continue
                if file not in self.files.docs and not file.is_file():
                    continue  # a module file that is missing already
                text = self.doc(file).text
                rel = _relative(file, self.files.root)
                if generated_state(text) == "pristine" and file.stem == name:
                    self.files.removed.add(file)
                    self.files.docs.pop(file, None)
                else:
                    self.notes.append(
                        f"{rel} is no longer used by any guest; nixgen left it in place"
                    )
        if self.files.toml is not None:
            toml = self.files.toml.without_guest(name)
            self.notes.extend(_moved_addresses(self.files.toml, toml, name))
            self.files.toml = toml
        self.reread()
        self._fresh_sharing()

    def _foreign_references(self, doc: Document, name: str, guest_node: Node) -> list[Node]:
        allowed: list[Node] = [guest_node]
        allowed += [n for n, _ in _runner_bindings(doc, name) if _written(doc, n)[-1] == name]
        allowed += [n for n, _ in _default_bindings(doc, name)]
        out = []
        for select, _ in _references(doc, name):
            if not any(
                a.start_byte <= select.start_byte and select.end_byte <= a.end_byte for a in allowed
            ):
                out.append(select)
        return out

    # ------------------------------------------------------------------ rename

    def rename(self, old: str, new: str) -> None:
        state = self.state(old)
        self._refuse_taken(new)
        if new == old:
            return
        self.gone.append(old)
        # 1. its own module file vms/<old>.nix → vms/<new>.nix
        for top in state.guest.modules:
            if top.kind != "file" or top.file is None or top.file.stem != old:
                continue
            file = top.file.resolve()
            if self._file_owners.get(file, set()) - {old}:
                continue
            target = file.parent / f"{new}.nix"
            if target.exists() or target in self.files.docs:
                self.notes.append(
                    f"{_relative(file, self.files.root)} keeps its name: {target.name} exists"
                )
                continue
            moved = Document.parse(self.doc(file).source, target)
            doc = self.flake_doc
            span = top.span
            literal = to_nix(PurePosixPath(_relative(target, self.files.root)))
            if doc.source[span.start : span.end].decode() != top.text:
                continue
            self.put(edit.apply(doc, [edit.Replacement(span.start, span.end, literal.encode())]))
            self.files.docs[target] = moved
            self.files.docs.pop(file, None)
            self.files.created.add(target)
            self.files.removed.add(file)
            self.files.moved_from[target] = file
            self.original.setdefault(target, None)
        # 2. references (self.nixosConfigurations.old…, self.packages.<system>.old)
        doc = self.flake_doc
        reps = [
            edit.Replacement(ref.start_byte, ref.end_byte, attr_name(new).encode())
            for _, ref in _references(doc, old)
        ]
        if reps:
            self.put(edit.apply(doc, reps))
        # 3. runner package keys
        while True:
            doc = self.flake_doc
            runners = [(n, r) for n, r in _runner_bindings(doc, new) if _written(doc, n)[-1] == old]
            if not runners:
                break
            node, _ = runners[0]
            self.put(_progress(doc, _rename_binding(doc, node, old, new)))
        # 4. the guest binding
        doc = self.flake_doc
        node = _binding_node(doc, _find_guest_span(doc, old, state))
        if node.type != "binding":
            raise FlakeEditError(
                f"{_short_span(doc.span(node))}: guest {old!r} is inherited (`inherit {old};`)",
                hint=f"rename it by hand: write `{new} = {old};` in nixosConfigurations",
            )
        self.put(_rename_binding(doc, node, old, new))
        self.reread()
        self._fresh_sharing()
        # 5. the host name
        renamed = self.states.get(new)
        if renamed is None:
            raise FlakeEditError(f"internal: guest {new!r} cannot be read back after the rename")
        defs = renamed.guest.definitions.get(HOSTNAME, ())
        if len(defs) == 1 and defs[0].value == old:
            self.put_option(new, tuple(HOSTNAME.split(".")), new)
        elif defs:
            self.notes.append(
                f"networking.hostName of {new!r} is left as written: {_show(defs[0].value)}"
            )
        # 6. nixgen.toml: the same guest under the new name (its hosts and networks
        #    follow), keeping its MAC addresses
        if self.files.toml is not None:
            toml = self.files.toml.rename_guest(old, new)
            self.notes.extend(_renamed_on_hosts(self.files.toml, toml, old, new))
            self.files.toml = toml
            self.files.toml_renamed[new] = self.files.toml_renamed.pop(old, old)
            self.renamed[new] = old
            self.requested.setdefault(new, {})[HOSTNAME] = new

    # ------------------------------------------------------------------ nixgen.toml in step

    def sync_project(self) -> None:
        """Make the flake say what nixgen.toml now says.

        Every file that was exactly what nixgen renders from nixgen.toml is
        rendered again from the edited nixgen.toml (so ``nixgen render`` has
        nothing left to do).  In files with hand edits, every option the edit
        touched is written as nixgen renders it (an interface gets its derived
        MAC address).  An option nixgen.toml cannot express, or a hand-edited
        file that would have to change, refuses the edit.
        """
        toml = self.files.toml
        old_toml = self.old_toml
        if toml is None or old_toml is None or toml == old_toml:
            return
        old_files = _render(old_toml)
        new_files = _render(toml)
        for name, changes in self.requested.items():
            rendered = _guest_settings(new_files, toml, name)
            old_name = self.renamed.get(name, name)
            before = _guest_settings(old_files, old_toml, old_name)
            implied = {
                k for k in {*before, *rendered} if before.get(k, UNSET) != rendered.get(k, UNSET)
            }
            if old_name != name:
                implied.discard(HOSTNAME)
            keys = set(changes) | implied
            for key in sorted(keys):
                current = self._current(name, key)
                want = rendered.get(key, UNSET)
                if (changes.get(key) is UNSET and current is UNSET) or current == want:
                    continue
                if want is UNSET:
                    self.drop_option(name, _key_path(key), missing_ok=True)
                else:
                    self.put_option(name, _key_path(key), want)
        self._rerender(old_files, new_files)
        self.reread()
        self._fresh_sharing()
        for name, changes in self.requested.items():
            rendered = _guest_settings(new_files, toml, name)
            for key in changes:
                current = self._current(name, key)
                want = rendered.get(key, UNSET)
                if current != want and not (changes.get(key) is UNSET and current is UNSET):
                    raise FlakeEditError(
                        f"{SOURCE_NAME} cannot say `{key}` the way the flake now does "
                        f"({_show(current)} in the flake, {_show(want)} from {SOURCE_NAME})",
                        hint=f"make this change in {SOURCE_NAME} and run `nixgen render`",
                    )

    def _current(self, name: str, key: str) -> object:
        state = self.state(name)
        return state.guest.system if key == SYSTEM else state.settings.get(key, UNSET)

    def _rerender(
        self, old_files: Mapping[PurePosixPath, str], new_files: Mapping[PurePosixPath, str]
    ) -> None:
        root = self.files.root
        for rel in sorted({*old_files, *new_files}):
            path = root / Path(rel)
            before_path = self.files.moved_from.get(path, path)
            known = self.known.get(before_path, self.original.get(before_path))
            if known is None and before_path.exists() and before_path not in self.files.created:
                known = before_path.read_bytes()
            old_text = known.decode("utf-8") if known is not None else None
            new_text = new_files.get(rel)
            pending = self.start.get(before_path)
            up_to_date = old_files.get(rel) is not None and (
                old_text == old_files.get(rel)
                or (pending is not None and pending.decode("utf-8") == old_files.get(rel))
            )
            created = path in self.files.created
            if up_to_date or created:
                if new_text is None:
                    self.files.docs.pop(path, None)
                    if old_text is not None:
                        self.files.removed.add(path)
                else:
                    self.files.docs[path] = Document.parse(new_text, path)
                    self.files.removed.discard(path)
                    if old_text is None:
                        self.files.created.add(path)
                        self.original.setdefault(path, None)
                    elif path not in self.known:
                        self.original.setdefault(path, known)
                continue
            touched = path in self.files.docs and (
                known is None or self.files.docs[path].source != known
            )
            if old_files.get(rel) != new_text and not touched:
                raise FlakeEditError(
                    f"{_relative(path, root)} has hand edits (or is not up to date with "
                    f"{SOURCE_NAME}) and would have to change too",
                    hint=f"make the change in {SOURCE_NAME} and run `nixgen render --force`, "
                    "or edit that file by hand",
                )


def _render(flake: Flake) -> dict[PurePosixPath, str]:
    try:
        return render_files(flake, source=SOURCE_NAME)
    except ValidationError:
        return {}  # validation reports the same problems


def _guest_settings(
    files: Mapping[PurePosixPath, str], toml: Flake, name: str
) -> dict[str, object]:
    """The flat settings nixgen renders for guest ``name`` of a project."""
    text = files.get(PurePosixPath(GUESTS_DIR) / f"{name}.nix")
    vm = toml.guest(name)
    if text is None:
        return settings_of(vm)
    module = read_module(Document.parse(text))
    return {SYSTEM: vm.system, **{s.key: s.value for s in module.settings}}


def _configurations(found: FlakeGuests) -> list[Guest]:
    """Every configuration read: the guests and the hosts' (for what they share)."""
    hosts = [h.configuration for h in found.hosts if h.configuration is not None]
    return [*found.guests, *hosts]


def _refuse_host(found: FlakeGuests, name: str, files: _Files) -> None:
    """An edit of guest ``name`` where ``name`` is a host: say so."""
    host = found.host(name)
    if host is None:
        return
    outputs = "nixosConfigurations" if host.kind == "configuration" else "nixosModules"
    declared = f"{outputs}.{attr_name(name)}"
    if files.toml is not None and any(h.name == name for h in files.toml.hosts):
        hint = (
            f"change the host in {SOURCE_NAME} ([hosts.{attr_name(name)}]) and run `nixgen render`"
        )
    else:
        hint = "edit the host's configuration by hand"
    raise FlakeEditError(
        f"{name!r} is a host, not a guest: {declared} ({_short_span(host.span)}) "
        f"{host.reason}; nixgen edits guests only",
        hint=hint,
    )


def _refuse_dangling(found: FlakeGuests, gone: Sequence[str], files: _Files) -> None:
    """After removing or renaming guests, no host of the flake may still name them."""
    for name in gone:
        if name in found.names():
            continue
        for host in found.hosts:
            mentions = host.mentions(name)
            if not mentions:
                continue
            places = "; ".join(f"{_short_span(s.span)}: {s.key}" for s in mentions[:3])
            if files.toml is not None:
                hint = (
                    f"host {host.name!r} is not rendered from {SOURCE_NAME} (or its file has "
                    f"hand edits): take {name!r} out of it by hand first"
                )
            else:
                hint = f"take {name!r} out of host {host.name!r} by hand first"
            raise FlakeEditError(
                f"host {host.name!r} still runs guest {name!r} ({places}), and nixgen edits "
                f"hosts only by rendering them from {SOURCE_NAME}",
                hint=hint,
            )


def _moved_addresses(before: Flake, after: Flake, removed: str) -> list[str]:
    """Notes on the guests whose addresses move when ``removed`` leaves their networks."""
    if not before.hosts:
        return []
    old = {(a.host, a.network, a.guest): a for a in plan_networks(before).attachments}
    moved: dict[tuple[str, str], list[str]] = {}
    for a in plan_networks(after).attachments:
        was = old.get((a.host, a.network, a.guest))
        if was is not None and was.addresses != a.addresses:
            change = ", ".join(str(x) for x in was.addresses) + " → "
            change += ", ".join(str(x) for x in a.addresses)
            moved.setdefault((a.host, a.network), []).append(f"{a.guest} {change}")
    return [
        f"without {removed!r}, the guests after it on network {net!r} of host {host!r} "
        f"move to other addresses ({'; '.join(items)}): addresses follow the order of "
        f"the network's guests; to keep them, undo this and pin them first "
        f"([hosts.{attr_name(host)}.networks.{attr_name(net)}.addresses])"
        for (host, net), items in moved.items()
    ]


def _renamed_on_hosts(before: Flake, after: Flake, old: str, new: str) -> list[str]:
    """Notes on what a rename changes on the hosts that run the guest."""
    if not before.hosts:
        return []
    notes = []
    for host in before.hosts:
        if old not in host.guest_names:
            continue
        state_dir = host.state_dir or "/var/lib/microvms"
        notes.append(
            f"on host {host.name!r}, microvm.nix keeps the guest's state in {state_dir}/{old}; "
            f"as {new!r} it gets a new {state_dir}/{new}: move the folder there before "
            "deploying to keep its volumes"
        )
    was = {(a.host, a.network): a for a in plan_networks(before).of_guest(old)}
    for a in plan_networks(after).of_guest(new):
        prior = was.get((a.host, a.network))
        if prior is not None and (prior.mac, prior.id) != (a.mac, a.id):
            notes.append(
                f"on network {a.network!r} of host {a.host!r}, {new!r} has the interface "
                f"{a.id} with MAC {a.mac} (was {prior.id}, {prior.mac}): nixgen derives "
                "them from the guest's name"
            )
    return notes


# --------------------------------------------------------------------------- reading helpers


def _read(files: _Files) -> FlakeGuests:
    documents = {p: d for p, d in files.docs.items() if p != files.flake and p not in files.removed}
    return read_guests(files.docs[files.flake], documents=documents)


def _states(found: FlakeGuests) -> dict[str, _GuestState]:
    states: dict[str, _GuestState] = {}
    for guest in found.guests:
        settings: dict[str, object] = {}
        ambiguous: dict[str, Unmodelled] = {}
        for key, defs in guest.definitions.items():
            if len(defs) == 1:
                settings[key] = defs[0].value
                continue
            plain = [d for d in defs if not is_default_priority(d.value)]
            if len(plain) == 1:
                settings[key] = plain[0].value
            else:
                places = ", ".join(_short_span(d.span) for d in defs)
                ambiguous[key] = Unmodelled(
                    key,
                    tuple(d.value for d in defs),
                    f"defined {len(defs)} times ({places}); the module system decides",
                )
        given: dict[str, object] = dict(settings)
        if guest.system is not None:
            given = {SYSTEM: guest.system, **settings}
        vm, unmodelled = model_from_settings(guest.name, given)
        states[guest.name] = _GuestState(
            guest=guest, settings=settings, vm=vm, unmodelled={**unmodelled, **ambiguous}
        )
    return states


def _where(setting: Setting) -> tuple[Path | None, int]:
    file = setting.span.file.resolve() if setting.span.file is not None else None
    return file, setting.binding.start


def _related(state: _GuestState, path: tuple[str, ...]) -> list[Setting]:
    out = []
    for defs in state.guest.definitions.values():
        for s in defs:
            n = min(len(s.path), len(path))
            if s.path[:n] == path[:n] and s.path:
                out.append(s)
    return out


def _by_module(
    settings: Sequence[Setting], modules: Mapping[tuple[Path | None, int], Module]
) -> dict[tuple[Path | None, int], tuple[Module, list[Setting]]]:
    """Settings grouped by the module they are written in."""
    groups: dict[tuple[Path | None, int], tuple[Module, list[Setting]]] = {}
    for s in settings:
        module = modules.get(_where(s))
        if module is None:
            raise FlakeEditError(f"internal: no module holds {s.key} ({_short_span(s.span)})")
        key = (module.file.resolve() if module.file else None, module.span.start)
        groups.setdefault(key, (module, []))[1].append(s)
    return groups


def _common(a: Sequence[str], b: Sequence[str]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _locator(state: _GuestState) -> tuple[Step, ...]:
    return _locator_of(state.guest)


def _locator_of(guest: Guest) -> tuple[Step, ...]:
    if guest.locator is None:
        raise FlakeEditError(f"guest {guest.name!r} cannot be addressed in {FLAKE_NAME}")
    return guest.locator


def _own_module(guest: Guest) -> Module | None:
    """The module that holds the guest's host name, else the one with most settings."""
    for m in guest.modules:
        if any(s.key == HOSTNAME for sub in m.walk() for s in sub.settings):
            return m
    readable = [m for m in guest.modules if m.kind in ("inline", "file")]
    if not readable:
        return None
    return max(readable, key=lambda m: sum(len(sub.settings) for sub in m.walk()))


def _common_modules(guests: Sequence[Guest], neighbour: Guest) -> list[str]:
    """Modules every guest lists alike (microvm's module, a shared ./common.nix, …)."""
    own = _own_module(neighbour)
    out = []
    for m in neighbour.modules:
        if m is own or "\n" in m.text:
            continue
        shareable = m.kind == "reference" or (len(guests) > 1 and m.kind in ("file", "inline"))
        if shareable and all(any(o.text == m.text for o in g.modules) for g in guests):
            out.append(m.text)
    return out


def _inline_module(vm: MicroVM) -> str:
    """The guest's module as nixgen renders it, as an expression for a modules list."""
    rendered = Document.parse(guest_module(vm))
    function = rendered.expression()
    body = function.child_by_field_name("body")
    assert body is not None
    text = rendered.text_of(body)
    formals = function.child_by_field_name("formals")
    names: list[str] = []
    if formals is not None:
        for formal in formals.children_by_field_name("formal"):
            ident = formal.child_by_field_name("name")
            if ident is not None:
                names.append(rendered.text_of(ident))
    if not names:
        return text
    return "({ " + ", ".join([*names, "..."]) + " }: " + text + ")"


def _indent(text: str, pad: str) -> str:
    """Indent the lines after the first (blank lines stay empty)."""
    if "\n" not in text:
        return text
    lines = text.split("\n")
    return "\n".join([lines[0], *((pad + line) if line.strip() else "" for line in lines[1:])])


def _read_value(text: str) -> object:
    doc = Document.parse(text)
    return doc.value(doc.expression())


def _as_value(value: object) -> object:
    """Model objects (Interface, Volume, …) as the attribute sets microvm.nix takes."""
    if isinstance(value, Nix):
        return value
    if attrs.has(type(value)):
        return option_values(value)
    if isinstance(value, Mapping):
        return {str(k): _as_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_as_value(v) for v in value]
    return value


def _key_path(key: str) -> tuple[str, ...]:
    try:
        return tuple(parse_attr_path(key))
    except NixgenError as err:
        raise OptionError(f"{key!r} is not an option path: {err.message}", hint=err.hint) from None


# --------------------------------------------------------------------------- flake.nix structure


def _binding_node(doc: Document, span: Span) -> Node:
    node = doc.node_at(span.start, BINDING_TYPES)
    if node is None:
        raise FlakeEditError(f"internal: no binding at {span}")
    return node


def _find_guest_span(doc: Document, name: str, state: _GuestState) -> Span:
    found = read_guests(doc, follow_files=False)
    for guest in found.guests:
        if guest.name == name:
            return guest.span
    raise FlakeEditError(f"internal: guest {name!r} is gone from {FLAKE_NAME}")


def _container(node: Node) -> Node:
    bset = node.parent
    container = bset.parent if bset is not None else None
    if container is None:
        raise FlakeEditError("internal: a binding outside an attribute set")
    return container


def _written(doc: Document, node: Node) -> tuple[str, ...]:
    if node.type == "binding":
        attrpath = node.child_by_field_name("attrpath")
        assert attrpath is not None
        return doc.attr_keys(attrpath)[0]
    attrs_node = node.child_by_field_name("attrs")
    names = [] if attrs_node is None else attrs_node.children_by_field_name("attr")
    return (doc.text_of(names[0]),) if names else ()


def _value(node: Node) -> Node:
    value = node.child_by_field_name("expression")
    if value is None:
        raise FlakeEditError("internal: a binding without a value")
    return value


@functools.cache
def _select_query() -> Query:
    return Query(load_language(), "(select_expression) @select")


def _components(doc: Document, select: Node) -> list[tuple[str | None, Node | None]]:
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


def _references(doc: Document, name: str) -> list[tuple[Node, Node]]:
    """Selections naming guest ``name``: ``…nixosConfigurations.<name>…``, ``…packages.<x>.<name>``.

    Each as (the selection, the attribute node holding the name).
    """
    out: list[tuple[Node, Node]] = []
    captures = QueryCursor(_select_query()).captures(doc.tree.root_node)
    for select in captures.get("select", []):
        comps = _components(doc, select)
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


def _runner_bindings(doc: Document, name: str) -> list[tuple[Node, Node]]:
    """Bindings ``<…>.<key> = self.nixosConfigurations.<name>.config.microvm.declaredRunner;``."""
    out = []
    for select, ref in _references(doc, name):
        comps = [k for k, _ in _components(doc, select)]
        if tuple(comps[-3:]) != _RUNNER_TAIL:
            continue
        binding = select.parent
        if binding is None or binding.type != "binding" or _value(binding) != select:
            continue
        if "packages" not in _key_chain(doc, binding):
            continue
        out.append((binding, ref))
    return out


def _default_bindings(doc: Document, name: str) -> list[tuple[Node, Node]]:
    """Bindings ``…default = <a reference to the guest>;`` (the flake's default package)."""
    out = []
    for select, ref in _references(doc, name):
        binding = select.parent
        if binding is None or binding.type != "binding" or _value(binding) != select:
            continue
        if _written(doc, binding)[-1:] == ("default",):
            out.append((binding, ref))
    return out


def _key_chain(doc: Document, binding: Node) -> list[str]:
    """Every attribute name on the way from the file's top down to ``binding``."""
    keys: list[str] = []
    node: Node | None = binding
    while node is not None:
        if node.type == "binding":
            keys = list(_written(doc, node)) + keys
        node = node.parent
    return keys


def _retarget(doc: Document, value: Node, ref: Node, name: str) -> str:
    """The text of ``value`` with the guest name at ``ref`` replaced."""
    start = value.start_byte
    source = doc.source
    text = (
        source[start : ref.start_byte]
        + attr_name(name).encode()
        + source[ref.end_byte : value.end_byte]
    )
    return text.decode("utf-8")


def _replacement_guest(
    doc: Document, default: Node, ref: Node, remaining: Sequence[Guest], system: object
) -> str | None:
    """Another guest a default package can point at instead (None: remove the default)."""
    comps = [k for k, _ in _components(doc, _value(default))]
    candidates = [g for g in remaining if g.system == system] or []
    if "nixosConfigurations" in comps:
        return candidates[0].name if candidates else None
    container = _container(default)
    for guest in candidates:
        for node, _ in _runner_bindings(doc, guest.name):
            if _container(node) == container:
                return guest.name
    return None


# --------------------------------------------------------------------------- output helpers


def _tidy(old: Document, doc: Document) -> Document:
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


def _progress(old: Document, new: Document) -> Document:
    if new.source == old.source:
        raise FlakeEditError("internal: an edit of flake.nix changed nothing; nothing was written")
    return new


def _key_text(doc: Document, binding: Node) -> str:
    attrpath = binding.child_by_field_name("attrpath")
    return doc.text_of(attrpath) if attrpath is not None else doc.text_of(binding)


def _drop_binding(doc: Document, node: Node) -> Document:
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


def _rename_binding(doc: Document, node: Node, old: str, new: str) -> Document:
    """Rename the last key of a binding (``nixosConfigurations.web``, ``packages.${system}.web``)."""
    attrpath = node.child_by_field_name("attrpath")
    names = attrpath.children_by_field_name("attr") if attrpath is not None else []
    if not names or doc.attr_key(names[-1]) != old:
        raise FlakeEditError(f"internal: {doc.span(node)} does not bind {old!r}")
    last = names[-1]
    return edit.apply(
        doc, [edit.Replacement(last.start_byte, last.end_byte, attr_name(new).encode())]
    )


def _rehash(text: str) -> str:
    """Renew the checksum in a generated file's header so that it matches the body."""
    lines = text.split("\n", 2)
    if len(lines) < 3:
        return text
    digest = hashlib.sha256(lines[2].encode()).hexdigest()[:16]
    second = _CHECKSUM_LINE.sub(lambda m: m.group(1) + digest + m.group(3), lines[1], count=1)
    return "\n".join([lines[0], second, lines[2]])


def _file_order(files: _Files, path: Path) -> tuple[int, str]:
    if path == files.flake:
        return (0, "")
    if path.name == SOURCE_NAME and path.parent == files.root:
        return (2, "")
    return (1, str(path))


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _split(found: Sequence[Problem]) -> tuple[list[Problem], list[Problem]]:
    return [p for p in found if not p.warning], [p for p in found if p.warning]


def _norm(problem: Problem, renamed: Mapping[str, str]) -> tuple[str, str]:
    path = problem.path
    for old, new in renamed.items():
        path = path.replace(f'guests["{old}"]', f'guests["{new}"]')
    return path, problem.message


def _short(value: object, limit: int = 50) -> str:
    text = value.text if isinstance(value, Nix) else to_nix_safe(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def to_nix_safe(value: object) -> str:
    try:
        return to_nix(value)
    except NixgenError:
        return repr(value)


def _show(value: object) -> str:
    if value is UNSET:
        return "unset"
    return _short(value, 80)


def _short_span(span: Span) -> str:
    file = span.file.name if span.file is not None else "<text>"
    return f"{file}:{span.line}"


def _flatten(path: tuple[str, ...], value: object) -> Iterator[tuple[str, object]]:
    """A value as the flat settings reading it back gives (non-empty sets are entered)."""
    if isinstance(value, Mapping) and value:
        for key, inner in value.items():
            yield from _flatten((*path, str(key)), inner)
    else:
        yield attr_path(path), value


def _pick_neighbour(guests: Sequence[Guest], vm: MicroVM) -> Guest | None:
    """The guest a new one is modelled on: same system, own module file if any has one."""
    if not guests:
        return None
    same = [g for g in guests if g.system == vm.system] or list(guests)

    def own_file(g: Guest) -> bool:
        own = _own_module(g)
        return (
            own is not None
            and own.kind == "file"
            and own.file is not None
            and own.file.stem == g.name
        )

    with_files = [g for g in same if own_file(g)]
    return (with_files or same)[-1]
