"""Speed of `nixgen graph`: drawing a fleet of guests.

Target (issue 14): graph 1,000 guests in under 1 s without Graphviz's dot
(network plan, layout and DOT text; Mermaid text alongside).  With dot
installed, also the time dot takes to lay the SVG out, for scale.  Prints
figures; asserts nothing.

    python benchmarks/bench_graph.py [GUESTS] [HOSTS]
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nixgen.graph import Graph
from nixgen.network import plan_networks
from tests.fleet import make_fleet

sys.path.insert(0, str(Path(__file__).parent))
from bench_core import best_of  # the same timing as the other benchmarks


def main() -> None:
    guests = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    hosts = int(sys.argv[2]) if len(sys.argv) > 2 else 25
    flake = make_fleet(hosts=hosts, per_host=max(1, guests // hosts))
    count = len(flake.guests)
    print(f"{count} guests on {hosts} hosts")
    rows = [
        ("network plan", lambda: plan_networks(flake)),
        ("plan + layout + DOT text (target < 1 s)", lambda: Graph.of(flake).dot()),
        ("plan + layout + Mermaid text", lambda: Graph.of(flake).mermaid()),
    ]
    for label, work in rows:
        best, median = best_of(5, work)
        print(f"  {label:42s} best {best * 1000:7.1f} ms  median {median * 1000:7.1f} ms")
    if shutil.which("dot") is None:
        print("  dot -Tsvg: skipped (Graphviz's dot is not installed: apt-get install graphviz)")
        return
    graph = Graph.of(flake)
    start = time.perf_counter()
    svg = graph.svg()
    took = time.perf_counter() - start
    print(f"  {'dot -Tsvg (one run)':42s}      {took * 1000:7.1f} ms  ({len(svg) // 1024} KiB)")


if __name__ == "__main__":
    main()
