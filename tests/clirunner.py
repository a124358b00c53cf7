"""Runs nixgen's command line in this process, as a shell would run ``nixgen``:
what it printed on stdout and on stderr, and its exit status."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import attrs

from nixgen.cli import invoke


@attrs.frozen
class Result:
    exit_code: int
    stdout_bytes: bytes
    stderr: str
    #: stdout and stderr interleaved as they were printed (as a terminal shows them)
    output: str

    @property
    def stdout(self) -> str:
        return self.stdout_bytes.decode("utf-8", "replace")


class _Sink(io.BytesIO):
    """One output stream; what is written also goes to ``both``, in order."""

    def __init__(self, both: bytearray, terminal: bool) -> None:
        super().__init__()
        self.both = both
        self.terminal = terminal

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.both.extend(data)
        return super().write(data)

    def isatty(self) -> bool:
        return self.terminal

    def close(self) -> None:
        """Kept open when its text wrapper goes: what was printed is read afterwards."""


@contextmanager
def _environment(env: Mapping[str, str | None]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in env}
    try:
        for name, value in env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_cli(
    args: Sequence[str],
    *,
    env: Mapping[str, str | None] | None = None,
    color: bool = False,
    input: str = "",
) -> Result:
    """``nixgen ARGS`` with ``input`` on stdin; ``color``: stdout and stderr are
    terminals (where colour is allowed)."""
    both = bytearray()
    out, err = _Sink(both, color), _Sink(both, color)
    streams = (sys.stdin, sys.stdout, sys.stderr)
    sys.stdin = io.TextIOWrapper(io.BytesIO(input.encode()), encoding="utf-8")
    sys.stdout = io.TextIOWrapper(out, encoding="utf-8", write_through=True)
    sys.stderr = io.TextIOWrapper(err, encoding="utf-8", write_through=True)
    try:
        with _environment(env or {}):
            code = invoke(list(args))
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        sys.stdin, sys.stdout, sys.stderr = streams
    return Result(
        exit_code=code,
        stdout_bytes=out.getvalue(),
        stderr=err.getvalue().decode("utf-8", "replace"),
        output=bytes(both).decode("utf-8", "replace"),
    )
