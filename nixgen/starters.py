"""The project templates of ``nixgen init`` (and of ``nix flake init -t``).

Each template is a function from a few choices (guest name, hypervisor, SSH
keys) to a :class:`~nixgen.model.Flake`.  ``nixgen init`` renders it; the
repository's ``templates/init/<name>/`` folders hold the same templates
rendered with their defaults, for ``nix flake init -t <nixgen>#<name>``
(``python scripts/render-templates.py`` regenerates them, and a
test fails when they are out of date).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import attrs

from nixgen.hypervisors import TABLE
from nixgen.model import (
    HYPERVISORS,
    Flake,
    ForwardPort,
    Host,
    HostVM,
    Hypervisor,
    Interface,
    MicroVM,
    Network,
    Share,
    User,
    Volume,
    tap_id,
)

__all__ = ["TEMPLATES", "Choices", "Template", "build_template"]


def _strings(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(items)


@attrs.frozen
class Choices:
    """What a person can choose when creating a project."""

    name: str | None = None
    hypervisor: Hypervisor | None = None
    ssh_keys: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    allow_empty_root_password: bool = False


@attrs.frozen
class Template:
    name: str
    description: str
    make: Callable[[Choices], Flake]
    default_name: str


def _login(choices: Choices) -> dict[str, Any]:
    users = (User(name="root", ssh_keys=choices.ssh_keys),) if choices.ssh_keys else ()
    return {"users": users, "allow_empty_root_password": choices.allow_empty_root_password}


def _store_share(hypervisor: Hypervisor) -> tuple[Share, ...]:
    """The host store shared read-only, over the protocol the hypervisor has."""
    protos = TABLE[hypervisor].share_protos
    if "9p" in protos:
        return (Share.ro_store("9p"),)
    if "virtiofs" in protos:
        return (Share.ro_store("virtiofs"),)
    return ()  # firecracker: the store goes into an image instead


def _first_interface(hypervisor: Hypervisor, name: str) -> Interface:
    if "user" in TABLE[hypervisor].interface_types:
        return Interface.user(id="eth0")
    return Interface.tap_device(id=tap_id(name))


def single_guest(choices: Choices, *, default_name: str = "my-microvm") -> Flake:
    """One guest, as upstream's microvm template has it: 512 MiB, 1 vCPU, /var on a volume."""
    hv: Hypervisor = choices.hypervisor or "qemu"
    name = choices.name or default_name
    interface = _first_interface(hv, name)
    # With keys and qemu's user networking, forward host port 2222 to sshd.
    ssh_port = (
        [ForwardPort.tcp(2222, 22)]
        if choices.ssh_keys and interface.type == "user" and TABLE[hv].forward_ports
        else []
    )
    guest = MicroVM(
        name=name,
        hypervisor=hv,
        vcpu=1,
        mem=512,
        interfaces=[interface],
        forward_ports=ssh_port,
        volumes=[Volume(image="var.img", mount_point="/var", size=256)],
        shares=_store_share(hv),
        socket="control.socket",
        **_login(choices),
    )
    return Flake(guests=[guest], description=f"A NixOS micro-VM on {hv}")


_MULTI_NAMES = ("web", "db", "cache")
_MULTI_RANGE = "10.0.0.0/24"


def multi_guest(choices: Choices) -> Flake:
    """Three guests with static addresses on a host bridge, and the host that runs them.

    The network is an object (:class:`~nixgen.model.Network`): nixgen gives
    each guest its tap interface, MAC and address, and writes both sides
    (the guests' systemd-networkd settings, the host's bridge and NAT).
    """
    hv: Hypervisor = choices.hypervisor or "qemu"
    prefix = choices.name or ""
    names = [f"{prefix}-{base}" if prefix else base for base in _MULTI_NAMES]
    guests = [
        MicroVM(
            name=name,
            hypervisor=hv,
            vcpu=1,
            mem=512,
            shares=_store_share(hv),
            **_login(choices),
        )
        for name in names
    ]
    host = Host(
        name=f"{prefix}-host" if prefix else "vmhost",
        vms=[HostVM(name=n) for n in names],
        networks=[
            Network.bridged("lan", names, ipv4=_MULTI_RANGE, dns=["9.9.9.9"], nat=True),
        ],
    )
    return Flake(
        guests=guests,
        hosts=[host],
        description=f"NixOS micro-VMs on a host bridge ({_MULTI_RANGE}) and the host that runs them",
    )


def _per_hypervisor(hv: Hypervisor) -> Template:
    return Template(
        name=hv,
        description=f"one guest on {hv}",
        make=lambda c: single_guest(attrs.evolve(c, hypervisor=c.hypervisor or hv)),
        default_name="my-microvm",
    )


TEMPLATES: dict[str, Template] = {
    t.name: t
    for t in (
        Template(
            "microvm",
            "one qemu guest like upstream's template (512 MiB, /var volume, shared store)",
            single_guest,
            "my-microvm",
        ),
        Template(
            "multi",
            "three guests (web, db, cache) on a host bridge with static addresses, and their host",
            multi_guest,
            "",
        ),
        *(_per_hypervisor(hv) for hv in HYPERVISORS if hv != "qemu"),
    )
}


def build_template(template: str, choices: Choices) -> Flake:
    """The flake a template makes; ``KeyError`` lists the templates that exist."""
    try:
        chosen = TEMPLATES[template]
    except KeyError:
        raise KeyError(f"no template {template!r}; templates: {', '.join(TEMPLATES)}") from None
    return chosen.make(choices)


def write_static_templates(destination: Path) -> list[Path]:
    """Render every template with its defaults into ``destination/<name>/``."""
    from nixgen.project import init_project

    written: list[Path] = []
    for name in TEMPLATES:
        folder = destination / name
        if folder.exists():
            for path in sorted(folder.rglob("*"), reverse=True):
                path.unlink() if path.is_file() else path.rmdir()
        written += init_project(folder, template=name, git_add=False).created
        # The project lock's folder is state of this one folder, not template content.
        shutil.rmtree(folder / ".nixgen", ignore_errors=True)
    return written
