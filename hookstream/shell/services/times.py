"""Times as users give them (the CLI's words): RFC 3339, a date, or a span back from now (``2h``)."""

from __future__ import annotations

from datetime import UTC, datetime

from hookstream.core.errors import ValidationError
from hookstream.core.time import parse_since


def moment(text: str | None, *, name: str) -> float | None:
    """Unix seconds of ``text`` (None stays None); ``ValidationError`` naming ``name`` otherwise."""
    if text is None:
        return None
    at = parse_since(text, name=name)
    try:
        datetime.fromtimestamp(at, UTC)  # an offset can carry a valid local time past year 9999 (or before 1) in UTC
    except (OverflowError, ValueError, OSError):
        raise ValidationError(f"{name}: {text!r} is outside the years 1-9999 in UTC") from None
    return at


def window(since: str | None, until: str | None) -> tuple[float | None, float | None]:
    start, end = moment(since, name="since"), moment(until, name="until")
    if start is not None and end is not None and end <= start:
        raise ValidationError("until: must be later than since")
    return start, end
