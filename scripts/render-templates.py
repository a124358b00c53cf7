"""Regenerate templates/init/ (what `nix flake init -t <nixgen>#NAME` copies).

Run from the repository root after changing a template or the renderer:
``python scripts/render-templates.py``.  tests/test_cli.py fails while the
committed copies differ from what this writes.
"""

from __future__ import annotations

from pathlib import Path

from nixgen.starters import write_static_templates

if __name__ == "__main__":
    destination = Path(__file__).resolve().parent.parent / "templates" / "init"
    for path in write_static_templates(destination):
        print(path.relative_to(destination.parent.parent))
