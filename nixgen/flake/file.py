"""The public face of the flake editor: :class:`FlakeFile` and :class:`GuestView`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import attrs

from nixgen._gc import paused_gc
from nixgen.errors import NixgenError, OptionError, Problem, ProjectError, ValidationError
from nixgen.files import file_error
from nixgen.flake.errors import FlakeEditError
from nixgen.flake.evaluated import (
    EvaluatedFlake,
    EvaluationError,
    Evaluator,
    Placed,
    Planned,
    compare,
    place,
    plan_set,
    plan_unset,
)
from nixgen.flake.guests import add_guest, remove_guest, rename_guest
from nixgen.flake.state import (
    Files,
    GuestState,
    as_value,
    guest_states,
    key_path,
    normalized,
    read_files,
    refuse_missing,
    short_span,
    split_problems,
)
from nixgen.flake.sync import sync_project
from nixgen.flake.transaction import Edit
from nixgen.gitutil import track
from nixgen.lock import project_lock
from nixgen.model import Flake, MicroVM
from nixgen.nix import edit
from nixgen.nix.emit import attr_path
from nixgen.nix.outputs import FLAKE_NAME
from nixgen.nix.parse import Document, Span
from nixgen.nix.read import (
    Decision,
    FlakeGuests,
    HostConfig,
    Module,
    Setting,
    Unreadable,
    UnreadModule,
)
from nixgen.project import toml_text
from nixgen.render import SOURCE_NAME, atomic_write, generated_state, rehash
from nixgen.schema import known_schema
from nixgen.settings import SYSTEM, UNSET, Unmodelled, model_options, to_settings
from nixgen.validate import check

__all__ = ["FlakeFile", "GuestView", "SaveResult"]


@attrs.frozen
class SaveResult:
    """What :meth:`FlakeFile.save` did."""

    written: tuple[Path, ...]
    removed: tuple[Path, ...]


class GuestView:
    """One guest of a :class:`FlakeFile`, always showing its current (edited) state."""

    def __init__(self, flake: FlakeFile, name: str) -> None:
        self._flake = flake
        self._name = name

    def __repr__(self) -> str:
        return f"GuestView({self._name!r})"

    @property
    def _state(self) -> GuestState:
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

    @property
    def unread(self) -> tuple[UnreadModule, ...]:
        """Its modules nixgen could not read (a missing file, ``import ./f.nix { … }``,
        a module of the flake it does not follow), each with why and where it is listed.
        What they set is unknown: see :meth:`known`."""
        return self._state.guest.unread

    def known(self, key: str) -> bool:
        """Whether the value of option ``key`` is known from the text.

        True when a module nixgen read defines it (or a part of it): the value
        is in :attr:`settings` (or, when it is undecided or not modelled, in
        :attr:`unmodelled`); or when nixgen read every module of the guest, so
        that nothing sets it and microvm.nix's (or NixOS's) default applies.
        False when some module nixgen could not read (:attr:`unread`) may set
        it: :attr:`vm` then holds the model's default, which may be wrong.
        (An unread module may also override or add to what is known; only
        evaluation can tell.)
        """
        guest = self._state.guest
        if not guest.unread:
            return True
        path = key_path(key)
        if path == (SYSTEM,):
            return guest.system is not None
        for defs in guest.definitions.values():
            written = defs[0].path
            n = min(len(written), len(path))
            if written[:n] == path[:n]:
                return True
        return False

    @property
    def unknown(self) -> tuple[str, ...]:
        """The options of the model (:func:`nixgen.settings.model_options`) whose value
        is not :meth:`known`; empty when every module was read."""
        if not self._state.guest.unread:
            return ()
        return tuple(k for k in model_options() if not self.known(k))

    def decision(self, key: str) -> Decision:
        """Which definitions of ``key`` give its value: the one that wins by priority,
        the lists that merge, or none (undecided: only nix can tell, and why)."""
        return self._state.guest.decision(key)

    def setting(self, key: str) -> Setting | None:
        """The one definition of ``key`` (None: not set, or set several times)."""
        return self._state.guest.setting(key)

    def set(self, key: str, value: object) -> None:
        """Set option ``key`` of this guest (see :meth:`FlakeFile.set`)."""
        self._flake.set(self._name, key, value)

    def unset(self, *keys: str) -> None:
        """Remove options of this guest (see :meth:`FlakeFile.unset`)."""
        self._flake.unset(self._name, *keys)


class FlakeFile:
    """A flake on disk, read statically, with its guests as models; edits are kept until saved.

    Use :meth:`load`.  ``root`` is the flake's folder, ``path`` its
    ``flake.nix``; ``project`` is True when a ``nixgen.toml`` sits beside it.
    """

    def __init__(self, files: Files, original: dict[Path, bytes | None]) -> None:
        self._files = files
        self._original = original
        self._notes: list[str] = []
        self.warnings: list[Problem] = []
        self._project_error: str | None = None
        self._toml_source: str | None = None
        self._toml_loaded: Flake | None = None
        self._toml_written: tuple[Flake, str | None, str] | None = None
        self._evaluator: Evaluator | None = None
        self._evaluation: EvaluatedFlake | None = None
        #: edits made through the evaluation, checked by evaluating again on save
        self._checks: list[tuple[str, Planned]] = []
        self._refresh()
        # microvm.* names are checked against the flake's own microvm.nix when
        # `nixgen check` has read its options (cached by the lock), else the shipped ones.
        self._schema = known_schema(self.root)
        self._baseline = self._errors()
        self._warnings_before = split_problems(check(self.model(), schema=self._schema))[1]

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(cls, path: Path | str = ".", *, evaluator: Evaluator | None = None) -> FlakeFile:
        """Read a flake: a folder holding ``flake.nix``, or the file itself.

        ``evaluator`` (e.g. :class:`nixgen.evaluate.FlakeEvaluator`) lets
        :meth:`evaluate` read what the text does not say (computed
        ``nixosConfigurations``); nothing is evaluated before it is called.

        Raises :class:`~nixgen.nix.errors.NixSyntaxError` (file:line:column) when
        flake.nix does not parse, :class:`~nixgen.errors.ProjectError` when it
        is missing, :class:`~nixgen.errors.FileError` when it cannot be read.
        """
        given = Path(path)
        flake = given / FLAKE_NAME if given.is_dir() else given
        flake = flake.resolve()
        if not flake.is_file():
            raise ProjectError(
                f"{flake}: no such file",
                hint="pass a folder holding flake.nix (--flake DIR), or the flake.nix itself",
            )
        try:
            doc = Document.load(flake)
        except OSError as err:
            raise file_error(err, flake, "cannot read the flake") from None
        files = Files(root=flake.parent, flake=flake, docs={flake: doc})
        original: dict[Path, bytes | None] = {flake: doc.source}
        source = flake.parent / SOURCE_NAME
        problem: str | None = None
        toml_text_now: str | None = None
        if source.is_file():
            from nixgen.model.convert import load_flake_file

            # Not UTF-8: load_flake_file below says so, as a problem of the file.
            toml_text_now = source.read_bytes().decode("utf-8", "replace")
            try:
                files.toml = load_flake_file(source)
            except ValidationError as err:
                problem = f"{SOURCE_NAME} is not valid, so nixgen cannot keep it in step:\n{err}"
        result = cls(files, original)
        result._evaluator = evaluator
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

    def _state(self, name: str) -> GuestState:
        state = self._states.get(name)
        if state is None:
            refuse_missing(self._found, name, self._files)
        return state

    def _refresh(self) -> None:
        files = self._files
        found = read_files(files)
        self._found = found
        self._states = guest_states(found, root=files.root)

    # ------------------------------------------------------------------ evaluation

    @property
    def evaluation(self) -> EvaluatedFlake | None:
        """What the last :meth:`evaluate` found (None before)."""
        return self._evaluation

    def evaluation_reason(self, name: str | None = None) -> str | None:
        """Why reading the text is not enough (None: it is): computed or unreadable
        guests (guest ``name`` may be one of them), options defined several times, or
        modules nixgen cannot read (``import ./x.nix { … }``, a missing file)."""
        if self._found.unreadable:
            item = self._found.unreadable[0]
            if name is not None and name not in self._states and self._found.host(name) is None:
                return f"guest {name!r} is not written literally ({item.reason})"
            return item.reason if item.name is None else f"{item.name}: {item.reason}"
        states = [self._states[name]] if name in self._states else self._states.values()
        for state in states:
            for key, defs in state.guest.definitions.items():
                if len(defs) > 1:
                    return f"{state.guest.name}: {key} is defined several times"
            for listed in state.guest.modules:
                for module in listed.walk():
                    if module.kind == "opaque" or (module.kind == "file" and module.problems):
                        return f"{state.guest.name}: a module nixgen cannot read ({module.text})"
        return None

    def evaluate(self) -> EvaluatedFlake:
        """Evaluate the flake with the evaluator given to :meth:`load` (one nix call).

        Afterwards :meth:`set`/:meth:`unset` of a guest the evaluation knows
        (outside a nixgen project) edit the definition that wins, and
        :meth:`save` evaluates again to check the edit, restoring every file
        when it did not do exactly what was asked.
        """
        if self._evaluator is None:
            raise EvaluationError(
                "this FlakeFile has no evaluator",
                hint="FlakeFile.load(path, evaluator=nixgen.evaluate.FlakeEvaluator())",
            )
        self._evaluation = self._evaluator(self.root)
        return self._evaluation

    def definition_places(self, name: str, key: str) -> list[Placed]:
        """Where the winning definitions of option ``key`` of configuration ``name``
        are written, as the last :meth:`evaluate` found them."""
        evaluated = self._evaluation
        if evaluated is None or name not in evaluated.configurations:
            return []
        option = evaluated.configurations[name].options.get(key)
        if option is None:
            return []
        return [
            p
            for d in option.definitions
            for p in place(self.root, option, d, self._load_doc, self._evaluated_text)
        ]

    def _evaluated_text(self, path: Path) -> bytes | None:
        """A file's text as the last evaluation saw it: as on disk when read."""
        return self._original.get(path.resolve())

    def _load_doc(self, path: Path) -> Document:
        path = path.resolve()
        doc = self._files.docs.get(path)
        if doc is None:
            try:
                doc = Document.load(path)
            except OSError as err:
                raise file_error(err, path, "cannot read a module of the flake") from None
            self._files.docs[path] = doc
            self._original.setdefault(path, doc.source)
        return doc

    def _update_evaluated(self, name: str, changes: Mapping[str, object]) -> None:
        evaluated = self._evaluation
        assert evaluated is not None
        if self.project:
            raise FlakeEditError(
                f"{name!r} is edited through nixgen.toml in this project, not through evaluation",
                hint="edit nixgen.toml (or run without --eval)",
            )
        planned: list[Planned] = []
        docs = dict(self._files.docs)
        try:
            for key, value in changes.items():
                if key == SYSTEM:
                    raise FlakeEditError(
                        f"{name}: `system` of a computed guest is not an option nixgen can place",
                        hint="change the system where the flake computes it",
                    )
                path = key_path(key)
                if value is not UNSET and path[0] == "microvm":
                    # Checked before any place is suggested: a hint never leads to a refusal.
                    for issue in self._schema.problems("guest", path[1:], value):
                        raise OptionError(f"{name}: {issue.message}", hint=issue.hint)
                if value is UNSET:
                    step = plan_unset(
                        evaluated, self.root, name, key, self._load_doc, self._evaluated_text
                    )
                else:
                    step = plan_set(
                        evaluated,
                        self.root,
                        name,
                        key,
                        path,
                        value,
                        self._load_doc,
                        self._evaluated_text,
                    )
                self._files.docs[step.path.resolve()] = step.doc
                planned.append(step)
        except Exception:
            self._files.docs = docs
            raise
        self._checks.extend((name, p) for p in planned)
        self._notes = []
        self._refresh()

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
        """Several set (value) and unset (:data:`nixgen.settings.UNSET`) at once, validated together."""
        paths = {key: key_path(key) for key in changes}
        values = {key: (v if v is UNSET else as_value(v)) for key, v in changes.items()}
        if (
            self._evaluation is not None
            and name in self._evaluation.configurations
            and not self.project
        ):
            self._update_evaluated(name, values)
            return

        def run(tx: Edit) -> None:
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
        old = to_settings(self._state(name).vm)
        new = to_settings(vm)
        changes: dict[str, object] = {k: v for k, v in new.items() if old.get(k, UNSET) != v}
        changes.update({k: UNSET for k in old if k not in new})
        if not changes:
            return

        def run(tx: Edit) -> None:
            for key, value in changes.items():
                path = key_path(key)
                if value is UNSET:
                    tx.drop_option(name, path, missing_ok=True)
                else:
                    tx.put_option(name, path, value)
            tx.request(name, changes)

        self._transaction(run)

    def add(self, vm: MicroVM) -> None:
        """Add a guest, following the shape of the guests already there."""
        self._transaction(lambda tx: add_guest(tx, vm))

    def remove(self, name: str) -> None:
        """Remove a guest, its runner package and (when nixgen generated it) its module file."""
        self._transaction(lambda tx: remove_guest(tx, name))

    def rename(self, old: str, new: str) -> None:
        """Rename a guest: its nixosConfigurations name, host name, runner package, module file."""
        self._transaction(lambda tx: rename_guest(tx, old, new), renamed={old: new})

    def _transaction(
        self, run: Callable[[Edit], None], renamed: Mapping[str, str] | None = None
    ) -> None:
        # An edit re-reads and re-models the guests it moved, and keeps them all:
        # collections on the way would walk the whole flake's objects again and
        # again (at 10,000 guests, most of an edit's time).
        with paused_gc():
            if self._project_error is not None:
                raise FlakeEditError(self._project_error)
            tx = Edit(self._files.copy(), self._original, self._found, self._states)
            run(tx)
            sync_project(tx)
            files = tx.files
            tx.reread()
            found, states = tx.found, tx.states
            _refuse_dangling(found, tx.gone, files)
            model = Flake(guests=[states[n].vm for n in found.names()])
            errors, warnings = split_problems(check(model, schema=self._schema))
            known_warnings = {normalized(p, renamed or {}) for p in self._warnings_before}
            fresh_warnings = [p for p in warnings if normalized(p, {}) not in known_warnings]
            project_errors: list[Problem] = []
            if files.toml is not None:
                project_errors, _ = split_problems(check(files.toml, schema=self._schema))
            before = {normalized(p, renamed or {}) for p in self._baseline}
            new_errors = [p for p in [*errors, *project_errors] if normalized(p, {}) not in before]
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
        errors, _ = split_problems(check(self.model(), schema=self._schema))
        if self._files.toml is not None:
            errors += split_problems(check(self._files.toml, schema=self._schema))[0]
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

    def _toml_text(self, flake: Flake) -> str:
        """nixgen.toml's text for a model: the file as read, changed in place (its
        comments and layout kept); the last one is remembered (an edit asks for it
        for the diff and when it saves)."""
        memo = self._toml_written
        if memo is not None and memo[0] is flake and memo[1] is self._toml_source:
            return memo[2]
        text = toml_text(flake, old=self._toml_source, renamed=self._files.toml_renamed)
        self._toml_written = (flake, self._toml_source, text)
        return text

    # ------------------------------------------------------------------ output

    def changes(self) -> dict[Path, tuple[str | None, str | None]]:
        """Every file whose text would change on :meth:`save`: ``{path: (old, new)}``."""
        out: dict[Path, tuple[str | None, str | None]] = {}
        files = self._files
        for path, doc in files.docs.items():
            if path in files.removed:
                continue
            old_bytes = self._original.get(path)
            if old_bytes is not None and path not in files.moved_from and doc.source == old_bytes:
                continue  # as read (a module file read, not edited): nothing to decode
            old = old_bytes.decode("utf-8") if old_bytes is not None else None
            new = self._final_text(path, doc)
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
            new_toml = self._toml_text(files.toml)
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
            return rehash(text) if generated_state(text) != "foreign" else text
        old = old_bytes.decode("utf-8")
        if text != old and generated_state(old) == "pristine":
            return rehash(text)
        return text

    def _verify(self, changes: Mapping[Path, tuple[str | None, str | None]]) -> None:
        """Evaluate again after edits placed by evaluation: each option has its new
        value and no other configuration changed, else every file is restored."""
        before = self._evaluation
        assert before is not None and self._evaluator is not None
        checks = list(self._checks)
        try:
            after = self._evaluator(self.root)
        except NixgenError as err:
            _restore(changes)
            raise EvaluationError(
                f"after the edit the flake no longer evaluates, so every file was restored: "
                f"{err.message}",
                hint=err.hint or "the value may have the wrong type for the option",
            ) from err
        wrong: list[str] = []
        for name in dict.fromkeys(n for n, _ in checks):
            wrong += compare(before, after, name, [p for n, p in checks if n == name])
        if wrong:
            _restore(changes)
            raise EvaluationError(
                "the edit did not do what was asked, so every file was restored:\n  "
                + "\n  ".join(wrong),
                hint="the value is computed elsewhere too; edit the flake by hand",
            )
        self._evaluation = after
        self._checks = []

    def _changed_on_disk(self, path: Path, old: str | None) -> bool:
        """Whether ``path`` no longer holds ``old``, the text nixgen read (None: no file).

        Compared as bytes with what was read where nixgen has them: as they are
        (a text read would turn CRLF line ends into LF, a change that is not one),
        and without decoding a large file twice."""
        try:
            on_disk = path.read_bytes()
        except FileNotFoundError:
            return old is not None
        if old is None:
            return True
        read = self._original.get(path)
        if read is not None:
            return on_disk != read
        return on_disk.decode("utf-8", "replace") != old

    def save(self) -> SaveResult:
        """Write every changed file atomically (module files first, flake.nix, then nixgen.toml).

        Refuses (writing nothing) when a file changed on disk since it was read.
        New and removed files are added to git's index inside a work tree,
        since flakes only see tracked files.
        """
        changes = self.changes()
        written: list[Path] = []
        removed: list[Path] = []
        # Under the project lock, no other nixgen writes between the check and the writes.
        with project_lock(self._files.root):
            for path, (old, _) in changes.items():
                if self._changed_on_disk(path, old):
                    raise FlakeEditError(
                        f"{self._relative(path)} changed on disk since nixgen read it; "
                        "nothing was written",
                        hint="load the flake again and redo the edit",
                    )
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
            if self._checks:
                self._verify(changes)
        # What is on disk now is the new baseline.
        for path in written:
            self._original[path] = path.read_bytes()
        for path in removed:
            self._original[path] = None
        if self._files.toml is not None and self._files.toml != self._toml_loaded:
            self._toml_source = self._toml_text(self._files.toml)
            self._toml_loaded = self._files.toml
            self._files.toml_renamed.clear()
        # A document is parsed again only where the text written differs from it
        # (a renewed checksum); the guests are read again only then.
        reparsed = [
            p
            for p in written
            if p in self._files.docs and self._original[p] != self._files.docs[p].source
        ]
        self._files.docs = {
            p: (Document.parse(self._original[p] or b"", p) if p in reparsed else d)
            for p, d in self._files.docs.items()
            if p not in self._files.removed
        }
        self._files.created.clear()
        self._files.removed.clear()
        self._files.moved_from.clear()
        if reparsed or removed:
            self._refresh()
        return SaveResult(tuple(written), tuple(removed))


def _restore(changes: Mapping[Path, tuple[str | None, str | None]]) -> None:
    for path, (old, _) in changes.items():
        if old is None:
            path.unlink(missing_ok=True)
        else:
            atomic_write(path, old)


def _refuse_dangling(found: FlakeGuests, gone: Sequence[str], files: Files) -> None:
    """After removing or renaming guests, no host of the flake may still name them."""
    for name in gone:
        if name in found.names():
            continue
        for host in found.hosts:
            mentions = host.mentions(name)
            if not mentions:
                continue
            places = "; ".join(f"{short_span(s.span, files.root)}: {s.key}" for s in mentions[:3])
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


def _file_order(files: Files, path: Path) -> tuple[int, str]:
    if path == files.flake:
        return (0, "")
    if path.name == SOURCE_NAME and path.parent == files.root:
        return (2, "")
    return (1, str(path))
