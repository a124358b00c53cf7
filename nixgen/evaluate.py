"""Read a flake's ``nixosConfigurations`` through evaluation: one ``nix eval`` for all.

Where the text does not say (``lib.genAttrs``, ``mkVM`` helpers, flake-parts,
folders read with ``builtins.readDir``), the module system does.
:class:`FlakeEvaluator` is the evaluator :class:`nixgen.flake.FlakeFile`
takes (``FlakeFile.load(path, evaluator=FlakeEvaluator(nix))``): it asks nix
for the store path of the flake's source (``nix flake metadata``), then
applies ``evaluate.nix`` to ``FLAKE#nixosConfigurations`` once.  For every
configuration that yields whether it is a guest, a host or neither, and for
each option its author defines (every ``microvm.*`` one, and the NixOS
options nixgen models) its value and its definitions — the module system's
own record (``definitionsWithLocations``, ``highestPrio``), with the line of
inline modules' definitions (``builtins.unsafeGetAttrPos``).  Store paths of
the flake's source are mapped back to the files of its folder.

Nothing is built; only the options the author defines are forced.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

import attrs

from nixgen.build import flake_ref
from nixgen.errors import NixgenError
from nixgen.flake.errors import EvaluationError
from nixgen.flake.evaluated import EvalConfiguration, EvalDefinition, EvalOption, EvaluatedFlake
from nixgen.nixcmd import NixRunner
from nixgen.nixcmd.errors import NixEvalError, NixInputError

__all__ = ["FlakeEvaluator", "evaluate_flake"]

_INLINE = "<unknown-file>"


def _expression() -> str:
    return (resources.files("nixgen") / "evaluate.nix").read_text(encoding="utf-8")


@attrs.frozen
class FlakeEvaluator:
    """Evaluates a flake folder with ``nix`` (its overrides, options and timeout)."""

    nix: NixRunner = attrs.field(factory=NixRunner)

    def __call__(self, root: Path) -> EvaluatedFlake:
        return evaluate_flake(root, nix=self.nix)


def evaluate_flake(root: Path, *, nix: NixRunner | None = None) -> EvaluatedFlake:
    """Every ``nixosConfigurations`` entry of the flake in ``root``, evaluated once.

    Raises :class:`~nixgen.flake.errors.EvaluationError` saying what to
    pass (``--override-input``) when an input cannot be fetched, or where the
    evaluation failed.
    """
    from nixgen.nix.emit import to_nix

    root = root.resolve()
    base = nix or NixRunner()
    runner = attrs.evolve(base, source_root=str(root), cwd=base.cwd or str(root))
    ref = flake_ref(root)
    try:
        meta = json.loads(runner.run(["flake", "metadata", "--json", ref]).stdout or "{}")
        source = str(meta["path"])
        apply = f"({_expression()}) {to_nix({'source': source})}"
        try:
            data = runner.eval_json(f"{ref}#nixosConfigurations", apply=apply)
        except NixEvalError as err:
            if "does not provide attribute" not in str(err):
                raise
            data = {}  # a flake without nixosConfigurations: no guests, no hosts
    except NixInputError as err:
        raise EvaluationError(
            f"nix could not fetch an input of the flake in {root}, so its computed "
            f"nixosConfigurations cannot be read: {err.message}",
            hint=(err.hint or "")
            + ("; " if err.hint else "")
            + "point it at a local copy with --override-input NAME path:/dir, "
            "or pass --no-eval to read only what is written literally",
        ) from err
    except NixgenError as err:
        raise EvaluationError(
            f"nix could not evaluate nixosConfigurations of the flake in {root}: {err.message}",
            hint=err.hint
            or "fix the error above (nix build shows the same), or pass --no-eval to read "
            "only what is written literally",
        ) from err
    except (ValueError, KeyError) as err:
        raise EvaluationError(
            f"nix flake metadata printed no source path for {root} ({err})",
            hint="this is a bug in nixgen or an unexpected nix version; please report it",
        ) from err
    if not isinstance(data, dict):
        raise EvaluationError(
            f"nixosConfigurations of the flake in {root} is a {type(data).__name__}, "
            "not an attribute set",
            hint="nixosConfigurations must be an attribute set of nixosSystem results",
        )
    return EvaluatedFlake(
        configurations={
            str(name): _configuration(str(name), entry, source)
            for name, entry in data.items()
            if isinstance(entry, Mapping)
        }
    )


def _configuration(name: str, entry: Mapping[str, Any], source: str) -> EvalConfiguration:
    options = {
        str(key): _option(str(key), raw, source)
        for key, raw in (entry.get("options") or {}).items()
    }
    system = entry.get("system")
    return EvalConfiguration(
        name=name,
        kind=str(entry.get("kind", "other")),
        system=system if isinstance(system, str) else None,
        options=options,
        runs=tuple(str(n) for n in entry.get("runs") or ()),
        summary=dict(entry.get("summary") or {}),
    )


def _option(key: str, raw: Mapping[str, Any], source: str) -> EvalOption:
    positions = [p for p in raw.get("inline") or () if isinstance(p, Mapping)]
    definitions = []
    for d in raw.get("definitions") or ():
        file = str(d.get("file"))
        definitions.append(
            EvalDefinition(
                file=_own_file(file, source),
                inline=bool(d.get("inline", file == _INLINE)),
                value=d.get("value"),
            )
        )
    return EvalOption(
        key=key,
        path=tuple(str(p) for p in raw.get("path") or ()),
        value=raw.get("value"),
        highest_prio=int(raw.get("highestPrio", 100)),
        definitions=tuple(definitions),
        inline_positions=tuple(
            (
                _own_file(str(p.get("file")), source),
                int(p.get("line", 0)),
                int(p.get("column", 0)),
                int(p.get("depth", 0)),
                int(p.get("prio", 100)),
            )
            for p in positions
        ),
    )


def _own_file(printed: str, source: str) -> PurePosixPath | None:
    """A store path of the flake's source as a path relative to its folder (else None)."""
    prefix = source.rstrip("/") + "/"
    if printed.startswith(prefix):
        return PurePosixPath(printed[len(prefix) :])
    return None
