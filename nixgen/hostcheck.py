"""Evaluate a project's hosts with nix, module-only hosts included.

A host rendered without ``nixosConfiguration`` is only ``nixosModules.<h>``:
nothing in the flake evaluates it, so a misspelt ``microvm.vms.web.autostrat``
in ``hosts/<h>.nix`` would pass until it reaches the real machine.
:func:`evaluate_hosts` evaluates every host's system (``toplevel.drvPath``,
nothing is built) through the small flake in ``flake-hosts/``, which takes the
project as its input ``project``: a full host as the project's
``nixosConfigurations.<h>``, a module-only host as a minimal NixOS importing
microvm.nix's host module and the host's module.  Errors are the host's, and a
module-system error with no file (a module written as a function, as nixgen
renders hosts) is placed at the line of ``hosts/<h>.nix`` that sets the option.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import attrs

from nixgen.build import BuildError, flake_ref
from nixgen.errors import NixgenError
from nixgen.nix.emit import to_nix
from nixgen.nix.parse import Document
from nixgen.nix.read import read_guests
from nixgen.nixcmd import NixRunner
from nixgen.nixcmd.errors import EvalPosition, NixEvalError, NixOptionError

__all__ = ["HostEvalError", "evaluate_hosts"]

_UNKNOWN_FILE = "<unknown-file>"


class HostEvalError(BuildError):
    """Hosts failed to evaluate; ``errors`` maps each host to its error."""

    def __init__(self, errors: Mapping[str, NixgenError]) -> None:
        self.errors = dict(errors)
        parts = [f"host {name!r}: {err}" for name, err in self.errors.items()]
        super().__init__(
            f"{len(parts)} host(s) failed to evaluate:\n" + "\n".join(parts),
            hint="fix the errors above, then run `nixgen check` again",
        )


def _wrapper() -> str:
    return f"path:{resources.files('nixgen') / 'flake-hosts'}"


def evaluate_hosts(
    directory: Path, systems: Mapping[str, str], *, nix: NixRunner | None = None
) -> dict[str, str]:
    """Evaluate hosts (``{name: system}``): ``{name: drv path of its system}``.

    One nix call for all; when it fails, each host alone, so that every
    failing host's error is found (raised together in :class:`HostEvalError`).
    """
    if not systems:
        return {}
    directory = directory.resolve()
    base = nix or NixRunner()
    runner = attrs.evolve(
        base,
        override_inputs={
            "project": flake_ref(directory),
            **{f"project/{name}": url for name, url in base.override_inputs.items()},
        },
        source_root=str(directory),
        cwd=base.cwd or str(directory),
    )
    try:
        return _evaluate(runner, dict(systems))
    except NixEvalError as first:
        failures: dict[str, NixgenError] = {}
        found: dict[str, str] = {}
        for name, system in systems.items():
            try:
                found.update(_evaluate(runner, {name: system}))
            except NixEvalError as err:
                failures[name] = _placed(err, directory, name)
        if not failures:
            raise
        raise HostEvalError(failures) from first


def _evaluate(runner: NixRunner, systems: dict[str, str]) -> dict[str, str]:
    data: Any = runner.eval_json(f"{_wrapper()}#evaluate", apply=f"f: f {to_nix(systems)}")
    if not isinstance(data, dict):
        raise BuildError(f"nix eval returned {type(data).__name__}, not a set of hosts")
    return {str(k): str(v) for k, v in data.items()}


def _placed(err: NixEvalError, directory: Path, host: str) -> NixEvalError:
    """An option error without a file, placed at the host module's line that sets it."""
    if not isinstance(err, NixOptionError) or err.option is None:
        return err
    if err.file is not None and str(err.file) != _UNKNOWN_FILE:
        return err
    where = _setting_line(directory, host, tuple(err.option.split(".")))
    if where is None:
        return err
    file, line = where
    rejection = attrs.evolve(
        err.rejection,
        definitions=tuple(
            (str(file) if f == _UNKNOWN_FILE else f, v) for f, v in err.rejection.definitions
        ),
    )
    return NixOptionError(
        err.eval_message,
        rejection,
        position=EvalPosition(file=file, line=line, store_file=err.store_file),
        trace=err.trace,
        command=err.command,
        exit_code=err.exit_code,
        stderr=err.stderr,
        hint=err.hint,
    )


def _setting_line(directory: Path, host: str, option: tuple[str, ...]) -> tuple[Path, int] | None:
    """The file (relative to the project) and line of the host's setting closest to ``option``."""
    try:
        found = read_guests(Document.load(directory / "flake.nix"))
    except (NixgenError, OSError):
        return None
    config = found.host(host)
    if config is None:
        return None
    best = None
    for setting in config.settings:
        n = len(setting.path)
        if setting.path == option[:n] and (best is None or n > len(best.path)):
            best = setting
    if best is None or best.span.file is None:
        return None
    file = best.span.file
    if file.is_relative_to(directory):
        file = file.relative_to(directory)
    # The binding's key line: where `autostrat = true;` (or its enclosing set) is written.
    return file, best.binding.line
