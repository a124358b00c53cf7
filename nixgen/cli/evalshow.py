"""``nixgen show`` of a flake read through evaluation (see nixgen/evaluate.py).

Every guest and host the evaluation finds, each option the flake's own files
define with its value and the ``file:line`` of the definition that wins.
"""

from __future__ import annotations

import json
from typing import Any

from nixgen.cli.output import echo
from nixgen.flake import FlakeFile
from nixgen.flake.errors import FlakeEditError
from nixgen.flake.evaluated import EvalConfiguration, EvaluatedFlake, display


def show(flake: FlakeFile, name: str | None, as_json: bool) -> None:
    evaluated = flake.evaluation
    assert evaluated is not None
    if name is not None:
        config = evaluated.configurations.get(name)
        if config is None:
            known = ", ".join(evaluated.configurations) or "none"
            raise FlakeEditError(
                f"no configuration {name!r} in the flake's evaluated nixosConfigurations "
                f"(there are: {known})",
                hint="see `nixgen show` for the guests",
            )
        if as_json:
            echo(json.dumps(_config_json(flake, config), indent=2))
        else:
            _show_one(flake, config)
        return
    if as_json:
        data = {
            "flake": str(flake.path),
            "evaluated": True,
            "guests": [
                _config_json(flake, evaluated.configurations[n]) for n in evaluated.guests()
            ],
            "hosts": [_config_json(flake, evaluated.configurations[n]) for n in evaluated.hosts()],
            "other": _others(evaluated),
            "failed": evaluated.failed(),
            "notes": list(flake.notes),
        }
        echo(json.dumps(data, indent=2))
        return
    _show_all(flake, evaluated)


def _show_all(flake: FlakeFile, evaluated: EvaluatedFlake) -> None:
    rows = []
    for n in evaluated.guests():
        config = evaluated.configurations[n]
        summary = config.summary
        mem = summary.get("mem")
        rows.append(
            [
                n,
                config.system or "-",
                _value(summary.get("hypervisor")),
                _value(summary.get("vcpu")),
                f"{mem} MiB" if isinstance(mem, int) else _value(mem),
                str(len(config.options)),
                _declared(flake, n),
            ]
        )
    echo("evaluated with nix:")
    if rows:
        _table(["name", "system", "hypervisor", "vcpu", "mem", "settings", "declared"], rows)
    else:
        echo("no microvm guests")
    hosts = evaluated.hosts()
    if hosts:
        echo("\nhosts (they run guests; nixgen does not edit them):")
        _table(
            ["host", "system", "runs", "declared"],
            [
                [
                    h,
                    evaluated.configurations[h].system or "-",
                    ", ".join(evaluated.configurations[h].runs) or "-",
                    _declared(flake, h),
                ]
                for h in hosts
            ],
        )
    others = _others(evaluated)
    if others:
        echo(f"\nnot microvm guests or hosts: {', '.join(others)}")
    failed = evaluated.failed()
    if failed:
        echo(
            f"\nthese do not evaluate (see `nix eval .#nixosConfigurations.NAME.config.microvm`): "
            f"{', '.join(failed)}"
        )
    if not evaluated.configurations:
        echo("\nnote: the flake has no nixosConfigurations")


def _show_one(flake: FlakeFile, config: EvalConfiguration) -> None:
    kind = {"guest": "a guest", "host": "a host (it runs guests)"}.get(config.kind, "not a guest")
    echo(
        f"{config.name}: {kind}, system {config.system or '-'}, evaluated with nix "
        f"(declared at {_declared(flake, config.name)})"
    )
    if config.kind == "host":
        echo(f"  runs: {', '.join(config.runs) or '-'}")
    rows = []
    for key, option in config.options.items():
        places = flake.definition_places(config.name, key)
        where = ", ".join(p.where(flake.root) for p in places) or "-"
        rows.append([key, _short(display(option.value)), where + _priority(option.highest_prio)])
    if rows:
        echo()
        _table(["option", "value", "defined at (the definition that wins)"], rows)
    else:
        echo("\nno option is defined in the flake's own files")


def _priority(prio: int) -> str:
    if prio == 1000:
        return " (lib.mkDefault)"
    if prio == 50:
        return " (lib.mkForce)"
    if prio != 100:
        return f" (priority {prio})"
    return ""


def _config_json(flake: FlakeFile, config: EvalConfiguration) -> dict[str, Any]:
    return {
        "name": config.name,
        "kind": config.kind,
        "system": config.system,
        "declared": _declared(flake, config.name),
        "summary": dict(config.summary),
        "runs": list(config.runs),
        "settings": {k: o.value for k, o in config.options.items()},
        "where": {
            k: [p.where(flake.root) for p in flake.definition_places(config.name, k)]
            for k in config.options
        },
        "priority": {k: o.highest_prio for k, o in config.options.items()},
    }


def _others(evaluated: EvaluatedFlake) -> list[str]:
    return [n for n, c in evaluated.configurations.items() if c.kind == "other"]


def _declared(flake: FlakeFile, name: str) -> str:
    """Where the text declares it: its binding, else the expression that computes it."""
    if name in flake:
        span = flake.guest(name).span
    else:
        host = next((h for h in flake.hosts() if h.name == name), None)
        if host is not None:
            span = host.span
        else:
            item = next((u for u in flake.unreadable if u.name in (name, None)), None)
            if item is None or item.span is None:
                return "computed"
            span = item.span
    if span is None or span.file is None:
        return "computed"
    try:
        shown = span.file.resolve().relative_to(flake.root).as_posix()
    except ValueError:
        shown = str(span.file)
    return f"{shown}:{span.line}"


def _value(value: object) -> str:
    if isinstance(value, str):
        return value
    return "-" if value is None else _short(display(value))


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    echo("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in rows:
        echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
