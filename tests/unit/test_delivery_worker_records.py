"""hookstream.delivery.worker: reading delivery records off the wire, the dead-letter record, and what the
worker does with a record it cannot handle or cannot produce (fakes; the real broker is in
tests/integration/test_delivery_worker_bad_records.py)."""

import orjson
import pytest

from hookstream.delivery.worker import MalformedRecord, dead_letter_value, decode_record
from hookstream.core.wire import DeliveryRecord, delivery_id

GOOD = {
    "delivery_id": delivery_id("ev1", "sub_1"), "subscription_id": "sub_1", "tenant_id": "acme", "event_id": "ev1",
    "event_type": "invoice.sent", "occurred_at": "2026-11-28T12:00:00Z", "event": {"data": {}},
}


def test_a_good_record_round_trips():
    rec = decode_record(orjson.dumps(GOOD))
    assert rec == DeliveryRecord(**GOOD)
    assert decode_record(rec.to_bytes()) == rec


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "no value"),
        (b"\xff not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (orjson.dumps({**GOOD, "delivery_id": ""}), "delivery_id"),
        (orjson.dumps({k: v for k, v in GOOD.items() if k != "tenant_id"}), "tenant_id"),
        (orjson.dumps({**GOOD, "event": "x"}), "event"),
        (orjson.dumps({**GOOD, "attempt": -1}), "attempt"),
        (orjson.dumps({**GOOD, "attempt": True}), "attempt"),
        (orjson.dumps({**GOOD, "attempts": [1]}), "attempts"),
        (orjson.dumps({**GOOD, "due_at": "soon"}), "due_at"),
        (orjson.dumps({**GOOD, "tenant_id": 7}), "tenant_id"),
        (orjson.dumps({**GOOD, "attempts": {"a": 1}}), "attempts"),
        (orjson.dumps({**GOOD, "replay_of": 3}), "replay_of"),
        (orjson.dumps({**GOOD, "delivery_id": "msg_1"}), "delivery_id is not the one"),
        (orjson.dumps({**GOOD, "delivery_id": delivery_id("ev1", "sub_2")}), "delivery_id is not the one"),
        (orjson.dumps({**GOOD, "delivery_id": delivery_id("ev2", "sub_1"), "replay_of": "1-5"}), "delivery_id is not the one"),
        (orjson.dumps({**GOOD, "event": {"tenant_id": "other", "data": {}}}), "event.tenant_id differs"),
        (orjson.dumps({**GOOD, "event": {"id": "ev9", "data": {}}}), "event.id differs"),
        (orjson.dumps({**GOOD, "event": {"type": "payment.failed", "data": {}}}), "event.type differs"),
        (b'{"a": "\\ud800"}', "not JSON"),
    ],
)
def test_every_malformed_record_is_named_never_a_crash(value, reason):
    with pytest.raises(MalformedRecord, match=reason):
        decode_record(value)


def test_a_replay_keeps_its_derived_id_and_is_read():
    # dlq replay and recovery write the id the fan-out gave: strictness costs a replay nothing
    rec = decode_record(orjson.dumps({**GOOD, "replay_of": "2-153", "event": {"id": "ev1", "tenant_id": "acme", "data": {}}}))
    assert rec.replay_of == "2-153" and rec.delivery_id == delivery_id("ev1", "sub_1")


def test_unknown_fields_are_ignored():
    assert decode_record(orjson.dumps({**GOOD, "future": 1})) == DeliveryRecord(**GOOD)


def test_the_dead_letter_keeps_the_history_and_reads_back_as_a_record():
    rec = DeliveryRecord(**GOOD, attempt=2, attempts=({"attempt": 1, "status": 500}, {"attempt": 2, "status": 500}), due_at=5.0)
    doc = orjson.loads(dead_letter_value(rec, "retries_exhausted", 10.0))
    assert doc["reason"] == "retries_exhausted" and doc["dead_lettered_at"] == 10.0 and doc["due_at"] is None
    assert [a["attempt"] for a in doc["attempts"]] == [1, 2]
    assert DeliveryRecord.from_bytes(dead_letter_value(rec, "x", 1.0)).attempts == rec.attempts


