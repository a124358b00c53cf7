"""The command line: init, check, render, hypervisors — and the static templates."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nixgen.hypervisors import markdown_table
from nixgen.project import Project, init_project
from nixgen.starters import TEMPLATES, write_static_templates
from tests.clirunner import run_cli

REPO = Path(__file__).resolve().parents[1]
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA/PuEtAu8SXppI2pMMgzaBDwga1mYYi90W8DZ8Diyl3 me@host"


def run(*args: str) -> tuple[int, str]:
    result = run_cli(list(args))
    return result.exit_code, result.output


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "id.pub"
    path.write_text(KEY + "\n")
    return path


def test_init_lists_templates() -> None:
    code, out = run("init", "--list")
    assert code == 0
    for name in ("microvm", "multi", "firecracker", "cloud-hypervisor"):
        assert name in out


def test_init_creates_a_valid_project(tmp_path: Path, key_file: Path) -> None:
    target = tmp_path / "demo"
    code, out = run("init", str(target), "--name", "web", "--ssh-key", str(key_file))
    assert code == 0, out
    assert "nix run .#web" in out
    for rel in ("flake.nix", "vms/web.nix", "nixgen.toml", ".gitignore"):
        assert (target / rel).is_file(), rel
    guest = (target / "vms/web.nix").read_text()
    assert KEY in guest
    assert 'password = ""' not in guest
    flake, warnings = Project.at(target).check()
    assert [g.name for g in flake.guests] == ["web"] and warnings == []


def test_init_without_login_says_how_to_add_one(tmp_path: Path) -> None:
    code, out = run("init", str(tmp_path / "d"))
    assert code == 0
    assert "no login is set up" in out
    assert "password" not in (tmp_path / "d/vms/my-microvm.nix").read_text()


def test_empty_root_password_only_on_request(tmp_path: Path) -> None:
    code, out = run("init", str(tmp_path / "d"), "--allow-empty-root-password")
    assert code == 0
    assert "root logs in with an empty password" in out  # the warning is shown
    assert 'users.users.root.password = "";' in (tmp_path / "d/vms/my-microvm.nix").read_text()


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    (tmp_path / "flake.nix").write_text("# mine\n")
    code, out = run("init", str(tmp_path))
    assert code == 1
    assert "refusing to overwrite" in out and "flake.nix" in out
    assert (tmp_path / "flake.nix").read_text() == "# mine\n"
    assert not (tmp_path / "nixgen.toml").exists()  # nothing half-written


def test_init_unknown_template(tmp_path: Path) -> None:
    code, out = run("init", str(tmp_path), "-t", "nope")
    assert code == 1 and "no template 'nope'" in out and "--list" in out


@pytest.mark.parametrize("hypervisor", ["firecracker", "cloud-hypervisor", "kvmtool"])
def test_init_per_hypervisor_is_valid(tmp_path: Path, hypervisor: str) -> None:
    result = init_project(tmp_path, template="multi", hypervisor=hypervisor)  # type: ignore[arg-type]
    assert all(g.hypervisor == hypervisor for g in result.flake.guests)


def test_check_reports_every_problem(tmp_path: Path) -> None:
    init_project(tmp_path, template="multi")
    toml = tmp_path / "nixgen.toml"
    text = toml.read_text().replace('hypervisor = "qemu"', 'hypervisor = "firecracker"', 1)
    text = text.replace("mem = 512", "mem = 2048", 1)
    toml.write_text(
        text + '\n[[guests.db.volumes]]\nimage = "a.img"\nmountPoint = "var"\nsize = 1\n'
    )
    code, out = run("check", str(tmp_path))
    assert code == 1
    assert 'guests["web"].shares[0].proto' in out  # firecracker has no shares
    assert 'guests["db"].volumes[0].mountPoint' in out
    assert "hint:" in out


def test_check_json_lists_guests(tmp_path: Path) -> None:
    init_project(tmp_path, template="multi")
    code, out = run("check", str(tmp_path), "--json", "--no-eval")
    assert code == 0
    assert [g["name"] for g in json.loads(out)["guests"]] == ["web", "db", "cache"]


def test_check_outside_a_project(tmp_path: Path) -> None:
    code, out = run("check", str(tmp_path))
    assert code == 1 and "not a nixgen project" in out and "nixgen init" in out


def test_render_after_editing_the_data_file(tmp_path: Path) -> None:
    init_project(tmp_path)
    toml = tmp_path / "nixgen.toml"
    toml.write_text(toml.read_text().replace("mem = 512", "mem = 1024"))
    code, out = run("render", str(tmp_path))
    assert code == 0 and "vms/my-microvm.nix" in out
    assert "mem = 1024;" in (tmp_path / "vms/my-microvm.nix").read_text()
    code, out = run("render", str(tmp_path))
    assert "up to date" in out


def test_render_refuses_hand_edits_unless_forced(tmp_path: Path) -> None:
    init_project(tmp_path)
    module = tmp_path / "vms/my-microvm.nix"
    module.write_text(module.read_text().replace("vcpu = 1;", "vcpu = 2;"))
    toml = tmp_path / "nixgen.toml"
    toml.write_text(toml.read_text().replace("mem = 512", "mem = 1024"))
    code, out = run("render", str(tmp_path))
    assert code == 1 and "hand-edited" in out and "--force" in out
    assert "vcpu = 2;" in module.read_text()
    code, _ = run("render", str(tmp_path), "--force")
    assert code == 0 and "mem = 1024;" in module.read_text()


def test_hypervisors_table_matches_docs() -> None:
    code, out = run("hypervisors")
    assert code == 0 and out == markdown_table()
    docs = REPO / "docs/hypervisors.md"
    if docs.exists():
        text = docs.read_text()
        begin = text.index("<!-- BEGIN GENERATED: nixgen hypervisors -->")
        end = text.index("<!-- END GENERATED -->")
        assert text[begin:end].split("\n", 1)[1].strip() == markdown_table().strip()


def test_python_dash_m_works() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "nixgen", "--version"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0 and "nixgen" in proc.stdout


def test_static_templates_are_up_to_date(tmp_path: Path) -> None:
    write_static_templates(tmp_path)
    committed = REPO / "templates/init"
    fresh = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    have = {p.relative_to(committed): p.read_bytes() for p in committed.rglob("*") if p.is_file()}
    assert fresh == have, "run: python scripts/render-templates.py"
    listed = (REPO / "templates/templates.nix").read_text()  # both flakes import it
    for name in TEMPLATES:
        assert f"path = ./init/{name};" in listed


def test_render_keeps_git_index_in_step(tmp_path: Path) -> None:
    """Flakes see only tracked files: new modules are added, removed ones unstaged."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    init_project(tmp_path, template="multi")

    def tracked() -> set[str]:
        out = subprocess.run(
            ["git", "-C", str(tmp_path), "ls-files"], capture_output=True, text=True, check=True
        )
        return set(out.stdout.split())

    assert {"vms/web.nix", "vms/cache.nix", "flake.nix", "nixgen.toml"} <= tracked()
    project = Project.at(tmp_path)
    flake = project.load()
    project.save(flake.without_guest("cache"))
    project.render()
    assert "vms/cache.nix" not in tracked()
    assert not (tmp_path / "vms/cache.nix").exists()


def test_check_warns_about_missing_module_files(tmp_path: Path) -> None:
    init_project(tmp_path)
    toml = tmp_path / "nixgen.toml"
    toml.write_text(
        toml.read_text().replace(
            'stateVersion = "26.05"', 'stateVersion = "26.05"\nmodules = ["modules/common.nix"]', 1
        )
    )
    code, out = run("check", str(tmp_path), "--no-eval")
    assert code == 0
    assert 'guests["my-microvm"].modules[0]: modules/common.nix is not in' in out
    (tmp_path / "modules").mkdir()
    (tmp_path / "modules/common.nix").write_text("{ }\n")
    code, out = run("check", str(tmp_path), "--no-eval")
    assert "is not in" not in out
