"""Timing of the lossless Nix layer on a large generated flake.

Run: ``python benchmarks/bench_parse.py [GUESTS]``.  Prints figures, asserts
nothing.  When ``nix-manipulator`` 0.1.3 (PyPI) is installed, it is measured on
the same file and on tests/corpus for comparison.  Targets (5,000 guests, about 50,000 lines): full parse < 0.5 s,
one guest edit with incremental reparse < 50 ms, listing all guests < 1 s.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from nixgen.errors import NixgenError
from nixgen.nix import edit
from nixgen.nix.parse import Document
from nixgen.nix.read import read_guests

HEADER = """{
  description = "benchmark: many micro-VM guests";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    microvm = {
      url = "github:microvm-nix/microvm.nix";
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };

  outputs =
    {
      self,
      nixpkgs,
      microvm,
    }:
    let
      system = "x86_64-linux";
    in
    {
      nixosConfigurations = {
"""

GUEST = """        vm{i} = nixpkgs.lib.nixosSystem {{
          inherit system;
          modules = [
            microvm.nixosModules.microvm
            {{
              networking.hostName = "vm{i}";
              microvm.mem = {mem};
            }}
          ];
        }};
"""

FOOTER = """      };
    };
}
"""


def generate(guests: int) -> str:
    body = "".join(GUEST.format(i=i, mem=512 + i % 8 * 128) for i in range(guests))
    return HEADER + body + FOOTER


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    """Median time of ``repeat`` runs (the machine may be busy) and the last result."""
    times: list[float] = []
    result: object = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    guests = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    text = generate(guests)
    lines = text.count("\n")
    print(f"generated flake: {guests} guests, {lines} lines, {len(text.encode()) / 1e6:.2f} MB")

    parse_time, parsed = timed(lambda: Document.parse(text), 5)
    assert isinstance(parsed, Document)
    doc = parsed
    print(f"full parse (with checks):      {parse_time * 1000:8.1f} ms  (target < 500 ms)")

    middle = f"vm{guests // 2}"
    locator = ("outputs", "nixosConfigurations", middle, "modules", 1)
    edit_time, edited = timed(lambda: edit.set_value(doc, locator, ["microvm", "mem"], "4096"), 7)
    assert isinstance(edited, Document)
    print(f"one guest edit + reparse:      {edit_time * 1000:8.1f} ms  (target < 50 ms)")

    insert_time, _ = timed(lambda: edit.set_value(doc, locator, ["microvm", "vcpu"], "2"), 5)
    print(f"one new setting + reparse:     {insert_time * 1000:8.1f} ms")

    fresh_time, _ = timed(lambda: Document.parse(edited.source), 3)
    print(f"(fresh parse of the result:    {fresh_time * 1000:8.1f} ms)")

    list_time, found = timed(lambda: read_guests(doc), 5)
    count = len(getattr(found, "guests", ()))
    print(f"listing all guests ({count}):   {list_time * 1000:8.1f} ms  (target < 1000 ms)")
    compare_nix_manipulator(text)


def compare_nix_manipulator(text: str) -> None:
    """The nearest Python peer, on the same file and on the test corpus."""
    try:
        from nix_manipulator.parser import parse as nm_parse
    except ImportError:
        print("nix-manipulator: not installed (pip install nix-manipulator==0.1.3) - skipped")
        return

    def nm_round_trip(source: str) -> str | None:
        try:
            return str(nm_parse(source).rebuild())
        except Exception:  # it raises assorted errors on what it cannot read
            return None

    nm_time, rebuilt = timed(lambda: nm_round_trip(text), 1)
    own_time, _ = timed(lambda: Document.parse(text).text, 3)
    same = "byte-identical" if rebuilt == text else "not identical" if rebuilt else "failed"
    print(f"nix-manipulator parse+rebuild: {nm_time * 1000:8.1f} ms ({same})")
    print(
        f"nixgen parse+text:             {own_time * 1000:8.1f} ms  -> {nm_time / own_time:.1f}x faster"
    )
    corpus = []
    for path in sorted((Path(__file__).resolve().parents[1] / "tests/corpus").rglob("*.nix")):
        try:  # leave out the files that exist to be refused (unsupported syntax)
            corpus.append((path, Document.parse(path.read_bytes()).source == path.read_bytes()))
        except NixgenError:
            continue
    loaded = identical = 0
    for path, ours in corpus:
        source = path.read_text(encoding="utf-8")
        result = nm_round_trip(source)
        loaded += result is not None
        identical += result == source
        assert ours, path
    print(
        f"corpus ({len(corpus)} files): nix-manipulator loads {loaded}, round-trips "
        f"{identical} byte-identically; nixgen round-trips {len(corpus)}"
    )


if __name__ == "__main__":
    main()
