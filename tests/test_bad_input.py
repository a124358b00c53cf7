"""Bad input at every door: refused, the field named, and not one byte changed.

One table per door: the Python API, a hand-edited nixgen.toml, the command
line, and hand-written flakes read by the editor.  Every row asserts the same
three things: the input is refused (a NixgenError, or a non-zero exit with no
traceback), the message names the field (or file) at fault, and every file of
the folder is byte-identical afterwards (nixgen's own lock in .nixgen/ aside).
"""

from __future__ import annotations

import gc
import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nixgen import (
    Flake,
    FlakeFile,
    Interface,
    MicroVM,
    NixgenError,
    Share,
    User,
    ValidationError,
    Volume,
    Vsock,
    check,
    load_flake_file,
    loads_flake,
    render_files,
    validate,
    write_project,
)
from nixgen.model import ForwardPort, Nix
from nixgen.model.memo import ByIdentity
from nixgen.project import init_project
from tests.clirunner import run_cli
from tests.flakefiles import CORPUS, snapshot

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA/PuEtAu8SXppI2pMMgzaBDwga1mYYi90W8DZ8Diyl3 me@host"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pristine") / "project"
    init_project(folder, name="vm", ssh_keys=[KEY], git_add=False)
    return folder


@pytest.fixture
def project(pristine: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    shutil.copytree(pristine, folder, ignore=shutil.ignore_patterns(".nixgen"))
    return folder


def run(*args: str) -> tuple[int, str]:
    result = run_cli(list(args))
    return result.exit_code, result.stdout + result.stderr


def deep(levels: int) -> Any:
    value: Any = []
    for _ in range(levels):
        value = [value]
    return value


# ----------------------------------------------------------------- the Python API


def vm(**changes: Any) -> MicroVM:
    return MicroVM(name="vm", **changes)


API_CASES: list[tuple[str, Callable[[], Flake], str]] = [
    ("guest named default", lambda: Flake(guests=[MicroVM(name="default")]), "default"),
    ("kernel_params a string", lambda: Flake(guests=[vm(kernel_params="quiet")]), "kernelParams"),
    ("packages a string", lambda: Flake(guests=[vm(packages="htop")]), "packages"),
    ("modules a string", lambda: Flake(guests=[vm(modules="./m.nix")]), "modules"),
    ("users a string", lambda: Flake(guests=[vm(users="root")]), "users"),
    ("Nix that does not parse", lambda: Flake(guests=[vm(nixos={"x": Nix("1 +")})]), '["x"]'),
    (
        "{_nix} that does not parse",
        lambda: Flake(guests=[vm(nixos={"x": {"_nix": "1 +"}})]),
        '["x"]',
    ),
    ("Nix in packages", lambda: Flake(guests=[vm(packages=[Nix("pkgs.")])]), "packages[0]"),
    ("Nix module", lambda: Flake(guests=[vm(modules=[Nix("{ a = ; }")])]), "modules[0]"),
    (
        "module escaping the project",
        lambda: Flake(guests=[vm(modules=["../../etc/passwd"])]),
        "modules[0]",
    ),
    ("a dict as a guest", lambda: Flake(guests=[{"name": "vm"}]), "guests[0]"),  # type: ignore[list-item]
    ("guests a string", lambda: Flake(guests="vm"), "guests"),  # type: ignore[arg-type]
    ("an int key in nixos", lambda: Flake(guests=[vm(nixos={1: 2})]), '["1"]'),
    ("nested int key", lambda: Flake(guests=[vm(nixos={"a": {2: 3}})]), '["2"]'),
    (
        "clear-text password",
        lambda: Flake(guests=[vm(users=[User(name="root", hashed_password="hunter2")])]),
        "hashedPassword",
    ),
    (
        "ssh key with a newline",
        lambda: Flake(guests=[vm(users=[User(name="root", ssh_keys=[KEY + "\n" + KEY])])]),
        "sshKeys[0]",
    ),
    (
        "ssh key of no known type",
        lambda: Flake(guests=[vm(users=[User(name="root", ssh_keys=["rsa AAAA me"])])]),
        "sshKeys[0]",
    ),
    (
        "ssh key without its key",
        lambda: Flake(guests=[vm(users=[User(name="root", ssh_keys=["ssh-ed25519"])])]),
        "sshKeys[0]",
    ),
    ("kernel parameter with a space", lambda: Flake(guests=[vm(kernel_params=["a b"])]), "[0]"),
    (
        "kernel parameter with a newline",
        lambda: Flake(guests=[vm(kernel_params=["quiet\ninit=/bin/sh"])]),
        "kernelParams[0]",
    ),
    ("empty kernel parameter", lambda: Flake(guests=[vm(kernel_params=[""])]), "kernelParams[0]"),
    (
        "volume image with a quote",
        lambda: Flake(guests=[vm(volumes=[Volume(image="x'y.img", mount_point="/v", size=8)])]),
        "volumes[0].image",
    ),
    (
        "volume image with a command",
        lambda: Flake(guests=[vm(volumes=[Volume(image="$(id).img", mount_point="/v", size=8)])]),
        "volumes[0].image",
    ),
    (
        "volume image with a semicolon",
        lambda: Flake(guests=[vm(volumes=[Volume(image="a;b.img", mount_point="/v", size=8)])]),
        "volumes[0].image",
    ),
    (
        "lone surrogate in a multi-line string",
        lambda: Flake(guests=[vm(nixos={"s": "a\nb\ud800"})]),
        '["s"]',
    ),
    ("NUL in a string", lambda: Flake(guests=[vm(nixos={"s": "a\x00b"})]), '["s"]'),
    ("nesting 150 deep", lambda: Flake(guests=[vm(nixos={"d": deep(150)})]), '["d"]'),
    ("infinite float", lambda: Flake(guests=[vm(nixos={"f": float("inf")})]), '["f"]'),
    ("integer beyond 64 bits", lambda: Flake(guests=[vm(nixos={"i": 2**64})]), '["i"]'),
    ("unknown hypervisor", lambda: Flake(guests=[vm(hypervisor="qmeu")]), "hypervisor"),
    ("vcpu a string", lambda: Flake(guests=[vm(vcpu="2")]), "vcpu"),
    ("mem of zero", lambda: Flake(guests=[vm(mem=0)]), "mem"),
    ("name with a space", lambda: Flake(guests=[MicroVM(name="bad name")]), "name"),
    ("name starting with -", lambda: Flake(guests=[MicroVM(name="-vm")]), "name"),
    (
        "interface id too long",
        lambda: Flake(guests=[vm(interfaces=[Interface.tap_device("a" * 16)])]),
        "interfaces[0].id",
    ),
    (
        "bad MAC",
        lambda: Flake(guests=[vm(interfaces=[Interface.user(mac="zz")])]),
        "interfaces[0].mac",
    ),
    ("extra with a modelled key", lambda: Flake(guests=[vm(extra={"mem": 1})]), 'extra["mem"]'),
    (
        "nixos reaching the host name",
        lambda: Flake(guests=[vm(nixos={"networking.hostName": "x"})]),
        "nixos",
    ),
    ("two guests of one name", lambda: Flake(guests=[vm(), vm()]), "name"),
    ("default naming no guest", lambda: Flake(guests=[vm()], default="nope"), "default"),
    ("package not an attribute", lambda: Flake(guests=[vm(packages=["a b"])]), "packages[0]"),
    (
        "empty volume image",
        lambda: Flake(guests=[vm(volumes=[Volume(image="", mount_point="/v", size=8)])]),
        "volumes[0].image",
    ),
    (
        "relative share mount point",
        lambda: Flake(guests=[vm(shares=[Share.virtiofs("t", "/srv", "srv")])]),
        "shares[0].mountPoint",
    ),
    (
        "port out of range",
        lambda: Flake(
            guests=[vm(interfaces=[Interface.user()], forward_ports=[ForwardPort.tcp(70000, 22)])]
        ),
        "forwardPorts[0]",
    ),
    ("reserved vsock cid", lambda: Flake(guests=[vm(vsock=Vsock(cid=2))]), "vsock.cid"),
    ("description a number", lambda: Flake(guests=[vm()], description=3), "description"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(
    ("make", "field"), [c[1:] for c in API_CASES], ids=[c[0] for c in API_CASES]
)
def test_api_refuses_before_writing(project: Path, make: Callable[[], Flake], field: str) -> None:
    before = snapshot(project)
    with pytest.raises(NixgenError) as caught:
        flake = make()
        validate(flake)
        write_project(flake, project, source="nixgen.toml")
    assert field in str(caught.value)
    assert snapshot(project) == before
    # write_project refuses it on its own too, without validate first.
    try:
        flake = make()
    except NixgenError:
        return
    with pytest.raises(NixgenError) as caught:
        write_project(flake, project, source="nixgen.toml")
    assert field in str(caught.value)
    assert snapshot(project) == before


@pytest.mark.parametrize(
    "make",
    [
        lambda: Nix(""),
        lambda: Nix("   "),
        lambda: Nix(3),  # type: ignore[arg-type]
    ],
    ids=["empty", "blank", "not text"],
)
def test_nix_needs_an_expression(make: Callable[[], Nix]) -> None:
    with pytest.raises(NixgenError, match=r"Nix\.text"):
        make()


def test_a_remembered_check_does_not_pass_true_for_1() -> None:
    """Checks are remembered per guest; True == 1 in Python, not in a guest's fields."""
    assert check(MicroVM(name="vm", vcpu=1)) == []
    problems = check(MicroVM(name="vm", vcpu=True))
    assert [p.path for p in problems] == ['guests["vm"].vcpu']


def test_write_project_onto_a_file(project: Path) -> None:
    target = project / "flake.nix"
    before = snapshot(project)
    with pytest.raises(NixgenError, match="is a file, not a folder"):
        write_project(Flake(guests=[vm()]), target)
    assert snapshot(project) == before


def test_write_project_when_vms_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "vms").write_text("not a folder")
    before = snapshot(tmp_path)
    with pytest.raises(NixgenError, match="vms: is a file"):
        write_project(Flake(guests=[vm()]), tmp_path)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("given", ["str", "Path"])
def test_load_flake_file_of_a_missing_path(tmp_path: Path, given: str) -> None:
    path = tmp_path / "nixgen.toml"
    with pytest.raises(NixgenError, match=r"nixgen\.toml: no such file"):
        load_flake_file(str(path) if given == "str" else path)


def test_load_flake_file_of_a_folder(tmp_path: Path) -> None:
    with pytest.raises(NixgenError, match="cannot be read"):
        load_flake_file(tmp_path)


# ----------------------------------------------------------------- nixgen.toml

GUEST = '[guests.vm]\nusers = [{ name = "root", sshKeys = ["' + KEY + '"] }]\n'

TOML_CASES: list[tuple[str, bytes, str]] = [
    ("guest named default", b"[guests.default]\n", 'guests["default"].name'),
    ("kernelParams a string", (GUEST + 'kernelParams = "quiet"\n').encode(), "kernelParams"),
    ("packages a string", (GUEST + 'packages = "htop"\n').encode(), "packages"),
    ("modules a string", (GUEST + 'modules = "./m.nix"\n').encode(), "modules"),
    ("_nix that does not parse", (GUEST + 'nixos.x = { _nix = "1 +" }\n').encode(), '["x"]'),
    ("empty _nix", (GUEST + 'nixos.x = { _nix = "" }\n').encode(), '["x"]'),
    ("_nix in packages", (GUEST + 'packages = [{ _nix = "(" }]\n').encode(), "packages[0]"),
    (
        "module escaping the project",
        (GUEST + 'modules = ["../../etc/passwd"]\n').encode(),
        "modules[0]",
    ),
    ("nesting 150 deep", (GUEST + "nixos.d = " + "[" * 150 + "]" * 150 + "\n").encode(), '["d"]'),
    (
        "nesting 2000 deep",
        (GUEST + "nixos.d = " + "[" * 2000 + "]" * 2000 + "\n").encode(),
        "nixgen.toml",
    ),
    ("not UTF-8", GUEST.encode() + b'nixos.s = "caf\xe9"\n', "nixgen.toml:3"),
    ("binary", b"\x7fELF\x02\x01\x01\x00\x00\x00\xff\xfe", "nixgen.toml"),
    ("TOML syntax", (GUEST + "mem = \n").encode(), "nixgen.toml"),
    (
        "clear-text password",
        b'[guests.vm]\nusers = [{ name = "root", hashedPassword = "hunter2" }]\n',
        "hashedPassword",
    ),
    (
        "ssh key with a newline",
        (
            '[guests.vm]\nusers = [{ name = "root", sshKeys = ["' + KEY + "\\n" + KEY + '"] }]\n'
        ).encode(),
        "sshKeys[0]",
    ),
    ("kernel parameter with a space", (GUEST + 'kernelParams = ["a b"]\n').encode(), "[0]"),
    (
        "volume image with a quote",
        (
            GUEST + '[[guests.vm.volumes]]\nimage = "x\'y.img"\nmountPoint = "/v"\nsize = 8\n'
        ).encode(),
        "volumes[0].image",
    ),
    ("unknown key", (GUEST + "memm = 1\n").encode(), "memm"),
    ("unknown hypervisor", (GUEST + 'hypervisor = "qmeu"\n').encode(), "hypervisor"),
    ("mem a string", (GUEST + 'mem = "big"\n').encode(), "mem"),
    ("mem beyond 64 bits", (GUEST + "nixos.big = 99999999999999999999\n").encode(), '["big"]'),
    ("name inside the table", (GUEST + 'name = "other"\n').encode(), "name"),
    ("guest not a table", b"[guests]\nvm = 3\n", 'guests["vm"]'),
    ("default naming no guest", (b'default = "nope"\n' + GUEST.encode()), "default"),
    (
        "nixos reaching the host name",
        (GUEST + 'nixos."networking.hostName" = "x"\n').encode(),
        "nixos",
    ),
    ("NUL in a string", (GUEST + 'nixos.s = "a\\u0000b"\n').encode(), '["s"]'),
    ("guest name with a space", b'[guests."bad name"]\n', "bad name"),
    ("extra with a modelled key", (GUEST + "extra = { mem = 1 }\n").encode(), 'extra["mem"]'),
    ("vsock cid reserved", (GUEST + "vsock = { cid = 1 }\n").encode(), "vsock.cid"),
    ("empty input url", (GUEST + '[inputs]\nnixpkgs = ""\nmicrovm = "x"\n').encode(), "url"),
    (
        "interface id too long",
        (GUEST + '[[guests.vm.interfaces]]\ntype = "tap"\nid = "' + "a" * 16 + '"\n').encode(),
        "interfaces[0].id",
    ),
]


@pytest.mark.parametrize(
    ("text", "field"), [c[1:] for c in TOML_CASES], ids=[c[0] for c in TOML_CASES]
)
@pytest.mark.parametrize("command", ["render", "check"])
def test_nixgen_toml_refused_by_render_and_check(
    project: Path, text: bytes, field: str, command: str
) -> None:
    (project / "nixgen.toml").write_bytes(text)
    before = snapshot(project)
    args = (
        [command, str(project)]
        if command == "render"
        else [command, "--no-eval", "-f", str(project)]
    )
    code, output = run(*args)
    assert code == 1, output
    assert field in output
    assert "Traceback" not in output
    assert snapshot(project) == before


# ----------------------------------------------------------------- the command line

CLI_CASES: list[tuple[str, tuple[str, ...], str]] = [
    ("rename to a name with a space", ("rename", "vm", "bad name"), "bad name"),
    ("rename to default", ("rename", "vm", "default"), "default"),
    ("rename to a name ending in -", ("rename", "vm", "vm-"), "vm-"),
    ("add a guest with a space", ("add", "x y"), "x y"),
    ("add a guest named default", ("add", "default"), "default"),
    ("set mem to a string", ("set", "vm", 'microvm.mem="big"'), "mem"),
    ("set kernelParams to a string", ("set", "vm", 'microvm.kernelParams="quiet"'), "kernelParams"),
    (
        "set a kernel parameter with a space",
        ("set", "vm", 'microvm.kernelParams=[ "a b" ]'),
        "kernelParams[0]",
    ),
    ("set an unknown hypervisor", ("set", "vm", 'microvm.hypervisor="qmeu"'), "hypervisor"),
    ("set vcpu to zero", ("set", "vm", "microvm.vcpu=0"), "vcpu"),
    ("set the host name", ("set", "vm", 'networking.hostName="x"'), "hostName"),
    (
        "set a volume image with a quote",
        ("set", "vm", 'microvm.volumes=[ { image = "x\'y.img"; mountPoint = "/v"; size = 8; } ]'),
        "volumes[0].image",
    ),
    ("set on a guest that does not exist", ("set", "nope", "microvm.mem=1024"), "nope"),
    ("unset on a guest that does not exist", ("unset", "nope", "microvm.mem"), "nope"),
    ("rm a guest that does not exist", ("rm", "nope"), "nope"),
    ("set without a value", ("set", "vm", "microvm.mem"), "microvm.mem"),
]


@pytest.mark.parametrize("args", [c[1] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES])
def test_cli_edit_refused(project: Path, args: tuple[str, ...]) -> None:
    field = next(c[2] for c in CLI_CASES if c[1] == args)
    before = snapshot(project)
    code, output = run(*args, "-f", str(project))
    assert code in (1, 2), output
    assert field in output
    assert "Traceback" not in output
    assert snapshot(project) == before


def test_render_when_vms_is_a_file(project: Path) -> None:
    shutil.rmtree(project / "vms")
    (project / "vms").write_text("a file\n")
    before = snapshot(project)
    code, output = run("render", str(project))
    assert code == 1 and "vms: is a file" in output and "Traceback" not in output
    assert snapshot(project) == before


def test_init_refuses_other_content_and_a_file(project: Path, tmp_path: Path) -> None:
    (project / "vms" / "vm.nix").write_text("{ }\n")
    before = snapshot(project)
    code, output = run("init", str(project), "--name", "vm")
    assert code == 1 and "vms/vm.nix" in output and "refusing" in output
    assert snapshot(project) == before
    target = tmp_path / "a-file"
    target.write_text("x")
    code, output = run("init", str(target))
    assert code != 0 and "a-file" in output and "Traceback" not in output
    assert target.read_text() == "x"


def test_init_refuses_a_bad_guest_name(tmp_path: Path) -> None:
    code, output = run("init", str(tmp_path / "p"), "--name", "bad name")
    assert code == 1 and "bad name" in output
    assert not (tmp_path / "p").exists() or snapshot(tmp_path / "p") == {}


def _limited(seconds: float = 60) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parent.parent))
    return {"env": env, "capture_output": True, "text": True, "timeout": seconds}


