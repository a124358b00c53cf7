"""What users see: stdout vs stderr, --json on success and failure, colour, exit codes,
short errors (the full command only with --verbose)."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import pytest

from nixgen import Flake, Interface, MicroVM, Share, write_project
from nixgen.cli import EXIT_FAILED, EXIT_USAGE
from nixgen.cli.progress import progress
from nixgen.nixcmd import BuildStarted
from nixgen.nixcmd.errors import NixEvalError
from nixgen.process.errors import shown_command
from nixgen.project import Project, init_project
from tests.clirunner import Result, run_cli
from tests.standin import (
    NIX_SKIP_REASON,
    nix_available,
    offline_nix_env,
    prepare_inputs,
)

BUILD_NIX = (Path(__file__).parent.parent / "nixgen" / "build.nix").read_text()


def invoke(*args: str, env: dict[str, str] | None = None, color: bool = False) -> Result:
    return run_cli(list(args), env=env, color=color)


def a_project(tmp_path: Path, *guests: MicroVM) -> Path:
    flake = Flake(guests=guests or (MicroVM(name="web"),))
    write_project(flake, tmp_path)
    Project(tmp_path).save(flake)
    return tmp_path


def qemu(name: str, **kw: object) -> MicroVM:
    return MicroVM(name=name, interfaces=[Interface.user()], shares=[Share.ro_store()], **kw)  # type: ignore[arg-type]


# ------------------------------------------------------------------ --json


def test_check_json_on_invalid_input_prints_the_problems_on_stdout(tmp_path: Path) -> None:
    folder = a_project(tmp_path)
    toml = folder / "nixgen.toml"
    toml.write_text(toml.read_text().replace('hypervisor = "qemu"', 'hypervisor = "qmeu"'))
    result = invoke("check", str(folder), "--json", "--no-eval")
    assert result.exit_code == EXIT_FAILED
    data = json.loads(result.stdout)
    assert data["ok"] is False and data["guests"] == []
    [problem] = data["problems"]
    assert problem["severity"] == "error"
    assert problem["path"] == 'guests["web"].hypervisor' and problem["value"] == "qmeu"
    assert "qmeu" in result.stderr  # the text goes to stderr as without --json


def test_check_json_carries_the_warnings_and_what_was_evaluated(tmp_path: Path) -> None:
    folder = a_project(tmp_path, MicroVM(name="web", mem=2048))  # 2048 MiB: upstream warns
    result = invoke("check", str(folder), "--json", "--no-eval")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ok"] is True and [g["name"] for g in data["guests"]] == ["web"]
    assert [p["severity"] for p in data["problems"]] == ["warning"]
    assert data["problems"][0]["path"] == 'guests["web"].mem'
    assert data["evaluated"] is False and data["note"] == "not evaluated (--no-eval)"
    assert data["eval_errors"] == {} and data["host_errors"] == {}
    assert data["microvm_options"].startswith("packaged with nixgen")  # --no-eval: no lock read


def test_any_failure_with_json_is_a_json_error_on_stdout(tmp_path: Path) -> None:
    folder = a_project(tmp_path)
    result = invoke("show", "nosuch", "--json", "--flake", str(folder))
    assert result.exit_code == EXIT_FAILED
    data = json.loads(result.stdout)
    assert data["ok"] is False
    assert data["error"]["type"] == "FlakeEditError" and "nosuch" in data["error"]["message"]
    assert "nosuch" in result.stderr


def test_without_json_stdout_has_only_results(tmp_path: Path) -> None:
    folder = a_project(tmp_path, MicroVM(name="web", mem=2048))
    result = invoke("check", str(folder), "--no-eval")
    assert result.exit_code == 0
    assert "warning:" in result.stderr and "warning:" not in result.stdout
    assert result.stdout.startswith("NAME")


# ------------------------------------------------------------------ exit codes


def test_the_same_failure_has_the_same_exit_code(tmp_path: Path) -> None:
    folder = a_project(tmp_path)
    show = invoke("show", "nosuch", "--flake", str(folder))
    status = invoke("status", "nosuch", "--flake", str(folder), "--no-eval")
    check = invoke("check", str(folder), "nosuch", "--no-eval")
    assert show.exit_code == status.exit_code == check.exit_code == EXIT_FAILED
    assert "nosuch" in status.stderr and "the guests are: web" in status.stderr


def test_usage_errors_exit_2() -> None:
    assert invoke("check", "--no-such-option").exit_code == EXIT_USAGE
    assert invoke("set", "web", "no-equals-sign").exit_code == EXIT_USAGE


def test_the_conventions_are_in_the_help() -> None:
    text = invoke("--help").stdout
    for needle in ("stdout", "stderr", "--json", "NO_COLOR", "TERM=dumb", "130"):
        assert needle in text, needle
    assert "  2    usage error" in text


def test_render_takes_flake_like_the_other_commands(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    init_project(folder, git_add=False)
    (folder / "flake.nix").unlink()
    result = invoke("render", "--flake", str(folder))
    assert result.exit_code == 0, result.output
    assert (folder / "flake.nix").is_file() and "wrote" in result.stdout
    assert invoke("render", "-f", str(folder)).stdout == "up to date\n"
    assert invoke("render", str(folder), "-f", str(tmp_path)).exit_code == EXIT_USAGE
    (folder / "vms/my-microvm.nix").unlink()
    data = json.loads(invoke("render", "-f", str(folder), "--json").stdout)
    assert data["ok"] is True and data["written"] == [str(folder.resolve() / "vms/my-microvm.nix")]
    assert data["removed"] == [] and len(data["unchanged"]) == 1


# ------------------------------------------------------------------ colour


@pytest.mark.parametrize("env", [{"NO_COLOR": "1"}, {"TERM": "dumb"}])
def test_no_color_and_dumb_terminals_get_no_escape_codes(
    tmp_path: Path, env: dict[str, str]
) -> None:
    folder = a_project(tmp_path, MicroVM(name="web", mem=2048))
    coloured = invoke("check", str(folder), "--no-eval", color=True, env={"TERM": "xterm"})
    assert "\x1b[" in coloured.stderr  # the warning is yellow where colour is allowed
    plain = invoke("check", str(folder), "--no-eval", color=True, env=env)
    assert "warning:" in plain.stderr and "\x1b[" not in plain.output


def test_progress_on_a_dumb_terminal_is_plain_lines(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TERM", "dumb")
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    with progress("building") as report:
        report(BuildStarted(1, "/nix/store/aaa-microvm-qemu-web.drv", "microvm-qemu-web"))
    assert capsys.readouterr().err == "building microvm-qemu-web\n"


# ------------------------------------------------------------------ short errors


def test_nixgens_own_expression_is_shown_by_name() -> None:
    apply = f'({BUILD_NIX}).describe [ "web" ]'
    argv = ["nix", "eval", "--json", "path:/p#nixosConfigurations", "--apply", apply]
    assert shown_command(argv) == (
        "nix eval --json 'path:/p#nixosConfigurations' --apply <nixgen: describe [ \"web\" ]>"
    )
    text = str(NixEvalError("the guest does not evaluate", command=argv, exit_code=1))
    assert len(text.splitlines()) < 6 and "isGuest" not in text
    assert shown_command(["nix", "eval", "--expr", "let\n  a = 1;\nin\na"]) == (
        "nix eval --expr <Nix expression, 4 lines>"
    )
    assert shown_command(["nix", "build", ".#a b"]) == "nix build '.#a b'"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    if not nix_available():
        pytest.skip(NIX_SKIP_REASON)
    base = tmp_path_factory.mktemp("inputs")
    os.environ.update(offline_nix_env(base))
    return {name: f"path:{path}" for name, path in prepare_inputs(base).items()}


def overrides(inputs: dict[str, str]) -> list[str]:
    return [a for name, url in inputs.items() for a in ("--override-input", name, url)]


@pytest.mark.nix
def test_a_misspelt_option_fails_check_in_a_few_lines(
    tmp_path: Path, inputs: dict[str, str]
) -> None:
    folder = a_project(tmp_path, qemu("web"))
    # a hand edit nixgen.toml does not see: only nix finds the misspelling
    module = folder / "vms/web.nix"
    module.write_text(module.read_text().replace("microvm = {", "microvm = {\n    memoryy = 1;", 1))
    result = invoke("check", str(folder), *overrides(inputs))
    assert result.exit_code == EXIT_FAILED
    assert "microvm.memoryy" in result.stderr
    assert "--apply <nixgen: describe" in result.stderr and "isGuest" not in result.stderr
    assert len(result.stderr.splitlines()) < 25
    verbose = invoke("-v", "check", str(folder), *overrides(inputs))
    # the full command, printed last, is the argv that ran: build.nix and all
    argv = shlex.split(verbose.stderr.split("full command: ", 1)[1])
    assert argv[argv.index("--apply") + 1] == f"({BUILD_NIX}).describe null"
    as_json = invoke("check", str(folder), "--json", *overrides(inputs))
    data = json.loads(as_json.stdout)
    assert data["ok"] is False and data["evaluated"] is True
    assert "microvm.memoryy" in data["eval_errors"]["web"]["text"]
    assert "--apply" in data["eval_errors"]["web"]["command"]


@pytest.mark.nix
def test_build_json_has_everything_the_text_shows(tmp_path: Path, inputs: dict[str, str]) -> None:
    folder = a_project(tmp_path, qemu("web"))
    text = invoke("build", "--flake", str(folder), *overrides(inputs))
    assert text.exit_code == 0, text.output
    as_json = invoke("build", "--flake", str(folder), *overrides(inputs), "--json")
    data = json.loads(as_json.stdout)["web"]
    shown = dict(line.split(None, 1) for line in text.stdout.splitlines()[1:] if line.strip())
    assert data["run_script"] == shown["runner"] and data["run_script"].endswith("/bin/microvm-run")
    assert Path(data["run_script"]).is_file()
    assert data["kernel"] == shown["kernel"] and data["toplevel"] == shown["toplevel"]
