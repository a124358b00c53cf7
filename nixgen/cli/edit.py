"""``nixgen show|set|unset|add|rm|rename``: read and edit the guests of an existing flake.

Thin commands over :class:`nixgen.flake.FlakeFile`: nothing is written
before every edit of the command has been made, read back and validated;
``--dry-run`` prints the unified diff instead of writing.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from nixgen.cli import nixopts, output
from nixgen.cli.output import echo
from nixgen.cli.parsing import argument, command, int_at_least, option
from nixgen.errors import NixgenError, ValidationError
from nixgen.flake import FlakeFile, GuestView
from nixgen.lock import project_lock
from nixgen.model import HYPERVISORS, SYSTEMS, MicroVM
from nixgen.model.convert import to_dict
from nixgen.model.shape import pick_template, shaped_like
from nixgen.nix.emit import parse_attr_path, to_nix
from nixgen.nix.literal import Suggestion, parse_literal
from nixgen.nix.parse import Span
from nixgen.nix.read import NEEDS_NIX, HostConfig, UnreadModule
from nixgen.settings import plain


def _dry_run(function: Any) -> Any:
    return option(
        "--dry-run", action="store_true", help="Print the changes as a unified diff; write nothing."
    )(function)


def _eval_option(function: Any) -> Any:
    return option(
        "--eval",
        dest="eval_mode",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="Read the flake through `nix eval` (default: only when the text leaves "
        "something unknown: computed guests, options defined several times); "
        "--no-eval never runs nix.",
    )(function)


@attrs.frozen
class _NixArgs:
    """The nix options of show/set/unset, as build and check take them."""

    override_inputs: tuple[tuple[str, str], ...] = ()
    nix_option: tuple[tuple[str, str], ...] = ()
    nix_timeout: float | None = None
    eval_mode: bool | None = None


def _load(flake_dir: Path | None, nix: _NixArgs | None = None) -> FlakeFile:
    if nix is None or nix.eval_mode is False:
        return FlakeFile.load(flake_dir or Path())
    from nixgen.evaluate import FlakeEvaluator

    runner = nixopts.make_nix(nix.override_inputs, nix.nix_option, nix.nix_timeout)
    return FlakeFile.load(flake_dir or Path(), evaluator=FlakeEvaluator(runner))


def _evaluate(flake: FlakeFile, nix: _NixArgs, name: str | None, *, strict: bool) -> bool:
    """Evaluate when asked (--eval) or when the text leaves something unknown and
    nix is there.  ``strict``: a failure is the command's error (an edit cannot go
    on without it); otherwise a warning, and what is written is shown."""
    if nix.eval_mode is False:
        return False
    reason = flake.evaluation_reason(name)
    if nix.eval_mode is None and (reason is None or shutil.which("nix") is None):
        return False
    try:
        flake.evaluate()
    except NixgenError as err:
        if strict or nix.eval_mode:
            raise
        output.secho(
            f"warning: {reason}, but the flake could not be evaluated: {err.message}",
            fg="yellow",
            err=True,
        )
        if err.hint:
            output.secho(f"  hint: {err.hint}", fg="yellow", err=True)
        return False
    return True


def _edit(
    flake_dir: Path | None,
    dry_run: bool,
    edit: Callable[[FlakeFile], None],
    nix: _NixArgs | None = None,
    name: str | None = None,
) -> None:
    """Load, edit and save under the project lock, so that concurrent edits
    never lose one another's changes (--dry-run writes nothing: no lock)."""
    given = flake_dir or Path()
    folder = given if given.is_dir() else given.parent
    with contextlib.ExitStack() as stack:
        if not dry_run and folder.is_dir():
            stack.enter_context(project_lock(folder))
        flake = _load(flake_dir, nix)
        if nix is not None and not flake.project:
            # Without the evaluation, a guest the text does not declare cannot be edited;
            # one it does is edited as written (with a warning why nix did not help).
            _evaluate(flake, nix, name, strict=name is not None and name not in flake)
        _run(lambda: edit(flake))
        if dry_run and flake.evaluation is not None and flake.dirty:
            output.secho(
                "note: not evaluated again (--dry-run): written, the edit is checked by "
                "evaluating the flake again",
                fg="yellow",
                err=True,
            )
        _finish(flake, dry_run)


