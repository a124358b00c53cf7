"""Packages that import what they re-export only when it is asked for.

``nixgen``, ``nixgen.nixcmd`` and ``nixgen.runtime`` re-export names from
their modules; importing them all up front would make ``import nixgen.model``
or ``nixgen --help`` pay for Jinja, tree-sitter, asyncio and the rest.
:func:`export_lazily` turns a package into one that imports a name's module
on first use (PEP 562's module ``__getattr__``, on the module's class so one
definition serves every package).
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Mapping

__all__ = ["export_lazily"]


class _LazyPackage(types.ModuleType):
    _lazy_exports: Mapping[str, str]

    def __getattr__(self, name: str) -> object:
        module = self._lazy_exports.get(name)
        if module is None:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        types.ModuleType.__setattr__(self, name, value)  # the next look-up is plain
        return value

    def __setattr__(self, name: str, value: object) -> None:
        # Importing submodule ``nixgen.validate`` sets the package's attribute
        # ``validate`` to the module; the exported function of that name wins.
        if isinstance(value, types.ModuleType) and name in self._lazy_exports:
            return
        super().__setattr__(name, value)

    def __dir__(self) -> list[str]:
        return sorted({*self.__dict__, *self._lazy_exports})


def export_lazily(package: str, exports: Mapping[str, str]) -> None:
    """Make ``package`` import each name of ``exports`` (name → module) on first use."""
    module = sys.modules[package]
    types.ModuleType.__setattr__(module, "_lazy_exports", dict(exports))
    module.__class__ = _LazyPackage
