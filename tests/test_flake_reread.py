"""Reading a flake again after an edit reads only what the edit can change, and gives
exactly what reading the whole flake gives (nixgen.nix.read.reread_guests)."""

from __future__ import annotations

import pickle
import shutil
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nixgen import Flake, FlakeFile, MicroVM, NixgenError, check
from nixgen.flake import transaction
from nixgen.flake.state import read_files
from nixgen.nix import edit, read
from nixgen.nix.emit import to_nix
from nixgen.nix.parse import Document
from nixgen.nix.read import (
    DeclaredGuest,
    FlakeGuests,
    Module,
    Setting,
    read_guests,
    reread_guests,
)
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
        n: (v.vm, dict(v.settings), dict(v.unmodelled), v.span, v.definitions, v.modules)
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


# --------------------------------------------------------------------------- places after edits

# Guests of every shape the editor moves: inline modules, a module file, a let-bound
# module (outside the guest's binding), imports of a file, `inherit system`.
MOVING_FLAKE = """{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
  inputs.microvm.url = "github:microvm-nix/microvm.nix";

  outputs = { self, nixpkgs, microvm, ... }:
    let
      system = "x86_64-linux";
      shared = {
        services.openssh.enable = true;
      };
    in
    {
      nixosConfigurations = {
        a = nixpkgs.lib.nixosSystem {
          inherit system;
          modules = [
            microvm.nixosModules.microvm
            { networking.hostName = "a"; microvm.mem = 512; }
          ];
        };
        b = nixpkgs.lib.nixosSystem {
          inherit system;
          modules = [
            microvm.nixosModules.microvm
            ./vms/b.nix
            {
              networking.hostName = "b";
              microvm = {
                mem = 512;
                vcpu = 1;
              };
            }
          ];
        };
        c = nixpkgs.lib.nixosSystem {
          inherit system;
          modules = [ microvm.nixosModules.microvm shared { networking.hostName = "c"; microvm.mem = 512; } ];
        };
        d = nixpkgs.lib.nixosSystem {
          system = "x86_64-linux";
          modules = [
            microvm.nixosModules.microvm
            {
              imports = [ ./vms/d.nix { microvm.vcpu = 2; } ];
              networking.hostName = "d";
              microvm.mem = 512;
            }
          ];
        };
        e = nixpkgs.lib.nixosSystem {
          inherit system;
          modules = [ microvm.nixosModules.microvm { networking.hostName = "e"; microvm.mem = 512; } ];
        };
      };
    };
}
"""


def _moving_flake(tmp_path: Path) -> Path:
    (tmp_path / "vms").mkdir()
    (tmp_path / "vms" / "b.nix").write_text('{ microvm.hypervisor = "qemu"; }\n')
    (tmp_path / "vms" / "d.nix").write_text(
        '{ lib, ... }:\n{\n  microvm.hypervisor = "qemu";\n  microvm.volumes = [ ];\n}\n'
    )
    (tmp_path / "flake.nix").write_text(MOVING_FLAKE)
    return (tmp_path / "flake.nix").resolve()


def _places(found: object) -> list[tuple[object, ...]]:
    """Every place of every guest: its binding and system, each module, each setting."""
    assert isinstance(found, FlakeGuests)
    out: list[tuple[object, ...]] = []
    for g in found.guests:
        out.append((g.name, "binding", g.span, g.system_span))
        for top in g.modules:
            for m in top.walk():
                out.append((g.name, m.text[:30], m.span))
                out.extend((g.name, s.key, s.span, s.binding) for s in m.settings)
        out.extend((g.name, key, *(d.span for d in defs)) for key, defs in g.definitions.items())
    return out


