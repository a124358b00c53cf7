"""The project templates of ``nixgen init`` (and of ``nix flake init -t``).

Each template is a function from a few choices (guest name, hypervisor, SSH
keys) to a :class:`~nixgen.model.Flake`.  ``nixgen init`` renders it; the
repository's ``templates/init/<name>/`` folders hold the same templates
rendered with their defaults, for ``nix flake init -t <nixgen>#<name>``
(``python -m nixgen.starters --write templates/init`` regenerates them, and a
test fails when they are out of date).
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs

from nixgen.hypervisors import TABLE
from nixgen.model import (
    HYPERVISORS,
    Flake,
    ForwardPort,
    Hypervisor,
    Interface,
    MicroVM,
    Share,
    User,
    Volume,
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


def tap_id(name: str) -> str:
    """A host interface name for a guest: ``vm-<name>``, shortened with a hash to fit 15."""
    candidate = f"vm-{name}"
    if len(candidate) <= 15:
        return candidate
    digest = hashlib.sha256(name.encode()).hexdigest()[:4]
    return f"vm-{name[:7]}-{digest}"


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
_BRIDGE_NET = "10.0.0"


def multi_guest(choices: Choices) -> Flake:
    """Three guests with tap interfaces and static addresses on one host bridge."""
    hv: Hypervisor = choices.hypervisor or "qemu"
    guests = []
    prefix = choices.name or ""
    for index, base in enumerate(_MULTI_NAMES, start=2):
        name = f"{prefix}-{base}" if prefix else base
        guests.append(
            MicroVM(
                name=name,
                hypervisor=hv,
                vcpu=1,
                mem=512,
                interfaces=[Interface.tap_device(id=tap_id(name))],
                shares=_store_share(hv),
                nixos={
                    # systemd-networkd in the guest, as in upstream's network docs.
                    "networking.useNetworkd": True,
                    'systemd.network.networks."20-lan"': {
                        "matchConfig": {"Type": "ether"},
                        "networkConfig": {
                            "Address": [f"{_BRIDGE_NET}.{index}/24"],
                            "Gateway": f"{_BRIDGE_NET}.1",
                            "DNS": ["9.9.9.9"],
                            "DHCP": "no",
                        },
                    },
                },
                **_login(choices),
            )
        )
    return Flake(guests=guests, description="NixOS micro-VMs on a host bridge (10.0.0.0/24)")


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
            "three guests (web, db, cache) with static addresses on a host bridge",
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
    return written


def main(argv: Sequence[str]) -> int:
    if len(argv) != 2 or argv[0] != "--write":
        print("usage: python -m nixgen.starters --write DIR", file=sys.stderr)
        return 2
    for path in write_static_templates(Path(argv[1])):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
