"""The files of a flake as an edit leaves them, and the guests read from them.

Reading is syntactic (:func:`nixgen.nix.read.read_guests`: nothing is
evaluated); :func:`read_files` is the one place the flake package reads, so a
reader that evaluates can stand beside it.  Each guest read becomes a
:class:`GuestState`: where it is written, its flat settings and its model
(:func:`nixgen.settings.model_from_settings`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import NoReturn

import attrs

from nixgen.errors import NixgenError, OptionError, Problem
from nixgen.flake.errors import FlakeEditError
from nixgen.model import Flake, MicroVM, Nix
from nixgen.model.convert import option_values
from nixgen.nix.emit import attr_name, attr_path, parse_attr_path, to_nix
from nixgen.nix.outputs import FLAKE_NAME
from nixgen.nix.parse import Document, Span, Step
from nixgen.nix.read import (
    NEEDS_NIX,
    DeclaredGuest,
    FlakeGuests,
    Module,
    Setting,
    place,
    read_guests,
    reread_guests,
    unmoved,
)
from nixgen.render import SOURCE_NAME
from nixgen.settings import (
    HOSTNAME,
    SYSTEM,
    UNSET,
    Unmodelled,
    model_from_settings,
)


@attrs.define
class Files:
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

    def copy(self) -> Files:
        return Files(
            root=self.root,
            flake=self.flake,
            docs=dict(self.docs),
            created=set(self.created),
            removed=set(self.removed),
            moved_from=dict(self.moved_from),
            toml=self.toml,
            toml_renamed=dict(self.toml_renamed),
        )


@attrs.frozen
class GuestState:
    """One guest as read: where it is written, its flat settings (one definition each,
    or the one that wins by priority), its model and what the model cannot hold."""

    guest: DeclaredGuest
    settings: Mapping[str, object]
    vm: MicroVM
    unmodelled: Mapping[str, Unmodelled]


def read_files(
    files: Files,
    before: FlakeGuests | None = None,
    read_from: Mapping[Path, Document] | None = None,
) -> FlakeGuests:
    """The guests of the files as they stand.

    ``before`` and ``read_from``: an earlier read and the documents it was read
    from; when one document changed since, only the guests it can change are
    read again (:func:`nixgen.nix.read.reread_guests`).
    """
    if before is not None and read_from is not None:
        again = _read_again(files, before, read_from)
        if again is not None:
            return again
    return _read_all(files)


def _read_again(
    files: Files, before: FlakeGuests, read_from: Mapping[Path, Document]
) -> FlakeGuests | None:
    current = {p: d for p, d in files.docs.items() if p not in files.removed}
    earlier = {p: d for p, d in read_from.items() if p not in files.removed}
    changed = [p for p, d in current.items() if earlier.get(p) is not d]
    if len(changed) != 1 or earlier.keys() - current.keys():
        return None
    (path,) = changed
    documents = {p: d for p, d in current.items() if p != files.flake}
    old_flake = earlier.get(files.flake)
    if old_flake is None:
        return None
    if path == files.flake:
        return reread_guests(before, old_flake, current[files.flake], documents=documents)
    return reread_guests(before, old_flake, current[files.flake], changed=path, documents=documents)


def _read_all(files: Files) -> FlakeGuests:
    documents = {p: d for p, d in files.docs.items() if p != files.flake and p not in files.removed}
    return read_guests(files.docs[files.flake], documents=documents)


def guest_states(
    found: FlakeGuests,
    before: Mapping[str, GuestState] | None = None,
    root: Path | None = None,
) -> dict[str, GuestState]:
    """Each guest read, with its settings and model.

    ``before``: the states of an earlier read; a guest that was only moved
    (same settings, each decided) keeps its model.  ``root``: the flake's
    folder, which messages name files relative to.
    """
    states: dict[str, GuestState] = {}
    for guest in found.guests:
        old = before.get(guest.name) if before is not None else None
        if old is not None and old.guest is guest:  # not read again: nothing changed
            states[guest.name] = old
        elif (
            old is not None
            and old.guest.settings is guest.settings
            # every option decided: no message names the places of its definitions
            # (asked of the guest as read: a moved one's modules are made on first use)
            and len(unmoved(guest).definitions) == len(guest.settings)
        ):
            states[guest.name] = GuestState(guest, old.settings, old.vm, old.unmodelled)
        else:
            states[guest.name] = _state(guest, root)
    return states


def _state(guest: DeclaredGuest, root: Path | None) -> GuestState:
    settings: dict[str, object] = dict(guest.settings)
    ambiguous: dict[str, Unmodelled] = {}
    for key, defs in guest.definitions.items():
        if key in settings:
            continue
        # the reader leaves out what the priorities written do not decide
        decision = guest.decision(key)
        places = ", ".join(place(d.span, root) for d in defs)
        ambiguous[key] = Unmodelled(
            key,
            tuple(d.value for d in defs),
            f"undecided: defined {len(defs)} times ({places}); {decision.undecided}, "
            "so nix would decide",
        )
    given: dict[str, object] = dict(settings)
    if guest.system is not None:
        given = {SYSTEM: guest.system, **settings}
    vm, unmodelled = _modelled(guest.name, given)
    return GuestState(guest=guest, settings=settings, vm=vm, unmodelled={**unmodelled, **ambiguous})


# Reading the same settings gives the same model: an edit re-models only the guests
# whose settings it changed.  Keyed by their text (repr), since values may be lists.
_MODELS: dict[tuple[str, str], tuple[MicroVM, Mapping[str, Unmodelled]]] = {}
_MODELS_LIMIT = 100_000


def _modelled(name: str, given: Mapping[str, object]) -> tuple[MicroVM, Mapping[str, Unmodelled]]:
    key = (name, repr(given))
    known = _MODELS.get(key)
    if known is None:
        if len(_MODELS) >= _MODELS_LIMIT:
            _MODELS.clear()
        known = _MODELS[key] = model_from_settings(name, given)
    return known


# --------------------------------------------------------------------------- where settings are


@functools.lru_cache(maxsize=4096)
def resolved(path: Path) -> Path:
    """``path.resolve()``, asked once per path: every setting of every guest asks."""
    return path.resolve()


def where(setting: Setting) -> tuple[Path | None, int]:
    file = resolved(setting.span.file) if setting.span.file is not None else None
    return file, setting.binding.start


def related_settings(state: GuestState, path: tuple[str, ...]) -> list[Setting]:
    out = []
    for defs in state.guest.definitions.values():
        for s in defs:
            n = min(len(s.path), len(path))
            if s.path[:n] == path[:n] and s.path:
                out.append(s)
    return out


def by_module(
    settings: Sequence[Setting],
    modules: Mapping[tuple[Path | None, int], Module],
    root: Path | None = None,
) -> dict[tuple[Path | None, int], tuple[Module, list[Setting]]]:
    """Settings grouped by the module they are written in."""
    groups: dict[tuple[Path | None, int], tuple[Module, list[Setting]]] = {}
    for s in settings:
        module = modules.get(where(s))
        if module is None:
            raise FlakeEditError(f"internal: no module holds {s.key} ({short_span(s.span, root)})")
        key = (resolved(module.file) if module.file else None, module.span.start)
        groups.setdefault(key, (module, []))[1].append(s)
    return groups


def common_length(a: Sequence[str], b: Sequence[str]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def guest_locator(state: GuestState) -> tuple[Step, ...]:
    return locator_of(state.guest)


def locator_of(guest: DeclaredGuest) -> tuple[Step, ...]:
    if guest.locator is None:
        raise FlakeEditError(f"guest {guest.name!r} cannot be addressed in {FLAKE_NAME}")
    return guest.locator


def own_module(guest: DeclaredGuest) -> Module | None:
    """The module that holds the guest's host name, else the one with most settings."""
    for m in guest.modules:
        if any(s.key == HOSTNAME for sub in m.walk() for s in sub.settings):
            return m
    readable = [m for m in guest.modules if m.kind in ("inline", "file")]
    if not readable:
        return None
    return max(readable, key=lambda m: sum(len(sub.settings) for sub in m.walk()))


