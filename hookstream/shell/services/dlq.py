"""Dead letters for operators (admin keys): list with the CLI's filters, show one, and replay.

All go through ``hookstream.delivery.dead_letters``' public functions (``read``, ``find``,
``Filter``, ``replay``), so a replay is recorded and not doubled, exactly as ``hookstream dlq replay``.
"""

from __future__ import annotations

from collections.abc import Callable

from hookstream.core.settings import Settings
from hookstream.delivery import dead_letters as dl
from hookstream.core.errors import ValidationError
from hookstream.shell.services.times import moment
from hookstream.shell.services.pages import DEFAULT_LIMIT, Page, check_limit, decode_cursor, page_of


def make_filter(*, tenant_id: str | None, endpoint_id: str | None = None, event_type: str | None = None,
                since: str | None = None, until: str | None = None, reason: str | None = None, flag: str = "") -> dl.Filter:
    """A ``Filter`` from the CLI's words: no tenant means every tenant's (operators). ``flag``
    prefixes the names in errors (the CLI's ``--since``, the API's ``since``)."""
    return dl.Filter(
        tenant_id=tenant_id, all_tenants=tenant_id is None, subscription_id=endpoint_id, event_type=event_type, reason=reason,
        since=moment(since, name=f"{flag}since") if since else None,
        until=moment(until, name=f"{flag}until") if until else None,
    )


def _key(d: dl.DeadLetter) -> list:
    partition, offset = (int(x) for x in d.id.split("-"))
    return [d.dead_lettered_at if d.dead_lettered_at is not None else -1.0, partition, offset]


class DeadLetterService:
    def __init__(self, settings: Settings, *, read: Callable[..., object] = dl.read,
                 replay: Callable[..., dl.ReplayReport] = dl.replay) -> None:
        self.settings = settings
        self._read = read
        self._replay = replay

    def show(self, entry_id: str, *, tenant_id: str | None) -> dict:
        """One dead letter in full (what ``hookstream dlq show`` prints): its summary, every attempt,
        the event, and for an unreadable or too large record where it came from, its size and an
        excerpt. ``tenant_id`` None: whichever tenant's it is (operators)."""
        d = dl.find_any_tenant(self.settings, entry_id) if tenant_id is None else dl.find(self.settings, entry_id, tenant_id=tenant_id)
        doc = {**d.summary(), "attempt_history": list(d.record.attempts) if d.record else [], "event": d.record.event if d.record else None}
        if d.malformed:
            doc["original"] = {k: d.raw.get(k) for k in ("topic", "partition", "offset", "key_b64", "value_b64") if k in d.raw}
            # a record too large to keep whole: where it was, its size and an excerpt
            doc["original"].update({k: d.raw[k] for k in ("ref", "value_bytes", "excerpt", "value_excerpt_b64") if k in d.raw})
        return doc

    def matching(self, flt: dl.Filter) -> list[dl.DeadLetter]:
        return [d for d in self._read(self.settings, since=flt.since) if flt(d)]

    def list(self, flt: dl.Filter, *, limit: int = DEFAULT_LIMIT, iterator: str | None = None) -> Page[dl.DeadLetter]:
        """Matching dead letters, newest first (an entry without a readable time last)."""
        check_limit(limit)
        after = decode_cursor("dlq", iterator)
        if after is not None and not (isinstance(after, list) and len(after) == 3
                                      and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in after)):
            raise ValidationError("iterator: not an iterator this listing returned")
        entries = sorted(self.matching(flt), key=_key, reverse=True)
        if after is not None:
            entries = [d for d in entries if _key(d) < after]
        return page_of(entries[: limit + 1], limit, "dlq", _key)

    def replay(self, flt: dl.Filter, *, dry_run: bool = False, force: bool = False) -> tuple[list[dl.DeadLetter], dl.ReplayReport]:
        """Replay every matching entry (``dry_run``: say what would be); as ``hookstream dlq replay``."""
        entries = self.matching(flt)
        return entries, self.replay_entries(entries, dry_run=dry_run, force=force)

    def replay_entries(self, entries: list[dl.DeadLetter], *, dry_run: bool = False, force: bool = False,
                       progress: Callable[[int], None] | None = None) -> dl.ReplayReport:
        """Replay these entries (``matching``'s, once confirmed: the CLI asks in between)."""
        if not entries:
            return dl.ReplayReport()
        if progress is None:
            return self._replay(self.settings, entries, dry_run=dry_run, force=force)
        return self._replay(self.settings, entries, dry_run=dry_run, force=force, progress=progress)
