"""A nixgen project folder: ``nixgen.toml`` plus the files rendered from it.

``nixgen.toml`` declares the guests as data (the same keys as microvm.nix's
options); ``flake.nix`` and ``vms/*.nix`` are rendered from it.  Scripts may
skip the data file and render a :class:`~nixgen.model.Flake` built in Python
with :func:`nixgen.render.write_project` directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

import attrs

from nixgen.errors import Problem
from nixgen.flake.errors import ProjectError
from nixgen.gitutil import track
from nixgen.model import Flake, Hypervisor
from nixgen.model.convert import dumps_toml, load_flake_file, update_toml
from nixgen.render import SOURCE_NAME, RenderResult, atomic_write, render_files, write_project
from nixgen.schema import Schema, known_schema
from nixgen.starters import Choices, build_template
from nixgen.validate import validate

__all__ = ["InitResult", "Project", "init_project", "toml_text"]

_TOML_HEADER = """\
# nixgen project: the guests of this flake, as data.
# Keys are microvm.nix's option names (https://microvm-nix.github.io/microvm.nix/).
# After a change, run `nixgen render` to update flake.nix and vms/*.nix.
#
# To log in over SSH, give a guest your public key:
#   [[guests.NAME.users]]
#   name = "root"
#   sshKeys = ["ssh-ed25519 AAAA... you@host"]

"""
_GITIGNORE = """\
# nixgen's state (runner links, logs) and nix build links
.nixgen/
result
result-*
# what a runner started in this folder creates: volumes and sockets
*.img
*.sock
*.socket
"""


def toml_text(flake: Flake, *, old: str | None = None, renamed: Mapping[str, str] = {}) -> str:
    """The text of ``nixgen.toml`` for a model: the one place that writes the file.

    ``old`` is the file as it is now: it is the user's, so it is changed in
    place (comments, order and layout kept, see :func:`update_toml`, which
    also says what ``renamed`` is).  A new
    file, or one that does not read as a flake, gets nixgen's header and layout.
    """
    if old is not None:
        edited = update_toml(old, flake, renamed=renamed)
        if edited is not None:
            return edited
    return _TOML_HEADER + dumps_toml(flake)


@attrs.frozen
class Project:
    """A folder with a ``nixgen.toml``."""

    root: Path

    @property
    def source(self) -> Path:
        return self.root / SOURCE_NAME

    @classmethod
    def at(cls, directory: Path | str = ".") -> Project:
        """The project in ``directory``; :class:`ProjectError` when there is none."""
        root = Path(directory).resolve()
        project = cls(root)
        if not project.source.is_file():
            raise ProjectError(
                f"{root}: no {SOURCE_NAME} here, so this is not a nixgen project",
                hint="create one with `nixgen init DIR`, or pass the project folder",
            )
        return project

    def load(self) -> Flake:
        """The flake declared in ``nixgen.toml`` (type and key errors: ValidationError)."""
        return load_flake_file(self.source)

    def save(self, flake: Flake) -> None:
        """Write ``nixgen.toml`` (atomically) from a model, keeping its comments and layout."""
        old = self.source.read_text(encoding="utf-8") if self.source.is_file() else None
        atomic_write(self.source, toml_text(flake, old=old))

    def check(self, *, schema: Schema | None = None) -> tuple[Flake, list[Problem]]:
        """Load and validate; returns the flake and its warnings, raises on errors.

        ``schema``: microvm.nix's options to check against (default: those of the
        flake's locked microvm input when ``nixgen check`` has read them, else the
        packaged ones; :func:`nixgen.lockschema.lock_schema` reads the flake's own)."""
        flake = self.load()
        schema = schema or known_schema(self.root)
        warnings = validate(flake, source=str(self.source), schema=schema)
        return flake, warnings + self.missing_modules(flake)

    def missing_modules(self, flake: Flake) -> list[Problem]:
        """Module files named by guests and hosts that are not in the project.

        Only a warning: the file may still be coming (written by another
        tool), but Nix will fail on it until then.
        """
        found = []
        owners = [(f'guests["{g.name}"]', g.modules) for g in flake.guests]
        owners += [(f'hosts["{h.name}"]', h.modules) for h in flake.hosts]
        for at, modules in owners:
            for i, module in enumerate(modules):
                if not isinstance(module, PurePosixPath) or module.is_absolute():
                    continue
                if not (self.root / module).exists():
                    found.append(
                        Problem(
                            path=f"{at}.modules[{i}]",
                            message=f"{module} is not in {self.root}",
                            hint="create the module file, or fix the path (relative to the "
                            "project folder)",
                            value=str(module),
                            warning=True,
                        )
                    )
        return found

    def render(self, *, force: bool = False) -> RenderResult:
        """Validate, then (re)write flake.nix and vms/*.nix."""
        flake, _ = self.check()
        result = write_project(flake, self.root, force=force, source=SOURCE_NAME)
        track(self.root, created=result.written, removed=result.removed)
        return result


@attrs.frozen
class InitResult:
    project: Project
    flake: Flake
    created: list[Path]
    warnings: list[Problem]


def init_project(
    directory: Path | str,
    *,
    template: str = "microvm",
    name: str | None = None,
    hypervisor: Hypervisor | None = None,
    ssh_keys: Sequence[str] = (),
    allow_empty_root_password: bool = False,
    git_add: bool = True,
) -> InitResult:
    """Create a project from a template, as ``nix flake init -t`` does.

    Refuses (and writes nothing) when any file it would create exists.
    Inside a git work tree the new files are added to the index, since flakes
    only see tracked files.
    """
    root = Path(directory)
    choices = Choices(
        name=name,
        hypervisor=hypervisor,
        ssh_keys=tuple(ssh_keys),
        allow_empty_root_password=allow_empty_root_password,
    )
    try:
        flake = build_template(template, choices)
    except KeyError as err:
        raise ProjectError(str(err.args[0]), hint="see `nixgen init --list`") from None
    warnings = validate(flake)
    files = {root / rel: text for rel, text in render_files(flake, source=SOURCE_NAME).items()}
    files[root / SOURCE_NAME] = toml_text(flake)
    files[root / ".gitignore"] = _GITIGNORE
    existing = sorted(p for p in files if p.exists())
    if existing:
        raise ProjectError(
            "refusing to overwrite existing file(s): " + ", ".join(str(p) for p in existing),
            hint="choose an empty folder, or move those files away first",
        )
    for path, text in files.items():
        atomic_write(path, text)
    created = list(files)
    if git_add:
        track(root, created=created)
    return InitResult(Project(root.resolve()), flake, created, warnings)