def configurations(found: FlakeGuests) -> list[DeclaredGuest]:
    """Every configuration read: the guests and the hosts' (for what they share)."""
    hosts = [h.configuration for h in found.hosts if h.configuration is not None]
    return [*found.guests, *hosts]


def refuse_host(found: FlakeGuests, name: str, files: Files) -> None:
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
        f"{name!r} is a host, not a guest: {declared} ({short_span(host.span, files.root)}) "
        f"{host.reason}; nixgen edits guests only",
        hint=hint,
    )


def refuse_missing(
    found: FlakeGuests, name: str, files: Files, *, hint: str | None = None
) -> NoReturn:
    """``name`` is not a guest nixgen can read: say why, naming what computes it.

    A host is refused as such; a guest nixgen cannot read names its binding;
    in a flake whose ``nixosConfigurations`` (or ``outputs``) is computed, the
    guest may be in what it computes, which only nix can read.
    """
    refuse_host(found, name, files)
    flake = relative(files.flake, files.root)
    for item in found.unreadable:
        if item.name == name:
            raise FlakeEditError(
                f"guest {name!r} cannot be read without evaluating {flake}: {item.reason}",
                hint=NEEDS_NIX,
            )
    known = ", ".join(found.names()) or "none"
    computed = [item.reason for item in found.unreadable if item.name is None]
    if computed:
        readable = f" (it reads {known})" if found.guests else ""
        raise FlakeEditError(
            f"guest {name!r} is not one nixgen can read in {flake} without evaluating "
            f"it{readable}; it may be in what the flake computes: " + "; ".join(computed),
            hint=NEEDS_NIX,
        )
    raise FlakeEditError(
        f"no guest {name!r} in {flake} (guests: {known})",
        hint=hint or "see `nixgen show` for the guests nixgen can read",
    )


