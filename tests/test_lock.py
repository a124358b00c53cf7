"""Nothing lost, nothing half-done: the project lock, interrupted writes, file modes."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from nixgen import Flake, MicroVM, ProjectLockedError, files, write_project
from nixgen.files import clean_stale_temps, hold_lock, new_file_mode, new_temp_file
from nixgen.lock import project_lock
from nixgen.project import Project, init_project
from nixgen.render import atomic_write
from nixgen.runtime.state import StateDir
from tests import stress
from tests.clirunner import run_cli

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = run_cli(list(args), env=env)
    return result.exit_code, result.stdout + result.stderr


# ----------------------------------------------------------------- the lock


def test_lock_is_reentrant_in_one_thread_and_exclusive_across_threads(tmp_path: Path) -> None:
    entered = threading.Event()
    with project_lock(tmp_path, timeout=1), project_lock(tmp_path, timeout=1):

        def other() -> None:
            try:
                with project_lock(tmp_path, timeout=0.2):
                    entered.set()
            except ProjectLockedError:
                pass

        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
        assert not entered.is_set()  # the other thread could not take it
    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert entered.is_set()  # released: now it can


def test_the_lock_stays_out_of_git(tmp_path: Path) -> None:
    with project_lock(tmp_path) as lock_file:
        assert lock_file.parent == tmp_path / ".nixgen"
    assert (tmp_path / ".nixgen" / ".gitignore").read_text().splitlines()[-1] == "*"


def test_a_timeout_inside_the_locked_block_is_not_a_lock_wait(tmp_path: Path) -> None:
    """Only waiting for the lock is reported as a held lock; a timeout of the
    work done under it (a socket's, say) passes as it is."""
    state = StateDir(tmp_path / "vm", "vm")
    with pytest.raises(TimeoutError, match="the guest did not answer"), state.lock(timeout=0.2):
        raise TimeoutError("the guest did not answer")
    with pytest.raises(TimeoutError, match="the work"), project_lock(tmp_path, timeout=0.2):
        raise TimeoutError("the work")
    with state.lock(timeout=0.2), project_lock(tmp_path, timeout=0.2):
        pass  # both were released


def test_a_lock_file_removed_by_its_holder_is_taken_anew(tmp_path: Path) -> None:
    """`nixgen destroy` removes the guest's folder, lock file included, while
    holding the lock: the one who waited locks the new file, and a third
    that opens it now is kept out."""
    lock = tmp_path / "lock"
    taken = threading.Event()
    release = threading.Event()

    def waiter() -> None:
        with hold_lock(lock, timeout=10):
            taken.set()
            release.wait(10)

    with hold_lock(lock, timeout=1):
        thread = threading.Thread(target=waiter)
        thread.start()
        time.sleep(0.1)  # (it waits now)
        lock.unlink()
    assert taken.wait(10)
    assert lock.exists()
    with pytest.raises(TimeoutError), hold_lock(lock, timeout=0.2):
        pass
    release.set()
    thread.join(10)
    with hold_lock(lock, timeout=1):
        pass


def test_a_writer_that_cannot_get_the_lock_says_so(tmp_path: Path) -> None:
    root = tmp_path / "p"
    init_project(root, name="vm", git_add=False)
    before = (root / "nixgen.toml").read_bytes()
    with project_lock(root):
        proc = subprocess.run(
            [sys.executable, "-m", "nixgen", "set", "vm", "microvm.mem=1024", "-f", str(root)],
            env=dict(os.environ, PYTHONPATH=str(ROOT), NIXGEN_LOCK_TIMEOUT="0.3"),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 4, proc.stderr
        assert "another nixgen command" in proc.stderr and "0.3 s" in proc.stderr
        with pytest.raises(ProjectLockedError):
            # In a thread of its own: in this thread the lock would nest.
            errors: list[BaseException] = []

            def render() -> None:
                try:
                    with project_lock(root, timeout=0.2):
                        pass
                except BaseException as err:
                    errors.append(err)

            thread = threading.Thread(target=render)
            thread.start()
            thread.join()
            raise errors[0]
    assert (root / "nixgen.toml").read_bytes() == before


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_concurrent_writers_lose_no_update(tmp_path: Path, mode: str) -> None:
    """A bounded run of the stress test (benchmarks/bench_stress.py runs 8 x 50)."""
    crew = stress.make_project(tmp_path / "p")
    rounds = 4 if mode == "thread" else 2  # the machine is shared: keep the suite quick
    report = stress.run(tmp_path / "p", crew, rounds, mode=mode)
    assert report.failures == []
    assert report.lost == []
    assert report.out_of_step == []


# ----------------------------------------------------------------- interrupted writes


def _kill_after_writes(root: Path, writes: int, *args: str) -> None:
    """Run nixgen in a child that is SIGKILLed right after its ``writes``-th file replace."""
    code = (
        "import os, signal, sys\n"
        "from nixgen.cli import main\n"
        "real = os.replace\n"
        "count = 0\n"
        "def replace(src, dst, *a, **k):\n"
        "    global count\n"
        "    real(src, dst, *a, **k)\n"
        "    count += 1\n"
        f"    if count >= {writes}:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "os.replace = replace\n"
        "main(sys.argv[1:])\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=root.parent,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr


@pytest.mark.parametrize("writes", [1, 2, 3])
def test_an_init_killed_between_files_is_completed_by_a_rerun(tmp_path: Path, writes: int) -> None:
    root = tmp_path / "p"
    _kill_after_writes(root, writes, "init", str(root), "--name", "vm")
    assert not (root / "nixgen.toml").exists()  # written last: never a finished project
    if (root / "flake.nix").exists():
        code, output = run("render", str(root))
        assert code == 1 and "run it again with the same options" in output
    code, output = run("init", str(root), "--name", "vm")
    assert code == 0, output
    reference = tmp_path / "ref"
    init_project(reference, name="vm", git_add=False)
    assert _files(root) == _files(reference)
    code, output = run("render", str(root))
    assert code == 0 and "up to date" in output


def test_a_killed_write_leaves_no_temp_file_visible(tmp_path: Path) -> None:
    root = tmp_path / "p"
    init_project(root, name="vm", git_add=False)
    text = (root / "nixgen.toml").read_text().replace("mem = 512", "mem = 1024")
    (root / "nixgen.toml").write_text(text)
    # A temp file as a killed rename leaves it, and the .gitignore that hides it.
    left = root / "vms" / ".vm.nix.abcd1234.tmp"
    left.write_text("half")
    assert ".*.tmp" in (root / ".gitignore").read_text().splitlines()
    code, output = run("render", str(root))
    assert code == 0, output
    assert not left.exists()  # cleaned by the next write, under the lock
    assert "mem = 1024" in (root / "vms" / "vm.nix").read_text()


def test_clean_stale_temps_touches_only_temp_files(tmp_path: Path) -> None:
    keep = [tmp_path / n for n in ("flake.nix", ".hidden", "x.tmp", ".a.b.tmp", ".a.TOOLONG12.tmp")]
    gone = [tmp_path / ".flake.nix.k3j_9xq2.tmp", tmp_path / ".nixgen.toml.00000000.tmp"]
    for path in keep + gone:
        path.write_text("x")
    assert sorted(clean_stale_temps(tmp_path)) == sorted(gone)
    assert all(p.exists() for p in keep)


def test_temp_files_are_new_named_for_the_cleanup_and_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "flake.nix"
    made = []
    for _ in range(3):
        fd, name = new_temp_file(target)
        os.close(fd)
        made.append(Path(name))
    assert len(set(made)) == 3 and all(p.parent == tmp_path for p in made)
    assert all(p.name.startswith(".flake.nix.") for p in made)
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in made)  # private until renamed
    # A name already taken (another process, a killed write) is skipped, never reused.
    fd, taken = new_temp_file(target)
    os.close(fd)
    Path(taken).write_text("someone else's")
    again = int(Path(taken).name[-7:-4], 36)  # its serial number, to be drawn again
    monkeypatch.setattr(files, "_temp_serial", itertools.chain([again], itertools.count()))
    fd, name = new_temp_file(target)
    os.close(fd)
    assert name != taken and Path(taken).read_text() == "someone else's"
    assert sorted(clean_stale_temps(tmp_path)) == sorted([*made, Path(taken), Path(name)])
    assert [p.name for p in tmp_path.iterdir()] == []


# ----------------------------------------------------------------- file modes


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077, 0o002])
def test_generated_files_follow_the_umask(tmp_path: Path, mask: int) -> None:
    old = os.umask(mask)
    try:
        assert new_file_mode() == 0o666 & ~mask
        write_project(Flake(guests=[MicroVM(name="vm")]), tmp_path)
        atomic_write(tmp_path / "other.txt", "x")
    finally:
        os.umask(old)
    for path in (tmp_path / "flake.nix", tmp_path / "vms" / "vm.nix", tmp_path / "other.txt"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask, path


def test_a_replaced_file_keeps_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_text("old")
    target.chmod(0o640)
    atomic_write(target, "new")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_state_folders_and_console_logs_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        state = StateDir(tmp_path / ".nixgen" / "vms" / "vm", "vm")
        state.create()
        state.rotate_console()
    finally:
        os.umask(old)
    assert stat.S_IMODE(state.path.stat().st_mode) == 0o700
    assert stat.S_IMODE(state.console.stat().st_mode) == 0o600
    state.path.chmod(0o755)  # made by an older nixgen: tightened on the next use
    state.create()
    assert stat.S_IMODE(state.path.stat().st_mode) == 0o700


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".nixgen" not in p.relative_to(root).parts
    }


