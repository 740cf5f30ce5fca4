"""Times as users give them (the CLI's words): RFC 3339, a date, or a span back from now (``2h``)."""

from __future__ import annotations

from hookstream.core.errors import ValidationError
from hookstream.core.time import parse_since


def moment(text: str | None, *, name: str) -> float | None:
    """Unix seconds of ``text`` (None stays None); ``ValidationError`` naming ``name`` otherwise."""
    if text is None:
        return None
    return parse_since(text, name=name)


def window(since: str | None, until: str | None) -> tuple[float | None, float | None]:
    start, end = moment(since, name="since"), moment(until, name="until")
    if start is not None and end is not None and end <= start:
        raise ValidationError("until: must be later than since")
    return start, end
