"""Which guests a project declares, whatever writes them.

A nixgen project names its guests in ``nixgen.toml`` (read without Nix and
without the flake reader: ``nixgen list --no-eval`` stays quick).  Any other
flake is read as text with :class:`nixgen.flake.FlakeFile` (hosts are not
guests); where that leaves computed parts (``lib.genAttrs``, flake-parts, a
``mkVM`` helper …) and evaluating is allowed, the one evaluation of
:mod:`nixgen.evaluate` says which configurations are guests, with their
hypervisor, vCPUs and memory.  Without it, ``notes`` say what was not read.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from nixgen._repr import attrs_repr
from nixgen.errors import NixgenError

if TYPE_CHECKING:
    from nixgen.flake import FlakeFile
    from nixgen.nixcmd import NixRunner

__all__ = ["Declaration", "GuestFacts", "declaration"]


@attrs.frozen
class GuestFacts:
    """What the declaration says of a guest's size (None: not known without building)."""

    hypervisor: str | None = None
    vcpu: int | None = None
    mem: int | None = None

    __repr__ = attrs_repr


@attrs.frozen
class Declaration:
    """The guests a project declares, in the order it declares them.

    ``source`` says who told: ``nixgen.toml``, ``flake`` (the text),
    ``evaluation`` (``nix eval``) or ``none`` (no project).  ``complete`` is
    False when part of the flake was not read (then ``notes`` say what and
    why): a name missing from ``names`` may still be a guest.
    """

    names: tuple[str, ...] = ()
    facts: Mapping[str, GuestFacts] = attrs.field(factory=dict)
    source: str = "none"
    complete: bool = True
    notes: tuple[str, ...] = ()

    __repr__ = attrs_repr


def declaration(project: Path | None, *, nix: NixRunner | None, evaluate: bool) -> Declaration:
    """The guests of the project in ``project`` (see :class:`Declaration`)."""
    if project is None:
        return Declaration()
    from nixgen.datafile import SOURCE_NAME

    if (project / SOURCE_NAME).is_file():
        return _from_toml(project)
    if not (project / "flake.nix").is_file():
        return Declaration()
    return _from_flake(project, nix=nix, evaluate=evaluate)


def _from_toml(project: Path) -> Declaration:
    from nixgen.datafile import declared_guests  # the names only: no model to build

    return Declaration(names=tuple(declared_guests(project)), source="nixgen.toml")


def _from_flake(project: Path, *, nix: NixRunner | None, evaluate: bool) -> Declaration:
    from nixgen.flake import FlakeFile

    try:
        flake = FlakeFile.load(project)
    except NixgenError as err:
        return Declaration(
            source="flake",
            complete=False,
            notes=(f"flake.nix not read: {str(err).splitlines()[0]}",),
        )
    written = _written(flake)
    unread = _unread(flake)
    # The text tells all unless it leaves computed parts, or finds no configuration
    # at all (a nixosConfigurations the reader does not see may compute guests).
    if not unread and (written.names or flake.hosts()):
        return written
    if not evaluate:
        notes = tuple(f"{n} (run without --no-eval)" for n in unread)
        return attrs.evolve(written, complete=not unread, notes=notes)
    from nixgen.evaluate import evaluate_flake

    try:
        evaluated = evaluate_flake(project, nix=nix)
    except NixgenError as err:
        why = f"not evaluated: {err.message}" + (f" (hint: {err.hint})" if err.hint else "")
        return attrs.evolve(written, complete=not unread, notes=(*unread, why))
    guests = {n: c for n, c in evaluated.configurations.items() if c.kind == "guest"}
    failed = evaluated.failed()
    # A guest written literally that does not evaluate is still listed (its run says why).
    names = [*guests, *(n for n in written.names if n in failed)]
    return Declaration(
        names=tuple(names),
        facts={name: _facts(config.summary) for name, config in guests.items()},
        source="evaluation",
        complete=not failed,
        notes=tuple(f"{n}: it does not evaluate (`nixgen show {n}` says why)" for n in failed),
    )


def _written(flake: FlakeFile) -> Declaration:
    """The guests written literally, with the size their own text gives."""
    facts = {}
    for guest in flake.guests():
        settings = guest.settings
        facts[guest.name] = _facts(
            {
                "hypervisor": settings.get("microvm.hypervisor"),
                "vcpu": settings.get("microvm.vcpu"),
                "mem": settings.get("microvm.mem"),
            }
        )
    return Declaration(names=tuple(flake.names()), facts=facts, source="flake")


def _unread(flake: FlakeFile) -> list[str]:
    """What the text leaves unknown, in the flake layer's words, and that nix would read it."""
    notes = []
    for item in flake.unreadable:
        who = f"guest {item.name}" if item.name is not None else "guests"
        where = ""
        if item.span is not None and item.span.file is not None:
            try:
                shown = item.span.file.resolve().relative_to(flake.root).as_posix()
            except ValueError:
                shown = str(item.span.file)
            where = f" ({shown}:{item.span.line})"
        notes.append(f"{who} not read{where}: {item.reason}; reading them needs nix")
    return notes


def _facts(summary: Mapping[str, object]) -> GuestFacts:
    """Only values of the right type: a ``lib.mkDefault …`` as written is no size."""
    hypervisor = summary.get("hypervisor")
    vcpu = summary.get("vcpu")
    mem = summary.get("mem")
    return GuestFacts(
        hypervisor if isinstance(hypervisor, str) else None,
        vcpu if isinstance(vcpu, int) and not isinstance(vcpu, bool) else None,
        mem if isinstance(mem, int) and not isinstance(mem, bool) else None,
    )
