"""Deploying hosts with Nix's own tools: ``nixgen deploy [HOST…]``.

For each host that has a full configuration (``nixosConfiguration = true``)
nixgen runs three steps, each a plain command a person could type:

1. build: ``nix build --no-link --json FLAKE#nixosConfigurations.HOST.config.system.build.toplevel``,
   locally, on remote builders (``--builders``) or in a remote store
   (``--store ssh-ng://builder``);
2. copy: ``nix copy --to ssh://TARGET PATH`` (``--from STORE`` when built there);
3. activate: ``nixos-rebuild switch --flake FLAKE#HOST --target-host TARGET``
   (the system is already built and copied, so nixos-rebuild only evaluates
   and switches), or, where nixos-rebuild is not installed, over ssh:
   ``nix-env -p /nix/var/nix/profiles/system --set PATH`` and
   ``PATH/bin/switch-to-configuration switch``.

The nix commands go through :mod:`nixgen.nixcmd`; nixos-rebuild and ssh
through :class:`CommandRunner`, with the same error discipline (the command,
its exit code and its stderr are in the error).  Each host is reported on its
own (:class:`HostReport`); one failing host does not stop the others unless
``fail_fast`` is set.
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import attrs

from nixgen import process
from nixgen.build import flake_ref
from nixgen.errors import NixgenError, ProjectError, ValidationError, keyed
from nixgen.model import Flake, Host
from nixgen.nix.emit import attr_path
from nixgen.nixcmd import NixRunner, build_argv, parse_build_json
from nixgen.nixcmd.errors import NixCommandError
from nixgen.process import CmdOut
from nixgen.process.errors import CommandError
from nixgen.project import Project
from nixgen.render import SOURCE_NAME, may_replace, render_files
from nixgen.validate import ssh_destination_problem

__all__ = [
    "Action",
    "Activation",
    "CommandResult",
    "CommandRunner",
    "DeployOptions",
    "DeployReport",
    "Fleet",
    "HostReport",
    "StepResult",
]

Action = Literal["switch", "boot", "test", "dry-activate"]
Activation = Literal["nixos-rebuild", "ssh"]
StepName = Literal["build", "copy", "activate"]

SYSTEM_PROFILE = "/nix/var/nix/profiles/system"


# ----------------------------------------------------------------- running commands


#: What one command of a deploy did (the result of :func:`nixgen.process.run`).
CommandResult = CmdOut


class CommandRunner:
    """Settings for the commands that are not nix (nixos-rebuild, ssh), run
    through :func:`nixgen.process.run`: argv only, in a session of their own
    (stopped with everything they started on timeout or Ctrl-C), output
    captured, a failure raised as :class:`CommandError`."""

    def __init__(
        self,
        *,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        grace: float = 5.0,
    ) -> None:
        self.timeout = timeout
        self.env = env
        self.grace = grace

    def run(self, argv: Sequence[str], *, check: bool = True) -> CommandResult:
        program = "" if isinstance(argv, str) or not argv else os.fspath(argv[0])
        return process.run(
            argv,
            env=self.env,
            timeout=self.timeout,
            grace=self.grace,
            check=check,
            hint=lambda done: _failure_hint(program, done.stderr),
            not_found_hint=_install_hint(program),
            timeout_hint="allow more time (--timeout), or check that the host is reachable",
        )


def _install_hint(program: str) -> str:
    if program == "nixos-rebuild":
        return (
            "run nixgen on NixOS, or get it with `nix shell nixpkgs#nixos-rebuild`, "
            "or activate over ssh (--activate-with ssh)"
        )
    return f"install {program}, or put it on PATH"


def _failure_hint(program: str, stderr: str) -> str:
    lowered = stderr.lower()
    if program == "ssh" or "ssh" in lowered:
        if "permission denied" in lowered:
            return 'check the ssh key and the user of the target (targetHost = "root@host")'
        if "could not resolve" in lowered or "connection refused" in lowered:
            return "check that the target is reachable over ssh (targetHost)"
    if "sudo" in lowered and "password" in lowered:
        return "let the remote user run sudo without a password, or deploy as root"
    return f"read {program}'s error output above"


# ----------------------------------------------------------------- results


@attrs.frozen
class StepResult:
    """One step of one host: what ran, whether it worked, and its error."""

    step: StepName
    ok: bool
    command: tuple[str, ...]
    duration: float = 0.0
    #: the store path the build step produced
    output: str | None = None
    error: NixgenError | None = attrs.field(default=None, eq=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "ok": self.ok,
            "command": list(self.command),
            "duration": round(self.duration, 3),
            "output": self.output,
            "error": None if self.error is None else str(self.error),
        }


@attrs.frozen
class HostReport:
    """What happened to one host; ``skipped`` when ``fail_fast`` stopped before it."""

    host: str
    target: str
    steps: tuple[StepResult, ...] = ()
    skipped: bool = False

    @property
    def ok(self) -> bool:
        return not self.skipped and all(s.ok for s in self.steps)

    @property
    def failed_step(self) -> StepResult | None:
        return next((s for s in self.steps if not s.ok), None)

    @property
    def toplevel(self) -> str | None:
        return next((s.output for s in self.steps if s.step == "build" and s.ok), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "target": self.target,
            "ok": self.ok,
            "skipped": self.skipped,
            "toplevel": self.toplevel,
            "steps": [s.to_json() for s in self.steps],
        }


@attrs.frozen
class DeployReport:
    hosts: tuple[HostReport, ...]

    @property
    def ok(self) -> bool:
        return all(h.ok for h in self.hosts)

    @property
    def succeeded(self) -> tuple[str, ...]:
        return tuple(h.host for h in self.hosts if h.ok)

    @property
    def failed(self) -> tuple[str, ...]:
        return tuple(h.host for h in self.hosts if not h.ok and not h.skipped)

    @property
    def skipped(self) -> tuple[str, ...]:
        return tuple(h.host for h in self.hosts if h.skipped)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "hosts": [h.to_json() for h in self.hosts]}


@attrs.frozen
class DeployOptions:
    """How to deploy.

    - ``builders``: nix's ``--builders`` (``"ssh://builder x86_64-linux"``);
    - ``store``: build in this store (``"ssh-ng://builder"``) and copy from it;
    - ``action``: what activation does (nixos-rebuild's switch, boot, test,
      dry-activate);
    - ``activate_with``: ``"nixos-rebuild"`` or ``"ssh"`` (switch-to-configuration
      over ssh, where nixos-rebuild is not installed);
    - ``sudo``: activate as a non-root target user through sudo;
    - ``substitute_on_destination``: let the target download what it can from
      its binary caches instead of receiving it;
    - ``fail_fast``: stop at the first host that fails (the rest are skipped).
    """

    builders: str | None = None
    store: str | None = None
    action: Action = "switch"
    activate_with: Activation = "nixos-rebuild"
    sudo: bool = False
    substitute_on_destination: bool = False
    fail_fast: bool = False


# ----------------------------------------------------------------- the fleet


StepHandler = Callable[[str, StepResult], None]


class Fleet:
    """The hosts of a project (or of any flake folder nixgen rendered), ready to deploy.

    ``Fleet.load(folder)`` reads and validates ``nixgen.toml`` and checks that
    the rendered files are up to date; ``Fleet(flake, folder)`` takes a model
    built in Python (the folder holds what :func:`~nixgen.render.write_project`
    wrote for it).
    """

    def __init__(
        self,
        flake: Flake,
        directory: Path | str,
        *,
        nix: NixRunner | None = None,
        runner: CommandRunner | None = None,
    ) -> None:
        self.flake = flake
        self.directory = Path(directory).resolve()
        base = nix or NixRunner()
        self.nix = base if base.cwd is not None else attrs.evolve(base, cwd=str(self.directory))
        self.runner = runner or CommandRunner()

    @classmethod
    def load(
        cls,
        directory: Path | str = ".",
        *,
        nix: NixRunner | None = None,
        runner: CommandRunner | None = None,
    ) -> Fleet:
        """The fleet of the project in ``directory`` (validated; rendered files current)."""
        project = Project.at(directory)
        flake, _ = project.check()
        stale = []
        for rel, text in render_files(flake, source=SOURCE_NAME).items():
            path = project.root / rel
            current = path.read_text(encoding="utf-8") if path.is_file() else None
            # Stale: what render would write there, and is allowed to (missing or unedited).
            if current != text and may_replace(current):
                stale.append(str(rel))
        if stale:
            raise ProjectError(
                f"{project.root}: the rendered files are not up to date with "
                f"{project.source.name} ({', '.join(stale)})",
                hint="run `nixgen render` first, so that what is deployed is what is declared",
            )
        return cls(flake, project.root, nix=nix, runner=runner)

    @property
    def hosts(self) -> tuple[Host, ...]:
        return tuple(self.flake.hosts)

    def deployable(self, names: Sequence[str] = ()) -> list[Host]:
        """The hosts named (default: every host with a full configuration), checked."""
        if not names:
            chosen = [h for h in self.hosts if h.nixos_configuration]
            if not chosen:
                raise ProjectError(
                    "no host of this flake has a full configuration to deploy",
                    hint="set nixosConfiguration = true on a host ([hosts.NAME]) and render",
                )
            return _safe_targets(chosen)
        known = {h.name: h for h in self.hosts}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ProjectError(
                f"no host(s) {', '.join(unknown)} in this flake",
                hint="hosts: " + (", ".join(known) or "none"),
            )
        partial = [n for n in names if not known[n].nixos_configuration]
        if partial:
            raise ProjectError(
                f"host(s) {', '.join(partial)} have only a module (nixosModules), "
                "no configuration to deploy",
                hint="set nixosConfiguration = true on them, or import their module "
                "into the configuration you deploy",
            )
        return _safe_targets([known[n] for n in dict.fromkeys(names)])

    # ------------------------------------------------------------- commands

    def flake_ref(self) -> str:
        return flake_ref(self.directory)

    def toplevel(self, host: Host) -> str:
        """The installable of a host's system."""
        fragment = attr_path(["nixosConfigurations", host.name, "config", "system", "build"])
        return f"{self.flake_ref()}#{fragment}.toplevel"

    def build_args(self, host: Host, options: DeployOptions) -> list[str]:
        args = ["build", "--no-link", "--json"]
        if options.builders is not None:
            args += ["--builders", options.builders]
        if options.store is not None:
            args += ["--store", options.store]
        return [*args, "--", self.toplevel(host)]

    def copy_args(self, host: Host, path: str, options: DeployOptions) -> list[str]:
        args = ["copy"]
        if options.store is not None:
            args += ["--from", options.store]
        args += ["--to", f"ssh://{host.ssh_target}"]
        if options.substitute_on_destination:
            args.append("--substitute-on-destination")
        return [*args, "--", path]

    def activate_argvs(self, host: Host, path: str, options: DeployOptions) -> list[list[str]]:
        """The command(s) that activate ``path`` on the host."""
        target = host.ssh_target
        if options.activate_with == "ssh":
            sudo = ["sudo"] if options.sudo else []
            argvs = []
            if options.action in ("switch", "boot"):
                argvs.append(
                    ["ssh", "--", target, *sudo, "nix-env", "-p", SYSTEM_PROFILE, "--set", path]
                )
            switch = str(PurePosixPath(path) / "bin" / "switch-to-configuration")
            # `--` before the destination: ssh reads options after it too otherwise.
            argvs.append(["ssh", "--", target, *sudo, switch, options.action])
            return argvs
        flake = f"{self.flake_ref()}#{attr_path([host.name])}"
        argv = ["nixos-rebuild", options.action, "--flake", flake, "--target-host", target]
        if options.sudo:
            argv.append("--use-remote-sudo")
        builder = _store_host(options)
        if builder is not None:
            # Built there: let nixos-rebuild find it there instead of building again here.
            argv += ["--build-host", builder]
        for name, url in self.nix.override_inputs.items():
            argv += ["--override-input", name, url]
        for name, value in self.nix.options.items():
            argv += ["--option", name, value]
        return [argv]

    def plan(self, names: Sequence[str] = (), options: DeployOptions | None = None) -> str:
        """The commands a deploy would run, as a shell script (``--dry-run``); the
        system a build produces is ``"$toplevel"`` in the commands after it."""
        options = _safe_options(options or DeployOptions())
        placeholder = "/nix/store/TOPLEVEL"
        lines: list[str] = []
        for host in self.deployable(names):
            lines.append(f"# {host.name} → {host.ssh_target}")
            build = build_argv(
                self.build_args(host, options),
                options=self.nix.options,
                override_inputs=self.nix.override_inputs,
            )
            lines.append(shlex.join(build))
            lines.append("# toplevel=<outputs.out of the build above>")
            copy = build_argv(self.copy_args(host, placeholder, options), options=self.nix.options)
            for argv in [copy, *self.activate_argvs(host, placeholder, options)]:
                lines.append(shlex.join(argv).replace(placeholder, '"$toplevel"'))
        return "\n".join(lines) + "\n"

    # ------------------------------------------------------------- deploying

    def deploy(
        self,
        names: Sequence[str] = (),
        options: DeployOptions | None = None,
        *,
        on_step: StepHandler | None = None,
    ) -> DeployReport:
        """Build, copy and activate each host; a report per host, never an exception
        for a host's failure (only for a fleet that cannot be deployed at all)."""
        options = _safe_options(options or DeployOptions())
        hosts = self.deployable(names)
        reports: list[HostReport] = []
        stop = False
        for host in hosts:
            if stop:
                reports.append(HostReport(host.name, host.ssh_target, skipped=True))
                continue
            report = self.deploy_host(host, options, on_step=on_step)
            reports.append(report)
            if not report.ok and options.fail_fast:
                stop = True
        return DeployReport(tuple(reports))

    def deploy_host(
        self, host: Host, options: DeployOptions, *, on_step: StepHandler | None = None
    ) -> HostReport:
        steps: list[StepResult] = []

        def record(step: StepResult) -> bool:
            steps.append(step)
            if on_step is not None:
                on_step(host.name, step)
            return step.ok

        build = self._build(host, options)
        if record(build) and build.output is not None:
            path = build.output
            if record(self._copy(host, path, options)):
                for argv in self.activate_argvs(host, path, options):
                    if not record(self._command("activate", argv)):
                        break
        return HostReport(host.name, host.ssh_target, tuple(steps))

    def _build(self, host: Host, options: DeployOptions) -> StepResult:
        args = self.build_args(host, options)
        started = time.monotonic()
        try:
            result = self.nix.run(args)
            built = parse_build_json(result.stdout, command=result.argv)
            if len(built) != 1:
                raise CommandError(
                    f"nix build reported {len(built)} results for {host.name}'s system, not one",
                    command=result.argv,
                    hint="this is a bug in nixgen; please report it",
                )
            out = next(iter(built.values())).out
        except NixgenError as err:
            return StepResult("build", False, _argv_of(err, args), _since(started), error=err)
        return StepResult("build", True, result.argv, _since(started), output=out)

    def _copy(self, host: Host, path: str, options: DeployOptions) -> StepResult:
        args = self.copy_args(host, path, options)
        started = time.monotonic()
        try:
            result = self.nix.run(args, overrides=False)
        except NixgenError as err:
            if type(err) is NixCommandError:  # nothing more specific known: the link
                err.hint = (
                    f"check that `ssh {host.ssh_target} true` works (ssh config, key, the "
                    "target's sshd); paths copied so far stay on the target, so running "
                    "the deploy again goes on from there"
                )
            return StepResult("copy", False, _argv_of(err, args), _since(started), error=err)
        return StepResult("copy", True, result.argv, _since(started))

    def _command(self, step: StepName, argv: Sequence[str]) -> StepResult:
        started = time.monotonic()
        try:
            result = self.runner.run(argv)
        except CommandError as err:
            return StepResult(step, False, tuple(argv), _since(started), error=err)
        return StepResult(step, True, result.argv, _since(started))


