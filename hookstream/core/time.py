"""Times and durations, one way everywhere: RFC 3339 in UTC with a ``Z``, and ``30s``/``5m``/``2h``.

- ``format_time`` / ``format_unix``: an instant as ``2026-11-28T14:03:11.250000Z`` (microseconds
  always, so stored times sort as text; ``timespec="auto"`` drops them when zero, as the webhook
  payload's ``timestamp`` does, and ``"seconds"`` for one-line logs).
- ``parse_time``: RFC 3339 (``Z`` or an offset; a time without one is read as UTC) -> an aware
  UTC ``datetime``. ``OverflowError`` for a moment UTC cannot hold (``0001-01-01T00:00:00+01:00``),
  ``ValueError`` for text that is not a time: callers reading untrusted records map those to
  their own errors.
- ``duration_seconds`` / ``parse_duration``: ``250ms``, ``5s``, ``5m``, ``2h``, ``1d`` or plain
  seconds -> seconds (settings' validators; the CLI's options).
- ``parse_since``: what ``--since``/``--until`` take: an RFC 3339 time or date, or a span back
  from now (``30m``, ``2h``, ``7d``) -> unix seconds, with a one-line error naming the option.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from hookstream.core.errors import ConfigError, HookstreamError, ValidationError

__all__ = ["duration_seconds", "format_time", "format_unix", "parse_duration", "parse_since", "parse_time", "utc"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive one (SQLite hands those back) is taken to be UTC already."""
    if moment.tzinfo is UTC:  # the common case: nothing to convert
        return moment
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def format_time(moment: datetime, *, timespec: str = "microseconds") -> str:
    """RFC 3339 in UTC with a ``Z``: ``2026-11-28T14:03:11.250000Z`` (a naive ``moment`` is UTC)."""
    return utc(moment).isoformat(timespec=timespec).replace("+00:00", "Z")


def format_unix(seconds: float, *, timespec: str = "microseconds") -> str:
    """``format_time`` of unix seconds."""
    return format_time(datetime.fromtimestamp(seconds, UTC), timespec=timespec)


def parse_time(text: str) -> datetime:
    """RFC 3339 -> an aware UTC ``datetime`` (``ValueError``/``OverflowError`` as the module says)."""
    return utc(datetime.fromisoformat(text))


def _duration_seconds(text: str, *, unit_required: bool) -> float | None:
    match = _DURATION.match(text)
    if not match or (unit_required and match.group(2) is None):
        return None
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def duration_seconds(text: str) -> float:
    """``"5s"``, ``"5m"``, ``"2h"``, ``"250ms"``, ``"1d"`` or plain seconds -> seconds;
    ``ValueError`` naming the text otherwise (for validators that add the setting's name)."""
    seconds = _duration_seconds(text, unit_required=False)
    if seconds is None:
        raise ValueError(f"{text!r} is not a duration (use e.g. 250ms, 5s, 5m, 2h, 1d)")
    return seconds


def parse_duration(text: str, *, name: str, error: type[HookstreamError] = ConfigError) -> float:
    """``duration_seconds`` with a one-line ``error`` (``ConfigError`` unless told) naming ``name``."""
    try:
        return duration_seconds(text)
    except ValueError as exc:
        raise error(f"{name}: {exc}") from None


def parse_since(text: str, *, name: str, now: datetime | None = None) -> float:
    """RFC 3339 (``2026-11-28T10:00:00Z``), a date, or a span back from now (``30m``, ``2h``,
    ``7d``; a unit is required) -> unix seconds; ``ValidationError`` naming ``name`` otherwise."""
    now = now or datetime.now(UTC)
    span = _duration_seconds(text.strip(), unit_required=True)
    if span is not None:
        try:
            return (now - timedelta(seconds=span)).timestamp()
        except OverflowError:  # before year 1 (or beyond what timedelta holds)
            raise ValidationError(f"{name}: {text!r} reaches back before year 1; give a shorter span or a time") from None
    try:
        return parse_time(text.strip()).timestamp()
    except (ValueError, OverflowError):
        raise ValidationError(f"{name}: {text!r} is not a time (use RFC 3339 like 2026-11-28T10:00:00Z, or a span like 2h)") from None
