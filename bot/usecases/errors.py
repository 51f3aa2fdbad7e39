"""The one error a use case raises for input it refuses: which field, a code, a message.

Adapters map it: the console API to a 400 naming the field, the CLI to a message and exit 2.
"""

from __future__ import annotations


class Refused(ValueError):
    """The request cannot be done as asked (a range the wrong way round, too long...)."""

    def __init__(self, field: str, code: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.code = code
        self.message = message