def _store_host(options: DeployOptions) -> str | None:
    """The ssh destination of an ``ssh://``/``ssh-ng://`` ``--store``, else None."""
    if options.store is None or not options.store.startswith(("ssh://", "ssh-ng://")):
        return None
    return options.store.split("://", 1)[1].split("?", 1)[0]


def _safe_options(options: DeployOptions) -> DeployOptions:
    """``options``, or a ValidationError when the builder of ``--store`` would reach
    ssh (through nixos-rebuild's --build-host) as an option."""
    builder = _store_host(options)
    if builder is not None:
        problem = ssh_destination_problem(builder, "--store")
        if problem is not None:
            raise ValidationError([problem])
    return options


def _safe_targets(hosts: list[Host]) -> list[Host]:
    """``hosts``, or a ValidationError when a target would reach ssh as an option
    (a Fleet built in Python has not necessarily been validated)."""
    problems = [
        problem
        for host in hosts
        if (
            problem := ssh_destination_problem(
                host.ssh_target, f"{keyed('hosts', host.name)}.targetHost"
            )
        )
        is not None
    ]
    if problems:
        raise ValidationError(problems)
    return hosts


def _since(started: float) -> float:
    return time.monotonic() - started


def _argv_of(err: NixgenError, fallback: Sequence[str]) -> tuple[str, ...]:
    command = getattr(err, "command", ())
    return tuple(command) if command else ("nix", *fallback)
