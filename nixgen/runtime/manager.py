"""The guests of a project: which there are, their status, and updates.

:class:`Runtime` ties a flake folder (the project) to a state root, by
default ``<project>/.nixgen/vms``; point it at ``/var/lib/microvms`` to
read guests that microvm.nix's host module manages (``current`` and
``booted`` links in the same layout).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import attrs

from nixgen._repr import attrs_repr
from nixgen.buildcache import STATE_DIR
from nixgen.errors import NixgenError
from nixgen.runtime.builder import Builder
from nixgen.runtime.console import DEFAULT_BOOT_MARKER
from nixgen.runtime.errors import GuestError
from nixgen.runtime.guest import (
    DEFAULT_BOOT_TIMEOUT,
    DEFAULT_LOCK_TIMEOUT,
    DEFAULT_STOP_TIMEOUT,
    DestroyResult,
    GuestRuntime,
    GuestStatus,
    _default_builder,
)
from nixgen.runtime.state import StateDir

if TYPE_CHECKING:
    from nixgen.build import BuildResult
    from nixgen.model import Flake
    from nixgen.network import Attachment
    from nixgen.nixcmd import Event, NixRunner
    from nixgen.runtime.declared import Declaration, GuestFacts

__all__ = [
    "STATE_SUBDIR",
    "Runtime",
    "UpdateResult",
    "default_state_root",
    "external_state_root",
]

#: Under the project's ``.nixgen`` folder.
STATE_SUBDIR = "vms"


def default_state_root(project: Path) -> Path:
    """``<project>/.nixgen/vms``."""
    return project / STATE_DIR / STATE_SUBDIR


def external_state_root(project: Path) -> Path:
    """Where the state of a project outside git lives (``.nixgen/vms`` links there).

    Nix copies a ``path:`` flake folder whole, sockets and volume images
    included, and refuses sockets; a symlink is copied as a symlink.
    """
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    import hashlib

    digest = hashlib.sha256(str(project).encode()).hexdigest()[:12]
    return base / "nixgen" / f"{project.name}-{digest}" / STATE_SUBDIR


@attrs.frozen
class UpdateResult:
    """What ``nixgen update`` did to one guest."""

    name: str
    old: Path | None
    new: Path
    #: whether ``current`` now points at another runner
    changed: bool
    running: bool
    restarted: bool = False
    #: ``nix store diff-closures OLD NEW`` (None when not asked for or not possible)
    diff: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in attrs.asdict(self, recurse=False).items()
        }

    __repr__ = attrs_repr


def _resolved(value: Path | str | None) -> Path | None:
    return None if value is None else Path(value).resolve()


def _absolute(value: Path | str | None) -> Path | None:
    return None if value is None else Path(value).absolute()


@attrs.define
class Runtime:
    """Run and manage the guests of one project.

    ``Runtime("my-vms").guest("web").start(wait=True)``;
    ``Runtime("my-vms").status()``; ``Runtime("my-vms").update(["web"], restart=True)``.
    ``project`` may be None when only ``state_root`` is known (guests then
    start what ``current`` points at, and nothing is evaluated).
    """

    project: Path | None = attrs.field(default=Path(), converter=_resolved)
    state_root: Path | None = attrs.field(default=None, converter=_absolute)
    nix: NixRunner | None = None
    boot_marker: str = DEFAULT_BOOT_MARKER
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    on_event: Callable[[Event], None] | None = None
    gc_roots: bool = True
    #: how guests are built and evaluated (default: :mod:`nixgen.build`, imported when asked for)
    builder: Builder = attrs.field(factory=_default_builder)

    _default_root: bool = attrs.field(default=False, init=False)

    def __attrs_post_init__(self) -> None:
        if self.state_root is None:
            if self.project is None:
                raise NixgenError(
                    "a Runtime needs a project folder or a state folder",
                    hint="pass project=DIR, or state_root=/var/lib/microvms",
                )
            self.state_root = default_state_root(self.project)
            self._default_root = True

    def _prepare_root(self) -> None:
        """Outside git, make ``.nixgen/vms`` a link to a folder nix will not copy."""
        root = self.root
        if not self._default_root or self.project is None or root.is_symlink() or root.exists():
            return
        from nixgen.build import flake_ref

        if not flake_ref(self.project).startswith("path:"):
            return  # git: nix sees tracked files only, and .nixgen/ is never tracked
        target = external_state_root(self.project)
        target.mkdir(parents=True, exist_ok=True)
        root.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):  # another nixgen was quicker
            root.symlink_to(target, target_is_directory=True)

    @property
    def root(self) -> Path:
        assert self.state_root is not None
        return self.state_root

    # ---------------------------------------------------------------- guests

    def guest(self, name: str) -> GuestRuntime:
        if not name or "/" in name or name in (".", ".."):
            raise GuestError(name, f"{name!r} is not a guest name")
        self._prepare_root()
        return GuestRuntime(
            name=name,
            state=StateDir.under(self.root, name),
            project=self.project,
            nix=self.nix,
            boot_marker=self.boot_marker,
            lock_timeout=self.lock_timeout,
            on_event=self.on_event,
            gc_roots=self.gc_roots,
            builder=self.builder,
            tap_bridges=lambda: self.tap_bridges(name),
            network_addresses=lambda: self.addresses(name),
        )

    def addresses(self, name: str) -> list[str]:
        """The guest's static addresses on the project's networks (IPv4 first)."""
        found = [a.address(v) for a in self.attachments(name) for v in (4, 6)]
        return [str(address.ip) for address in found if address is not None]

    def attachments(self, name: str) -> tuple[Attachment, ...]:
        """The guest's places on the project's networks (none without a nixgen.toml)."""
        from nixgen.network import plan_networks

        flake = self._flake()
        return plan_networks(flake).of_guest(name) if flake is not None else ()

    def tap_bridges(self, name: str) -> dict[str, str]:
        """Tap id → the bridge of the network the model puts it on."""
        from nixgen.network import plan_networks

        flake = self._flake()
        if flake is None:
            return {}
        networks = {(h.name, n.name): n for h in flake.hosts for n in h.networks}
        return {
            a.id: networks[(a.host, a.network)].bridge_name
            for a in plan_networks(flake).of_guest(name)
            if a.type == "bridge" and (a.host, a.network) in networks
        }

    def _flake(self) -> Flake | None:
        if self.project is None:
            return None
        from nixgen.project import Project

        try:
            return Project.at(self.project).load()
        except NixgenError:
            return None

    def declaration(self, *, evaluate: bool = False) -> Declaration:
        """The guests the project declares: its ``nixgen.toml``'s, else those its
        flake writes literally, and with ``evaluate`` those it computes (one
        ``nix eval``); the ``notes`` say what was not read (see
        :mod:`nixgen.runtime.declared`)."""
        from nixgen.runtime.declared import declaration

        return declaration(self.project, nix=self.nix, evaluate=evaluate)

    def declared(self, *, evaluate: bool = False) -> list[str]:
        """The names of :meth:`declaration` (empty without a project)."""
        return list(self.declaration(evaluate=evaluate).names)

    def known(self) -> list[str]:
        """Guests with a state folder under the state root."""
        try:
            entries = sorted(self.root.iterdir())
        except OSError:
            return []
        return [e.name for e in entries if e.is_dir() and StateDir(e, e.name).exists]

    def names(self, extra: Sequence[str] = (), *, evaluate: bool = False) -> list[str]:
        """Every guest nixgen knows of: declared ones first, then state folders."""
        declared = self.declared(evaluate=evaluate)
        return list(dict.fromkeys([*declared, *extra, *self.known()]))

    # ---------------------------------------------------------------- destroy

    def destroy_plan(self, name: str) -> list[Path]:
        """What :meth:`destroy` would remove: the state folder, the guest's volumes
        outside it (absolute ``image`` paths in the project's model) and the
        build's GC root (``.nixgen/gcroots/NAME``); only what exists."""
        guest = self.guest(name)
        found = [p for p in self._outside_files(name) if p.is_file() or p.is_symlink()]
        if guest.state.path.is_dir():
            found.append(guest.state.path)
        return found

    def _outside_files(self, name: str) -> list[Path]:
        files: list[Path] = []
        flake = self._flake()
        vm = next((g for g in flake.guests if g.name == name), None) if flake else None
        for volume in vm.volumes if vm is not None else ():
            image = Path(volume.image)
            if image.is_absolute() and not str(image).startswith("/nix/store/"):
                files.append(image)
        if self.project is not None:
            files.append(self.project / STATE_DIR / "gcroots" / name)
        return files

    def destroy(
        self, name: str, *, stop: bool = False, timeout: float = DEFAULT_STOP_TIMEOUT
    ) -> DestroyResult:
        """Remove guest ``name``'s state, volumes and GC roots (see :meth:`destroy_plan`).

        The flake is not touched: ``nixgen rm NAME`` removes the guest from it.
        """
        extra = [p for p in self._outside_files(name) if p.is_file() or p.is_symlink()]
        return self.guest(name).destroy(extra=extra, stop=stop, timeout=timeout)

    # ---------------------------------------------------------------- evaluation

    def expected_runners(self, names: Sequence[str] | None = None) -> dict[str, Path]:
        """The runner each guest's flake evaluates to now, without building.

        Free when the build cache shows the flake unchanged since the last
        build; otherwise one ``nix eval`` for all of them.
        """
        if self.project is None:
            return {}
        hit = self.builder.cached(self.project, names, nix=self.nix)
        if hit is not None:
            return {n: r.runner for n, r in hit.items()}
        data = self.builder.evaluate(
            self.project, list(names) if names is not None else None, nix=self.nix
        )
        return {n: Path(info["runnerOut"]) for n, info in data.items()}

    def status(
        self,
        names: Sequence[str] | None = None,
        *,
        evaluate: bool = True,
        live: bool = True,
        tail_lines: int = 10,
        declaration: Declaration | None = None,
    ) -> list[GuestStatus]:
        """The status of ``names`` (default: every known guest).

        ``declaration`` (see :meth:`declaration`; read here when None) names
        the guests of the project, and gives the hypervisor, vCPUs and memory
        of those not built yet.

        With ``evaluate``, *outdated* is decided against what the flake
        evaluates to now; an evaluation that fails leaves it unknown and says
        why in each guest's ``notes``.
        """
        found = declaration if declaration is not None else self.declaration(evaluate=evaluate)
        wanted = list(names) if names is not None else [*found.names, *self.known()]
        wanted = list(dict.fromkeys(wanted))
        expected: dict[str, Path] = {}
        notes = [n for n in found.notes if n.startswith("not evaluated")]
        if evaluate and self.project is not None and wanted and not notes:
            # Only guests the flake has: a state folder may outlive its guest.
            evaluable = [n for n in wanted if n in found.names] if found.names else None
            try:
                if evaluable != []:
                    expected = self.expected_runners(evaluable)
            except NixgenError as err:
                first = str(err).splitlines()[0]
                notes.append(f"not evaluated: {first}")
        statuses = [
            self.guest(name).status(
                expected=expected.get(name), live=live, tail_lines=tail_lines, notes=notes
            )
            for name in wanted
        ]
        return [_with_facts(s, found.facts.get(s.name)) for s in statuses]

    # ---------------------------------------------------------------- update

    def update(
        self,
        names: Sequence[str] | None = None,
        *,
        restart: bool = False,
        diff: bool = True,
        stop_timeout: float = DEFAULT_STOP_TIMEOUT,
        wait: bool = False,
        boot_timeout: float = DEFAULT_BOOT_TIMEOUT,
        jobs: int | Literal["auto"] | None = None,
    ) -> list[UpdateResult]:
        """Rebuild guests (in one nix build) and switch their ``current`` links.

        With ``restart``, every running guest that booted another runner than
        its new ``current`` is restarted; other guests are left alone.
        ``diff`` adds ``nix store diff-closures OLD NEW`` for each change.
        """
        if self.project is None:
            raise NixgenError(
                "nixgen update needs the project (flake folder) to build from",
                hint="run it in the project folder, or pass --flake DIR",
            )
        wanted = list(names) if names else self.names(evaluate=True)
        if not wanted:
            raise NixgenError(
                f"no guests to update in {self.project}",
                hint="name the guests: nixgen update NAME…",
            )
        from nixgen.build import flake_ref

        guests = {name: self.guest(name) for name in wanted}
        with contextlib.ExitStack() as stack:
            for name in sorted(guests):  # one order for everyone: no deadlocks
                stack.enter_context(guests[name].state.lock(self.lock_timeout))
            old = {name: g.runner() for name, g in guests.items()}
            built = self.builder.build(
                self.project, wanted, nix=self.nix, jobs=jobs, on_event=self.on_event
            )
            results: list[UpdateResult] = []
            for name, guest in guests.items():
                new = built[name].runner
                changed = guest.set_current(new)
                guest.state.set_flake_ref(flake_ref(self.project))
                results.append(
                    UpdateResult(
                        name=name,
                        old=old[name],
                        new=new,
                        changed=changed,
                        running=guest.is_running(),
                        diff=self._diff(old[name], new) if diff and changed else None,
                    )
                )
        if restart:
            results = [self._restart_if_stale(r, stop_timeout, wait, boot_timeout) for r in results]
        return results

    def _restart_if_stale(
        self, result: UpdateResult, stop_timeout: float, wait: bool, boot_timeout: float
    ) -> UpdateResult:
        guest = self.guest(result.name)
        status = guest.status(live=False)
        if not (status.running and status.managed_by == "nixgen" and status.stale):
            return result
        guest.restart(timeout=stop_timeout, wait=wait, boot_timeout=boot_timeout)
        return attrs.evolve(result, restarted=True, running=True)

    def _diff(self, old: Path | None, new: Path) -> str | None:
        """``nix store diff-closures`` between two runners, where nix can tell."""
        if old is None or not (str(old).startswith("/nix/store/") and old.exists()):
            return None
        if not str(new).startswith("/nix/store/"):
            return None
        from nixgen.nixcmd import NixRunner

        runner = self.nix or NixRunner()
        try:
            dialect = runner.dialect()
            if not dialect.has_store_diff_closures:
                return None
            result = runner.run(
                dialect.diff_closures_args(str(old), str(new)), overrides=False, check=False
            )
        except NixgenError:
            return None
        return result.stdout.rstrip("\n") if result.ok else None

    # ---------------------------------------------------------------- build

    def build(self, names: Sequence[str] | None = None) -> dict[str, BuildResult]:
        """Build guests (no-op when nothing changed) without touching their state."""
        if self.project is None:
            raise NixgenError("nothing to build: this Runtime has no project folder")
        return self.builder.build(self.project, names, nix=self.nix, on_event=self.on_event)

    __repr__ = attrs_repr


def _with_facts(status: GuestStatus, facts: GuestFacts | None) -> GuestStatus:
    """Fill in what the runner does not say (none built yet) from the declaration."""
    if facts is None:
        return status
    return attrs.evolve(
        status,
        hypervisor=status.hypervisor or facts.hypervisor,
        vcpu=status.vcpu if status.vcpu is not None else facts.vcpu,
        mem=status.mem if status.mem is not None else facts.mem,
    )


def environ_state_root() -> Path | None:
    """``$NIXGEN_STATE_DIR``, when set."""
    value = os.environ.get("NIXGEN_STATE_DIR")
    return Path(value) if value else None
