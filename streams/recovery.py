"""Recovery: re-fan a window of past events to ONE subscription (Svix's "recover since").

For an endpoint that was down or disabled: the events of its tenant published between
``since`` and ``until`` (by the broker's record time) whose types its filters select are read
back from the event topics and put on the deliveries topic for that subscription alone, with
the same delivery ids the first fan-out gave them, so receivers see the same ``webhook-id``s
and can drop what they already have.
"""

from __future__ import annotations

import dataclasses
import logging
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from hookstream.core.errors import BrokerError, ValidationError
from hookstream.core.kafka import produce_one, producer_config
from hookstream.core.wire import DeliveryRecord, delivery_id
from hookstream.core.settings import Settings
from hookstream.core.topics import DELIVERIES, EVENT_TOPICS
from hookstream.schemas import InvalidEventError, parse_event
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
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "hookstream-recovery",
                         "enable.auto.commit": False, "enable.partition.eof": True, "log_level": 3})
    producer = None if dry_run else Producer(producer_config(settings, **{"client.id": "hookstream-recovery"}))
    failures: list[str] = []
    try:
        for base in _topics_for(sub):
            topic = settings.topic(base)
            md = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
            if md is None or md.error is not None:
                continue
            starts = consumer.offsets_for_times([TopicPartition(topic, p, int(since * 1000)) for p in md.partitions], timeout=timeout)
            ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)[1] for p in md.partitions}
            live = [tp for tp in starts if 0 <= tp.offset < ends[tp.partition]]
            if not live:
                continue
            consumer.assign(live)
            remaining = {tp.partition for tp in live}
            while remaining:
                msg = consumer.poll(timeout)
                if msg is None:
                    raise BrokerError(f"reading {topic} stalled")
                if msg.error():
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        remaining.discard(msg.partition())
                        continue
                    raise BrokerError(f"reading {topic} failed: {msg.error().str()}")
                p = msg.partition()
                if msg.offset() >= ends[p] or msg.timestamp()[1] >= until * 1000:
                    remaining.discard(p)
                    consumer.pause([TopicPartition(topic, p)])
                    continue
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
                if event.tenant_id != sub.tenant_id or not matches(sub.events, event.type):
                    continue
                report.queued += 1
                if producer is not None:
                    envelope = event.to_dict()
                    rec = DeliveryRecord(
                        delivery_id=delivery_id(event.id, sub.id), subscription_id=sub.id, tenant_id=event.tenant_id,
                        event_id=event.id, event_type=event.type, occurred_at=envelope["occurred_at"], event=envelope,
                        replay_of="recovery",
                    )
                    on_delivery = lambda err, _m, _id=event.id: err and failures.append(f"{_id}: {err.str()}")  # noqa: E731
                    error = produce_one(producer, settings.topic(DELIVERIES), sub.id.encode(), rec.to_bytes(), on_delivery)
                    if error is not None:  # this one record only (too large, say): go on with the others
                        report.queued -= 1
                        report.refused[event.id] = error
            consumer.unassign()
    finally:
        consumer.close()
    if producer is not None and (producer.flush(60) or failures):
        raise BrokerError(f"the broker did not take every recovered delivery: {failures[:3]}; run it again (same webhook-ids)")
    return report