def test_file_size_limit_is_a_message_and_exit_3(project: Path) -> None:
    """A write beyond RLIMIT_FSIZE (EFBIG): the message says so, no traceback,
    the old files stay (the write is atomic) and no temp file is left."""
    text = (project / "nixgen.toml").read_text()
    (project / "nixgen.toml").write_text(text.replace("mem = 512", "mem = 1024"))
    before = snapshot(project)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (512, 512))

    proc = subprocess.run(
        [sys.executable, "-m", "nixgen", "render", str(project)],
        preexec_fn=limit,
        **_limited(),
    )
    assert proc.returncode == 3, proc.stderr
    assert "file-size limit" in proc.stderr and "Traceback" not in proc.stderr
    assert snapshot(project) == before


def test_non_utf8_toml_through_the_cli_is_a_message(project: Path) -> None:
    (project / "nixgen.toml").write_bytes(b'[guests.vm]\nnixos.x = "\xff"\n')
    before = snapshot(project)
    for args in (["render", str(project)], ["set", "vm", "microvm.mem=1024", "-f", str(project)]):
        code, output = run(*args)
        assert code == 1, output
        assert "nixgen.toml" in output and "UTF-8" in output and "Traceback" not in output
        assert snapshot(project) == before


# ----------------------------------------------------------------- hand-written flakes


