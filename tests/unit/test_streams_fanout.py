"""hookstream.streams.fanout: who gets a delivery record for an event, by example and by property."""

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from hookstream.core.wire import DeliveryRecord, delivery_id
from hookstream.subscriptions.filters import matches
from hookstream.streams.fanout import deliveries_for, invalid_record

TYPES = [
    "payment.received", "payment.failed", "customer.created", "customer.updated",
    "sales_order.created", "sales_order.confirmed", "sales_order.cancelled",
    "invoice.created", "invoice.sent", "invoice.authorized", "invoice.rejected", "invoice.cancelled",
]
FILTERS = ["*", "payment.*", "customer.*", "sales_order.*", "invoice.*", *TYPES]


@dataclasses.dataclass(frozen=True)
class Sub:
    id: str
    tenant_id: str
    events: tuple[str, ...]
    status: str = "active"

    @property
    def active(self) -> bool:
        return self.status == "active"


@dataclasses.dataclass(frozen=True)
class Ev:
    id: str
    type: str
    tenant_id: str
    occurred_at: str = "2026-11-28T12:00:00Z"


def envelope(ev: Ev) -> dict:
    return {"id": ev.id, "type": ev.type, "tenant_id": ev.tenant_id, "occurred_at": ev.occurred_at, "data": {}}


def test_exact_prefix_and_star_filters_select_and_disabled_ones_do_not():
    subs = [
        Sub("s-exact", "a", ("payment.received",)),
        Sub("s-prefix", "a", ("invoice.*",)),
        Sub("s-star", "a", ("*",)),
        Sub("s-disabled", "a", ("*",), status="disabled"),
        Sub("s-other-type", "a", ("customer.created",)),
    ]
    ev = Ev("e1", "payment.received", "a")
    got = {r.subscription_id for r in deliveries_for(ev, envelope(ev), subs)}
    assert got == {"s-exact", "s-star"}
    ev2 = Ev("e2", "invoice.sent", "a")
    assert {r.subscription_id for r in deliveries_for(ev2, envelope(ev2), subs)} == {"s-prefix", "s-star"}


def test_record_carries_event_and_deterministic_id_but_no_secret():
    ev = Ev("e1", "payment.received", "a")
    (rec,) = deliveries_for(ev, envelope(ev), [Sub("s1", "a", ("*",))])
    assert rec.delivery_id == delivery_id("e1", "s1") == deliveries_for(ev, envelope(ev), [Sub("s1", "a", ("*",))])[0].delivery_id
    assert rec.delivery_id != delivery_id("e1", "s2") != delivery_id("e2", "s1")
    assert rec.event == envelope(ev) and rec.attempt == 0
    assert b"whsec_" not in rec.to_bytes() and b"secret" not in rec.to_bytes()
    assert DeliveryRecord.from_bytes(rec.to_bytes()) == rec


tenants = st.sampled_from(["acme", "globex", "initech"])
subs_strategy = st.lists(
    st.builds(
        Sub,
        id=st.uuids().map(str),
        tenant_id=tenants,
        events=st.lists(st.sampled_from(FILTERS), min_size=1, max_size=3).map(tuple),
        status=st.sampled_from(["active", "disabled"]),
    ),
    max_size=12,
)
events_strategy = st.builds(Ev, id=st.uuids().map(str), type=st.sampled_from(TYPES), tenant_id=tenants)


@given(subs=subs_strategy, ev=events_strategy)
def test_never_a_cross_tenant_record_and_exactly_the_matching_active_ones(subs, ev):
    records = deliveries_for(ev, envelope(ev), subs)
    assert all(r.tenant_id == ev.tenant_id for r in records)
    by_id = {s.id: s for s in subs}
    assert all(by_id[r.subscription_id].tenant_id == ev.tenant_id for r in records)
    expected = {s.id for s in subs if s.tenant_id == ev.tenant_id and s.active and matches(s.events, ev.type)}
    assert {r.subscription_id for r in records} == expected
    assert len({r.delivery_id for r in records}) == len(records)


def test_invalid_record_keeps_the_reason_and_the_original_bytes():
    import base64

    import orjson

    rec = orjson.loads(invalid_record(b"\xff not json", "not JSON", topic="events.payment", partition=2, offset=41, key=b"k"))
    assert rec["reason"] == "not JSON"
    assert (rec["topic"], rec["partition"], rec["offset"]) == ("events.payment", 2, 41)
    assert base64.b64decode(rec["value_b64"]) == b"\xff not json"
    assert base64.b64decode(rec["key_b64"]) == b"k"


def test_invalid_record_of_a_value_too_large_to_carry_keeps_a_reference_and_an_excerpt():
    import base64
    import os

    import orjson

    from hookstream.streams.fanout import EXCERPT_BYTES, INVALID_VALUE_MAX

    value = os.urandom(INVALID_VALUE_MAX + 1)
    raw = invalid_record(value, "too_large: ...", topic="events.invoice", partition=5, offset=7, key=b"inv_1", code="too_large")
    rec = orjson.loads(raw)
    assert len(raw) < 4 * EXCERPT_BYTES  # not the value, whatever its size
    assert (rec["topic"], rec["partition"], rec["offset"], rec["code"]) == ("events.invoice", 5, 7, "too_large")
    assert rec["value_b64"] is None and rec["value_bytes"] == len(value)
    assert base64.b64decode(rec["value_excerpt_b64"]) == value[:EXCERPT_BYTES]
    whole = orjson.loads(invalid_record(value[:INVALID_VALUE_MAX], "x", topic="t", partition=0, offset=0, key=None))
    assert base64.b64decode(whole["value_b64"]) == value[:INVALID_VALUE_MAX] and "value_excerpt_b64" not in whole


def test_invalid_record_of_a_key_too_large_to_carry_keeps_an_excerpt():
    import base64
    import os

    import orjson

    from hookstream.streams.fanout import EXCERPT_BYTES, INVALID_KEY_MAX, INVALID_VALUE_MAX

    key, value = os.urandom(INVALID_KEY_MAX + 1), os.urandom(INVALID_VALUE_MAX)
    raw = invalid_record(value, "not JSON", topic="events.payment", partition=0, offset=3, key=key)
    rec = orjson.loads(raw)
    assert rec["key_b64"] is None and rec["key_bytes"] == len(key)
    assert base64.b64decode(rec["key_excerpt_b64"]) == key[:EXCERPT_BYTES]
    assert base64.b64decode(rec["value_b64"]) == value
    assert len(raw) < 1_000_000  # librdkafka's default message.max.bytes, below the broker's 1 MiB
    big = invalid_record(os.urandom(INVALID_VALUE_MAX), "x", topic="t", partition=0, offset=0, key=os.urandom(INVALID_KEY_MAX))
    assert len(big) < 1_000_000  # the largest record carried whole