def _finish(flake: FlakeFile, dry_run: bool) -> None:
    """Print notes and warnings, then the diff (--dry-run) or what was written."""
    output.problems(flake.warnings)
    for note in flake.edit_notes:
        output.secho(f"note: {note}", fg="yellow", err=True)
    if dry_run:
        diff = flake.diff()
        echo(diff if diff else "no change", nl=not diff)
        return
    result = flake.save()
    for path in result.written:
        echo(f"wrote   {_relative(path)}")
    for path in result.removed:
        echo(f"removed {_relative(path)}")
    if not result.written and not result.removed:
        echo("no change")


def _run(edit: Any) -> None:
    """Run an edit; validation problems are printed one by one (exit 1)."""
    try:
        edit()
    except ValidationError as err:
        output.secho("nixgen: the edit was refused, no file was changed:", fg="red", err=True)
        output.problems([*err.problems, *err.warnings])
        raise SystemExit(output.EXIT_FAILED) from None


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# ----------------------------------------------------------------- show


@command("show")
@argument("name", required=False)
@nixopts.flake_option
@nixopts.nix_options
@_eval_option
@output.json_option("Print JSON (for scripts).")
def show_command(
    name: str | None,
    flake_dir: Path | None,
    override_inputs: tuple[tuple[str, str], ...],
    nix_option: tuple[tuple[str, str], ...],
    nix_timeout: float | None,
    eval_mode: bool | None,
    as_json: bool,
) -> None:
    """Show the guests of a flake and their settings (nix eval where the text is computed).

    Without NAME: one line per guest, then the hosts (configurations that run
    guests, which nixgen does not edit), the guests nixgen cannot read and
    why.  With NAME: every setting of that guest and where it is written.
    The text is read; where it leaves something unknown (computed guests,
    options defined several times) and nix is there, the flake is evaluated
    (--eval always, --no-eval never).
    """
    nix = _NixArgs(override_inputs, nix_option, nix_timeout, eval_mode)
    flake = _load(flake_dir, nix)
    if _evaluate(flake, nix, name, strict=name is not None and name not in flake):
        from nixgen.cli import evalshow

        evalshow.show(flake, name, as_json)
        return
    if name is not None:
        host = _host(flake, name)
        if host is not None:
            if as_json:
                echo(json.dumps(_host_json(flake, host), indent=2))
            else:
                _show_host(flake, host)
            return
        guest = flake.guest(name)
        if as_json:
            echo(json.dumps(_guest_json(flake, guest), indent=2))
        else:
            _show_guest(flake, guest)
        return
    if as_json:
        data = {
            "flake": str(flake.path),
            "project": flake.project,
            "guests": [_guest_json(flake, g) for g in flake.guests()],
            "hosts": [_host_json(flake, h) for h in flake.hosts()],
            "unreadable": [
                {"name": u.name, "reason": u.reason, "where": _where(flake, u.span)}
                for u in flake.unreadable
            ],
            "needs_nix": NEEDS_NIX if flake.unreadable else None,
            "notes": list(flake.notes),
        }
        echo(json.dumps(data, indent=2))
        return
    rows = [
        [
            g.name,
            _system(g),
            _field(g, "microvm.hypervisor", g.vm.hypervisor),
            _field(g, "microvm.vcpu", g.vm.vcpu),
            _field(g, "microvm.mem", f"{g.vm.mem} MiB"),
            str(len(g.settings)),
            _where(flake, g.span),
        ]
        for g in flake.guests()
    ]
    headers = ["name", "system", "hypervisor", "vcpu", "mem", "settings", "declared"]
    if rows:
        _table(headers, rows)
    else:
        echo("no guests nixgen can read")
    if flake.hosts():
        echo("\nhosts (they run guests; nixgen does not edit them):")
        _table(
            ["host", "kind", "system", "runs", "declared"],
            [
                [
                    h.name,
                    h.kind,
                    _host_system(h),
                    ", ".join(h.runs) or "-",
                    _where(flake, h.span),
                ]
                for h in flake.hosts()
            ],
        )
    unread = [(g.name, u) for g in flake.guests() for u in g.unread]
    if unread:
        echo(f"\n{_UNREAD}")
        for who, module in unread:
            echo(f"  {who}: {_unread_line(flake, module)}")
    if flake.unreadable:
        echo("\nnot readable without evaluating the flake:")
        for item in flake.unreadable:
            who = item.name if item.name is not None else "(guests)"
            where = _where(flake, item.span)
            # the reason names its place first when it names the expression
            shown = item.reason if item.binding is not None else f"{item.reason} ({where})"
            echo(f"  {who}: {shown}")
        echo(f"  {NEEDS_NIX}")
    for note in flake.notes:
        echo(f"note: {note}")


