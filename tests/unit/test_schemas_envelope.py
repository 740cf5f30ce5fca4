"""The envelope: UUIDv7 ids that sort and never repeat, UTC timestamps, bytes round trips."""

import dataclasses
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import orjson
import pytest

from hookstream.schemas import Event, InvalidEventError, encode_event, example, new_event_id, parse_event


def test_event_ids_are_uuid_version_7_with_the_rfc_variant():
    parsed = uuid.UUID(new_event_id())
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122


def test_event_id_carries_the_current_unix_millisecond():
    before = time.time_ns() // 1_000_000
    ms = uuid.UUID(new_event_id()).int >> 80
    after = time.time_ns() // 1_000_000
    assert before <= ms <= after


def test_event_ids_made_in_a_row_sort_in_creation_order():
    ids = [new_event_id() for _ in range(20_000)]  # many share a millisecond
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_event_ids_made_by_many_threads_never_repeat():
    out: list[list[str]] = [[] for _ in range(8)]

    def make(i):
        out[i] = [new_event_id() for _ in range(5_000)]

    threads = [threading.Thread(target=make, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for chunk in out for i in chunk]
    assert len(set(every)) == len(every) == 40_000


def test_new_event_has_a_fresh_id_the_current_version_and_now():
    before = datetime.now(timezone.utc)
    event = Event.new("invoice.sent", "acme", example("invoice.sent"), correlation_id="req-1")
    assert event.schema_version == 1
    assert before <= event.occurred_at <= datetime.now(timezone.utc)
    assert event.id != Event.new("invoice.sent", "acme", example("invoice.sent")).id
    assert event.correlation_id == "req-1"


def test_new_event_of_an_unknown_type_is_refused():
    with pytest.raises(InvalidEventError, match="unknown event type 'invoice.paid'"):
        Event.new("invoice.paid", "acme", {})


def test_occurred_at_is_written_in_utc_with_a_z():
    plus_two = timezone(timedelta(hours=2))
    event = Event.new("invoice.sent", "acme", example("invoice.sent"), occurred_at=datetime(2026, 11, 28, 16, 3, 11, 250, tzinfo=plus_two))
    assert event.to_dict()["occurred_at"] == "2026-11-28T14:03:11.000250Z"


def test_naive_occurred_at_is_refused():
    event = Event.new("invoice.sent", "acme", example("invoice.sent"), occurred_at=datetime(2026, 11, 28, 14, 0))
    with pytest.raises(InvalidEventError, match="time zone"):
        event.to_bytes()


def test_event_round_trips_through_bytes_unchanged():
    event = Event.new("sales_order.created", "acme", example("sales_order.created"), correlation_id="req-9")
    assert parse_event(event.to_bytes()) == event
    assert Event.from_json(event.to_bytes().decode()) == event


def test_correlation_id_is_left_out_of_the_bytes_when_absent():
    event = Event.new("invoice.sent", "acme", example("invoice.sent"))
    assert "correlation_id" not in event.to_dict()
    assert parse_event(event.to_bytes()).correlation_id is None


# ids reach operators' terminals (`dlq show`, `deliveries show`): printable ASCII only, in code,
# since the published schemas' looser patterns are compatibility snapshots (README: Events)
@pytest.mark.parametrize("field", ["id", "tenant_id", "correlation_id"])
@pytest.mark.parametrize("value", ["ev\x1b]8;;https://evil.example/\x07x", "ev\x07", "ev\x00", "ev\x7f", "ev\x9b31m", "é", "a b"])
def test_an_envelope_id_with_a_control_or_non_ascii_character_is_refused(field, value):
    doc = Event.new("invoice.sent", "acme", example("invoice.sent"), correlation_id="req-1").to_dict() | {field: value}
    with pytest.raises(InvalidEventError) as refused:
        parse_event(orjson.dumps(doc))
    assert refused.value.field == field and refused.value.code == "envelope"
    assert str(refused.value).startswith(f"invoice.sent: {field} must be ")  # the schema's words, or the id rule's
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) for c in str(refused.value))  # the error shows it escaped
    event = Event.new("invoice.sent", "acme", example("invoice.sent"))
    with pytest.raises(InvalidEventError, match=f"^invoice.sent: {field} must be "):
        encode_event(dataclasses.replace(event, **{field: value}))


def test_every_printable_ascii_character_is_allowed_in_an_id():
    every = "".join(map(chr, range(0x21, 0x7F)))
    doc = Event.new("invoice.sent", "acme", example("invoice.sent")).to_dict() | {"id": every[:128], "correlation_id": every[-90:]}
    event = parse_event(orjson.dumps(doc))
    assert (event.id, event.correlation_id) == (every[:128], every[-90:])
