"""Properties and strategies for fuzzing: the serializer against real Nix, the
CLI's edit commands against the files they leave.

tests/test_fuzz.py runs them with a few examples each (bounded in time);
benchmarks/bench_fuzz.py with many.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
from hypothesis import strategies as st

from nixgen import (
    Device,
    Flake,
    Interface,
    MicroVM,
    Nix,
    NixgenError,
    Share,
    User,
    Volume,
    Vsock,
    check,
    render_files,
    validate,
)
from nixgen.errors import NixEmitError
from nixgen.flake import FlakeFile
from nixgen.model.guest import Graphics, QemuOptions
from nixgen.nix.emit import to_nix
from nixgen.nix.parse import Document
from nixgen.project import Project
from tests.clirunner import run_cli
from tests.flakefiles import snapshot
from tests.stress import out_of_step

NIX_INSTANTIATE = shutil.which("nix-instantiate")

# ----------------------------------------------------------------- the serializer

_tricky = st.sampled_from(
    ["${", "''", "'''", "''$", "\\", '"', "\n", "\r", "\t", "'", "é", "\x00", "\ud800", "\udfff"]
)
# Any text: lone surrogates and NULs included (the emitter must refuse those).
any_strings = st.lists(
    st.one_of(_tricky, st.text(max_size=4)),
    max_size=8,
).map("".join)
any_floats = st.one_of(
    st.floats(),  # nan, infinities, subnormals and -0.0 included
    st.sampled_from([0.0, -0.0, 1e308, -1e-300, 5e-324]),
)
any_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    any_floats,
    any_strings,
)
any_values = st.recursive(
    any_leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(any_strings, inner, max_size=3)
    ),
    max_leaves=12,
)


@st.composite
def nested(draw: st.DrawFn) -> Any:
    """A value inside 0-160 lists and one-key sets (deeper than the emitter takes)."""
    value: Any = draw(any_leaves)
    for _ in range(draw(st.integers(min_value=0, max_value=160))):
        value = [value] if draw(st.booleans()) else {"k": value}
    return value


def nix_eval(text: str) -> Any:
    """Real Nix's value of ``text``, as JSON data."""
    assert NIX_INSTANTIATE is not None
    proc = subprocess.run(
        [NIX_INSTANTIATE, "--eval", "--strict", "--json", "-E", text],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, f"nix rejected:\n{text[:2000]}\n---\n{proc.stderr}"
    return json.loads(proc.stdout)


def emitted_or_refused(values: list[Any]) -> tuple[list[Any], str]:
    """The values to_nix accepts and their Nix text; the rest must be refused cleanly."""
    kept = []
    for value in values:
        try:
            to_nix([value])  # as it will stand: inside the batch's list
        except NixEmitError:
            continue  # refused with nixgen's own error: fine
        kept.append(value)
    return kept, to_nix(kept)


def same(nix: Any, python: Any) -> bool:
    """Equal as Nix sees it: floats to Nix 2.8's six printed digits, -0.0 checked apart."""
    if isinstance(python, float):
        return isinstance(nix, int | float) and math.isclose(
            nix, python, rel_tol=1e-5, abs_tol=1e-300
        )
    if isinstance(python, dict):
        return (
            isinstance(nix, dict)
            and set(nix) == set(python)
            and all(same(nix[k], v) for k, v in python.items())
        )
    if isinstance(python, list):
        return (
            isinstance(nix, list)
            and len(nix) == len(python)
            and all(same(a, b) for a, b in zip(nix, python, strict=True))
        )
    return bool(nix == python and type(nix) is type(python))


def check_serializer(values: list[Any]) -> None:
    """Everything to_nix writes, real Nix reads back as the same value."""
    kept, text = emitted_or_refused(values)
    assert Document.parse(text)  # nixgen's own reader reads it too
    assert same(nix_eval(text), kept), text[:2000]


def check_float_signs(floats: list[float]) -> None:
    """The sign survives, -0.0 included (JSON cannot show it: builtins.toString can)."""
    finite = [f for f in floats if math.isfinite(f) and (f == 0 or abs(f) >= 2.3e-308)]
    shown = nix_eval(f"map builtins.toString {to_nix(finite)}")
    for value, text in zip(finite, shown, strict=True):
        assert text.startswith("-") == (math.copysign(1.0, value) < 0), (value, text)


# ----------------------------------------------------------------- the CLI's edit commands

edit_keys = st.sampled_from(
    [
        "microvm.mem",
        "microvm.vcpu",
        "microvm.hypervisor",
        "microvm.kernelParams",
        "microvm.balloon",
        "microvm.volumes",
        "services.fuzz.value",
        'environment.etc."fuzz.conf".text',
        "users.users.root.hashedPassword",
        "networking.hostName",
        "microvm",
        "nixos",
    ]
)
nix_literal_values = st.one_of(
    st.integers(min_value=-5, max_value=5000),
    st.booleans(),
    st.sampled_from(["qemu", "firecracker", "quiet", "a b", "$6$salt$hash", "x'y.img"]),
    any_strings.filter(lambda s: "\x00" not in s and not any(0xD800 <= ord(c) < 0xE000 for c in s)),
    st.lists(st.sampled_from(["quiet", "console=ttyS0", "a b", ""]), max_size=3),
    st.lists(
        st.fixed_dictionaries(
            {
                "image": st.sampled_from(["var.img", "x'y.img", ""]),
                "mountPoint": st.sampled_from(["/var", "var"]),
                "size": st.integers(min_value=-1, max_value=64),
            }
        ),
        max_size=2,
    ),
)
raw_texts = st.sampled_from(["1 +", "{", "]", "./x", "pkgs.hello", "''", '"', "{ a = 1; }", ""])


@st.composite
def edits(draw: st.DrawFn, guest: str = "vm") -> list[str]:
    """One `nixgen set|unset|rename|rm|add` command line (without -f) on ``guest``."""
    verb = draw(st.sampled_from(["set", "set", "set", "unset", "rename", "add", "rm"]))
    other = draw(st.sampled_from([guest, guest, "other", "default", "bad name", "-x"]))
    if verb == "set":
        key = draw(edit_keys)
        if draw(st.integers(0, 4)) == 0:
            value = draw(raw_texts)
        else:
            value = to_nix(draw(nix_literal_values))
        return ["set", guest, f"{key}={value}"]
    if verb == "unset":
        return ["unset", guest, draw(edit_keys)]
    if verb == "rename":
        return ["rename", guest, other]
    if verb == "add":
        return ["add", other]
    return ["rm", other]


def check_edit(project: Path, args: list[str]) -> None:
    """An edit either succeeds and leaves a consistent project, or changes nothing."""
    before = snapshot(project)
    result = run_cli([*args, "-f", str(project)])
    output = result.stdout + result.stderr
    assert "Traceback" not in output and "internal error" not in output, output
    if result.exit_code != 0:
        assert result.exit_code in (1, 2), output
        assert snapshot(project) == before, f"{args} failed but changed files:\n{output}"
        return
    # Success: every file parses, the flake reads, nixgen.toml and the flake agree.
    for path in project.rglob("*.nix"):
        Document.load(path)
    flake = FlakeFile.load(project)
    if not (project / "nixgen.toml").exists():
        return  # a hand-written flake: nothing else to agree with
    model = Project.at(project).load()
    assert sorted(flake.names()) == sorted(g.name for g in model.guests), args
    assert out_of_step(project) == [], args


# ----------------------------------------------------------------- the Python API

_junk_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-10, max_value=2**70),
    st.floats(),
    st.text(max_size=5),
    st.binary(max_size=3),
    st.just(Nix("pkgs.hello")),
    st.just(Interface.user()),
    st.builds(object),
)
junk = st.recursive(
    _junk_leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.one_of(st.text(max_size=3), st.integers()), inner, max_size=3),
    ),
    max_leaves=6,
)
_GUEST_FIELDS = [f.name for f in attrs.fields(MicroVM) if f.name != "name"]
_PARTS: dict[type, str] = {
    Interface: "interfaces",
    Volume: "volumes",
    Share: "shares",
    User: "users",
    Device: "devices",
    Vsock: "vsock",
    QemuOptions: "qemu",
    Graphics: "graphics",
}