def _show_guest(flake: FlakeFile, guest: GuestView) -> None:
    echo(f"{guest.name}: system {_system(guest)}, declared at {_where(flake, guest.span)}")
    rows = []
    for key, defs in guest.definitions.items():
        decision = guest.decision(key) if len(defs) > 1 else None
        for d in defs:
            mark = ""
            if decision is not None:
                # one word per definition; the reason of an undecided one is said below
                if not decision.winners:
                    mark = " (undecided)"
                elif d in decision.winners:
                    mark = " (merged)" if decision.merged else " (wins)"
                else:
                    mark = " (overridden)"
            rows.append([key, _display(d.value) + mark, _where(flake, d.span)])
    if rows:
        echo()
        _table(["option", "value", "where"], rows)
    if guest.unmodelled:
        echo("\nkept as written, outside the model:")
        for item in guest.unmodelled.values():
            echo(f"  {item.key}: {item.reason}")
    if guest.unread:
        echo(f"\n{_UNREAD}")
        for module in guest.unread:
            echo(f"  {_unread_line(flake, module)}")
    if guest.problems:
        echo("\nproblems:")
        for problem in guest.problems:
            echo(f"  {problem}")


_UNREAD = "modules nixgen could not read (the options they set are unknown):"


def _unread_line(flake: FlakeFile, module: UnreadModule) -> str:
    return f"`{_display_text(module.text)}` ({_where(flake, module.span)}): {module.reason}"


