"""The command line's declarations over argparse (nixgen/cli/parsing.py): what a
command function receives, and what a wrong command line prints."""

from __future__ import annotations

from pathlib import Path

import pytest

from nixgen.cli.parsing import (
    USAGE_STATUS,
    Command,
    argument,
    command,
    directory,
    int_at_least,
    option,
)


def _ssh_like(seen: dict[str, object]) -> Command:
    @command("ssh", unknown_options_are_arguments=True)
    @argument("name")
    @argument("args", nargs="*")
    @option("-l", "--login", dest="user", default="root", show_default=True, help="User.")
    @option("--print", dest="print_only", action="store_true", help="Print it.")
    def ssh(name: str, args: tuple[str, ...], user: str, print_only: bool) -> None:
        """Log in to NAME."""
        seen.update(name=name, args=args, user=user, print_only=print_only)

    return ssh


def _build_like(seen: dict[str, object]) -> Command:
    @command("build")
    @argument("names", nargs="*")
    @option("--state-dir", type=directory, default=None, envvar="NIXGEN_TEST_STATE_DIR")
    @option("--override-input", dest="overrides", nargs=2, action="append")
    @option("--mem", type=int_at_least(1), default=512, show_default=True, help="MiB.")
    @option("--no-eval", action="store_true")
    def build(
        names: tuple[str, ...],
        state_dir: Path | None,
        overrides: tuple[tuple[str, str], ...],
        mem: int,
        no_eval: bool,
    ) -> None:
        """Build NAMES.

        More words."""
        seen.update(names=names, state_dir=state_dir, overrides=overrides, mem=mem, no_eval=no_eval)

    return build


def test_options_and_arguments_come_in_any_order() -> None:
    seen: dict[str, object] = {}
    _build_like(seen)(["a", "--override-input", "n", "u", "b", "--no-eval", "c", "--mem=2"])
    assert seen == {
        "names": ("a", "b", "c"),
        "state_dir": None,
        "overrides": (("n", "u"),),
        "mem": 2,
        "no_eval": True,
    }


def test_an_option_not_given_reads_its_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, object] = {}
    monkeypatch.setenv("NIXGEN_TEST_STATE_DIR", str(tmp_path))
    _build_like(seen)([])
    assert seen["state_dir"] == tmp_path and seen["names"] == () and seen["overrides"] == ()
    _build_like(seen)(["--state-dir", str(tmp_path / "given")])
    assert seen["state_dir"] == tmp_path / "given"


def test_unknown_options_after_the_name_are_the_commands_arguments() -> None:
    seen: dict[str, object] = {}
    ssh = _ssh_like(seen)
    ssh(["web", "ls", "-la", "-l", "bob"])
    assert seen == {"name": "web", "args": ("ls", "-la"), "user": "bob", "print_only": False}
    ssh(["-l", "bob", "web", "--", "--print", "-l"])
    assert seen == {"name": "web", "args": ("--print", "-l"), "user": "bob", "print_only": False}
    ssh(["web", "--print", "uname", "--login=al"])
    assert seen == {"name": "web", "args": ("uname",), "user": "al", "print_only": True}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--mem", "0"], "argument --mem: 0 is not in the range x>=1"),
        (["--mem", "lots"], "argument --mem: 'lots' is not a whole number"),
        (["--override-input", "only-a-name"], "argument --override-input: expected 2 arguments"),
    ],
)
def test_a_wrong_command_line_shows_the_usage_and_exits_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as ended:
        _build_like({})(argv)
    assert ended.value.code == USAGE_STATUS
    err = capsys.readouterr().err
    assert err.startswith("usage: nixgen build [OPTIONS] [NAMES]...\n")
    assert "Try 'nixgen build --help' for help." in err
    assert err.rstrip().endswith(f"error: {message}")


def test_help_shows_the_docstring_and_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    build = _build_like({})
    with pytest.raises(SystemExit) as ended:
        build(["--help"])
    assert ended.value.code == 0
    out = capsys.readouterr().out
    assert "Build NAMES.\n\nMore words." in out and "[default: 512]" in out
    assert build.first_paragraph == "Build NAMES."
    assert _ssh_like({}).usage() == "nixgen ssh [OPTIONS] NAME [ARGS]..."