def test_render_under_the_lock_waits_for_the_writer(tmp_path: Path) -> None:
    """A render started while another command holds the lock runs after it."""
    root = tmp_path / "p"
    init_project(root, name="vm", git_add=False)
    order: list[str] = []
    held = threading.Event()

    def writer() -> None:
        with project_lock(root):
            held.set()
            time.sleep(0.3)
            text = (root / "nixgen.toml").read_text().replace("mem = 512", "mem = 768")
            (root / "nixgen.toml").write_text(text)
            order.append("edit")

    thread = threading.Thread(target=writer)
    thread.start()
    held.wait()
    Project.at(root).render()
    order.append("render")
    thread.join()
    assert order == ["edit", "render"]
    assert "mem = 768" in (root / "vms" / "vm.nix").read_text()


# ----------------------------------------------------------------- full disks, read-only folders

_IN_NAMESPACE = """
import hashlib, json, os, subprocess, sys
from pathlib import Path
from nixgen.project import init_project

kind, base = sys.argv[1], Path(sys.argv[2])
project = base / "p"
if kind == "full":
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(base)], check=True)
init_project(project, name="vm", git_add=False)
toml = project / "nixgen.toml"
toml.write_text(toml.read_text().replace("mem = 512", "mem = 1024"))
if kind == "full":
    fd = os.open(base / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"x" * 1024)
    except OSError:
        pass
    os.close(fd)
else:
    subprocess.run(["mount", "--bind", str(project), str(project)], check=True)
    subprocess.run(["mount", "-o", "remount,ro,bind", str(project)], check=True)

def files():
    return {
        str(p.relative_to(project)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(project.rglob("*")) if p.is_file() and ".nixgen" not in p.parts
    }

before = files()
proc = subprocess.run([sys.executable, "-m", "nixgen", "render", str(project)],
                      capture_output=True, text=True)
print(json.dumps({"code": proc.returncode, "stderr": proc.stderr,
                  "same": files() == before, "names": sorted(files())}))
"""


def _private_mounts() -> bool:
    if sys.platform != "linux" or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-m", "mount", "-t", "tmpfs", "tmpfs", "/mnt"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


needs_mounts = pytest.mark.skipif(
    not _private_mounts(),
    reason="needs root and `unshare -m` to mount a small tmpfs or a read-only bind "
    "(run the suite as root, as scripts/test.sh and CI do)",
)


@needs_mounts
@pytest.mark.parametrize(
    ("kind", "words"),
    [("full", "No space left on device"), ("read-only", "Read-only file system")],
)
def test_full_disk_and_read_only_folder_are_a_message_and_exit_3(
    tmp_path: Path, kind: str, words: str
) -> None:
    proc = subprocess.run(
        ["unshare", "-m", sys.executable, "-c", _IN_NAMESPACE, kind, str(tmp_path)],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["code"] == 3, result["stderr"]
    assert words in result["stderr"] and "hint:" in result["stderr"]
    assert "Traceback" not in result["stderr"]
    assert result["same"]  # the old files stand, whole
    assert not any(n.endswith(".tmp") for n in result["names"])  # no temp file left