def _display_text(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _host(flake: FlakeFile, name: str) -> HostConfig | None:
    """The host called ``name``, unless a guest is (a host module may share a guest's name)."""
    if name in flake:
        return None
    return next((h for h in flake.hosts() if h.name == name), None)


def _show_host(flake: FlakeFile, host: HostConfig) -> None:
    what = "nixosConfigurations" if host.kind == "configuration" else "nixosModules"
    echo(
        f"{host.name}: a host, not a guest ({what}.{host.name}, declared at "
        f"{_where(flake, host.span)}); nixgen does not edit hosts"
    )
    echo(f"  recognised: {host.reason}")
    if host.system is not None:
        echo(f"  system: {_host_system(host)}")
    if host.file is not None:
        echo(f"  host module: {_relative_to(flake, host.file)}")
    echo(f"  runs: {', '.join(host.runs) or '-'}")


def _host_system(host: HostConfig) -> str:
    if host.system is None:
        return "-"
    return host.system if isinstance(host.system, str) else _display(host.system)


def _host_json(flake: FlakeFile, host: HostConfig) -> dict[str, Any]:
    return {
        "name": host.name,
        "kind": host.kind,
        "system": plain(host.system),
        "declared": _where(flake, host.span),
        "recognised": host.reason,
        "module": None if host.file is None else _relative_to(flake, host.file),
        "runs": list(host.runs),
    }


def _guest_json(flake: FlakeFile, guest: GuestView) -> dict[str, Any]:
    model = to_dict(guest.vm)
    model.pop("name", None)
    # A field an unread module may set is unknown: not shown with the model's default.
    for key in guest.unknown:
        model.pop(_field_name(key), None)
    return {
        "name": guest.name,
        "system": plain(guest.system),
        "declared": _where(flake, guest.span),
        "settings": {k: plain(v) for k, v in guest.settings.items()},
        "where": {
            k: [_where(flake, d.span) for d in defs] for k, defs in guest.definitions.items()
        },
        "model": model,
        "unmodelled": {k: u.reason for k, u in guest.unmodelled.items()},
        "unread": [
            {"module": u.text, "reason": u.reason, "where": _where(flake, u.span)}
            for u in guest.unread
        ],
        "unknown": list(guest.unknown),
        "problems": list(guest.problems),
    }


def _field_name(key: str) -> str:
    """The model's (nixgen.toml's) name of an option: ``microvm.hypervisor`` →
    ``hypervisor``, ``system.stateVersion`` → ``stateVersion``, ``system``."""
    path = parse_attr_path(key)
    return path[-1] if path[0] == "system" else path[1]


def _system(guest: GuestView) -> str:
    system = guest.system
    if system is None:
        return "-"
    return system if isinstance(system, str) else _display(system)


def _field(guest: GuestView, key: str, modelled: object) -> str:
    if not guest.known(key):
        return "unknown"  # set, perhaps, in a module nixgen could not read
    if key in guest.unmodelled:
        return _display(guest.unmodelled[key].value)
    return str(modelled)


def _display(value: object, limit: int = 60) -> str:
    try:
        text = to_nix(value)
    except Exception:  # a value Nix cannot spell: show Python's view of it
        text = repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _relative_to(flake: FlakeFile, file: Path) -> str:
    try:
        return file.resolve().relative_to(flake.root).as_posix()
    except ValueError:
        return str(file)


def _where(flake: FlakeFile, span: Span | None) -> str:
    if span is None:
        return "-"
    file = span.file
    if file is None:
        return f"{span.line}"
    try:
        shown = file.resolve().relative_to(flake.root).as_posix()
    except ValueError:
        shown = str(file)
    return f"{shown}:{span.line}"


def _table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    echo("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in rows:
        echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


# ----------------------------------------------------------------- set / unset


def _split_assignment(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` at the first ``=`` outside double quotes (keys may quote: ``a."b=c".d``)."""
    quoted = False
    for i, ch in enumerate(text):
        if ch == '"':
            quoted = not quoted
        elif ch == "=" and not quoted:
            return text[:i].strip(), text[i + 1 :].strip()
    raise argparse.ArgumentError(
        None,
        f"{text!r} is not KEY=VALUE; e.g. nixgen set web microvm.mem=1024 "
        "'microvm.hypervisor=\"qemu\"'",
    )


def _suggest(key: str, word: str) -> Suggestion:
    """What ``word`` may have meant as the value of ``key`` (asked only for a bad value)."""
    from nixgen.flake.suggest import suggest_value

    return suggest_value(key, word)


@command("set")
@argument("name")
@argument("assignments", nargs="+", metavar="KEY=VALUE...")
@nixopts.flake_option
@nixopts.nix_options
@_eval_option
@_dry_run
def set_command(
    name: str,
    assignments: tuple[str, ...],
    flake_dir: Path | None,
    override_inputs: tuple[tuple[str, str], ...],
    nix_option: tuple[tuple[str, str], ...],
    nix_timeout: float | None,
    eval_mode: bool | None,
    dry_run: bool,
) -> None:
    """Set options of guest NAME, in place: KEY is an option path, VALUE a Nix literal.

    \b
    nixgen set web microvm.mem=1024 microvm.vcpu=2
    nixgen set web 'microvm.hypervisor="cloud-hypervisor"'
    nixgen set web 'microvm.shares=[ { tag = "ro-store"; source = "/nix/store"; mountPoint = "/nix/.ro-store"; } ]'
    nixgen set web system='"aarch64-linux"'

    Values are numbers, true, false, null, "strings" (quote them for the
    shell) and lists or attribute sets of those.  All assignments are
    validated together before any file is written.  On a computed flake
    (evaluated, see `nixgen show`) the definition that wins is changed in its
    own file, and the flake is evaluated again to check it.
    """
    values: dict[str, object] = {}
    for item in assignments:
        key, text = _split_assignment(item)
        if not key:
            raise argparse.ArgumentError(None, f"{item!r} has no option name before '='")
        values[key] = parse_literal(text, key=key, suggest=functools.partial(_suggest, key))

    def update(flake: FlakeFile) -> None:
        try:
            flake.update(name, values)
        except ValidationError as err:
            from nixgen.flake.suggest import with_suggestions

            raise with_suggestions(err, values) from None

    nix = _NixArgs(override_inputs, nix_option, nix_timeout, eval_mode)
    _edit(flake_dir, dry_run, update, nix, name)


@command("unset")
@argument("name")
@argument("keys", nargs="+", metavar="KEY...")
@nixopts.flake_option
@nixopts.nix_options
@_eval_option
@_dry_run
def unset_command(
    name: str,
    keys: tuple[str, ...],
    flake_dir: Path | None,
    override_inputs: tuple[tuple[str, str], ...],
    nix_option: tuple[tuple[str, str], ...],
    nix_timeout: float | None,
    eval_mode: bool | None,
    dry_run: bool,
) -> None:
    """Remove options of guest NAME: every binding that sets them (microvm.nix's default applies).

    On a computed flake, the winning literal binding is removed and the flake
    is evaluated again to check it."""
    nix = _NixArgs(override_inputs, nix_option, nix_timeout, eval_mode)
    _edit(flake_dir, dry_run, lambda flake: flake.unset(name, *keys), nix, name)


# ----------------------------------------------------------------- add / rm / rename


@command("add")
@argument("name")
@nixopts.flake_option
@option("--hypervisor", choices=HYPERVISORS, default="qemu", show_default=True)
@option("--mem", type=int_at_least(1), default=512, metavar="MIB", show_default=True, help="MiB.")
@option("--vcpu", type=int_at_least(1), default=1, show_default=True, metavar="N")
@option("--system", choices=SYSTEMS, default="x86_64-linux", show_default=True)
@option("--bare", action="store_true", help="No interfaces, volumes or shares of another guest.")
@_dry_run
def add_command(
    name: str,
    flake_dir: Path | None,
    hypervisor: str,
    mem: int,
    vcpu: int,
    system: str,
    bare: bool,
    dry_run: bool,
) -> None:
    """Add guest NAME, shaped like the guests already in the flake.

    It follows the layout of their files, and takes the interfaces, volumes and
    shares of the last one with the same hypervisor, renamed for NAME (--bare
    leaves them out)."""
    vm = MicroVM(name=name, hypervisor=hypervisor, mem=mem, vcpu=vcpu, system=system)  # type: ignore[arg-type]  # the parser's choices checked them

    def add(flake: FlakeFile) -> None:
        shaped = vm
        template = None if bare else pick_template(flake.model().guests, vm)
        if template is not None:
            shaped = shaped_like(vm, template)
            echo(
                f"{name}: the interfaces, volumes and shares of {template.name} "
                f"({len(shaped.interfaces)}, {len(shaped.volumes)}, {len(shaped.shares)})",
                err=True,
            )
        flake.add(shaped)

    _edit(flake_dir, dry_run, add)


@command("rm")
@argument("name")
@nixopts.flake_option
@_dry_run
def rm_command(name: str, flake_dir: Path | None, dry_run: bool) -> None:
    """Remove guest NAME and its runner package (and its module file, if nixgen generated it)."""
    _edit(flake_dir, dry_run, lambda flake: flake.remove(name))


@command("rename")
@argument("old")
@argument("new")
@nixopts.flake_option
@_dry_run
def rename_command(old: str, new: str, flake_dir: Path | None, dry_run: bool) -> None:
    """Rename guest OLD to NEW: its name, networking.hostName, runner package, own module file."""
    _edit(flake_dir, dry_run, lambda flake: flake.rename(old, new))
