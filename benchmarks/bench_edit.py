"""Edit and render speed: the flake editor, an unchanged re-render, a fresh render.

Run: ``python benchmarks/bench_edit.py [--quick]``.  Prints figures, asserts
nothing.  Each figure is a median (wall clock, and the process's CPU time, which
other load on the machine does not inflate), printed beside its anchor and goal
(issue 9):

- one ``FlakeFile.set`` + ``save`` on a 1,562-guest, 50,000-line flake: goal
  < 50 ms, for a value of the same length and for one that changes length
  (every guest after the edited one moves); anchor: the Document-level edit
  alone (``nix.edit.set_value``);
- ``write_project`` of an unchanged 10,000-guest project: goal < 1.5 s;
- rendering a 1,000-guest nixgen.toml into a fresh folder: goal < 1 s
  (in-process here; ``nixgen render`` adds the CLI's start-up);
- each at 10 / 100 / 1,000 / 10,000 guests: the time per guest should not grow
  (for the edit: what it costs beyond its anchor, a guest).
"""

from __future__ import annotations

import itertools
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from nixgen import FlakeFile
from nixgen.nix import edit
from nixgen.nix.parse import Document
from nixgen.nix.read import read_guests
from nixgen.render import write_project

sys.path.insert(0, str(Path(__file__).parent))
from bench_core import fresh_render_figures, make_flake
from bench_parse import FOOTER, HEADER

# 32 lines a guest: 1,562 guests make a 50,000-line flake.
GUEST = """        vm{i} = nixpkgs.lib.nixosSystem {{
          inherit system;
          modules = [
            microvm.nixosModules.microvm
            {{
              networking.hostName = "vm{i}";
              system.stateVersion = "25.05";
              microvm = {{
                hypervisor = "qemu";
                vcpu = {vcpu};
                mem = {mem};
                interfaces = [
                  {{
                    type = "tap";
                    id = "vm-{i}";
                    mac = "02:00:00:{top:02x}:{hi:02x}:{lo:02x}";
                  }}
                ];
                shares = [
                  {{
                    tag = "ro-store";
                    source = "/nix/store";
                    mountPoint = "/nix/.ro-store";
                    proto = "virtiofs";
                  }}
                ];
              }};
              services.openssh.enable = true;
              users.users.root.openssh.authorizedKeys.keys = [ "ssh-ed25519 AAAA me@host" ];
            }}
          ];
        }};
"""


def flake_text(guests: int) -> str:
    body = "".join(
        GUEST.format(
            i=i,
            vcpu=1 + i % 4,
            mem=512 + i % 8 * 128,
            top=i >> 16,
            hi=(i >> 8) & 0xFF,
            lo=i & 0xFF,
        )
        for i in range(guests)
    )
    return HEADER + body + FOOTER


def timed(work: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``repeat`` runs."""
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        work()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def show(label: str, figures: tuple[float, float], goal: str = "") -> None:
    wall, cpu = figures
    print(f"{label:<52} {wall * 1000:9.1f} ms wall {cpu * 1000:9.1f} ms cpu  {goal}")


def edit_figures(
    guests: int, repeat: int, *, grow: bool = False
) -> tuple[tuple[float, float], tuple[float, float]]:
    """One ``FlakeFile.set`` + ``save`` of the middle guest's memory, and its anchor:
    the Document-level edit of the same binding alone.

    ``grow``: the value alternates between 3 and 4 digits, so every guest after
    the edited one moves (its places are read again shifted); otherwise each
    value has the length of the last one, and nothing moves.
    """
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "flake.nix").write_text(flake_text(guests))
        flake = FlakeFile.load(folder)
        middle = f"vm{guests // 2}"
        values = itertools.cycle([512, 1024]) if grow else iter(range(1024, 1024 + 64 * 100, 64))

        def set_and_save() -> None:
            flake.set(middle, "microvm.mem", next(values))
            flake.save()

        set_and_save()  # the first edit also fills what later ones reuse
        figures = timed(set_and_save, repeat)
        doc = Document.load(folder / "flake.nix")
        setting = read_guests(doc)[middle].definitions["microvm.mem"][0]
        locator = setting.locator
        assert locator is not None
        anchor = timed(lambda: edit.set_value(doc, locator, setting.path, "40960"), repeat)
        return figures, anchor


def rewrite_figures(guests: int, repeat: int) -> tuple[float, float]:
    flake = make_flake(guests)
    with tempfile.TemporaryDirectory() as tmp:
        write_project(flake, Path(tmp))
        return timed(lambda: write_project(flake, Path(tmp)), repeat)


def create_files(count: int) -> None:
    """What the filesystem charges a fresh render: each file is a new inode."""
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(count):
            (Path(tmp) / f"{i}.nix").write_bytes(b"{ }\n" * 400)


def main() -> None:
    quick = "--quick" in sys.argv
    sizes = [10, 100, 1000] if quick else [10, 100, 1000, 10000]
    print("FlakeFile.set + save (one option of the middle guest), beside the Document-level edit")
    for grow in (False, True):
        figures, anchor = edit_figures(1562, 5, grow=grow)
        kind = "value changes length" if grow else "same length"
        show(f"  1,562 guests (50,000 lines), {kind}", figures, "(goal < 50 ms)")
        show("    anchor: the Document-level edit alone", anchor)
    for grow in (False, True):
        kind = "the value changes length (guests after it move)" if grow else "same length"
        print(f"  {kind}:")
        for n in sizes:
            figures, anchor = edit_figures(n, 3, grow=grow)
            beyond = figures[1] - anchor[1]
            show(
                f"    {n} guests",
                figures,
                f"anchor {anchor[1] * 1000:7.1f} ms cpu; beyond it {beyond / n * 1e6:7.1f} µs a guest",
            )
    print("write_project of an unchanged project")
    for n in sizes:
        wall, cpu = rewrite_figures(n, 3)
        goal = "(goal < 1.5 s; main: 15.7 s)" if n == 10000 else ""
        show(f"  {n} guests", (wall, cpu), f"{cpu / n * 1e6:8.1f} µs cpu a guest {goal}")
    print("render of a nixgen.toml into a fresh folder (load, validate, render, write)")
    for n in sizes:
        wall, cpu = fresh_render_figures(n, 3 if n <= 1000 else 1, cli=False)
        goal = "(goal < 1 s; main: 2.1-2.5 s with the CLI)" if n == 1000 else ""
        show(
            f"  {n} guests, in-process", (wall, cpu), f"{cpu / n * 1e6:8.1f} µs cpu a guest {goal}"
        )
    show("  1000 guests, `python -m nixgen render`", fresh_render_figures(1000, 3, cli=True))
    show(
        "  anchor: creating 1,001 small files in a folder",
        timed(lambda: create_files(1001), 3),
        "(the filesystem's floor for a fresh render)",
    )
    show(
        "  anchor: `python -c pass`",
        timed(lambda: subprocess.run([sys.executable, "-c", "pass"]), 3),
    )


if __name__ == "__main__":
    main()
