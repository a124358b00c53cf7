"""How the command line shows things to people (and to scripts, with --json)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click

from nixgen.errors import Problem
from nixgen.model import Flake, MicroVM


def problems(found: Sequence[Problem]) -> None:
    for problem in found:
        colour = "yellow" if problem.warning else "red"
        click.secho(str(problem), fg=colour, err=True)


def guest_row(vm: MicroVM) -> dict[str, Any]:
    return {
        "name": vm.name,
        "system": vm.system,
        "hypervisor": vm.hypervisor,
        "vcpu": vm.vcpu,
        "mem": vm.mem,
        "interfaces": [f"{i.type}:{i.id}" for i in vm.interfaces],
        "shares": [f"{s.proto}:{s.tag}" for s in vm.shares],
        "volumes": [v.image for v in vm.volumes],
    }


def guests(flake: Flake, *, as_json: bool) -> None:
    rows = [guest_row(vm) for vm in flake.guests]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    headers = ["name", "hypervisor", "vcpu", "mem", "interfaces", "shares", "volumes"]
    table = [
        [
            str(r["name"]),
            str(r["hypervisor"]),
            str(r["vcpu"]),
            f"{r['mem']} MiB",
            ", ".join(r["interfaces"]) or "-",
            ", ".join(r["shares"]) or "-",
            ", ".join(r["volumes"]) or "-",
        ]
        for r in rows
    ]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(headers)]
    click.echo("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in table:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
