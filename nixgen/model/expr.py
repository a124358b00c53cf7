"""A verbatim Nix expression inside the model.

The model is data; where data cannot say something (a package, a
``lib.mkDefault``), a :class:`Nix` value carries Nix source as is.  Only the
emitter turns it into text, without escaping it.
"""

from __future__ import annotations

import attrs

from nixgen.errors import Problem, ValidationError


@attrs.frozen
class Nix:
    """A verbatim Nix expression, emitted exactly as given.

    Use it for what data cannot say: ``Nix("pkgs.hello")``,
    ``Nix("lib.mkDefault 2")``.  Its text is trusted: nixgen never escapes it,
    but the emitter refuses text that is not one whole Nix expression.
    """

    text: str = attrs.field()

    @text.validator
    def _not_blank(self, _attribute: attrs.Attribute[str], value: object) -> None:
        if not isinstance(value, str):
            message = f"expected the expression as a string, got {type(value).__name__}"
        elif not value.strip():
            message = "is an empty Nix expression"
        else:
            return
        raise ValidationError(
            [
                Problem(
                    path="Nix.text",
                    message=message,
                    hint="write the expression as text, e.g. Nix('pkgs.hello')",
                    value=value,
                )
            ]
        )