@pytest.fixture
def split(tmp_path: Path) -> Path:
    """A hand-written flake (no nixgen.toml) with its guests' modules in vms/."""
    folder = tmp_path / "split"
    shutil.copytree(CORPUS / "split", folder)
    return folder


HAND_CASES: list[tuple[str, tuple[str, ...], str]] = [
    ("rename to a name with a space", ("rename", "db", "bad name"), "bad name"),
    ("rename to default", ("rename", "db", "default"), "default"),
    ("add a guest named default", ("add", "default"), "default"),
    ("set mem to a string", ("set", "db", 'microvm.mem="big"'), "mem"),
    ("set kernelParams to a string", ("set", "db", 'microvm.kernelParams="quiet"'), "kernelParams"),
    (
        "set a clear-text password",
        ("set", "db", 'users.users.root.hashedPassword="hunter2"'),
        "hashedPassword",
    ),
    (
        "set a volume image with a command",
        ("set", "db", 'microvm.volumes=[ { image = "$(id).img"; mountPoint = "/v"; size = 8; } ]'),
        "image",
    ),
    (
        "set an interface id too long",
        ("set", "db", 'microvm.interfaces=[ { type = "tap"; id = "aaaaaaaaaaaaaaaa"; } ]'),
        "interfaces[0].id",
    ),
]


