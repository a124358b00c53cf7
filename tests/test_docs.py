"""Every shell and Python example of README.md and docs/ runs, and shows what the docs show.

How a page is run (docs/output.md, "Examples in the docs", says it for writers):

- the Python blocks of a page share one namespace, in order, like one
  session; a ``text`` block right after a Python block is its expected output;
- ``sh`` blocks run in bash (``set -eu``); ``console`` blocks are ``$ command``
  lines, each followed by the output it shows (stdout and stderr, as a terminal
  shows them);
- every page runs in a fresh folder, with ``nixgen`` of this checkout on PATH,
  and a ``nix`` that points the inputs ``nixpkgs`` and ``microvm`` of every flake
  at the stand-ins (tests/standins), so nothing is fetched;
- in shown output ``…`` stands for any text (store hashes, pids, times);
  ``building NAME`` progress lines (a bar that goes away on a terminal) are
  only compared where the docs show them.

An HTML comment right above a block says what the docs test does with it:
``<!-- docs-test: skip REASON -->`` (cannot run here, and why),
``<!-- docs-test: no-compare REASON -->`` (runs; the output shown is an
example), ``<!-- docs-test: before COMMAND -->`` (a shell command that sets
the scene first, in the page's folder).  A block without a reason to skip runs.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from tests.standin import nix_available, offline_nix_env, prepare_inputs

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
RUNNABLE = {"python", "sh", "console"}
DIRECTIVE = re.compile(r"<!--\s*docs-test:\s*(skip|no-compare|before)\b\s*(.*?)\s*-->")


@attrs.frozen
class Block:
    page: Path
    line: int  # of the opening fence
    lang: str
    text: str
    skip: str | None = None
    no_compare: str | None = None
    before: tuple[str, ...] = ()
    shown: str | None = None  # the ``text`` block after a Python block

    @property
    def where(self) -> str:
        return f"{_name(self.page)}:{self.line}"


def _name(page: Path) -> str:
    return str(page.relative_to(REPO)) if page.is_relative_to(REPO) else str(page)


def read_blocks(page: Path) -> list[Block]:
    """The fenced blocks of a page, with the directives above them."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        fence = re.fullmatch(r"(\s*)```(\w*)\s*", lines[i])
        if fence is None:
            i += 1
            continue
        indent, lang = fence[1], fence[2]  # a block in a list item is indented
        start = i
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip().startswith("```"))
        directives: dict[str, list[str]] = {"skip": [], "no-compare": [], "before": []}
        k = start - 1
        while k >= 0 and (m := DIRECTIVE.fullmatch(lines[k].strip())):
            directives[m[1]].insert(0, m[2])
            k -= 1
        shown = None
        after = end + 1
        while after < len(lines) and not lines[after].strip():
            after += 1
        if lang == "python" and after < len(lines) and lines[after].strip() == "```text":
            close = next(
                j for j in range(after + 1, len(lines)) if lines[j].strip().startswith("```")
            )
            shown = "\n".join(line.removeprefix(indent) for line in lines[after + 1 : close])
        found.append(
            Block(
                page=page,
                line=start + 1,
                lang=lang,
                text="\n".join(line.removeprefix(indent) for line in lines[start + 1 : end]) + "\n",
                skip=directives["skip"][0] if directives["skip"] else None,
                no_compare=directives["no-compare"][0] if directives["no-compare"] else None,
                before=tuple(directives["before"]),
                shown=shown,
            )
        )
        i = end + 1
    return found


def examples(page: Path) -> list[Block]:
    return [b for b in read_blocks(page) if b.lang in RUNNABLE]


# ------------------------------------------------------------------ comparing output


def matches(shown: str, got: str) -> bool:
    """``got`` is what the docs show, ``…`` standing for any text."""
    want = _normal(shown)
    pattern = ".*?".join(re.escape(part) for part in want.split("…"))
    return re.fullmatch(pattern, _normal(got), re.DOTALL) is not None


