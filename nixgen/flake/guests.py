"""Adding, removing and renaming whole guests, following the flake's own shape."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from nixgen.errors import NixgenError, ValidationError
from nixgen.flake.errors import FlakeEditError
from nixgen.flake.state import (
    locator_of,
    own_module,
    relative,
    resolved,
    short_span,
    show,
)
from nixgen.flake.transaction import Edit, progress
from nixgen.model import Flake, MicroVM
from nixgen.network import plan_networks
from nixgen.nix import edit, outputs
from nixgen.nix.emit import attr_name, to_nix
from nixgen.nix.outputs import FLAKE_NAME
from nixgen.nix.parse import Document
from nixgen.nix.read import DeclaredGuest
from nixgen.render import (
    SOURCE_NAME,
    generated_state,
    guest_module,
    inline_guest_module,
    nix_binding,
    nixos_system,
    runner_packages,
)
from nixgen.settings import HOSTNAME
from nixgen.validate import check


def add_guest(tx: Edit, vm: MicroVM) -> None:
    """Add guest ``vm`` beside the guest it is most like (same system, own module file)."""
    name = vm.name
    _refuse_bad_name(name)
    # The guest as given: what it says may not all be read back (module paths).
    errors = [p for p in check(vm) if not p.warning]
    if errors:
        raise ValidationError(errors)
    refuse_taken(tx, name)
    doc = tx.flake_doc
    guests = list(tx.found.guests)
    neighbour = _pick_neighbour(guests, vm)
    callee = "nixpkgs.lib.nixosSystem"
    system_line: str | None = None  # None: `system = "…";` as render writes it
    args: list[str] = []
    common = ["microvm.nixosModules.microvm"]
    layout_file: Path | None = None
    header = False
    if neighbour is not None:
        callee, system_line, args = _neighbour_call(tx, neighbour, vm)
        common = _common_modules(guests, neighbour)
        own = own_module(neighbour)
        if (
            own is not None
            and own.kind == "file"
            and own.file is not None
            and own.file.stem == neighbour.name
        ):
            layout_file = resolved(own.file).parent / f"{name}.nix"
            header = generated_state(tx.doc(own.file).text) != "foreign"
    if layout_file is not None:
        if layout_file.exists() or layout_file in tx.files.docs:
            raise FlakeEditError(
                f"{relative(layout_file, tx.files.root)} exists already; "
                "nixgen will not overwrite it"
            )
        source = SOURCE_NAME if tx.files.toml is not None else None
        text = guest_module(vm, source=source, inputs=any("inputs" in a for a in args))
        if not header:
            text = text.split("\n", 2)[2]
        tx.files.docs[layout_file] = Document.parse(text, layout_file)
        tx.files.created.add(layout_file)
        tx.original[layout_file] = None
        module_text = to_nix(PurePosixPath(relative(layout_file, tx.files.root)))
    else:
        module_text = inline_guest_module(vm)
    guest_text = nixos_system(
        callee, vm.system, [*common, module_text], args=args, system_line=system_line
    )
    if neighbour is not None:
        node = outputs.binding_node(doc, neighbour.span)
        container = outputs.container_of(node)
        written = outputs.written_keys(doc, node)
        keys = (*written[:-1], name)
        tx.put(edit.insert_binding(doc, container, nix_binding(keys, guest_text), after=written))
    else:
        tx.put(
            edit.insert_binding(
                doc, ("outputs", "nixosConfigurations"), nix_binding([name], guest_text)
            )
        )
    _add_runner(tx, vm, neighbour)
    if tx.files.toml is not None:
        tx.files.toml = tx.files.toml.with_guest(vm)
    tx.reread()
    tx.fresh_sharing()
    state = tx.states.get(name)
    if state is None:
        raise FlakeEditError(f"internal: the new guest {name!r} cannot be read back")


def _neighbour_call(
    tx: Edit, neighbour: DeclaredGuest, vm: MicroVM
) -> tuple[str, str | None, list[str]]:
    callee, bindings = outputs.nixos_system_call(tx.flake_doc, locator_of(neighbour))
    system_line = None
    others: list[str] = []
    for written, text in bindings:
        if written[:1] == ("system",):
            if neighbour.system == vm.system and "\n" not in text:
                system_line = text
            continue
        if written[:1] == ("modules",) or "\n" in text:
            continue
        others.append(text)
    # Only what every guest passes alike (specialArgs = { inherit inputs; }, …).
    common = [a for a in others if all(a in _call_texts(tx, g) for g in tx.found.guests)]
    return callee, system_line, common


def _call_texts(tx: Edit, guest: DeclaredGuest) -> set[str]:
    try:
        _, bindings = outputs.nixos_system_call(tx.flake_doc, locator_of(guest))
    except NixgenError:
        return set()
    return {text for _, text in bindings}


def _add_runner(tx: Edit, vm: MicroVM, neighbour: DeclaredGuest | None) -> None:
    doc = tx.flake_doc
    alike = [g for g in tx.found.guests if g.system == vm.system and g.name != vm.name]
    if neighbour is not None:
        alike.sort(key=lambda g: g.name != neighbour.name)
    for other in alike:
        runners = outputs.runner_bindings(doc, other.name)
        if runners:
            node, ref = runners[-1]
            written = outputs.written_keys(doc, node)
            value = outputs.retarget(doc, outputs.value_of(node), ref, vm.name)
            keys = (*written[:-1], vm.name)
            tx.put(
                edit.insert_binding(
                    doc, outputs.container_of(node), nix_binding(keys, value), after=written
                )
            )
            return
    if generated_state(doc.text) != "foreign":
        text = runner_packages(vm.system, [vm.name], vm.name)
        outputs_set = doc.outputs()
        if outputs_set is not None:
            tx.put(edit.insert_binding(doc, outputs_set, text))
            return
    tx.notes.append(
        f"no runner package was added for {vm.name!r}: to start it with "
        f"`nix run .#{vm.name}`, add packages.{vm.system}.{vm.name} = "
        f"self.nixosConfigurations.{vm.name}.config.microvm.declaredRunner;"
    )


def refuse_taken(tx: Edit, name: str) -> None:
    """Refuse a name a guest or a host of the flake (or of nixgen.toml) has already."""
    if name in tx.found.names() or any(u.name == name for u in tx.found.unreadable):
        raise FlakeEditError(f"the flake already has a guest {name!r}")
    host = tx.found.host(name)
    if host is not None and host.kind == "configuration":
        raise FlakeEditError(
            f"the flake already has a host {name!r} ({short_span(host.span, tx.files.root)}): "
            f"nixosConfigurations.{attr_name(name)} is taken"
        )
    if tx.files.toml is not None and any(
        h.name == name and h.nixos_configuration for h in tx.files.toml.hosts
    ):
        raise FlakeEditError(
            f"{SOURCE_NAME} has a host {name!r} with a full configuration: "
            f"nixosConfigurations.{attr_name(name)} is taken"
        )


def remove_guest(tx: Edit, name: str) -> None:
    """Remove a guest: defaults that point at it, its runner packages, its binding, its own files."""
    state = tx.state(name)
    tx.gone.append(name)
    doc = tx.flake_doc
    guest_node = outputs.binding_node(doc, state.guest.span)
    others = outputs.foreign_references(doc, name, guest_node)
    if others:
        places = "; ".join(
            f"{short_span(doc.span(n), tx.files.root)}: `{doc.text_of(n)}`" for n in others[:5]
        )
        raise FlakeEditError(
            f"guest {name!r} is still referred to elsewhere in {FLAKE_NAME} ({places})",
            hint="remove or change those references first",
        )
    remaining = [g for g in tx.found.guests if g.name != name]
    # 1. defaults that point at the guest: to another guest, or away
    while True:
        doc = tx.flake_doc
        defaults = outputs.default_bindings(doc, name)
        if not defaults:
            break
        node, ref = defaults[0]
        replacement = outputs.replacement_guest(doc, node, ref, remaining, state.guest.system)
        if replacement is None:
            tx.put(progress(doc, outputs.drop_binding(doc, node)))
            tx.notes.append(f"removed `{outputs.key_text(doc, node)}`, which pointed at {name!r}")
        else:
            replaced = edit.apply(
                doc,
                [edit.Replacement(ref.start_byte, ref.end_byte, attr_name(replacement).encode())],
            )
            tx.put(progress(doc, replaced))
            tx.notes.append(f"the default package now points at {replacement!r}")
    # 2. runner packages
    for before, after in outputs.rewrite_runners(tx.flake_doc, name, name, outputs.drop_binding):
        tx.put(progress(before, after))
    # 3. the guest itself
    doc = tx.flake_doc
    node = outputs.binding_node(doc, outputs.guest_span(doc, name))
    tx.put(
        outputs.tidy(
            doc,
            progress(
                doc, edit.unset(doc, outputs.container_of(node), outputs.written_keys(doc, node))
            ),
        )
    )
    # 4. its own module files
    for top in state.guest.modules:
        for m in top.walk():
            if m.kind != "file" or m.file is None:
                continue
            file = resolved(m.file)
            if tx.file_owners.get(file, set()) - {name}:
                continue
            if file not in tx.files.docs and not file.is_file():
                continue  # a module file that is missing already
            text = tx.doc(file).text
            rel = relative(file, tx.files.root)
            if generated_state(text) == "pristine" and file.stem == name:
                tx.files.removed.add(file)
                tx.files.docs.pop(file, None)
            else:
                tx.notes.append(f"{rel} is no longer used by any guest; nixgen left it in place")
    if tx.files.toml is not None:
        toml = tx.files.toml.without_guest(name)
        tx.notes.extend(_moved_addresses(tx.files.toml, toml, name))
        tx.files.toml = toml
    tx.reread()
    tx.fresh_sharing()


def rename_guest(tx: Edit, old: str, new: str) -> None:
    """Rename a guest: its module file, the references to it, its runner keys, its binding, its host name."""
    state = tx.state(old)
    _refuse_bad_name(new)
    refuse_taken(tx, new)
    if new == old:
        return
    tx.gone.append(old)
    # 1. its own module file vms/<old>.nix → vms/<new>.nix
    for top in state.guest.modules:
        if top.kind != "file" or top.file is None or top.file.stem != old:
            continue
        file = resolved(top.file)
        if tx.file_owners.get(file, set()) - {old}:
            continue
        target = file.parent / f"{new}.nix"
        if target.exists() or target in tx.files.docs:
            tx.notes.append(f"{relative(file, tx.files.root)} keeps its name: {target.name} exists")
            continue
        moved = Document.parse(tx.doc(file).source, target)
        doc = tx.flake_doc
        span = top.span
        literal = to_nix(PurePosixPath(relative(target, tx.files.root)))
        if doc.source[span.start : span.end].decode() != top.text:
            continue
        tx.put(edit.apply(doc, [edit.Replacement(span.start, span.end, literal.encode())]))
        tx.files.docs[target] = moved
        tx.files.docs.pop(file, None)
        tx.files.created.add(target)
        tx.files.removed.add(file)
        tx.files.moved_from[target] = file
        tx.original.setdefault(target, None)
    # 2. references (self.nixosConfigurations.old…, self.packages.<system>.old)
    doc = tx.flake_doc
    reps = [
        edit.Replacement(ref.start_byte, ref.end_byte, attr_name(new).encode())
        for _, ref in outputs.references(doc, old)
    ]
    if reps:
        tx.put(edit.apply(doc, reps))
    # 3. runner package keys (step 2 made their values refer to the new name)
    for before, after in outputs.rewrite_runners(
        tx.flake_doc, new, old, lambda d, node: outputs.rename_binding(d, node, old, new)
    ):
        tx.put(progress(before, after))
    # 4. the guest binding
    doc = tx.flake_doc
    node = outputs.binding_node(doc, outputs.guest_span(doc, old))
    if node.type != "binding":
        raise FlakeEditError(
            f"{short_span(doc.span(node), tx.files.root)}: guest {old!r} is inherited (`inherit {old};`)",
            hint=f"rename it by hand: write `{new} = {old};` in nixosConfigurations",
        )
    tx.put(outputs.rename_binding(doc, node, old, new))
    tx.reread()
    tx.fresh_sharing()
    # 5. the host name
    renamed = tx.states.get(new)
    if renamed is None:
        raise FlakeEditError(f"internal: guest {new!r} cannot be read back after the rename")
    defs = renamed.guest.definitions.get(HOSTNAME, ())
    if len(defs) == 1 and defs[0].value == old:
        tx.put_option(new, tuple(HOSTNAME.split(".")), new)
    elif defs:
        tx.notes.append(f"networking.hostName of {new!r} is left as written: {show(defs[0].value)}")
    # 6. nixgen.toml: the same guest under the new name (its hosts and networks
    #    follow), keeping its MAC addresses
    if tx.files.toml is not None:
        toml = tx.files.toml.rename_guest(old, new)
        tx.notes.extend(_renamed_on_hosts(tx.files.toml, toml, old, new))
        tx.files.toml = toml
        tx.files.toml_renamed[new] = tx.files.toml_renamed.pop(old, old)
        tx.renamed[new] = old
        tx.requested.setdefault(new, {})[HOSTNAME] = new


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


def _pick_neighbour(guests: Sequence[DeclaredGuest], vm: MicroVM) -> DeclaredGuest | None:
    """The guest a new one is modelled on: same system, own module file if any has one."""
    if not guests:
        return None
    same = [g for g in guests if g.system == vm.system] or list(guests)

    def own_file(g: DeclaredGuest) -> bool:
        own = own_module(g)
        return (
            own is not None
            and own.kind == "file"
            and own.file is not None
            and own.file.stem == g.name
        )

    with_files = [g for g in same if own_file(g)]
    return (with_files or same)[-1]


def _common_modules(guests: Sequence[DeclaredGuest], neighbour: DeclaredGuest) -> list[str]:
    """Modules every guest lists alike (microvm's module, a shared ./common.nix, …)."""
    own = own_module(neighbour)
    out = []
    for m in neighbour.modules:
        if m is own or "\n" in m.text:
            continue
        shareable = m.kind == "reference" or (len(guests) > 1 and m.kind in ("file", "inline"))
        if shareable and all(any(o.text == m.text for o in g.modules) for g in guests):
            out.append(m.text)
    return out


def _refuse_bad_name(name: str) -> None:
    """A new guest name must be a host name (it is networking.hostName) and not
    ``default``, before any file name or attribute is made of it."""
    problems = [p for p in check(MicroVM(name=name)) if p.path.endswith(".name") and not p.warning]
    if problems:
        raise ValidationError(problems)
