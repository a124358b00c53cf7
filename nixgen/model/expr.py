"""A verbatim Nix expression inside the model.

The model is data; where data cannot say something (a package, a
``lib.mkDefault``), a :class:`Nix` value carries Nix source as is.  Only the
emitter turns it into text, without escaping it.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class Nix:
    """A verbatim Nix expression, emitted exactly as given.

    Use it for what data cannot say: ``Nix("pkgs.hello")``,
    ``Nix("lib.mkDefault 2")``.  Its text is trusted: nixgen never escapes it.
    """

    text: str = attrs.field(validator=attrs.validators.instance_of(str))

    @text.validator
    def _not_blank(self, _attribute: attrs.Attribute[str], value: str) -> None:
        if not value.strip():
            raise ValueError("Nix(...) needs a non-empty expression, e.g. Nix('pkgs.hello')")