@st.composite
def junk_flakes(draw: st.DrawFn) -> Callable[[], Flake]:
    """A flake with wrong values in a few fields of a guest, of a part of it, or of
    the flake; built lazily, since building may itself refuse."""
    guest = draw(st.dictionaries(st.sampled_from(_GUEST_FIELDS), junk, max_size=3))
    cls = draw(st.sampled_from(list(_PARTS)))
    names = [f.name for f in attrs.fields(cls)]
    part = draw(st.dictionaries(st.sampled_from(names), junk, max_size=3))
    top = draw(
        st.dictionaries(
            st.sampled_from(["description", "default", "inputs", "binary_cache", "hosts"]),
            junk,
            max_size=2,
        )
    )

    def build() -> Flake:
        obj = cls(**part)
        field = _PARTS[cls]
        value = obj if field in ("vsock", "qemu", "graphics") else [obj]
        return Flake(guests=[MicroVM(name="vm", **{**guest, field: value})], **top)

    return build


def check_only_nixgen_errors(build: Callable[[], Flake]) -> None:
    """check, validate and render_files raise NixgenError or nothing, whatever the model holds."""
    try:
        flake = build()
    except TypeError as err:
        if "required" in str(err) or "unexpected keyword" in str(err):
            return  # Python's own calling convention (a missing argument), not a value
        raise
    except NixgenError:
        return
    for call in (check, validate, render_files):
        with contextlib.suppress(NixgenError):
            call(flake)
