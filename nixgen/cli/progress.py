"""Showing nix's progress: a live bar on a terminal, plain lines elsewhere."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from nixgen.nixcmd import BuildStarted, Event, ProgressTracker


class Reporter(Protocol):
    def __call__(self, event: Event) -> None: ...


@contextmanager
def progress(title: str, *, force_plain: bool = False) -> Iterator[Reporter]:
    """A callback for nix events; live on a terminal, line by line in pipes and CI."""
    tracker = ProgressTracker()
    if force_plain or not sys.stderr.isatty() or os.environ.get("TERM") == "dumb":

        def plain(event: Event) -> None:
            tracker.update(event)
            if isinstance(event, BuildStarted):
                sys.stderr.write(f"building {event.name}\n")
                sys.stderr.flush()

        yield plain
        return
    # rich only where a live bar is shown: plain runs (pipes, CI) start faster
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    console = Console(stderr=True)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[now]}"),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(title, total=None, now="evaluating…")

        def live(event: Event) -> None:
            tracker.update(event)
            snap = tracker.snapshot()
            now = ", ".join(snap.building[-2:]) if snap.building else ""
            if snap.downloads_expected and not snap.building:
                now = f"fetching {snap.downloads_done}/{snap.downloads_expected} paths"
            bar.update(task, total=snap.total or None, completed=snap.done, now=now)

        yield live