def test_checked_makes_the_same_record_as_the_constructor_and_knows_every_field():
    import dataclasses
    import inspect

    names = [f.name for f in dataclasses.fields(DeliveryRecord)]
    assert list(inspect.signature(DeliveryRecord.checked).parameters) == names
    full = {**GOOD, "attempt": 2, "attempts": ({"attempt": 1},), "due_at": 5.0, "replay_of": "dlq_1"}
    rec = DeliveryRecord.checked(*(full[n] for n in names))
    assert rec == DeliveryRecord(**full) and vars(rec) == vars(DeliveryRecord(**full))
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.attempt = 3


# ---------------------------------------------------------------------------- the worker with fakes
import asyncio  # noqa: E402
import dataclasses  # noqa: E402
import logging  # noqa: E402

from confluent_kafka import KafkaError  # noqa: E402
from prometheus_client import REGISTRY  # noqa: E402

from hookstream.delivery.offsets import PartitionOffsets  # noqa: E402
from hookstream.delivery.transport import HttpResponse, MockTransport  # noqa: E402
from hookstream.delivery.worker import Worker  # noqa: E402
from hookstream.core.settings import Settings  # noqa: E402
from tests.fakes import FakeProducer, record_size  # noqa: E402

SETTINGS = Settings(retry_schedule=(5.0, 300.0), topic_prefix="t.")
SRC = ("t.deliveries", 3)


class Broker(FakeProducer):
    """A FakeProducer that refuses records whose key + value exceed ``max_bytes`` at produce()
    (the client's message.max.bytes), and fails the delivery report of records over
    ``topic_max`` on the topics in ``small_topics`` (a topic's max.message.bytes) with ``error``."""

    def __init__(self, *, topic_max=10**9, small_topics=(), **kw):
        super().__init__(**kw)
        self.topic_max, self.small_topics = topic_max, set(small_topics)

    def produce(self, topic, value, key, on_delivery):
        if topic in self.small_topics and record_size(key, value) > self.topic_max and record_size(key, value) <= self.max_bytes:
            if self.full:
                self.full -= 1
                raise BufferError("Local: Queue full")
            self.produced.append((topic, key, value))
            self._reports.append((on_delivery, KafkaError(self.error), None))
            return
        super().produce(topic, value, key, on_delivery)


class Writer:
    alive = True
    error = None  # why a real writer stopped (AttemptLogUnavailable); none here

    def __init__(self):
        self.rows = []

    def submit(self, row, ack):
        self.rows.append(row)
        ack()


class Table:
    def __init__(self, *subs):
        self.subs = {s.id: s for s in subs}

    def get(self, sub_id):
        return self.subs.get(sub_id)


def make_worker(producer, *subs, handler=lambda *_: HttpResponse(500), **kw) -> Worker:
    w = Worker(SETTINGS, table=Table(*subs), engine=None, transport=MockTransport(handler), **kw)
    w.producer, w.writer = producer, Writer()
    return w


def subscription(sub_id="sub_1", tenant="acme"):
    from datetime import UTC, datetime

    from hookstream.subscriptions.models import Status, Subscription
    from hookstream.core.secrets import Secret

    t = datetime(2026, 11, 28, tzinfo=UTC)
    return Subscription(id=sub_id, tenant_id=tenant, url=f"https://hooks.example.com/{sub_id}", events=("*",),
                        status=Status.ACTIVE, secrets=(Secret.generate(),), created_at=t, updated_at=t, version=1)


def take(w: Worker, offset: int) -> PartitionOffsets:
    part = w.parts.setdefault(SRC, PartitionOffsets())
    part.take(offset)
    w.in_flight += 1
    return part


def dlq_docs(producer) -> list[dict]:
    producer.poll(0)
    return [orjson.loads(v) for t, _k, v in producer.produced if t == "t.deliveries.dlq"]


