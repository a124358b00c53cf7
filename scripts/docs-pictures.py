"""Regenerate the pictures in docs/ (drawn by `nixgen graph`; needs Graphviz's dot).

Run from anywhere after changing the graph's looks or the `multi` template:
``python scripts/docs-pictures.py``.  It writes

- docs/images/multi.svg: the `multi` init template, as
  ``nixgen init DIR -t multi && nixgen graph DIR -o docs/images/multi.svg`` draws it;
- docs/images/fleet-status.svg: two hosts with every kind of network, coloured by
  runtime state as ``nixgen graph --status`` does (the states are made up).

tests/test_graph.py checks that the committed pictures show every guest, host
and address of the models they draw.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nixgen.graph import Graph, GuestMark
from nixgen.starters import Choices, build_template
from tests.fleet import make_fleet

ROOT = Path(__file__).resolve().parent.parent

#: the made-up runtime states of the fleet picture, in turn
STATES = (
    GuestMark.RUNNING,
    GuestMark.RUNNING,
    GuestMark.STOPPED,
    GuestMark.RUNNING,
    GuestMark.OUTDATED,
    GuestMark.CRASHED,
    GuestMark.RUNNING,
    GuestMark.STALE,
)


def fleet_status_graph() -> Graph:
    fleet = make_fleet(hosts=2, per_host=10)
    marks = {g.name: STATES[i % len(STATES)] for i, g in enumerate(fleet.guests)}
    return Graph.of(fleet, status=marks)


if __name__ == "__main__":
    images = ROOT / "docs" / "images"
    pictures = {
        images / "multi.svg": Graph.of(build_template("multi", Choices())),
        images / "fleet-status.svg": fleet_status_graph(),
    }
    for path, graph in pictures.items():
        graph.write(path, "svg")
        print(path.relative_to(ROOT))
