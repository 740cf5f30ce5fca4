"""hookstream.streams.app.EventHandler: whatever an event contains, it is fanned out or set aside, and
handle() never raises (a raise restarted Faust's agent, which then never acked its batch)."""

import base64
import dataclasses
import logging
import types

import orjson
import pytest

from hookstream.core.settings import Settings
from hookstream.schemas import Event, encode_event, example
from hookstream.streams.app import EventHandler
from hookstream.streams.fanout import RECORD_BYTES_MAX

DELIVERIES, INVALID = "deliveries", "events.invalid"


@dataclasses.dataclass(frozen=True)
class Sub:
    id: str
    tenant_id: str
    events: tuple[str, ...] = ("*",)
    active: bool = True


class Table:
    """Subscriptions by tenant; tenant "boom" stands for a bug met while handling an event."""

    def for_tenant(self, tenant_id):
        if tenant_id == "boom":
            raise RuntimeError("a bug nobody foresaw")
        return [Sub(f"sub_{tenant_id}", tenant_id)]


class RecordingBatch:
    def __init__(self):
        self.sent = []

    def send(self, topic, key, value):
        self.sent.append((topic, key, value))

    def on(self, topic):
        return [(key, orjson.loads(value)) for t, key, value in self.sent if t == topic]


def _handler(**settings) -> EventHandler:
    return EventHandler(Settings(**settings), Table())


def _message(value, key=b"k", offset=0):
    return types.SimpleNamespace(topic="events.payment", partition=0, offset=offset, key=key, value=value)


def _event(tenant="acme", event_type="payment.received") -> Event:
    return Event.new(event_type, tenant, example(event_type))


def _deep(levels=1000) -> bytes:
    doc = orjson.loads(encode_event(_event()))
    return orjson.dumps(doc)[:-1] + b',"correlation_id":' + b"[" * levels + b"]" * levels + b"}"


def test_a_deep_event_is_set_aside_as_too_deep_and_the_events_around_it_fan_out():
    handler, batch = _handler(), RecordingBatch()
    before, after = _event(), _event()
    for n, value in enumerate([encode_event(before), _deep(), encode_event(after)]):
        handler.handle(_message(value, offset=n), batch)
    assert [rec["event_id"] for _, rec in batch.on(DELIVERIES)] == [before.id, after.id]
    [(key, aside)] = batch.on(INVALID)
    assert (key, aside["code"], aside["offset"]) == (b"k", "too_deep", 1)
    assert "correlation_id is nested more than 32 levels deep" in aside["reason"]


def test_an_unexpected_exception_sets_that_one_event_aside_as_internal_error(caplog):
    handler, batch = _handler(), RecordingBatch()
    good = _event("acme")
    with caplog.at_level(logging.ERROR, logger="hookstream.streams"):
        for n, event in enumerate([_event("boom"), good, _event("boom")]):
            handler.handle(_message(encode_event(event), offset=n), batch)
    assert [rec["event_id"] for _, rec in batch.on(DELIVERIES)] == [good.id]
    aside = [rec for _, rec in batch.on(INVALID)]
    assert [(r["code"], r["offset"]) for r in aside] == [("internal_error", 0), ("internal_error", 2)]
    assert aside[0]["reason"] == "internal_error: RuntimeError: a bug nobody foresaw"
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1  # once per exception type, however many events meet it
    assert isinstance(tracebacks[0].exc_info[1], RuntimeError)


@pytest.mark.parametrize("key, value, code", [
    (b"k" * 300_000, b"x" * (512 * 1024), "too_large"),  # 824 kB: a producer with default settings writes it
    (b"k" * 999_000, b"not json", "not_json"),  # 999,008 bytes: the broker's 1,048,588 takes it
])
def test_a_set_aside_event_with_a_huge_key_gets_a_bounded_kafka_key(key, value, code):
    handler, batch = _handler(), RecordingBatch()
    handler.handle(_message(value, key=key), batch)
    [(topic, kafka_key, record)] = batch.sent
    assert topic == INVALID and kafka_key.startswith(b"sha256:")
    assert len(kafka_key) + len(record) <= RECORD_BYTES_MAX
    assert orjson.loads(record)["code"] == code and orjson.loads(record)["key_bytes"] == len(key)


def test_an_event_whose_delivery_record_would_be_over_the_producers_limit_is_set_aside():
    # HOOKSTREAM_MAX_EVENT_BYTES stops at 768 KiB; a Settings built in code is not held to that
    handler, batch = _handler(max_event_bytes=4 * 1024 * 1024), RecordingBatch()
    data = example("sales_order.created")
    line = dict(data["lines"][0], description="\U0001F600" * 500)  # 500 characters, 2,000 bytes
    data["lines"] = [dict(line, line_number=n + 1) for n in range(600)]
    big = Event.new("sales_order.created", "acme", data)
    value = encode_event(big)
    assert len(value) > RECORD_BYTES_MAX
    small = _event()
    handler.handle(_message(value), batch)
    handler.handle(_message(encode_event(small), offset=1), batch)
    assert [rec["event_id"] for _, rec in batch.on(DELIVERIES)] == [small.id]
    [(_, aside)] = batch.on(INVALID)
    assert aside["code"] == "too_large" and aside["value_bytes"] == len(value)
    assert aside["reason"].startswith("too_large: its delivery record would be ")


@pytest.mark.parametrize("value", [None, b"", b"\xff", b"[]", b'{"type": "nope"}'])
def test_junk_is_set_aside_with_its_bytes(value):
    handler, batch = _handler(), RecordingBatch()
    handler.handle(_message(value), batch)
    [(key, aside)] = batch.on(INVALID)
    assert key == b"k" and aside["code"] in {"not_json", "not_object", "unknown_type"}
    assert (base64.b64decode(aside["value_b64"]) if value is not None else None) == value
