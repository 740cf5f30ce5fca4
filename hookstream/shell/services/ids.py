"""Ids and filter words from outside, checked before they reach a query.

Every id hookstream makes (``sub_…``, ``msg_…``) and every event type is printable ASCII: anything
else names nothing (404), and never reaches the database, where PostgreSQL refuses a NUL in a
string with an error rather than an empty answer.
"""

from __future__ import annotations

import re

from hookstream.core.errors import NotFoundError, ValidationError

_PRINTABLE = re.compile(r"[\x21-\x7e]{1,128}")


def known(value: str, what: str) -> str:
    """``value`` when it could name a ``what``; else ``NotFoundError`` (what a lookup would say)."""
    if not _PRINTABLE.fullmatch(value):
        raise NotFoundError(f"no {what} {value[:64]!r}")
    return value


def word(value: str | None, field: str) -> str | None:
    """A filter value: printable ASCII, 1-128 characters (None stays None)."""
    if value is not None and not _PRINTABLE.fullmatch(value):
        raise ValidationError(f"{field}: 1-128 printable ASCII characters (no spaces or control characters)")
    return value