def _normal(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def _without_progress(shown: str, got: str) -> str:
    """A terminal shows progress as a bar that goes away; a pipe gets `building X` lines."""
    if "building " in shown:
        return got
    return "".join(line for line in got.splitlines(keepends=True) if not PROGRESS.match(line))


PROGRESS = re.compile(r"building \S+$")


# ------------------------------------------------------------------ the scene


NIX_WRAPPER = '''\
#!{python}
"""nix, with the flake inputs nixpkgs and microvm pointed at the stand-ins (docs test)."""
import os, sys
args = sys.argv[1:]
words = list(args)  # the subcommand: past nix's own leading options
while words and words[0].startswith("-"):
    words = words[{{"--option": 3}}.get(words[0], 2):]
reads_lock = words[:2] in (["flake", "metadata"], ["flake", "lock"], ["flake", "show"])
flake = words[:1] != ["flake"] and (any("#" in a for a in args) or (
    words[:1] in (["run"], ["build"]) and not any(a.startswith("/") for a in words[1:])
))
if flake or reads_lock:
    cut = args.index("--") if "--" in args else len(args)
    args = args[:cut] + {overrides!r} + args[cut:]
os.execv({real!r}, [{real!r}, *args])
'''


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment every example runs in: this nixgen, nix on the stand-ins."""
    base = tmp_path_factory.mktemp("docs-env")
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["NO_COLOR"] = "1"
    env["NIXGEN_REPO"] = str(REPO)  # for `before` directives that copy a test file
    env.pop("NIXGEN_STATE_DIR", None)
    if nix_available():
        env.update(offline_nix_env(base))
        inputs = prepare_inputs(base / "inputs")
        overrides = [
            a for name, path in inputs.items() for a in ("--override-input", name, f"path:{path}")
        ]
        bin_dir = base / "bin"
        bin_dir.mkdir()
        real = subprocess.run(
            ["bash", "-c", "command -v nix"], capture_output=True, text=True, check=True
        ).stdout.strip()
        wrapper = bin_dir / "nix"
        wrapper.write_text(
            NIX_WRAPPER.format(python=sys.executable, overrides=overrides, real=real)
        )
        wrapper.chmod(0o755)
        env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    return env


@contextlib.contextmanager
def inside(folder: Path, env: dict[str, str]) -> Iterator[None]:
    """Python examples run in the page's folder, with the scene's environment."""
    old_cwd, old_env = Path.cwd(), dict(os.environ)
    os.chdir(folder)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.chdir(old_cwd)
        os.environ.clear()
        os.environ.update(old_env)


def shell(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", f"set -eu\n{command}"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
        check=False,
    )


# ------------------------------------------------------------------ running a page


@attrs.define
class PageRun:
    folder: Path
    env: dict[str, str]
    cwd: Path
    namespace: dict[str, object] = attrs.field(factory=dict)
    failures: list[str] = attrs.field(factory=list)

    def run(self, block: Block) -> None:
        for command in block.before:
            done = shell(command, self.cwd, self.env)
            if done.returncode != 0:
                self.failures.append(f"{block.where}: before `{command}` failed:\n{done.stdout}")
                return
            self.cwd = _cwd_after(command, self.cwd)
        if block.lang == "python":
            self.python(block)
        elif block.lang == "sh":
            done = shell(block.text, self.cwd, self.env)
            if done.returncode != 0:
                self.failures.append(f"{block.where}: exit {done.returncode}:\n{done.stdout}")
        else:
            self.console(block)

    def python(self, block: Block) -> None:
        out = io.StringIO()
        with inside(self.cwd, self.env), contextlib.redirect_stdout(out):
            try:
                exec(compile(block.text, block.where, "exec"), self.namespace)
            except Exception as err:
                self.failures.append(f"{block.where}: {type(err).__name__}: {err}")
                return
        if (
            block.shown is not None
            and not block.no_compare
            and not matches(block.shown, out.getvalue())
        ):
            self.failures.append(_differs(block.where, block.shown, out.getvalue()))

    def console(self, block: Block) -> None:
        for line, command, shown in _commands(block):
            done = shell(command, self.cwd, self.env)
            self.cwd = _cwd_after(command, self.cwd)
            where = f"{_name(block.page)}:{line}"
            if block.no_compare:
                if done.returncode != 0 and not shown:
                    self.failures.append(f"{where}: `{command}` exit {done.returncode}")
                continue
            got = _without_progress(shown, done.stdout)
            if not matches(shown, got):
                self.failures.append(_differs(f"{where}: `{command}`", shown, got))


def _commands(block: Block) -> Iterator[tuple[int, str, str]]:
    """``(line, command, shown output)`` of each ``$ command`` of a console block."""
    lines = block.text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("$ ")]
    for n, i in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(lines)
        yield block.line + 1 + i, lines[i][2:], "\n".join(lines[i + 1 : end])


def _cwd_after(command: str, cwd: Path) -> Path:
    """Where a `cd DIR` (alone, or first in `cd DIR && …`) leaves the next command."""
    m = re.match(r"cd\s+(\S+)\s*(?:&&|$)", command.strip())
    return (cwd / m[1]).resolve() if m else cwd


def _differs(where: str, shown: str, got: str) -> str:
    return (
        f"{where}: the output differs from the docs\n--- shown\n{textwrap.indent(shown, '  ')}"
        f"\n--- got\n{textwrap.indent(got.rstrip(), '  ')}"
    )


def _runnable(page: Path) -> bool:
    return any(b.skip is None for b in examples(page))


#: the pages with at least one example that runs here; every block of the
#: others is marked with why (test_every_example_that_does_not_run_says_why)
RUNNABLE_PAGES = [page for page in PAGES if _runnable(page)]


def test_the_pages_with_examples_are_run() -> None:
    assert REPO / "README.md" in RUNNABLE_PAGES
    assert len(RUNNABLE_PAGES) >= 8


@pytest.mark.parametrize("page", RUNNABLE_PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_example_of_the_page_runs(page: Path, scene: dict[str, str], tmp_path: Path) -> None:
    blocks = [b for b in examples(page) if b.skip is None]
    needs_nix = [
        b for b in blocks if re.search(r"\bnix(gen)? (build|run|update|check)\b|\bnix ", b.text)
    ]
    if needs_nix and "NIX_CONF_DIR" not in scene:
        pytest.skip("nix or the stand-ins' option schema is missing: apt-get install nix-bin")
    run = PageRun(folder=tmp_path, env=scene, cwd=tmp_path)
    for block in blocks:
        run.run(block)
    assert not run.failures, "\n\n".join(run.failures)


def test_every_example_that_does_not_run_says_why() -> None:
    for page in PAGES:
        for block in examples(page):
            if block.skip is not None:
                assert len(block.skip) > 10, f"{block.where}: say why it cannot run here"


def test_the_docs_test_notices_a_wrong_output(tmp_path: Path) -> None:
    """The harness itself: a changed output, a failing command and `…` are told apart."""
    page = tmp_path / "page.md"
    page.write_text(
        "```python\nprint('a', 1)\n```\n\n```text\na 2\n```\n\n"
        "<!-- docs-test: before mkdir x -->\n```console\n$ cd x && echo hello\nhel…\n"
        "$ ls -d ../x\n../x\n```\n"
    )
    [python, console] = examples(page)
    assert python.shown == "a 2" and console.before == ("mkdir x",)
    run = PageRun(folder=tmp_path, env=dict(os.environ), cwd=tmp_path)
    run.python(python)
    assert len(run.failures) == 1 and "the output differs" in run.failures[0]
    run.failures.clear()
    run.run(console)
    assert run.failures == [] and run.cwd == (tmp_path / "x").resolve()
    assert matches("a…c", "abbbc") and not matches("a…c", "abbbd")
