"""The one exception hierarchy: every error class of nixgen derives from
:class:`NixgenError`, is defined in the root (:mod:`nixgen.errors`) or beside
its domain (an ``errors`` module, or the module it serves), is exported from
:mod:`nixgen`; docs/python-api.md draws the tree as it is."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import nixgen
import nixgen.errors
from nixgen.errors import NixgenError
from nixgen.runtime.errors import QMPCommandError, QMPConnectionError

PACKAGE = Path(nixgen.__file__).resolve().parent
DOCS = PACKAGE.parent / "docs"

# Importing nixgen.__main__ runs the command line.  It is still walked, and
# its source is checked by test_no_error_class_is_defined_outside_its_homes.
NOT_IMPORTED = {"nixgen.__main__"}

#: Where error classes may be defined: the root, and beside their domain.
HOMES = {
    "nixgen.errors": PACKAGE / "errors.py",
    "nixgen.nix.errors": PACKAGE / "nix" / "errors.py",
    "nixgen.flake.errors": PACKAGE / "flake" / "errors.py",
    "nixgen.process.errors": PACKAGE / "process" / "errors.py",
    "nixgen.nixcmd.errors": PACKAGE / "nixcmd" / "errors.py",
    "nixgen.build": PACKAGE / "build.py",
    "nixgen.hostcheck": PACKAGE / "hostcheck.py",
    "nixgen.lockschema": PACKAGE / "lockschema.py",
    "nixgen.runtime.errors": PACKAGE / "runtime" / "errors.py",
}


def _raise(name: str) -> None:
    raise ImportError(f"pkgutil could not import package {name}")


def _walked() -> list[str]:
    """Every module of the package, as pkgutil finds it (a package that fails
    to import fails the test instead of being passed over)."""
    found = ["nixgen"]
    found += [
        info.name for info in pkgutil.walk_packages(nixgen.__path__, "nixgen.", onerror=_raise)
    ]
    return found


def _modules() -> list[ModuleType]:
    return [importlib.import_module(name) for name in _walked() if name not in NOT_IMPORTED]


def _defined_in_nixgen(module: ModuleType) -> list[type]:
    """The classes ``module`` holds that nixgen defines (anywhere in the package)."""
    return [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj) and obj.__module__.split(".")[0] == "nixgen"
    ]


def _hierarchy() -> list[type[BaseException]]:
    """Every exception class defined in the homes of errors."""
    return [
        obj
        for home in HOMES
        for _, obj in inspect.getmembers(importlib.import_module(home), inspect.isclass)
        if issubclass(obj, BaseException) and obj.__module__ == home
    ]


def test_pkgutil_walks_every_source_file() -> None:
    on_disk = set()
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        on_disk.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    assert set(_walked()) == on_disk


def test_every_error_class_lives_in_one_of_its_homes() -> None:
    checked = 0
    for module in _modules():
        for cls in _defined_in_nixgen(module):
            if not (cls.__name__.endswith("Error") or issubclass(cls, BaseException)):
                continue
            checked += 1
            where = f"{cls.__name__} (found in {module.__name__})"
            assert cls.__module__ in HOMES, (
                f"{where} is defined in {cls.__module__}: define it in the root "
                "(nixgen/errors.py) or in its domain's errors module"
            )
            assert issubclass(cls, NixgenError), f"{where} does not derive from NixgenError"
    assert checked >= len(_hierarchy())


def test_no_error_class_is_defined_outside_its_homes() -> None:
    """The source, for classes the import walk cannot see: nested in functions,
    or in modules it does not import (nixgen.__main__)."""
    homes = set(HOMES.values())
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path in homes:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef) and node.name.endswith("Error"):
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {node.name}")
    assert offenders == []


def test_the_root_keeps_every_name_it_held() -> None:
    """Code written when every error lived in nixgen.errors keeps working."""
    for cls in _hierarchy():
        assert getattr(nixgen.errors, cls.__name__) is cls


def test_every_error_is_a_nixgen_error_exported_from_nixgen() -> None:
    classes = _hierarchy()
    assert NixgenError in classes and len(classes) > 30
    assert len(classes) == len({c.__name__ for c in classes})  # one class per name
    for cls in classes:
        assert issubclass(cls, NixgenError), cls
        assert cls.__name__.endswith("Error"), cls
        assert cls.__name__ in nixgen.__all__, f"{cls.__name__} is not in nixgen.__all__"
        assert getattr(nixgen, cls.__name__) is cls


def test_nixgen_all_is_sorted() -> None:
    assert nixgen.__all__ == sorted(nixgen.__all__)


def test_errors_py_imports_nothing_from_nixgen() -> None:
    """nixgen.errors is the bottom layer: every other module may import it
    (the errors it hands out for their domains are looked up in the package)."""
    tree = ast.parse((PACKAGE / "errors.py").read_text())
    imported = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.append(node.module)
        elif isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
    assert [n for n in imported if n.split(".")[0] == "nixgen"] == []


def test_nixgen_imports_each_error_from_its_home() -> None:
    """Only code written for older nixgen asks nixgen.errors for the errors of
    other domains: nixgen's own modules, tests and benchmarks import each
    error from where it is defined (the model does not reach into the flake layer)."""
    own = {
        name
        for name, obj in vars(nixgen.errors).items()
        if not name.startswith("_") and getattr(obj, "__module__", None) == "nixgen.errors"
    }
    offenders = []
    for folder in (PACKAGE, PACKAGE.parent / "tests", PACKAGE.parent / "benchmarks"):
        for path in sorted(folder.rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.ImportFrom) and node.module == "nixgen.errors":
                    offenders += [
                        f"{path.name}:{node.lineno}: {alias.name}"
                        for alias in node.names
                        if alias.name not in own
                    ]
    assert offenders == []


def test_the_root_hands_out_only_errors() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Flake'"):
        getattr(nixgen.errors, "Flake")  # noqa: B009 - the name is the point
    with pytest.raises(AttributeError, match="no attribute 'NoSuchError'"):
        getattr(nixgen.errors, "NoSuchError")  # noqa: B009


def test_import_nixgen_leaves_the_runtime_out() -> None:
    """The runtime's errors are exported from nixgen; its modules (filelock,
    qemu.qmp) stay out even once an error is used."""
    code = (
        "import sys, nixgen\n"
        "nixgen.GuestError, nixgen.QMPConnectionError, nixgen.NixEvalError\n"
        "print(sorted(m for m in sys.modules if m.startswith(('nixgen.runtime.guest', 'filelock', 'qemu', 'asyncio'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def _order(cls: type) -> tuple[int, int]:
    """Layers first (the order of HOMES), then the order of definition."""
    module = cls.__module__
    line = inspect.getsourcelines(cls)[1]
    return list(HOMES).index(module), line


def _tree(cls: type[BaseException], prefix: str = "") -> list[str]:
    """The lines of the tree below ``cls``, its subclasses in the order they are defined."""
    lines = []
    children = sorted((c for c in cls.__subclasses__() if c.__module__ in HOMES), key=_order)
    for index, child in enumerate(children):
        last = index == len(children) - 1
        lines.append(f"{prefix}{'└── ' if last else '├── '}{child.__name__}")
        lines += _tree(child, prefix + ("    " if last else "│   "))
    return lines


def test_docs_draw_the_hierarchy_as_it_is() -> None:
    text = (DOCS / "python-api.md").read_text()
    block = re.search(r"^## Errors\n.*?^```text\n(NixgenError\b.*?)^```$", text, re.M | re.S)
    assert block, "docs/python-api.md has no tree of the errors under '## Errors'"
    drawn = []
    for line in block[1].splitlines():
        name = re.match(r"[│├└─ ]*\w+", line)
        assert name, f"not a line of the tree: {line!r}"
        drawn.append(name.group())
    assert drawn == ["NixgenError", *_tree(NixgenError)]
    assert "python-api.md#errors" in (DOCS / "index.md").read_text()


def test_qmp_errors_keep_their_shape() -> None:
    """Moved from nixgen.runtime.qmp: the same message, ``args`` and attributes,
    and a connection error is still an OSError."""
    lost = QMPConnectionError("no QMP server at /x: refused")
    assert isinstance(lost, OSError) and isinstance(lost, NixgenError)
    assert (str(lost), lost.args, lost.errno) == (
        "no QMP server at /x: refused",
        (str(lost),),
        None,
    )
    refused = QMPCommandError("quit", "GenericError", "no")
    assert isinstance(refused, NixgenError)
    assert (str(refused), refused.args) == ("quit: GenericError: no", ("quit: GenericError: no",))
    assert (refused.command, refused.error_class, refused.description) == (
        "quit",
        "GenericError",
        "no",
    )
