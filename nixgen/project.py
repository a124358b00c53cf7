"""A nixgen project folder: ``nixgen.toml`` plus the files rendered from it.

``nixgen.toml`` declares the guests as data (the same keys as microvm.nix's
options); ``flake.nix`` and ``vms/*.nix`` are rendered from it.  Scripts may
skip the data file and render a :class:`~nixgen.model.Flake` built in Python
with :func:`nixgen.render.write_project` directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import attrs

from nixgen.errors import Problem, ProjectError, ValidationError
from nixgen.files import clean_stale_temps, file_error
from nixgen.gitutil import track
from nixgen.lock import project_lock
from nixgen.model import Flake, Hypervisor
from nixgen.model.convert import dumps_toml, load_flake_file
from nixgen.render import (
    SOURCE_NAME,
    RenderResult,
    atomic_write,
    render_files,
    verbatim_problems,
    write_validated,
)
from nixgen.starters import Choices, build_template
from nixgen.validate import check, validate

__all__ = ["InitResult", "Project", "init_project", "read_key_file", "toml_text"]

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
# nixgen's state (runner links, logs, the project lock) and nix build links
.nixgen/
result
result-*
# what an interrupted write leaves (nixgen removes them on its next write)
.*.tmp
# what a runner started in this folder creates: volumes and sockets
*.img
*.sock
*.socket
"""


def toml_text(flake: Flake) -> str:
    """The text of ``nixgen.toml`` for a model, header included."""
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
        """Write ``nixgen.toml`` (atomically, under the project lock) from a model."""
        with project_lock(self.root):
            atomic_write(self.source, toml_text(flake))

    def check(self) -> tuple[Flake, list[Problem]]:
        """Load and validate; returns the flake and its warnings, raises on errors."""
        flake = self.load()
        found = check(flake) + verbatim_problems(flake)
        errors = [p for p in found if not p.warning]
        warnings = [p for p in found if p.warning]
        if errors:
            raise ValidationError(errors, source=str(self.source), warnings=warnings)
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
        """Validate, then (re)write flake.nix and vms/*.nix.

        The project lock is held from reading nixgen.toml to the last write, so
        a concurrent edit is either wholly before this render or wholly after.
        """
        with project_lock(self.root):
            flake, _ = self.check()
            result = write_validated(flake, self.root, force=force, source=SOURCE_NAME)
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

    Refuses (and writes nothing) when any file it would create exists with
    other content.  A file that already holds exactly what init would write
    is no conflict, so re-running an init that was interrupted (killed, disk
    full) with the same options completes it.  ``nixgen.toml`` is written
    last: a folder without it was never a finished project.
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
    files[root / ".gitignore"] = _GITIGNORE
    files[root / SOURCE_NAME] = _TOML_HEADER + dumps_toml(flake)  # last: marks it finished
    if root.exists() and not root.is_dir():
        raise ProjectError(
            f"{root}: is a file, not a folder", hint="choose a folder for the new project"
        )
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise file_error(err, root, "cannot create the folder") from None
    with project_lock(root):
        existing = [p for p in files if p.exists() or p.is_symlink()]
        clashing = sorted(p for p in existing if not _holds(p, files[p]))
        if clashing:
            raise ProjectError(
                "refusing to overwrite existing file(s): " + ", ".join(str(p) for p in clashing),
                hint="choose an empty folder, or move those files away first",
            )
        for folder in {p.parent for p in files}:
            clean_stale_temps(folder)
        for path, text in files.items():
            if path not in existing:
                atomic_write(path, text)
        created = list(files)
        if git_add:
            track(root, created=created)
    return InitResult(Project(root.resolve()), flake, created, warnings)


def read_key_file(path: Path) -> str:
    """The text of an SSH public key file (``--ssh-key``); its keys are checked by validate."""
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ProjectError(
            f"{path}: is not a text file, so not an SSH public key",
            hint="pass the .pub file (e.g. ~/.ssh/id_ed25519.pub), not the private key or "
            "another file",
        ) from None
    except OSError as err:
        raise file_error(err, path, "cannot read the key file") from None


def _holds(path: Path, text: str) -> bool:
    """Whether ``path`` is a regular file holding exactly ``text``."""
    try:
        return path.is_file() and path.read_bytes() == text.encode("utf-8")
    except OSError:
        return False
