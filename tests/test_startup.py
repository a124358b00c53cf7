"""A fast start: lazy packages, one version, and a command line that imports
only what the command needs (the figures are in benchmarks/bench_startup.py)."""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import nixgen
from nixgen.cli import COMMANDS
from nixgen.cli.parsing import Command
from tests.clirunner import run_cli

ROOT = Path(nixgen.__file__).resolve().parent.parent

#: Modules no start of the command line may import unless its command needs them.
HEAVY = ("jinja2", "rich", "asyncio", "tree_sitter", "qemu", "filelock", "nixgen.nixcmd.diagnose")


def _imported_after(code: str, cwd: Path | None = None) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    script = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))\n"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=cwd, check=True
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def _run_cli(args: list[str]) -> str:
    return f"from nixgen.cli import invoke\ninvoke({args!r})\n"


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.startswith(HEAVY))


def test_the_command_table_matches_the_commands() -> None:
    for name, (module, attribute, first) in COMMANDS.items():
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, Command) and command.name == name
        paragraph = inspect.cleandoc(command.function.__doc__ or "").split("\n\n")[0]
        assert first == " ".join(paragraph.split()), f"COMMANDS[{name!r}] lists another help"
        assert command.first_paragraph == first


def test_help_lists_every_command_without_importing_any() -> None:
    modules = _imported_after(_run_cli(["--help"]))
    assert not any(m.startswith("nixgen.cli.") for m in modules - {"nixgen.cli.parsing"})
    assert not any(m.startswith(("nixgen.model", "attrs", "nixgen.nixcmd")) for m in modules)
    assert _heavy(modules) == []


def test_help_shows_the_first_paragraph_of_every_command() -> None:
    result = run_cli(["--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0
    listed = result.stdout.split("commands:\n", 1)[1].split("\n\n", 1)[0]
    width = max(len(n) for n in COMMANDS) + 4
    shown: dict[str, str] = {}
    for line in listed.splitlines():
        assert len(line) <= 78, line
        name = line[:width].strip()
        if name:
            shown[name] = line[width:]
        else:
            shown[list(shown)[-1]] += " " + line[width:]
    assert shown == {name: first for name, (_, _, first) in COMMANDS.items()}


@pytest.mark.parametrize("command", [["list", "--no-eval"], ["check", "--no-eval"]])
def test_commands_without_nix_import_no_heavy_module(tmp_path: Path, command: list[str]) -> None:
    nixgen.write_project(nixgen.Flake(guests=[nixgen.MicroVM(name="web")]), tmp_path)
    modules = _imported_after(_run_cli(command), cwd=tmp_path)
    assert _heavy(modules) == []
    # The flake editor stays out (its lazy package and its errors are light).
    editor = [m for m in modules if m.startswith("nixgen.flake.") and m != "nixgen.flake.errors"]
    assert editor == [] and "nixgen.deploy" not in modules


def test_the_build_command_leaves_the_model_out() -> None:
    """A no-op build is answered by the cache: neither the model nor the Nix
    serializer, render or rich is needed to say so."""
    modules = _imported_after("import nixgen.cli.build")
    assert _heavy(modules) == []
    assert not any(m.startswith(("nixgen.model", "nixgen.nix.", "nixgen.render")) for m in modules)


def test_import_nixgen_model_imports_no_other_layer() -> None:
    modules = _imported_after("import nixgen.model")
    assert _heavy(modules) == []
    for layer in ("nixgen.deploy", "nixgen.build", "nixgen.runtime", "nixgen.flake"):
        assert layer not in modules
    bare = _imported_after("import nixgen")
    assert {m for m in bare if m.startswith("nixgen")} == {"nixgen", "nixgen._lazy"}
    assert "attrs" not in bare and _heavy(bare) == []


@pytest.mark.parametrize("package", ["nixgen", "nixgen.nixcmd", "nixgen.runtime"])
def test_every_exported_name_resolves(package: str) -> None:
    module = importlib.import_module(package)
    for name in module.__all__:
        value = getattr(module, name)
        assert not inspect.ismodule(value), f"{package}.{name} is a module"
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__name__ == name or name == "__version__"
    assert set(module.__all__) <= set(dir(module))
    assert not hasattr(module, "nope")


def test_a_submodule_does_not_hide_the_function_of_its_name() -> None:
    code = (
        "import nixgen, nixgen.validate, nixgen.nixcmd.run, nixgen.nixcmd.diagnose\n"
        "from nixgen import validate\n"
        "from nixgen.nixcmd import run, diagnose\n"
        "assert callable(validate) and validate.__module__ == 'nixgen.validate'\n"
        "assert callable(run) and callable(diagnose)\n"
        "assert nixgen.validate is validate\n"
    )
    _imported_after(code)  # raises when an assertion fails


def test_the_version_is_written_once() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert nixgen.__version__ == importlib.metadata.version("nixgen") == project
    written = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "nixgen").rglob("*.py"))
        if f'"{project}"' in path.read_text()
    ]
    assert written == []
    assert f'"{project}"' not in (ROOT / "flake.nix").read_text()
