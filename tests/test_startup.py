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
import nixgen.build as build_module
import nixgen.runtime
from nixgen import buildcache
from nixgen.build import BuildResult
from nixgen.cli import COMMANDS
from nixgen.cli.parsing import Command
from nixgen.project import Project
from tests.clirunner import run_cli
from tests.fakerunner import BOOTS, kill_leftovers, make_runner

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


def _succeeds(args: list[str]) -> str:
    """Code that runs ``nixgen ARGS`` and fails unless it exits 0."""
    return f"from nixgen.cli import invoke\nassert invoke({args!r}) == 0\n"


def _project(folder: Path, flake: nixgen.Flake) -> Path:
    """A nixgen project (nixgen.toml and the flake) of ``flake`` in ``folder``."""
    nixgen.write_project(flake, folder)
    Project(folder).save(flake)
    return folder


def _among(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    """The modules that are one of ``packages`` or inside one."""
    return sorted(
        m for m in modules if m in packages or m.startswith(tuple(f"{p}." for p in packages))
    )


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


#: What a command that runs no nix must not import: the flake editor, the
#: comment-keeping TOML writer, the Nix runner, the runtime's helpers, deploy.
NOT_WITHOUT_NIX = (
    "tomlkit",
    "tomli_w",
    "nixgen.nixcmd",
    "nixgen.runtime.helpers",
    "nixgen.deploy",
    "nixgen.starters",
)


@pytest.mark.parametrize("command", [["list", "--no-eval"], ["check", "--no-eval"]])
def test_commands_without_nix_import_no_heavy_module(tmp_path: Path, command: list[str]) -> None:
    _project(tmp_path, nixgen.Flake(guests=[nixgen.MicroVM(name="web")]))
    modules = _imported_after(_succeeds(command), cwd=tmp_path)
    assert _heavy(modules) == []
    assert _among(modules, NOT_WITHOUT_NIX) == []
    # nixgen.toml is read by tomli (compiled; tomllib reads only what tomli refuses)
    assert "tomli" in modules and _among(modules, ("tomllib",)) == []
    # shutil (with bz2, lzma, zlib) looks for nix and git, which these run not
    assert _among(modules, ("shutil",)) == []
    # The flake editor stays out (its lazy package and its errors are light).
    editor = [m for m in modules if m.startswith("nixgen.flake.") and m != "nixgen.flake.errors"]
    assert editor == []


#: All of nixgen that ``nixgen check --no-eval`` of a project without hosts loads:
#: the model and its reading of nixgen.toml, microvm.nix's option schema, the
#: hypervisor table, validation and the check of verbatim Nix.  Not rendering (Jinja's
#: side, the settings mapping), the network plan, the Nix serializer, the project
#: lock or git: what it does not need, it does not pay for (bench_startup.py).
CHECK_LOADS = {
    "nixgen",
    "nixgen._gc",
    "nixgen._lazy",
    "nixgen._repr",
    "nixgen.cli",
    "nixgen.cli.check",
    "nixgen.cli.nixopts",
    "nixgen.cli.output",
    "nixgen.cli.parsing",
    "nixgen.datafile",
    "nixgen.errors",
    "nixgen.hypervisors",
    "nixgen.model",
    "nixgen.model.attrpath",
    "nixgen.model.convert",
    "nixgen.model.devices",
    "nixgen.model.expr",
    "nixgen.model.fields",
    "nixgen.model.flake",
    "nixgen.model.frozen",
    "nixgen.model.guest",
    "nixgen.model.host",
    "nixgen.model.memo",
    "nixgen.project",
    "nixgen.schema",
    "nixgen.validate",
    "nixgen.verbatim",
}


def test_check_without_nix_loads_only_what_validation_needs(tmp_path: Path) -> None:
    guest = nixgen.MicroVM(name="web", interfaces=[nixgen.Interface.user()])
    _project(tmp_path, nixgen.Flake(guests=[guest]))
    modules = _imported_after(_succeeds(["check", "--no-eval"]), cwd=tmp_path)
    assert {m for m in modules if m.startswith("nixgen")} == CHECK_LOADS
    # nor a hash (one interface's MAC can clash with no other), nor shlex (for -v)
    assert _among(modules, ("hashlib", "shlex", "jinja2")) == []
    # the library's own check loads no more (the command line aside)
    library = _imported_after(
        f"from nixgen.project import Project\nProject.at({str(tmp_path)!r}).check()\n"
    )
    command_line = {m for m in CHECK_LOADS if m.startswith("nixgen.cli")}
    assert {m for m in library if m.startswith("nixgen")} == CHECK_LOADS - command_line
    assert _among(library, ("hashlib",)) == []


def test_check_loads_the_serializer_and_network_plan_where_they_are_asked(
    tmp_path: Path,
) -> None:
    """What check leaves out is loaded where the project needs it: the serializer
    for verbatim Nix, the network plan for hosts, a hash for MACs that could clash."""
    guest = nixgen.MicroVM(
        name="web",
        interfaces=[nixgen.Interface.user(), nixgen.Interface.tap_device("vm-web")],
        nixos={"networking.firewall.enable": nixgen.Nix("false")},
    )
    host = nixgen.Host(name="box", vms=[nixgen.HostVM(name="web")])
    _project(tmp_path, nixgen.Flake(guests=[guest], hosts=[host]))
    modules = _imported_after(_succeeds(["check", "--no-eval"]), cwd=tmp_path)
    assert {"nixgen.nix.emit", "nixgen.network", "hashlib"} <= modules
    assert _among(modules, ("nixgen.render", "nixgen.settings", "nixgen.lock", "jinja2")) == []


def test_list_reads_the_guest_names_without_the_model(tmp_path: Path) -> None:
    _project(tmp_path, nixgen.Flake(guests=[nixgen.MicroVM(name="web"), nixgen.MicroVM(name="db")]))
    listed = run_cli(["list", "--no-eval", "--flake", str(tmp_path)])
    assert [line.split()[0] for line in listed.stdout.splitlines()[1:]] == ["web", "db"]
    # (the first command in a project outside git linked .nixgen/vms out of the
    # flake, asking nixgen.build how nix sees the folder; every later one does not)
    modules = _imported_after(_succeeds(["list", "--no-eval"]), cwd=tmp_path)
    layers = ("nixgen.model", "nixgen.project", "nixgen.render", "nixgen.validate", "nixgen.build")
    assert _among(modules, layers) == []
    # nor QEMU's monitor (a list asks no guest), nor a hash (the build cache is not read)
    assert _among(modules, ("nixgen.runtime.qmp", "hashlib")) == []


def test_the_build_command_leaves_the_model_out() -> None:
    """A no-op build is answered by the cache: neither the model nor the Nix
    serializer, render or rich is needed to say so."""
    modules = _imported_after("import nixgen.cli.build")
    assert _heavy(modules) == []
    assert not any(m.startswith(("nixgen.model", "nixgen.nix.", "nixgen.render")) for m in modules)


def _built_project(tmp_path: Path) -> Path:
    """A project whose build cache holds ``web``, with stand-in paths for its artifacts."""
    project = _project(tmp_path / "project", nixgen.Flake(guests=[nixgen.MicroVM(name="web")]))
    store = tmp_path / "store"
    store.mkdir()
    artifacts = {key: store / key for key in ("runner", "kernel", "initrd", "toplevel")}
    for path in artifacts.values():
        path.write_text("")
    result = BuildResult(
        name="web",
        hypervisor="qemu",
        system="x86_64-linux",
        reg_info=None,
        store_disk=None,
        drv_path="/nix/store/aaaa-microvm-qemu-web.drv",
        **artifacts,
    )
    root = project.resolve()
    key = buildcache.fingerprint(root, override_inputs={}, options={})
    cache = {"key": key, "complete": True, "results": {"web": result.to_json()}}
    (root / buildcache.STATE_DIR).mkdir(exist_ok=True)
    (root / buildcache.STATE_DIR / buildcache.CACHE_FILE).write_text(json.dumps(cache))
    return project


def test_a_no_op_build_is_answered_before_nixs_side_is_imported(tmp_path: Path) -> None:
    project = _built_project(tmp_path)
    # the library agrees that nothing is to be done
    assert build_module.cached(project) is not None
    modules = _imported_after(_succeeds(["build"]), cwd=project)
    # typing and pathlib too: each costs a no-op build ~4 ms (bench_startup.py)
    late = ("attrs", "nixgen.build", "nixgen.nixcmd", "nixgen.model", "typing", "pathlib")
    assert _among(modules, late) == []
    shown = run_cli(["build", "--json", "--flake", str(project)])
    assert shown.exit_code == 0, shown.output
    web = json.loads(shown.stdout)["web"]
    assert web["runner"] == str(tmp_path / "store/runner")
    assert web["run_script"] == str(tmp_path / "store/runner/bin/microvm-run")
    # a changed file of the flake: the cache no longer answers
    (project / "flake.nix").write_text((project / "flake.nix").read_text() + "\n")
    assert build_module.cached(project) is None


def test_run_wait_imports_neither_nixs_side_nor_a_lock_library(tmp_path: Path) -> None:
    """`nixgen run NAME --wait` of a built runner: the guest's lock is the standard
    library's flock, the console is read without nix's event parser."""
    state = tmp_path / "vms"
    runtime = nixgen.runtime.Runtime(None, state_root=state)
    runtime.guest("web").set_current(make_runner(tmp_path / "runner", BOOTS))
    run = ["run", "web", "--wait", "--no-build", "--state-dir", str(state)]
    try:
        modules = _imported_after(_succeeds(run), cwd=tmp_path)  # (not in a project)
        assert runtime.guest("web").is_running()
    finally:
        runtime.guest("web").stop(timeout=5)
        kill_leftovers(tmp_path)
    assert _heavy(modules) == []  # filelock, asyncio, qemu.qmp among them
    assert _among(modules, ("nixgen.nixcmd", "nixgen.build", "nixgen.model", "logging")) == []
    # nor what only guests with shares or taps need, nor a hash (no build cache to check)
    assert _among(modules, ("socket", "shutil", "hashlib")) == []


def test_run_of_a_built_guest_reads_the_build_cache_without_nixs_side(tmp_path: Path) -> None:
    """The runner the build cache holds is started without the Nix runner or its
    event classes being imported (as a no-op `nixgen build` answers)."""
    project = _built_project(tmp_path)
    runner = tmp_path / "store" / "runner"
    runner.unlink()
    make_runner(runner, BOOTS)
    state = tmp_path / "vms"
    run = ["run", "web", "--wait", "--state-dir", str(state)]
    guest = nixgen.runtime.Runtime(None, state_root=state).guest("web")
    try:
        modules = _imported_after(_succeeds(run), cwd=project)
        assert guest.is_running() and guest.runner() == runner
    finally:
        guest.stop(timeout=5)
        kill_leftovers(tmp_path)
    assert _among(modules, ("nixgen.nixcmd", "nixgen.cli.progress", "nixgen.model")) == []
    assert _heavy(modules) == []


def _collector_during(args: list[str], cwd: Path) -> list[object]:
    """What :func:`nixgen.cli.main` does to the garbage collector: whether it
    ran while the command loaded and while it ran, whether it runs after, and
    how many objects the start-up froze."""
    code = (
        "import gc, json, sys\n"
        "from nixgen import cli\n"
        "seen = []\n"
        "load = cli._load\n"
        "def loaded(name):\n"
        "    command = load(name)\n"
        "    seen.append(gc.isenabled())\n"
        "    run = command.function\n"
        "    def running(*args, **kwargs):\n"
        "        seen.append(gc.isenabled())\n"
        "        return run(*args, **kwargs)\n"
        "    command.function = running\n"
        "    return command\n"
        "cli._load = loaded\n"
        "try:\n"
        f"    cli.main({args!r})\n"
        "except SystemExit as ended:\n"
        "    seen.append(ended.code)\n"
        "print(json.dumps([*seen, gc.isenabled(), gc.get_freeze_count()]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, check=True
    )
    return list(json.loads(done.stdout.splitlines()[-1]))


def test_the_collector_sleeps_while_a_command_loads_and_runs_for_its_work(tmp_path: Path) -> None:
    _project(tmp_path, nixgen.Flake(guests=[nixgen.MicroVM(name="web")]))
    paused, running, code, after, frozen = _collector_during(["list", "--no-eval"], tmp_path)
    assert (paused, running, code, after) == (False, True, 0, True)
    assert isinstance(frozen, int) and frozen > 10_000  # the modules and classes of the start-up
    # --help loads no command: the collector runs again all the same
    *_, after, _ = _collector_during(["--help"], tmp_path)
    assert after is True
    # a script calling invoke() keeps its collector as it was
    modules = _imported_after(
        "import gc\nfrom nixgen.cli import invoke\ninvoke(['--version'])\n"
        "assert gc.isenabled() and gc.get_freeze_count() == 0\n"
    )
    assert "nixgen.cli" in modules


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
