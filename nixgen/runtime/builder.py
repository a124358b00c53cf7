"""How the runtime gets runners: a :class:`Builder`.

:mod:`nixgen.build` (the module, through :class:`NixgenBuild`) is the builder
of every :class:`Runtime` unless another is given: anything with the same ``build``, ``cached`` and
``evaluate`` serves, e.g. a stand-in for nix in tests or a remote builder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from nixgen.build import BuildResult
    from nixgen.nixcmd import Event, NixRunner

__all__ = ["Builder", "NixgenBuild"]


class Builder(Protocol):
    """Builds and evaluates the guests of a flake folder (see :mod:`nixgen.build`)."""

    def build(
        self,
        directory: Path | str,
        names: Sequence[str] | None = None,
        *,
        nix: NixRunner | None = None,
        jobs: int | Literal["auto"] | None = None,
        on_event: Callable[[Event], None] | None = None,
    ) -> dict[str, BuildResult]: ...

    def cached(
        self,
        directory: Path | str,
        names: Sequence[str] | None = None,
        *,
        nix: NixRunner | None = None,
    ) -> dict[str, BuildResult] | None: ...

    def evaluate(
        self,
        directory: Path,
        names: Sequence[str] | None = None,
        *,
        nix: NixRunner | None = None,
    ) -> dict[str, dict[str, Any]]: ...


class NixgenBuild:
    """:mod:`nixgen.build` as a :class:`Builder`, imported when a guest is built or
    evaluated: listing guests needs neither (the module and its classes cost
    ``nixgen list`` a few milliseconds to import)."""

    def build(
        self,
        directory: Path | str,
        names: Sequence[str] | None = None,
        *,
        nix: NixRunner | None = None,
        jobs: int | Literal["auto"] | None = None,
        on_event: Callable[[Event], None] | None = None,
    ) -> dict[str, BuildResult]:
        from nixgen import build

        return build.build(directory, names, nix=nix, jobs=jobs, on_event=on_event)

    def cached(
        self,
        directory: Path | str,
        names: Sequence[str] | None = None,
        *,
        nix: NixRunner | None = None,
    ) -> dict[str, BuildResult] | None:
        from nixgen import build

        return build.cached(directory, names, nix=nix)

    def evaluate(
        self,
        directory: Path,
        names: Sequence[str] | None = None,
        *,
        nix: NixRunner | None = None,
    ) -> dict[str, dict[str, Any]]:
        from nixgen import build

        return build.evaluate(directory, names, nix=nix)
