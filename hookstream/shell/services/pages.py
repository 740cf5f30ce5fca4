"""Cursor pagination: ``limit`` (1-250) and an opaque ``iterator`` the previous page returned.

A cursor is the sort key of the last item a page held, in URL-safe base64 JSON tagged with what
it lists, so a cursor of one listing given to another is refused (``iterator: ...``) rather than
misread. Pages are newest first; ``done`` says there is nothing after this page.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from hookstream.core.errors import ValidationError

MAX_LIMIT = 250
DEFAULT_LIMIT = 50

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Page(Generic[T]):
    data: list[T]
    iterator: str | None  # give it back to get the next page; None when done
    done: bool


def check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(f"limit: must be from 1 to {MAX_LIMIT} (got {limit!r})")
    return limit


def encode_cursor(kind: str, key: Any) -> str:
    raw = json.dumps([kind, key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(kind: str, text: str | None) -> Any:
    """The key inside an iterator of listing ``kind`` (None for the first page)."""
    if text is None or text == "":
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        tag, key = json.loads(raw)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise ValidationError("iterator: not an iterator this listing returned") from None
    if tag != kind:
        raise ValidationError("iterator: not an iterator this listing returned") from None
    return key


def page_of(items: Sequence[T], limit: int, kind: str, key: Callable[[T], Any]) -> Page[T]:
    """A page from ``items`` fetched with ``limit + 1``: the extra one only says "not done"."""
    data = list(items[:limit])
    done = len(items) <= limit
    return Page(data, None if done or not data else encode_cursor(kind, key(data[-1])), done)
