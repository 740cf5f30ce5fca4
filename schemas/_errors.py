"""The one error of ``schemas``: an event that breaks its contract.

    hookstream.errors.ValidationError
    └── InvalidEventError     .reason (one line), .code, .event_type, .field
"""

from __future__ import annotations

from hookstream.core.errors import ValidationError

# What went wrong, for metrics and dead-letter records: one of these codes.
CODES = ("not_json", "not_object", "unknown_type", "unknown_version", "envelope", "schema", "too_deep")


class InvalidEventError(ValidationError):
    """An event that cannot be accepted. ``reason`` is the one-line why, naming the field when there is one."""

    def __init__(self, reason: str, *, code: str, event_type: str | None = None, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.event_type = event_type
        self.field = field