@pytest.mark.parametrize("args", [c[1] for c in HAND_CASES], ids=[c[0] for c in HAND_CASES])
def test_hand_written_flake_edit_refused(split: Path, args: tuple[str, ...]) -> None:
    field = next(c[2] for c in HAND_CASES if c[1] == args)
    before = snapshot(split)
    code, output = run(*args, "-f", str(split))
    assert code in (1, 2), output
    assert field in output and "Traceback" not in output
    assert snapshot(split) == before


def test_syntax_error_in_a_module_stops_set(split: Path) -> None:
    """The setting must not land in flake.nix beside a module that does not parse."""
    with (split / "vms" / "db.nix").open("a") as module:
        module.write("{ broken\n")
    before = snapshot(split)
    code, output = run("set", "db", "microvm.mem=1024", "-f", str(split))
    assert code == 1
    assert "vms/db.nix" in output and "syntax error" in output
    assert snapshot(split) == before


def test_syntax_error_in_flake_nix(split: Path) -> None:
    (split / "flake.nix").write_text((split / "flake.nix").read_text() + "}\n")
    before = snapshot(split)
    code, output = run("set", "db", "microvm.mem=1024", "-f", str(split))
    assert code == 1 and "flake.nix:" in output and "Traceback" not in output
    assert snapshot(split) == before


