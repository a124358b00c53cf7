"""Build guests with ``nix build`` and hand back their artifacts as typed paths.

For the requested guests nixgen makes two nix calls, however many guests
there are:

1. ``nix eval --json FLAKE#nixosConfigurations --apply (build.nix)``: each
   guest's runner derivation and the store paths of its kernel, initrd,
   closure registration, system and store image — evaluated once, together;
2. ``nix build --json --no-link`` of every runner at once (shared
   scheduling, parallel builds); results are matched to guests by drvPath,
   since Nix does not keep the order of its arguments.

The runner's closure holds everything else, so one build realises it all.
Each runner is then registered as a GC root under ``.nixgen/gcroots/``, and
the results are cached in ``.nixgen/build-cache.json``: while no file of the
flake has changed and the paths are still in the store, a rebuild returns
at once without running nix.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import attrs

from nixgen import buildcache
from nixgen.errors import NixgenError

if TYPE_CHECKING:
    # Imported where nix runs: listing guests and the runtime need this module's
    # paths and results, not nix's runner (10 ms and more to import).
    from nixgen.nixcmd import NixRunner
    from nixgen.nixcmd.events import Event

# The Nix serializer and render (and with them the model) are imported where
# nix runs: a no-op build answered by the cache needs neither.

__all__ = [
    "STATE_DIR",
    "BuildError",
    "BuildResult",
    "GuestEvalError",
    "build",
    "cached",
    "evaluate",
    "kernel_image",
]


class BuildError(NixgenError):
    """A guest could not be built, or nix reported something nixgen cannot use."""


class GuestEvalError(BuildError):
    """Several guests failed to evaluate; ``errors`` maps each to its error."""

    def __init__(self, errors: Mapping[str, NixgenError]) -> None:
        self.errors = dict(errors)
        parts = [f"guest {name!r}: {err}" for name, err in self.errors.items()]
        super().__init__(
            f"{len(parts)} guest(s) failed to evaluate:\n" + "\n".join(parts),
            hint="fix the errors above, then run `nixgen check` again",
        )


STATE_DIR = buildcache.STATE_DIR


@attrs.frozen
class BuildResult:
    """What building one guest produced; every path is in the Nix store.

    ``kernel`` is the image file the guest's hypervisor boots (``bzImage`` or
    ``vmlinux``, see :func:`kernel_image`); ``reg_info`` is the closure
    registration the guest loads with ``nix-store --load-db`` (None when the
    guest does not register its closure); ``store_disk`` is the store image
    when the guest has no shared store.
    """

    name: str
    hypervisor: str
    system: str | None
    runner: Path
    kernel: Path
    initrd: Path
    reg_info: Path | None
    toplevel: Path
    store_disk: Path | None
    drv_path: str
    gc_root: Path | None = None

    @property
    def run_script(self) -> Path:
        """``bin/microvm-run``: starts the guest in the foreground."""
        return self.runner / "bin" / "microvm-run"

    @property
    def shutdown_script(self) -> Path | None:
        """``bin/microvm-shutdown`` where the hypervisor has a clean shutdown."""
        script = self.runner / "bin" / "microvm-shutdown"
        return script if script.exists() else None

    def to_json(self) -> dict[str, Any]:
        return {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in attrs.asdict(self, recurse=False).items()
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BuildResult:
        paths = {"runner", "kernel", "initrd", "reg_info", "toplevel", "store_disk", "gc_root"}
        values: dict[str, Any] = {
            k: (Path(v) if k in paths and v is not None else v) for k, v in data.items()
        }
        return cls(**values)

    def paths(self) -> list[Path]:
        return [
            p
            for p in (
                self.runner,
                self.kernel,
                self.initrd,
                self.reg_info,
                self.toplevel,
                self.store_disk,
            )
            if p
        ]


def kernel_image(hypervisor: str, system: str | None, outputs: Mapping[str, str]) -> Path:
    """The kernel file a hypervisor boots, from the kernel derivation's outputs.

    On x86_64, qemu, kvmtool and vfkit boot the compressed ``bzImage``;
    cloud-hypervisor, firecracker, crosvm, stratovirt and alioth boot the
    uncompressed ``vmlinux`` of the ``dev`` output.  On aarch64 every
    hypervisor boots ``Image``.
    """
    out = Path(outputs["out"])
    if system is not None and system.startswith("aarch64"):
        return out / "Image"
    if hypervisor in ("qemu", "kvmtool", "vfkit"):
        return out / "bzImage"
    return Path(outputs.get("dev", outputs["out"])) / "vmlinux"


def _expression() -> str:
    from importlib import resources

    return (resources.files("nixgen") / "build.nix").read_text(encoding="utf-8")


def flake_ref(directory: Path) -> str:
    """How nix should see a folder: a git work tree as git (tracked files), else as a path."""
    directory = directory.resolve()
    probe = directory
    while True:
        if (probe / ".git").exists():
            return str(directory)  # nix itself picks git+file and its tracked files
        if probe.parent == probe:
            return f"path:{directory}"
        probe = probe.parent


def evaluate(
    directory: Path, names: Sequence[str] | None = None, *, nix: NixRunner | None = None
) -> dict[str, dict[str, Any]]:
    """Evaluate guests without building: ``{name: artifacts}`` (see build.nix).

    One nix call for every guest.  When it fails and several guests were
    asked for, each guest is evaluated alone so that every failing guest's
    error is found; they are raised together in one :class:`BuildError`.
    """
    from nixgen.nix.emit import to_nix
    from nixgen.nixcmd.errors import NixEvalError

    runner = _nix_for(directory, nix)
    ref = flake_ref(directory)
    apply = f"({_expression()}).describe {to_nix(list(names) if names is not None else None)}"
    try:
        data = runner.eval_json(f"{ref}#nixosConfigurations", apply=apply)
    except NixEvalError as first:
        # Some guest does not evaluate: find every one that does not.
        wanted = list(names) if names is not None else _guest_names(runner, ref)
        if len(wanted) <= 1:
            raise
        failures: dict[str, NixgenError] = {}
        data = {}
        for name in wanted:
            single = f"({_expression()}).describe {to_nix([name])}"
            try:
                data.update(runner.eval_json(f"{ref}#nixosConfigurations", apply=single))
            except NixEvalError as err:
                failures[name] = err
        if not failures:
            raise first
        raise GuestEvalError(failures) from first
    if not isinstance(data, dict):
        raise BuildError(f"nix eval returned {type(data).__name__}, not a set of guests")
    if names is not None:
        missing = [n for n in names if n not in data]
        if missing:
            raise BuildError(
                f"no guest(s) {', '.join(missing)} in {directory}",
                hint="see `nixgen check` for the guests this flake has",
            )
    return data


def _guest_names(runner: NixRunner, ref: str) -> list[str]:
    names = runner.eval_json(f"{ref}#nixosConfigurations", apply=f"({_expression()}).guestNames")
    return [str(n) for n in names]


def build(
    directory: Path | str,
    names: Sequence[str] | None = None,
    *,
    nix: NixRunner | None = None,
    jobs: int | Literal["auto"] | None = None,
    gc_roots: bool = True,
    use_cache: bool = True,
    on_event: Callable[[Event], None] | None = None,
) -> dict[str, BuildResult]:
    """Build guests (all of them when ``names`` is None): ``{name: BuildResult}``.

    ``nix`` carries the settings of every nix call (``override_inputs``,
    ``options``, ``timeout``, …); ``on_event`` receives nix's progress events.
    """
    directory = Path(directory).resolve()
    runner = _nix_for(directory, nix, on_event)
    state = directory / STATE_DIR
    key = _fingerprint(directory, runner)
    if use_cache:
        hit = _cached(state, key, names)
        if hit is not None:
            return hit
    from nixgen.nix.emit import attr_name

    artifacts = evaluate(directory, names, nix=runner)
    ref = flake_ref(directory)
    installables = {
        name: f"{ref}#nixosConfigurations.{attr_name(name)}.config.microvm.declaredRunner"
        for name in artifacts
    }
    built = runner.build_json(
        list(installables.values()),
        drv_paths={installables[n]: a["runnerDrv"] for n, a in artifacts.items()},
        jobs=jobs,
    )
    results: dict[str, BuildResult] = {}
    for name, info in artifacts.items():
        out = Path(built[installables[name]].out)
        result = _result(name, info, out, str(info["runnerDrv"]))
        if gc_roots:
            result = attrs.evolve(result, gc_root=_gc_root(runner, state, name, out))
        results[name] = result
    if use_cache:
        _store_cache(state, key, results, complete=names is None)
    return results


def cached(
    directory: Path | str, names: Sequence[str] | None = None, *, nix: NixRunner | None = None
) -> dict[str, BuildResult] | None:
    """What :func:`build` would return without running nix, or None when it
    would have to run nix (a file of the flake changed, a guest was never
    built with these settings, or garbage collection removed a path)."""
    directory = Path(directory).resolve()
    runner = _nix_for(directory, nix)
    return _cached(directory / STATE_DIR, _fingerprint(directory, runner), names)


def _nix_for(
    directory: Path, nix: NixRunner | None, on_event: Callable[[Event], None] | None = None
) -> NixRunner:
    from nixgen.nixcmd import NixRunner

    base = nix or NixRunner()
    changes: dict[str, Any] = {"source_root": str(directory)}
    if base.cwd is None:
        changes["cwd"] = str(directory)
    if on_event is not None:
        changes["on_event"] = on_event
    return attrs.evolve(base, **changes)


def _result(name: str, info: Mapping[str, Any], out: Path, drv_path: str) -> BuildResult:
    system = info.get("system")
    kernel = kernel_image(str(info["hypervisor"]), system, info["kernel"])
    result = BuildResult(
        name=name,
        hypervisor=str(info["hypervisor"]),
        system=system,
        runner=out,
        kernel=kernel,
        initrd=Path(info["initrd"]),
        reg_info=Path(info["regInfo"]) if info.get("regInfo") else None,
        toplevel=Path(info["toplevel"]),
        store_disk=Path(info["storeDisk"]) if info.get("storeDisk") else None,
        drv_path=drv_path,
    )
    missing = [str(p) for p in result.paths() if not p.exists()]
    if missing:
        raise BuildError(
            f"guest {name!r} was built, but these artifacts are not in the store: {', '.join(missing)}",
            hint="the runner's closure should hold them; is this microvm.nix version supported?",
        )
    return result


def _gc_root(runner: NixRunner, state: Path, name: str, out: Path) -> Path:
    """Register the runner as an indirect GC root, so garbage collection keeps it."""
    link = state / "gcroots" / name
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() and link.readlink() == out:
        return link
    # `nix build` of a store path that exists only creates (and registers) the link.
    runner.run(["build", "--out-link", str(link), str(out)], overrides=False)
    return link


# ----------------------------------------------------------------- no-op rebuilds


def _fingerprint(directory: Path, runner: NixRunner) -> str:
    """What a build depends on that nixgen can see (see :func:`nixgen.buildcache.fingerprint`)."""
    return buildcache.fingerprint(
        directory,
        override_inputs=runner.override_inputs,
        options=runner.options,
        extra_args=runner.extra_args,
    )


def _cached(state: Path, key: str, names: Sequence[str] | None) -> dict[str, BuildResult] | None:
    entries = buildcache.cached_entries(state, key, names)
    if entries is None:
        return None
    try:
        return {name: BuildResult.from_json(entry) for name, entry in entries.items()}
    except (KeyError, TypeError, ValueError):
        return None


def _store_cache(
    state: Path, key: str, results: Mapping[str, BuildResult], *, complete: bool
) -> None:
    """Keep the results; guests built before under the same fingerprint stay."""
    old = buildcache.read_cache(state, key) or {"results": {}, "complete": False}
    entries = dict(old["results"])
    entries.update({n: r.to_json() for n, r in results.items()})
    data = {"key": key, "complete": complete or old.get("complete") is True, "results": entries}
    from nixgen.render import atomic_write

    atomic_write(state / buildcache.CACHE_FILE, json.dumps(data, indent=2) + "\n")