def test_places_after_edits_that_move_guests_are_those_of_a_fresh_read(tmp_path: Path) -> None:
    """Edits that add bytes, add lines, remove lines, in the flake and in a module file,
    each read again on top of the last (the guests they move not looked at in between):
    every place of every guest — line, column, bytes — is what reading the saved text
    afresh gives, in the flake and in the module files."""
    path = _moving_flake(tmp_path)
    doc = Document.load(path)
    found = read_guests(doc)
    modules = dict(found.documents)
    steps: list[tuple[FlakeGuests, Document, dict[Path, Document]]] = []

    def edit_flake(guest: str, key: str, text: str) -> None:
        nonlocal doc, found
        setting = found[guest].definitions[key][0]
        assert setting.locator is not None and setting.span.file == path
        new = edit.set_value(doc, setting.locator, setting.path, text)
        again = reread_guests(found, doc, new, documents=modules)
        assert again is not None, f"{guest} {key}: read whole"
        before = [g for g in found.guests if g.span.end <= setting.span.start]
        assert all(again[g.name] is g for g in before)  # nothing before the edit changed
        doc, found = new, again
        steps.append((found, doc, dict(modules)))

    edit_flake("a", "microvm.mem", "4096")  # longer, same lines
    edit_flake("b", "microvm.vcpu", "[\n  1\n  2\n  3\n]")  # adds lines
    edit_flake("b", "microvm.vcpu", "3")  # removes them again
    edit_flake("c", "microvm.mem", "65536")  # a guest with a module bound outside it
    edit_flake("a", "microvm.mem", "1")  # shorter
    # An edit in a module file: the flake does not move, the file's guest is read again.
    module = (tmp_path / "vms" / "d.nix").resolve()
    setting = found["d"].definitions["microvm.hypervisor"][0]
    assert setting.span.file == module and setting.locator is not None
    modules[module] = edit.set_value(
        modules[module], setting.locator, setting.path, '"firecracker"'
    )
    again = reread_guests(found, doc, doc, changed=module, documents=modules)
    assert again is not None
    found = again
    steps.append((found, doc, dict(modules)))
    edit_flake("d", "microvm.mem", "[\n  1\n]")  # the guest with the edited file, in the flake
    edit_flake("a", "networking.hostName", '"a-longer-name"')

    # Only now look at the places: guests moved several times without being looked at.
    for index, (step, step_doc, step_modules) in enumerate(steps):
        fresh = read_guests(step_doc, documents=step_modules)
        assert _places(step) == _places(fresh), f"step {index}"
        assert step == fresh, f"step {index}"
    # What each place names is where it is in the text.
    final_doc = steps[-1][1]
    for g in found.guests:
        assert final_doc.source[g.span.start : g.span.end].startswith(g.name.encode())
        for defs in g.definitions.values():
            for s in defs:
                text = final_doc.source if s.span.file == path else modules[module].source
                if s.span.file in (path, module):
                    assert text[s.binding.start : s.binding.end].rstrip(b";").strip()


def test_a_moved_guest_reads_as_the_same_guest_read_afresh(tmp_path: Path) -> None:
    """A guest moved by an edit before it, asked for anything — its modules, its
    settings' places, a copy, its fields — answers as the guest read from the new text."""
    path = _moving_flake(tmp_path)
    doc = Document.load(path)
    found = read_guests(doc)
    setting = found["a"].definitions["microvm.mem"][0]
    assert setting.locator is not None
    new = edit.set_value(doc, setting.locator, setting.path, "[\n  4096\n]")
    again = reread_guests(found, doc, new, documents=found.documents)
    assert again is not None
    fresh = read_guests(new, documents=found.documents)
    moved = again["e"]
    assert pickle.loads(pickle.dumps(moved)) == fresh["e"]
    assert attrs.evolve(again["d"], problems=()) == attrs.evolve(fresh["d"], problems=())
    assert attrs.asdict(again["b"]) == attrs.asdict(fresh["b"])
    assert repr(again["c"]) == repr(fresh["c"])
    assert again["e"].unread == fresh["e"].unread
    assert again["e"].setting("microvm.mem") == fresh["e"].setting("microvm.mem")
    # made once, and shared as the reader shares them: a definition is its module's setting
    assert moved.modules is moved.modules
    inline = moved.modules[1]
    assert moved.definitions["microvm.mem"][0] is inline.settings[1]
    with pytest.raises(AttributeError):
        _ = again["d"].no_such_field  # type: ignore[attr-defined]


def _inline_flake(guests: int) -> str:
    body = "".join(
        f"""        vm{i} = nixpkgs.lib.nixosSystem {{
          system = "x86_64-linux";
          modules = [
            microvm.nixosModules.microvm
            {{
              networking.hostName = "vm{i}";
              microvm.hypervisor = "qemu";
              microvm.mem = 1024;
            }}
          ];
        }};
"""
        for i in range(guests)
    )
    return (
        '{\n  inputs.microvm.url = "github:microvm-nix/microvm.nix";\n'
        "  outputs = { self, nixpkgs, microvm, ... }: {\n    nixosConfigurations = {\n"
        + body
        + "    };\n  };\n}\n"
    )


