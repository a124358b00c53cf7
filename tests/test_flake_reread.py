"""Reading a flake again after an edit reads only what the edit can change, and gives
exactly what reading the whole flake gives (nixgen.nix.read.reread_guests)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nixgen import Flake, FlakeFile, MicroVM, NixgenError, check
from nixgen.flake.state import read_files
from nixgen.nix import edit
from nixgen.nix.emit import to_nix
from nixgen.nix.parse import Document
from nixgen.nix.read import read_guests, reread_guests
from nixgen.render import write_project

CORPUS = Path(__file__).parent / "corpus"
FLAKES = sorted(p.name for p in (CORPUS / "flakes").glob("*.nix"))


def _changed(value: object) -> str:
    """Nix text for another value of the same kind, some longer and spanning lines."""
    if isinstance(value, bool):
        return to_nix(not value)
    if isinstance(value, int):
        return to_nix(value * 1000 + 7)
    if isinstance(value, str):
        return to_nix(value + "-changed")
    if isinstance(value, list):
        return "[\n  " + to_nix("a") + "\n  " + to_nix("b") + "\n]"
    return "null"


@pytest.mark.parametrize("name", FLAKES)
def test_reading_again_after_each_edit_equals_reading_it_whole(name: str) -> None:
    old = Document.load(CORPUS / "flakes" / name)
    found = read_guests(old)
    tried = candidates = 0
    for guest in found.guests:
        for key, defs in guest.definitions.items():
            setting = defs[0]
            if len(defs) != 1 or setting.locator is None or setting.span.file != old.path:
                continue
            candidates += 1
            try:
                new = edit.set_value(old, setting.locator, setting.path, _changed(setting.value))
            except Exception:  # an edit the document layer refuses is not this test's subject
                continue
            again = reread_guests(found, old, new)
            if again is not None:
                tried += 1
                assert again == read_guests(new), f"{name}: {guest.name} {key}"
    # Where something follows a guest on its last line, columns move too: read whole.
    crowded = any(
        old.source[g.span.end : old.source.find(b"\n", g.span.end)].strip() for g in found.guests
    )
    if candidates and not found.hosts and not found.notes and not crowded:
        assert tried, f"{name}: no edit was read incrementally"


def test_an_edit_in_a_module_file_reads_the_guests_of_that_file_again(tmp_path: Path) -> None:
    write_project(Flake(guests=[MicroVM(name="web"), MicroVM(name="db")]), tmp_path)
    flake_doc = Document.load((tmp_path / "flake.nix").resolve())
    found = read_guests(flake_doc)
    module = (tmp_path / "vms" / "db.nix").resolve()
    setting = found["db"].definitions["microvm.mem"][0]
    assert setting.span.file is not None and setting.span.file.resolve() == module
    assert setting.locator is not None
    old = found.documents[module]
    new = edit.set_value(old, setting.locator, setting.path, "3333")
    again = reread_guests(found, flake_doc, flake_doc, changed=module, documents={module: new})
    assert again is not None
    assert again == read_guests(flake_doc, documents={module: new})
    assert again["web"] is found["web"]  # the other guest was not read again
    assert again["db"].settings["microvm.mem"] == 3333


def test_after_an_edit_every_later_guest_has_moved(tmp_path: Path) -> None:
    target = tmp_path / "multi"
    target.mkdir()
    shutil.copyfile(CORPUS / "flakes" / "multi-guest.nix", target / "flake.nix")
    flake = FlakeFile.load(target)
    first, *rest = flake.names()
    lines_before = {n: flake.guest(n).span.line for n in rest}
    flake.set(first, "services.nginx.virtualHosts", {"a.example": {"root": "/srv/a"}})
    added = flake.guest(first).span.end_line - flake.guest(first).span.line
    assert added > 0
    assert flake._found == read_files(flake._files)
    for n in rest:
        assert flake.guest(n).span.line > lines_before[n]
    flake.save()
    assert FlakeFile.load(target)._found.guests == flake._found.guests


def _view(flake: FlakeFile) -> object:
    """Everything a FlakeFile shows of its guests, and what checking them finds."""
    guests = {
        n: (v.vm, dict(v.settings), dict(v.unmodelled), v.span, v.definitions)
        for n, v in ((n, flake.guest(n)) for n in flake.names())
    }
    return flake.names(), guests, check(flake.model())


EDIT_KEYS = ["microvm.mem", "microvm.vcpu", "services.nginx.enable", "networking.domain"]
EDIT_VALUES = st.one_of(
    st.integers(1, 10**7),  # values of every length: later guests move, or do not
    st.booleans(),
    st.text(alphabet="abcxyz-.", min_size=1, max_size=12),
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    edits=st.lists(
        st.tuples(st.integers(0, 3), st.sampled_from(EDIT_KEYS), st.none() | EDIT_VALUES),
        min_size=1,
        max_size=6,
    ),
    layout=st.sampled_from(["multi-guest.nix", "project"]),
)
def test_a_flake_edited_many_times_reads_as_loading_it_afresh(
    tmp_path_factory: pytest.TempPathFactory,
    edits: list[tuple[int, str, object]],
    layout: str,
) -> None:
    """What the editor remembers between edits (guests read again or moved, their
    states, models and problems kept by object) shows what loading the saved files
    shows, after every edit: unchanged guests, moved ones and the edited one."""
    target = tmp_path_factory.mktemp("flake")
    if layout == "project":
        write_project(Flake(guests=[MicroVM(name=f"vm{i}") for i in range(4)]), target)
    else:
        shutil.copyfile(CORPUS / "flakes" / layout, target / "flake.nix")
    flake = FlakeFile.load(target)
    names = flake.names()
    for index, key, value in edits:
        name = names[index % len(names)]
        try:
            if value is None:
                flake.unset(name, key)
            else:
                flake.set(name, key, value)
        except NixgenError:
            continue  # refused (an option it does not set, a value the model refuses)
        flake.save()
        assert _view(flake) == _view(FlakeFile.load(target)), (name, key, value)