def test_non_utf8_flake_nix(split: Path) -> None:
    (split / "flake.nix").write_bytes((split / "flake.nix").read_bytes() + b"# caf\xe9\n")
    before = snapshot(split)
    code, output = run("set", "db", "microvm.mem=1024", "-f", str(split))
    assert code == 1 and "UTF-8" in output and "flake.nix" in output
    assert snapshot(split) == before


def test_flakefile_api_refuses_a_bad_guest(split: Path) -> None:
    before = snapshot(split)
    flake = FlakeFile.load(split)
    for bad, field in (
        (MicroVM(name="default"), "default"),
        (MicroVM(name="x", kernel_params="quiet"), "kernelParams"),
        (MicroVM(name="x", modules=["../../etc/passwd"]), "modules[0]"),  # type: ignore[list-item]
    ):
        with pytest.raises(NixgenError) as caught:
            flake.add(bad)
            flake.save()
        assert field in str(caught.value)
    assert snapshot(split) == before


def test_flakefile_load_of_a_missing_path(tmp_path: Path) -> None:
    with pytest.raises(NixgenError, match="no such file"):
        FlakeFile.load(str(tmp_path / "nowhere"))


def test_a_byte_order_mark_is_not_an_error(project: Path) -> None:
    source = project / "nixgen.toml"
    source.write_bytes(b"\xef\xbb\xbf" + source.read_bytes())
    assert load_flake_file(source).guests[0].name == "vm"


