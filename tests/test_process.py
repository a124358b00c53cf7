"""nixgen.process: the one runner every program goes through, and the /proc walker."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nixgen import process
from nixgen.gitutil import track
from nixgen.process import proc
from nixgen.process.errors import CommandError, CommandNotFoundError, CommandTimeoutError

PACKAGE = Path(process.__file__).resolve().parent.parent


def test_run_returns_output_exit_code_and_time() -> None:
    done = process.run(["sh", "-c", "echo out; echo err >&2"])
    assert (done.exit_code, done.stdout, done.stderr) == (0, "out\n", "err\n")
    assert done.ok and done.argv == ("sh", "-c", "echo out; echo err >&2")
    assert done.duration >= 0


def test_run_failure_carries_command_exit_code_and_stderr_tail() -> None:
    script = "for i in $(seq 1 40); do echo line$i >&2; done; exit 7"
    with pytest.raises(CommandError) as caught:
        process.run(["sh", "-c", script], hint=lambda out: f"saw {len(out.stderr.split())}")
    err = caught.value
    assert err.command == ("sh", "-c", script) and err.exit_code == 7
    text = str(err)
    assert "exit code: 7" in text and "line40" in text and "line1\n" not in text
    assert "hint: saw 40" in text
    assert process.run(["sh", "-c", "exit 3"], check=False).exit_code == 3


def test_run_refuses_a_shell_string() -> None:
    with pytest.raises(TypeError):
        process.run("echo hi")


def test_run_missing_program(tmp_path: Path) -> None:
    with pytest.raises(CommandNotFoundError) as caught:
        process.run([str(tmp_path / "nope")], not_found_hint="install nope")
    assert "was not found" in str(caught.value) and "install nope" in str(caught.value)


def test_run_names_a_missing_working_folder(tmp_path: Path) -> None:
    with pytest.raises(CommandError) as caught:
        process.run(["true"], cwd=tmp_path / "gone")
    assert not isinstance(caught.value, CommandNotFoundError)
    assert "working folder" in str(caught.value) and str(tmp_path / "gone") in str(caught.value)


def test_run_streams_stderr_lines_as_they_come(tmp_path: Path) -> None:
    """The program goes on only once its first line reached the handler: read at
    its end instead, that line would come after the timeout."""
    go = tmp_path / "go"
    seen: list[str] = []

    def handle(line: str) -> None:
        seen.append(line)
        if line == "one":
            go.touch()

    script = f"echo one >&2; while [ ! -e '{go}' ]; do sleep 0.01; done; echo two >&2"
    process.run(["sh", "-c", script], on_stderr_line=handle, timeout=30)
    assert seen == ["one", "two"]


def test_run_merges_stderr_into_stdout_in_order() -> None:
    done = process.run(["sh", "-c", "echo a; echo b >&2; echo c"], merge_stderr=True)
    assert done.stdout == "a\nb\nc\n" and done.stderr == ""


def test_run_passes_env_on_top_and_cwd(tmp_path: Path) -> None:
    done = process.run(["sh", "-c", 'echo "$X $PATH"; pwd'], env={"X": "1"}, cwd=tmp_path)
    first, where = done.stdout.splitlines()
    assert first == f"1 {os.environ['PATH']}" and Path(where).resolve() == tmp_path.resolve()


def test_timeout_stops_the_group_and_the_strays_that_left_it(tmp_path: Path) -> None:
    """A child in a session of its own (like nix's builders) ignores SIGTERM:
    the one terminate() still ends it with SIGKILL after the grace."""
    marker = tmp_path / "stray.pid"
    stray = f"trap '' TERM; echo $$ > {marker}; exec sleep 300"
    script = f"setsid sh -c \"{stray}\" & echo started >&2; trap '' TERM; sleep 300"
    started = time.monotonic()
    with pytest.raises(CommandTimeoutError) as caught:
        process.run(["sh", "-c", script], timeout=0.5, grace=0.3)
    assert time.monotonic() - started < 10
    assert caught.value.exit_code is None and caught.value.timeout == 0.5
    assert "started" in caught.value.stderr
    stray_pid = int(marker.read_text())
    assert proc.wait_gone(stray_pid, None, 5.0)


def test_an_exception_from_the_line_handler_stops_the_program(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spawned: list[subprocess.Popen[bytes]] = []
    real = subprocess.Popen

    def spy(*args: object, **kwargs: object) -> subprocess.Popen[bytes]:
        created = real(*args, **kwargs)  # type: ignore[call-overload]
        spawned.append(created)
        return created  # type: ignore[no-any-return]

    def boom(line: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(subprocess, "Popen", spy)
    with pytest.raises(KeyboardInterrupt):
        process.run(["sh", "-c", "echo go >&2; sleep 300"], on_stderr_line=boom, grace=1)
    assert spawned[0].poll() is not None


def test_run_delay_is_the_time_a_process_waited_for_a_cpu() -> None:
    """Two busy loops on one CPU: each waits for it about half the time; a
    sleeping process waits for nothing; a gone one has no figure."""
    cpu = min(os.sched_getaffinity(0))
    busy = "import time\nend = time.monotonic() + 1.5\nwhile time.monotonic() < end: pass\n"
    loops = [
        subprocess.Popen(
            [sys.executable, "-c", busy],
            preexec_fn=lambda: os.sched_setaffinity(0, {cpu}),
        )
        for _ in range(2)
    ]
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        time.sleep(1.0)
        waited = [proc.run_delays(p.pid) for p in loops]
        assert all(w is not None and max(w.values()) > 0.2 for w in waited), waited
        # by thread: a process's main thread has the process's id
        assert all(w is not None and p.pid in w for w, p in zip(waited, loops, strict=True))
        assert max((proc.run_delays(sleeper.pid) or {0: 0.0}).values()) < 0.2
    finally:
        sleeper.kill()
        for child in (*loops, sleeper):
            child.wait()
    assert proc.run_delays(sleeper.pid) is None


def test_spawn_returns_a_running_program_with_passed_fds() -> None:
    read_fd, write_fd = os.pipe()
    try:
        child = process.spawn(
            [sys.executable, "-c", f"import os; os.write({write_fd}, b'hi')"],
            pass_fds=(write_fd,),
        )
        os.close(write_fd)
        assert child.wait(timeout=10) == 0
        assert os.read(read_fd, 10) == b"hi"
    finally:
        os.close(read_fd)
    with pytest.raises(CommandNotFoundError):
        process.spawn(["/nonexistent/program"])


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git (apt-get install git)")
def test_track_reports_what_git_refuses(tmp_path: Path) -> None:
    env = {"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_SYSTEM": "/dev/null"}
    process.run(["git", "init", "-q", str(tmp_path)], env=env)
    (tmp_path / ".gitignore").write_text("vms/\n")
    (tmp_path / "vms").mkdir()
    module = tmp_path / "vms" / "web.nix"
    module.write_text("{ }\n")
    with pytest.raises(CommandError) as caught:
        track(tmp_path, created=[module])
    assert caught.value.exit_code == 1 and "ignored" in caught.value.stderr
    assert "stage them yourself" in str(caught.value)
    assert module.read_text() == "{ }\n"  # the file stays


def test_track_asks_git_only_where_a_work_tree_may_be(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = tmp_path / "calls"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "git"  # says "not a work tree", and notes each call
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\necho false\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    for name in ("GIT_DIR", "GIT_WORK_TREE"):
        monkeypatch.delenv(name, raising=False)
    project = tmp_path / "project" / "sub"
    project.mkdir(parents=True)
    track(project, created=[project / "flake.nix"])
    assert not calls.exists()  # no .git here or above: nothing to ask
    (tmp_path / "project" / ".git").write_text("gitdir: elsewhere\n")  # a worktree's
    track(project, created=[project / "flake.nix"])
    assert calls.read_text().split("\n")[0].endswith("rev-parse --is-inside-work-tree")
    (tmp_path / "project" / ".git").unlink()
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "repo.git"))  # git told where it is
    track(project, created=[project / "flake.nix"])
    assert len(calls.read_text().splitlines()) == 2


def test_every_program_goes_through_nixgen_process() -> None:
    """No module but nixgen/process/run.py starts programs (the guest
    supervisor, a stand-alone script that execs the runner, excepted)."""
    allowed = {PACKAGE / "process" / "run.py", PACKAGE / "runtime" / "_supervisor.py"}
    starters = {"Popen", "run", "call", "check_call", "check_output", "getoutput", "system"}
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                module, name = func.value.id, func.attr
            elif isinstance(func, ast.Name):
                module, name = "", func.id
            else:
                continue
            if (
                (module == "subprocess" and name in starters)
                or (module == "" and name == "Popen")
                or (module == "os" and (name.startswith(("exec", "spawn", "popen", "system"))))
                or (module == "asyncio" and name.startswith("create_subprocess"))
                or (module == "pty" and name == "spawn")
            ):
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {name}")
    assert offenders == []