def test_an_edit_that_moves_guests_reuses_what_was_worked_out_for_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a length-changing edit the guests after it move; the next edit looks at
    none of them again: where they read settings from outside their binding is not
    worked out again, and their moved modules are not made (only the edited guest's)."""
    (tmp_path / "flake.nix").write_text(_inline_flake(40))
    flake = FlakeFile.load(tmp_path)
    outside: list[str] = []
    made: list[str] = []
    original_outside = transaction._outside_places
    original_parts = read._Mover.parts

    def count_outside(config: DeclaredGuest) -> tuple[tuple[Path | None, int], ...]:
        outside.append(config.name)
        return original_outside(config)

    def count_parts(
        mover: object, guest: DeclaredGuest
    ) -> tuple[tuple[Module, ...], dict[str, tuple[Setting, ...]]]:
        made.append(guest.name)
        return original_parts(mover, guest)  # type: ignore[arg-type]

    monkeypatch.setattr(transaction, "_outside_places", count_outside)
    monkeypatch.setattr(read._Mover, "parts", count_parts)
    flake.set("vm10", "microvm.mem", 12345)  # longer: vm11 … vm39 move
    assert len(outside) == 40  # the first edit works it out for every guest
    for value in (512, 65536, 1):
        outside.clear()
        made.clear()
        flake.set("vm10", "microvm.mem", value)
        flake.save()
        # only the guest the last edit read again; none of the 29 it moved
        assert outside == ["vm10"] and made in ([], ["vm10"])
    assert flake.guest("vm39").span == FlakeFile.load(tmp_path).guest("vm39").span
    assert flake.guest("vm39").definitions == FlakeFile.load(tmp_path).guest("vm39").definitions


def test_a_moved_guest_with_an_undecided_option_names_its_new_lines(tmp_path: Path) -> None:
    """An option a moved guest defines twice at the same priority is undecided, and
    the message says where both definitions are: after an edit that adds lines before
    it, the lines they are on now."""
    text = _inline_flake(3).replace(
        "              microvm.mem = 1024;\n            }\n          ];\n        };\n        vm2 =",
        "              microvm.mem = 1024;\n            }\n"
        "            { microvm.vcpu = 1; }\n            { microvm.vcpu = 2; }\n"
        "          ];\n        };\n        vm2 =",
    )
    (tmp_path / "flake.nix").write_text(text)
    flake = FlakeFile.load(tmp_path)
    before = flake.guest("vm1").unmodelled["microvm.vcpu"].reason
    assert "flake.nix:25, flake.nix:26" in before
    flake.set("vm0", "services.nginx.virtualHosts", {"a.example": {"root": "/srv/a"}})
    flake.save()
    after = flake.guest("vm1").unmodelled["microvm.vcpu"].reason
    assert after != before
    assert after == FlakeFile.load(tmp_path).guest("vm1").unmodelled["microvm.vcpu"].reason


def test_moved_guests_looked_at_from_several_threads_at_once_read_right(tmp_path: Path) -> None:
    """The modules of a moved guest are made on first use: threads asking at once all
    get them, as read afresh (none sees a guest half made)."""
    (tmp_path / "flake.nix").write_text(_inline_flake(30))
    doc = Document.load((tmp_path / "flake.nix").resolve())
    found = read_guests(doc)
    setting = found["vm0"].definitions["microvm.mem"][0]
    assert setting.locator is not None
    new = edit.set_value(doc, setting.locator, setting.path, "[\n  2048\n]")
    again = reread_guests(found, doc, new)
    assert again is not None
    fresh = read_guests(new)
    barrier = threading.Barrier(6)

    def look() -> list[object]:
        barrier.wait()
        return [(g.definitions, g.modules) for g in again.guests]

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads take turns inside the making of a guest
    try:
        with ThreadPoolExecutor(6) as pool:
            seen = list(pool.map(lambda _: look(), range(6)))
    finally:
        sys.setswitchinterval(interval)
    expected = [(g.definitions, g.modules) for g in fresh.guests]
    assert all(s == expected for s in seen)
