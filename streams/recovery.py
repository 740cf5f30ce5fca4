"""Recovery: re-fan a window of past events to ONE subscription (Svix's "recover since").

For an endpoint that was down or disabled: the events of its tenant published between
``since`` and ``until`` (by the broker's record time) whose types its filters select are read
back from the event topics and put on the deliveries topic for that subscription alone, with
the same delivery ids the first fan-out gave them, so receivers see the same ``webhook-id``s
and can drop what they already have. Who gets a record is decided by the stream worker's own
``fanout.deliveries_for`` (given only this subscription), so recovery follows the fan-out's rules
whatever they become; the window is read with ``hookstream.core.reading.read_range``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator

from hookstream.core.errors import BrokerError, ValidationError
from hookstream.core.kafka import make_producer, produce_one
from hookstream.core.reading import Time, read_range
from hookstream.core.settings import Settings
from hookstream.core.topics import DELIVERIES, EVENT_TOPICS
from hookstream.core.wire import DeliveryRecord
from hookstream.schemas import InvalidEventError, parse_event
from hookstream.streams.fanout import deliveries_for
from hookstream.subscriptions.filters import matches
from hookstream.subscriptions.models import Subscription

log = logging.getLogger("hookstream.recovery")


@dataclasses.dataclass
class RecoveryReport:
    scanned: int = 0
    queued: int = 0
    skipped_invalid: int = 0
    refused: dict[str, str] = dataclasses.field(default_factory=dict)  # event id -> why the client refused it (e.g. too large)


def _topics_for(sub: Subscription) -> list[str]:
    return [topic for aggregate, topic in EVENT_TOPICS.items()
            if any(matches(sub.events, t) for t in _types_of(aggregate))]


def _types_of(aggregate: str) -> list[str]:
    from hookstream.schemas import EVENT_TYPES

    return [t for t in EVENT_TYPES if t.rsplit(".", 1)[0] == aggregate]


def recover(settings: Settings, sub: Subscription, *, since: float, until: float | None = None,
            dry_run: bool = False, timeout: float = 10.0) -> RecoveryReport:
    if not sub.active:
        raise ValidationError(f"subscription {sub.id} is disabled; enable it first (`hookstream subscriptions enable {sub.id}`)")
    until = until if until is not None else time.time()
    if until <= since:
        raise ValidationError("--until must be later than --since")
    report = RecoveryReport()
    producer = None if dry_run else make_producer(settings, **{"client.id": "hookstream-recovery"})
    failures: list[str] = []
    unsent = 0
    try:
        for rec in _fanned_out(settings, sub, since, until, timeout, report):
            report.queued += 1
            if producer is None:
                continue
            rec = dataclasses.replace(rec, replay_of="recovery")
            on_delivery = lambda err, _m, _id=rec.event_id: err and failures.append(f"{_id}: {err.str()}")  # noqa: E731
            error = produce_one(producer, settings.topic(DELIVERIES), rec.subscription_id.encode(), rec.to_bytes(), on_delivery)
            if error is not None:  # this one record only (too large, say): go on with the others
                report.queued -= 1
                report.refused[rec.event_id] = error
    finally:  # what was queued goes out even when reading failed half-way
        if producer is not None:
            unsent = producer.flush(60)
    if unsent or failures:
        raise BrokerError(f"the broker did not take every recovered delivery: {failures[:3]}; run it again (same webhook-ids)")
    return report


def _fanned_out(settings: Settings, sub: Subscription, since: float, until: float, timeout: float,
                report: RecoveryReport) -> Iterator[DeliveryRecord]:
    """The records the stream worker's own fan-out gives ``sub`` (alone) for the events of the
    window: same tenant, same filters, same delivery ids. Counts what was scanned and skipped."""
    for base in _topics_for(sub):
        topic = settings.topic(base)
        for msg in read_range(settings, topic, start=Time(since), end=Time(until), timeout=timeout, missing_ok=True,
                              client_id="hookstream-recovery"):
            report.scanned += 1
            try:
                event = parse_event(msg.value())
            except InvalidEventError:  # the stream worker set it aside the first time
                report.skipped_invalid += 1
                continue
            except Exception:  # a bug meeting one event must not abort the recovery of the rest
                log.exception("%s[%d]@%d: unexpected error reading the event; skipped", topic, msg.partition(), msg.offset())
                report.skipped_invalid += 1
                continue
            yield from deliveries_for(event, event.to_dict(), (sub,))
