"""Keeping a nixgen project's flake in step with its edited nixgen.toml."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from nixgen.errors import ValidationError
from nixgen.flake.errors import FlakeEditError
from nixgen.flake.state import key_path, relative, show
from nixgen.flake.transaction import Edit
from nixgen.model import Flake
from nixgen.nix.parse import Document
from nixgen.nix.read import read_module
from nixgen.render import GUESTS_DIR, SOURCE_NAME, may_replace, render_files
from nixgen.settings import HOSTNAME, SYSTEM, UNSET, to_settings


def sync_project(tx: Edit) -> None:
    """Make the flake say what nixgen.toml now says.

    Every file that was exactly what nixgen renders from nixgen.toml is
    rendered again from the edited nixgen.toml (so ``nixgen render`` has
    nothing left to do).  In files with hand edits, every option the edit
    touched is written as nixgen renders it (an interface gets its derived
    MAC address).  An option nixgen.toml cannot express, or a hand-edited
    file that would have to change, refuses the edit.
    """
    toml = tx.files.toml
    old_toml = tx.old_toml
    if toml is None or old_toml is None or toml == old_toml:
        return
    old_files = _render(old_toml)
    new_files = _render(toml)
    for name, changes in tx.requested.items():
        rendered = _guest_settings(new_files, toml, name)
        old_name = tx.renamed.get(name, name)
        before = _guest_settings(old_files, old_toml, old_name)
        implied = {
            k for k in {*before, *rendered} if before.get(k, UNSET) != rendered.get(k, UNSET)
        }
        if old_name != name:
            implied.discard(HOSTNAME)
        keys = set(changes) | implied
        for key in sorted(keys):
            current = _current(tx, name, key)
            want = rendered.get(key, UNSET)
            if (changes.get(key) is UNSET and current is UNSET) or current == want:
                continue
            if want is UNSET:
                tx.drop_option(name, key_path(key), missing_ok=True)
            else:
                tx.put_option(name, key_path(key), want)
    _rerender(tx, old_files, new_files)
    tx.reread()
    tx.fresh_sharing()
    for name, changes in tx.requested.items():
        rendered = _guest_settings(new_files, toml, name)
        for key in changes:
            current = _current(tx, name, key)
            want = rendered.get(key, UNSET)
            if current != want and not (changes.get(key) is UNSET and current is UNSET):
                raise FlakeEditError(
                    f"{SOURCE_NAME} cannot say `{key}` the way the flake now does "
                    f"({show(current)} in the flake, {show(want)} from {SOURCE_NAME})",
                    hint=f"make this change in {SOURCE_NAME} and run `nixgen render`",
                )


def _current(tx: Edit, name: str, key: str) -> object:
    state = tx.state(name)
    return state.guest.system if key == SYSTEM else state.settings.get(key, UNSET)


def _rerender(
    tx: Edit, old_files: Mapping[PurePosixPath, str], new_files: Mapping[PurePosixPath, str]
) -> None:
    root = tx.files.root
    for rel in sorted({*old_files, *new_files}):
        path = root / Path(rel)
        before_path = tx.files.moved_from.get(path, path)
        known = tx.known.get(before_path, tx.original.get(before_path))
        if known is None and before_path.exists() and before_path not in tx.files.created:
            known = before_path.read_bytes()
        old_text = known.decode("utf-8") if known is not None else None
        new_text = new_files.get(rel)
        pending = tx.start.get(before_path)
        # The file as last saved, or as this edit found it (unsaved earlier edits included).
        texts = [old_text, None if pending is None else pending.decode("utf-8")]
        rendered_from = old_files.get(rel)
        up_to_date = rendered_from is not None and any(
            text is not None and may_replace(text, rendered_from=rendered_from) for text in texts
        )
        created = path in tx.files.created
        if up_to_date or created:
            if new_text is None:
                tx.files.docs.pop(path, None)
                if old_text is not None:
                    tx.files.removed.add(path)
            else:
                # Parsed again only where the text changes: the guests of an unchanged
                # file need not be read again.
                current = tx.files.docs.get(path)
                if current is not None:
                    same = current.text == new_text
                else:
                    same = old_text == new_text and path not in tx.files.removed
                if not same:
                    tx.files.docs[path] = Document.parse(new_text, path)
                tx.files.removed.discard(path)
                if old_text is None:
                    tx.files.created.add(path)
                    tx.original.setdefault(path, None)
                elif path not in tx.known:
                    tx.original.setdefault(path, known)
            continue
        touched = path in tx.files.docs and (known is None or tx.files.docs[path].source != known)
        if old_files.get(rel) != new_text and not touched:
            raise FlakeEditError(
                f"{relative(path, root)} has hand edits (or is not up to date with "
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
        return to_settings(vm)
    module = read_module(Document.parse(text))
    return {SYSTEM: vm.system, **{s.key: s.value for s in module.settings}}