def sample(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_bug_a_record_triggers_dead_letters_it_and_the_worker_goes_on(caplog):
    producer = Broker()
    w = make_worker(producer, subscription())

    async def broken(record):
        raise KeyError("a bug")

    w.deliverer.deliver = broken
    before = sample("hookstream_delivery_internal_errors_total")
    with caplog.at_level(logging.ERROR, logger="hookstream.delivery"):
        for offset in (7, 8):
            part = take(w, offset)
            asyncio.run(w._process(part, offset, decode_record(orjson.dumps(GOOD)), SRC))
    docs = dlq_docs(producer)
    assert w.fatal is None and w.in_flight == 0 and part.to_commit() == 9
    assert [d["reason"].split(":")[0] for d in docs] == ["internal_error", "internal_error"]
    assert docs[0]["delivery_id"] == GOOD["delivery_id"] and "KeyError" in docs[0]["reason"]
    assert sample("hookstream_delivery_internal_errors_total") == before + 2
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1 and len([r for r in caplog.records if "internal_error" in r.getMessage()]) == 2


def test_a_full_producer_queue_parks_records_in_order_without_blocking():
    producer = Broker(full=3)
    w = make_worker(producer, subscription())
    parts = []
    for offset in range(5):
        part = take(w, offset)
        rec = decode_record(orjson.dumps(GOOD))
        asyncio.run(w._process(part, offset, rec, SRC))  # a 500: forwarded to retry tier 1
        parts.append(part)
    assert len(w._backlog) == 5 and producer.produced == [] and w.in_flight == 5  # nothing lost, nothing finished
    w._drain_backlog()  # the queue took one, then was full twice more
    w._drain_backlog()
    w._drain_backlog()
    producer.poll(0)
    assert len(producer.produced) == 5 and not w._backlog and w.in_flight == 0 and w.fatal is None
    assert {t for t, _k, _v in producer.produced} == {"t.deliveries.retry.1"}


def test_a_forward_the_client_refuses_as_too_large_is_set_aside_by_reference():
    producer = Broker(max_bytes=6000)
    w = make_worker(producer, subscription())
    big = {**GOOD, "event": {"data": {"blob": "x" * 20_000}}}
    before = sample("webhook_dead_letters_total", event="invoice.sent", tenant_id="acme", reason="too_large")
    part = take(w, 41)
    asyncio.run(w._process(part, 41, decode_record(orjson.dumps(big)), SRC))
    [doc] = dlq_docs(producer)
    assert doc["reason"].startswith("too_large: the record for t.deliveries.retry.1 was refused")
    assert doc["ref"] == {"topic": "t.deliveries", "partition": 3, "offset": 41, "event_id": "ev1",
                          "delivery_id": GOOD["delivery_id"], "subscription_id": "sub_1", "tenant_id": "acme",
                          "event_type": "invoice.sent"}
    assert doc["value_bytes"] > 20_000 and 0 < len(doc["excerpt"]) <= 1024
    assert w.fatal is None and w.in_flight == 0 and part.to_commit() == 42
    assert sample("webhook_dead_letters_total", event="invoice.sent", tenant_id="acme", reason="too_large") == before + 1


def test_a_value_over_message_max_bytes_is_never_produced_whole():
    producer = Broker()
    w = make_worker(producer, subscription(), producer_options={"message.max.bytes": 8000})
    big = {**GOOD, "event": {"data": {"blob": "x" * 20_000}}}
    part = take(w, 1)
    asyncio.run(w._process(part, 1, decode_record(orjson.dumps(big)), SRC))
    assert all(len(v) < 8000 for _t, _k, v in producer.produced)
    [doc] = dlq_docs(producer)
    assert doc["ref"]["offset"] == 1 and w.fatal is None and w.in_flight == 0


def test_a_broker_refusing_one_record_as_too_large_does_not_stop_the_worker():
    producer = Broker(small_topics={"t.deliveries.retry.1"}, topic_max=4000, error=KafkaError.MSG_SIZE_TOO_LARGE)
    w = make_worker(producer, subscription())
    big = {**GOOD, "event": {"data": {"blob": "x" * 5000}}}
    part = take(w, 2)
    asyncio.run(w._process(part, 2, decode_record(orjson.dumps(big)), SRC))
    producer.poll(0)
    producer.poll(0)
    docs = dlq_docs(producer)
    assert [d["ref"]["offset"] for d in docs] == [2] and "Message size too large" in docs[0]["reason"]
    assert w.fatal is None and w.in_flight == 0


def test_a_broker_level_produce_error_stops_the_worker_without_finishing_the_record():
    producer = Broker(small_topics={"t.deliveries.retry.1"}, topic_max=0, error=KafkaError._MSG_TIMED_OUT)
    w = make_worker(producer, subscription())
    before = sample("hookstream_delivery_worker_failures_total", kind="kafka")
    part = take(w, 3)
    asyncio.run(w._process(part, 3, decode_record(orjson.dumps(GOOD)), SRC))
    producer.poll(0)
    assert w.fatal is not None and w.in_flight == 1 and (part.to_commit() or 0) <= 3  # offset 3 is read again
    assert dlq_docs(producer) == []
    assert sample("hookstream_delivery_worker_failures_total", kind="kafka") == before + 1


def test_a_dead_letter_topic_that_takes_not_even_a_reference_stops_the_worker():
    producer = Broker(max_bytes=100)
    w = make_worker(producer, subscription())
    part = take(w, 4)
    asyncio.run(w._process(part, 4, decode_record(orjson.dumps(GOOD)), SRC))
    assert w.fatal is not None and w.in_flight == 1 and producer.produced == []


def test_another_tenants_record_is_refused_and_counted():
    producer = Broker()
    posted = []
    w = make_worker(producer, subscription(tenant="beta"), handler=lambda *a: posted.append(a) or HttpResponse(200))
    before = sample("webhook_dead_letters_total", event="invoice.sent", tenant_id="acme", reason="tenant_mismatch")
    part = take(w, 5)
    asyncio.run(w._process(part, 5, decode_record(orjson.dumps(GOOD)), SRC))
    [doc] = dlq_docs(producer)
    assert doc["reason"].startswith("tenant_mismatch") and posted == [] and w.in_flight == 0
    assert sample("webhook_dead_letters_total", event="invoice.sent", tenant_id="acme", reason="tenant_mismatch") == before + 1


class FakeMessage(__import__("tests.fakes", fromlist=["FakeMessage"]).FakeMessage):
    def error(self):
        return None


def test_a_large_unreadable_value_is_set_aside_with_an_excerpt():
    producer = Broker()
    w = make_worker(producer, producer_options={"message.max.bytes": 20_000})
    part = w.parts.setdefault(SRC, PartitionOffsets())
    w.loop = None
    w._accept(FakeMessage(SRC[0], SRC[1], 0, b"k" * 5000, b"{" + b"x" * 30_000))
    [doc] = dlq_docs(producer)
    assert doc["reason"].startswith("malformed: ") and doc["value_b64"] is None and doc["value_bytes"] == 30_001
    assert len(doc["value_excerpt_b64"]) <= 1400 and len(producer.produced[0][1]) <= 1024
    assert w.in_flight == 0 and part.to_commit() == 1


def test_a_tier_record_due_absurdly_far_ahead_is_set_aside_not_paused_on():
    producer = Broker()
    w = make_worker(producer)
    tier = ("t.deliveries.retry.1", 0)
    part = w.parts.setdefault(tier, PartitionOffsets())
    w._accept(FakeMessage(*tier, 0, b"sub_1", orjson.dumps({**GOOD, "due_at": 1e300})))
    [doc] = dlq_docs(producer)
    assert "due_at" in doc["reason"] and not w.due_paused and part.to_commit() == 1


def test_the_history_in_a_forwarded_record_is_bounded():
    from hookstream.delivery.attempt import HISTORY_KEEP_LAST

    producer = Broker()
    w = make_worker(producer, subscription())
    history = [{"attempt": 1}] + [{"omitted": 500}] + [{"attempt": n} for n in range(502, 502 + HISTORY_KEEP_LAST)]
    rec = dataclasses.replace(decode_record(orjson.dumps(GOOD)), attempt=1, attempts=tuple(history))
    part = take(w, 6)
    asyncio.run(w._process(part, 6, rec, SRC))
    producer.poll(0)
    [(_t, _k, value)] = producer.produced
    attempts = orjson.loads(value)["attempts"]
    assert len(attempts) == HISTORY_KEEP_LAST + 2 and attempts[1] == {"omitted": 501} and attempts[0] == {"attempt": 1}


def test_a_dead_attempt_log_writer_stops_the_worker_visibly(caplog):
    w = make_worker(Broker())
    w.writer.alive = False
    before = sample("hookstream_delivery_worker_failures_total", kind="attempt_log")
    with caplog.at_level(logging.ERROR, logger="hookstream.delivery"):
        w._check_health()
        w._check_health()
    assert isinstance(w.fatal, RuntimeError)
    assert sample("hookstream_delivery_worker_failures_total", kind="attempt_log") == before + 1  # once, not per check
    assert [r.getMessage() for r in caplog.records] == ["the attempt-log writer stopped; stopping"]


def test_an_attempt_log_that_stayed_unwritable_stops_the_worker_with_its_own_one_line_reason(caplog):
    from hookstream.delivery.attempt_log import AttemptLogUnavailable

    w = make_worker(Broker())
    w.writer.alive = False
    w.writer.error = AttemptLogUnavailable("the attempt log stayed unwritable for 300s (...)")
    with caplog.at_level(logging.ERROR, logger="hookstream.delivery"):
        w._check_health()
    assert w.fatal is w.writer.error  # raised by run(): the CLI prints it as one `error:` line, exit 1
    assert [r.getMessage() for r in caplog.records] == ["the attempt log stayed unwritable for 300s (...); stopping"]


# ---------------------------------------------------------------------------- ids and keys bounded
@pytest.mark.parametrize(("field", "most"), [("subscription_id", 64), ("tenant_id", 128), ("event_id", 128),
                                             ("event_type", 128), ("occurred_at", 64)])
def test_an_id_longer_than_its_column_is_malformed(field, most):
    doc = {**GOOD, field: "s" * (most + 1)}
    doc["delivery_id"] = delivery_id(doc["event_id"], doc["subscription_id"])
    with pytest.raises(MalformedRecord, match=f"{field} has {most + 1} characters, more than {most}"):
        decode_record(orjson.dumps(doc))
    doc = {**GOOD, field: "s" * most}
    doc["delivery_id"] = delivery_id(doc["event_id"], doc["subscription_id"])
    assert getattr(decode_record(orjson.dumps(doc)), field) == "s" * most


def test_a_replay_of_longer_than_its_bound_is_malformed():
    with pytest.raises(MalformedRecord, match="replay_of"):
        decode_record(orjson.dumps({**GOOD, "replay_of": "r" * 129}))


def test_a_600_kB_subscription_id_is_set_aside_with_a_bounded_key_and_the_worker_goes_on():
    # the reviewer's record: unknown to the table, it used to be forwarded to tier 1 keyed by its id
    producer = Broker(max_bytes=100_000)
    w = make_worker(producer, subscription(), producer_options={"message.max.bytes": 100_000})
    big = "s" * 600_000
    value = orjson.dumps({**GOOD, "subscription_id": big, "delivery_id": delivery_id("ev1", big)})
    part = w.parts.setdefault(SRC, PartitionOffsets())
    w.loop = None
    w._accept(FakeMessage(*SRC, 0, big.encode(), value))
    producer.poll(0)
    [doc] = dlq_docs(producer)
    assert doc["reason"] == "malformed: subscription_id has 600000 characters, more than 64"
    assert all(record_size(k, v) <= 100_000 for _t, k, v in producer.produced)
    assert w.fatal is None and w.in_flight == 0 and part.to_commit() == 1


def test_the_key_counts_against_message_max_bytes_and_a_reference_has_a_bounded_key():
    # a record that got past decode_record (a bug, or a writer of another release) with a key
    # as large as the limit: the forward and its reference must both fit, key included
    producer = Broker(max_bytes=50_000)
    w = make_worker(producer, producer_options={"message.max.bytes": 50_000})
    big = "s" * 45_000
    rec = dataclasses.replace(decode_record(orjson.dumps(GOOD)), subscription_id=big, event_id="e" * 10_000)
    part = take(w, 9)
    asyncio.run(w._process(part, 9, rec, SRC))  # unknown subscription: forwarded to tier 1, set aside
    producer.poll(0)
    [(topic, key, value)] = producer.produced
    doc = orjson.loads(value)
    assert topic == "t.deliveries.dlq" and doc["reason"].startswith("too_large: the record for t.deliveries.retry.1")
    assert len(key) <= 256 and len(value) < 4000
    assert len(doc["ref"]["subscription_id"]) <= 257 and len(doc["ref"]["event_id"]) <= 257
    assert w.fatal is None and w.in_flight == 0 and part.to_commit() == 10


def test_a_dead_letter_topic_refusing_a_bare_reference_is_a_kafka_stop_not_an_internal_error():
    from confluent_kafka import KafkaException

    w = make_worker(Broker(max_bytes=100), subscription())
    part = take(w, 4)
    asyncio.run(w._process(part, 4, decode_record(orjson.dumps(GOOD)), SRC))
    assert isinstance(w.fatal, KafkaException) and w.fatal.args[0].code() == KafkaError.MSG_SIZE_TOO_LARGE
    assert w.in_flight == 1 and (part.to_commit() or 0) <= 4  # read again by the next worker


def _real_producer(max_bytes: int):
    from confluent_kafka import Producer

    # nothing listens there: produce() checks the size locally, before any broker is involved
    return Producer({"bootstrap.servers": "127.0.0.1:1", "message.max.bytes": max_bytes, "log_level": 0})


def test_librdkafka_counts_the_key_the_way_the_fakes_do():
    from confluent_kafka import KafkaException

    real, fake = _real_producer(10_000), FakeProducer(max_bytes=10_000)
    seen = []
    for key, value in ((b"k" * 6000, b"v" * 6000), (b"k" * 20, b"v" * 9000)):  # value alone fits in both
        for producer in (real, fake):
            try:
                producer.produce("t", value=value, key=key, on_delivery=lambda *_: None)
                seen.append("taken")
            except KafkaException as exc:
                seen.append(exc.args[0].code())
    too_large = KafkaError.MSG_SIZE_TOO_LARGE
    assert seen == [too_large, too_large, "taken", "taken"]
    real.purge()


class _Recording:
    """A real librdkafka producer, recording what it took."""

    def __init__(self, max_bytes):
        self.real, self.produced = _real_producer(max_bytes), []

    def produce(self, topic, value, key, on_delivery):
        self.real.produce(topic, value=value, key=key, on_delivery=on_delivery)
        self.produced.append((topic, key, value))

    def poll(self, timeout=0):
        return self.real.poll(0)


def test_a_huge_key_never_stops_the_worker_with_a_real_producer():
    producer = _Recording(100_000)
    w = make_worker(producer, producer_options={"message.max.bytes": 100_000})
    big = "s" * 600_000
    rec = dataclasses.replace(decode_record(orjson.dumps(GOOD)), subscription_id=big, delivery_id=delivery_id("ev1", big))
    part = take(w, 7)
    asyncio.run(w._process(part, 7, rec, SRC))
    assert w.fatal is None
    [(topic, key, value)] = producer.produced  # taken by librdkafka: a reference, not the record
    assert topic == "t.deliveries.dlq" and len(key) <= 256 and orjson.loads(value)["ref"]["offset"] == 7
    producer.real.purge()


# ---------------------------------------------------------------------------- secrets from the topic
@pytest.mark.parametrize("bad", ["whsec_AAAA", "whsec_not base64!", "12345", 12345, None])
def test_a_secret_that_cannot_be_decoded_dead_letters_as_invalid_secret_without_a_post(bad, caplog):

    sub = dataclasses.replace(subscription(), secrets=(bad,))  # not Secrets: built by hand, not by the topic reader
    producer, posted = Broker(), []
    w = make_worker(producer, sub, handler=lambda *a: posted.append(a) or HttpResponse(200))
    before = sample("webhook_dead_letters_total", event="invoice.sent", tenant_id="acme", reason="invalid_secret")
    internal = sample("hookstream_delivery_internal_errors_total")
    with caplog.at_level(logging.INFO, logger="hookstream.delivery"):
        for offset in (1, 2):
            part = take(w, offset)
            asyncio.run(w._process(part, offset, decode_record(orjson.dumps(GOOD)), SRC))
    docs = dlq_docs(producer)
    assert [d["reason"] for d in docs] == ["invalid_secret: a signing secret of subscription sub_1 cannot be decoded"] * 2
    assert posted == [] and w.fatal is None and w.in_flight == 0 and part.to_commit() == 3
    assert sample("webhook_dead_letters_total", event="invoice.sent", tenant_id="acme", reason="invalid_secret") == before + 2
    assert sample("hookstream_delivery_internal_errors_total") == internal
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "sub_1" in warnings[0].getMessage() and not any(r.exc_info for r in caplog.records)
    assert all(str(bad) not in r.getMessage() for r in caplog.records)
