"""Existing flakes as models, edited in place: :class:`FlakeFile`.

::

    from nixgen import FlakeFile

    flake = FlakeFile.load("my-vms")          # a folder with flake.nix (or the file)
    flake.names()                             # ["web", "db"]
    flake.hosts()                             # hosts (they run guests): listed apart
    flake.unreadable                          # guests nixgen cannot read, with reasons
    web = flake["web"]                        # a MicroVM of web's literal settings
    flake.guest("web").set("microvm.mem", 1024)
    flake["web"] = web.evolve(vcpu=2)         # only the options that changed are written
    print(flake.diff())                       # unified diff of every file
    flake.save()                              # atomic, per file

Reading goes through :mod:`nixgen.nix.read` (nothing is evaluated) and
:mod:`nixgen.settings` (flat settings ↔ :class:`~nixgen.model.MicroVM`).
Every edit is a byte-range edit of :mod:`nixgen.nix.edit` in the file where
the option is written, so comments, layout and every other binding stay as
they are.  Each edit is read back and validated with :mod:`nixgen.validate`
before it is accepted: an edit that introduces an error raises
:class:`~nixgen.errors.ValidationError` and leaves the FlakeFile (and every
file) as it was.  Nothing touches the disk before :meth:`FlakeFile.save`.

In a nixgen project (a ``nixgen.toml`` beside ``flake.nix``) every edit is
applied to ``nixgen.toml`` too, so the two never disagree; see
docs/existing-flakes.md for the rules, and for how the checksum headers of
generated files are kept honest.

The package: :mod:`~nixgen.flake.file` (the facade: FlakeFile, GuestView,
saving), :mod:`~nixgen.flake.transaction` (one edit: options placed where
they are written), :mod:`~nixgen.flake.guests` (add, remove, rename),
:mod:`~nixgen.flake.sync` (nixgen.toml in step) and
:mod:`~nixgen.flake.state` (the files as edited, and the guests read from
them).  The syntax they need (which bindings name a guest) is
:mod:`nixgen.nix.outputs`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nixgen._lazy import export_lazily

# Imported on first use: the rendering modules below the editor raise the
# errors of nixgen.flake.errors without loading the editor.
if TYPE_CHECKING:
    from nixgen.flake.file import FlakeFile, GuestView, SaveResult

__all__ = ["FlakeFile", "GuestView", "SaveResult"]

export_lazily(__name__, dict.fromkeys(__all__, "nixgen.flake.file"))