# --------------------------------------------------------------------------- values and messages


def key_path(key: str) -> tuple[str, ...]:
    try:
        return tuple(parse_attr_path(key))
    except NixgenError as err:
        raise OptionError(f"{key!r} is not an option path: {err.message}", hint=err.hint) from None


def as_value(value: object) -> object:
    """Model objects (Interface, Volume, …) as the attribute sets microvm.nix takes."""
    if isinstance(value, Nix):
        return value
    if attrs.has(type(value)):
        return option_values(value)
    if isinstance(value, Mapping):
        return {str(k): as_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_value(v) for v in value]
    return value


def read_value(text: str) -> object:
    doc = Document.parse(text)
    return doc.value(doc.expression())


def flatten_value(path: tuple[str, ...], value: object) -> Iterator[tuple[str, object]]:
    """A value as the flat settings reading it back gives (non-empty sets are entered)."""
    if isinstance(value, Mapping) and value:
        for key, inner in value.items():
            yield from flatten_value((*path, str(key)), inner)
    else:
        yield attr_path(path), value


def short(value: object, limit: int = 50) -> str:
    text = value.text if isinstance(value, Nix) else to_nix_safe(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def to_nix_safe(value: object) -> str:
    try:
        return to_nix(value)
    except NixgenError:
        return repr(value)


def show(value: object) -> str:
    if value is UNSET:
        return "unset"
    return short(value, 80)


def short_span(span: Span, root: Path | None) -> str:
    """``config/default.nix:13``: relative to the flake folder ``root`` (absolute outside)."""
    return place(span, root)


def split_problems(found: Sequence[Problem]) -> tuple[list[Problem], list[Problem]]:
    return [p for p in found if not p.warning], [p for p in found if p.warning]


def normalized(problem: Problem, renamed: Mapping[str, str]) -> tuple[str, str]:
    path = problem.path
    for old, new in renamed.items():
        path = path.replace(f'guests["{old}"]', f'guests["{new}"]')
    return path, problem.message


def relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()
