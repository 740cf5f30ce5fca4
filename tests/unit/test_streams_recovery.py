"""hookstream.streams.recovery over a fake reader and producer: a window re-fanned to one
subscription gives exactly the records the stream worker's fan-out gives it, marked as a
recovery (tests/integration/test_dead_letters.py and test_recovery_hostile_events.py run it
against the real broker)."""

from __future__ import annotations

import dataclasses
import types
from datetime import UTC, datetime

import pytest

from hookstream.core.errors import ValidationError
from hookstream.core.settings import Settings
from hookstream.core.wire import DeliveryRecord
from hookstream.schemas import Event, example
from hookstream.streams import recovery
from hookstream.streams.fanout import deliveries_for
from hookstream.subscriptions.models import Status, Subscription
from tests.fakes import FakeProducer

SETTINGS = Settings.from_env({"HOOKSTREAM_TOPIC_PREFIX": "t."})
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def _sub(**kw) -> Subscription:
    fields = dict(id="sub_target", tenant_id="acme", url="https://hooks.example.com/in", events=("payment.*",),
                  status=Status.ACTIVE, secrets=(), created_at=T0, updated_at=T0, version=1)
    return Subscription(**(fields | kw))


class Msg:
    def __init__(self, value: bytes, offset: int) -> None:
        self._v, self._o = value, offset

    def value(self): return self._v
    def partition(self): return 0
    def offset(self): return self._o


@pytest.fixture
def window(monkeypatch):
    """Topic -> the values recovery reads from it; what it asked for is in ``window.asked``."""
    topics: dict[str, list[bytes]] = {}
    asked: list[tuple[str, dict]] = []

    def read_range(settings, topic, **kw):
        asked.append((topic, kw))
        return [Msg(v, n) for n, v in enumerate(topics.get(topic, []))]

    monkeypatch.setattr(recovery, "read_range", read_range)
    return types.SimpleNamespace(topics=topics, asked=asked)


@pytest.fixture
def producer(monkeypatch) -> FakeProducer:
    fake = FakeProducer()
    monkeypatch.setattr(recovery, "make_producer", lambda settings, **overrides: fake)
    return fake


def test_the_records_are_the_fan_outs_own_for_that_subscription_alone(window, producer):
    target, other = _sub(), _sub(id="sub_other", events=("*",))
    mine = Event.new("payment.received", "acme", example("payment.received"))
    theirs = Event.new("payment.received", "globex", example("payment.received"))
    unwanted = Event.new("payment.failed", "acme", example("payment.failed"))
    target = dataclasses.replace(target, events=("payment.received",))
    window.topics["t.events.payment"] = [mine.to_bytes(), b"not an event", theirs.to_bytes(), unwanted.to_bytes()]

    report = recovery.recover(SETTINGS, target, since=100.0, until=200.0)

    assert (report.scanned, report.queued, report.skipped_invalid) == (4, 1, 1)
    expected = [dataclasses.replace(r, replay_of="recovery") for r in deliveries_for(mine, mine.to_dict(), [target, other])
                if r.subscription_id == target.id]
    assert [(t, k, DeliveryRecord.from_bytes(v)) for t, k, v in producer.produced] == [
        ("t.deliveries", b"sub_target", rec) for rec in expected
    ]


def test_only_the_event_topics_its_filters_select_are_read_in_the_window(window, producer):
    recovery.recover(SETTINGS, _sub(events=("invoice.sent", "customer.*")), since=100.0, until=200.0)
    assert sorted(topic for topic, _ in window.asked) == ["t.events.customer", "t.events.invoice"]
    for _, kw in window.asked:
        assert kw["start"] == recovery.Time(100.0) and kw["end"] == recovery.Time(200.0) and kw["missing_ok"]


def test_a_dry_run_counts_without_producing(window, monkeypatch):
    monkeypatch.setattr(recovery, "make_producer", lambda settings, **overrides: pytest.fail("a dry run produced"))
    event = Event.new("payment.failed", "acme", example("payment.failed"))
    window.topics["t.events.payment"] = [event.to_bytes()]
    report = recovery.recover(SETTINGS, _sub(), since=100.0, until=200.0, dry_run=True)
    assert (report.scanned, report.queued) == (1, 1)


def test_a_disabled_subscription_or_an_empty_window_is_refused(window, producer):
    with pytest.raises(ValidationError, match="is disabled; enable it first"):
        recovery.recover(SETTINGS, _sub(status=Status.DISABLED), since=100.0, until=200.0)
    with pytest.raises(ValidationError, match="--until must be later than --since"):
        recovery.recover(SETTINGS, _sub(), since=200.0, until=200.0)
    assert window.asked == [] and producer.produced == []


def test_a_record_the_client_refuses_is_reported_and_the_rest_still_go(window, monkeypatch):
    small = Event.new("payment.received", "acme", example("payment.received"))
    big = Event.new("payment.failed", "acme", example("payment.failed"))  # 80 bytes more
    rec = dataclasses.replace(deliveries_for(small, small.to_dict(), [_sub()])[0], replay_of="recovery")
    fake = FakeProducer(max_bytes=len(b"sub_target") + len(rec.to_bytes()))  # the client refuses the larger one
    monkeypatch.setattr(recovery, "make_producer", lambda settings, **overrides: fake)
    window.topics["t.events.payment"] = [big.to_bytes(), small.to_bytes()]
    report = recovery.recover(SETTINGS, _sub(), since=100.0, until=200.0)
    assert report.queued == 1 and list(report.refused) == [big.id]
    assert [DeliveryRecord.from_bytes(v).event_id for _, _, v in fake.produced] == [small.id]