def test_flakefile_load_of_a_folder_named_flake_nix(tmp_path: Path) -> None:
    (tmp_path / "flake.nix").mkdir()
    with pytest.raises(NixgenError, match=r"flake\.nix"):
        FlakeFile.load(tmp_path / "flake.nix")
    code, output = run("show", "-f", str(tmp_path))
    assert code in (1, 3) and "flake.nix" in output and "Traceback" not in output


def test_init_with_a_key_file_that_is_not_text(tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    key.write_bytes(b"\x00\xff\xfe openssh private key")
    code, output = run("init", str(tmp_path / "p"), "--ssh-key", str(key))
    assert code == 1 and "id_ed25519" in output and "not a text file" in output
    assert not (tmp_path / "p" / "nixgen.toml").exists()


def test_init_with_a_key_file_of_a_bad_key(tmp_path: Path) -> None:
    key = tmp_path / "key.pub"
    key.write_text("ssh-ed25519\n")
    code, output = run("init", str(tmp_path / "p"), "--ssh-key", str(key))
    assert code == 1 and "sshKeys[0]" in output and "Traceback" not in output
    assert not (tmp_path / "p" / "nixgen.toml").exists()


def test_the_table_has_more_than_80_kinds() -> None:
    kinds = len(API_CASES) + len(TOML_CASES) + len(CLI_CASES) + len(HAND_CASES)
    assert kinds >= 80, kinds


def test_a_well_typed_guest_is_remembered_by_identity_not_equality() -> None:
    """render_files checks types again; what it remembers is the object, so an
    equal guest with a bool for a number is still refused after a good one."""
    good, bad = MicroVM(name="vm", vcpu=1), MicroVM(name="vm", vcpu=True)
    assert good == bad and hash(good) == hash(bad)
    render_files(Flake(guests=[good]))
    with pytest.raises(ValidationError, match=r'guests\["vm"\]\.vcpu'):
        render_files(Flake(guests=[bad]))
    # Read from data, a guest was checked on the way in: the same answers.
    read = loads_flake("[guests.vm]\nvcpu = 1\n").guests[0]
    assert read == good and check(read) == check(good)
    with pytest.raises(ValidationError, match="expected a whole number"):
        loads_flake("[guests.vm]\nvcpu = true\n")


def test_what_is_remembered_for_an_object_goes_with_it() -> None:
    memo: ByIdentity[MicroVM, str] = ByIdentity()
    first = MicroVM(name="a")
    memo.put(first, "checked")
    assert memo.get(first) == "checked" and first in memo
    assert memo.get(MicroVM(name="a")) is None  # equal, but another object
    del first
    gc.collect()
    assert len(memo) == 0
