"""hookstream.delivery.worker: the per-endpoint metric series and caches follow the recent endpoints (fake
clock, MockTransport, fake producer and attempt log; no broker: this is bookkeeping)."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime

from prometheus_client import REGISTRY

from hookstream.delivery import metrics as m
from hookstream.delivery.breaker import BreakerConfig
from hookstream.delivery.offsets import PartitionOffsets
from hookstream.delivery.transport import HttpResponse, MockTransport
from hookstream.delivery.worker import SERIES_TTL, Worker
from hookstream.core.wire import DeliveryRecord, delivery_id
from hookstream.core.settings import Settings
from hookstream.subscriptions.models import Status, Subscription
from hookstream.core.secrets import Secret
from tests.fakes import FakeProducer

NOW = 1_800_000_000.0
TEMPLATE = Subscription(
    id="wm_0", tenant_id="acme", url="https://hooks.example.com/in", events=("*",), status=Status.ACTIVE,
    secrets=(Secret.generate(),), headers={}, created_at=datetime(2026, 11, 28, tzinfo=UTC),
    updated_at=datetime(2026, 11, 28, tzinfo=UTC), version=1,
)


class Table:
    """Every id is an active subscription unless deleted (made when asked for)."""

    def __init__(self) -> None:
        self.deleted: set[str] = set()

    def get(self, sub_id):
        return None if sub_id in self.deleted else dataclasses.replace(TEMPLATE, id=sub_id)


class FakeLog:
    def submit(self, values, on_durable) -> None:
        on_durable()


def record(sub_id: str, **kw) -> DeliveryRecord:
    event = {"id": "ev1", "type": "invoice.sent", "tenant_id": "acme", "occurred_at": "2026-11-28T12:00:00+00:00", "data": {}}
    return DeliveryRecord(
        delivery_id=delivery_id("ev1", sub_id), subscription_id=sub_id, tenant_id="acme", event_id="ev1",
        event_type="invoice.sent", occurred_at=event["occurred_at"], event=event, **kw,
    )


def make_worker(handler, now: list[float], breaker: BreakerConfig | None = None) -> Worker:
    w = Worker(Settings(retry_schedule=(1.0,)), table=Table(), engine=None, transport=MockTransport(handler), breaker_config=breaker)
    w.writer, w.producer = FakeLog(), FakeProducer()
    w.deliverer.clock = lambda: now[0]
    return w


async def process(w: Worker, rec: DeliveryRecord) -> None:
    part = PartitionOffsets()
    part.take(0)
    w.in_flight += 1
    await w._process(part, 0, rec, ("deliveries", 0))
    w.producer.poll(0)
    assert w.fatal is None and part.in_flight == 0, "the record's outcome was not made durable"


def exported(name: str, prefix: str) -> set[str]:
    return {
        s.labels["subscription_id"] for family in REGISTRY.collect() for s in family.samples
        if s.name == name and s.labels.get("subscription_id", "").startswith(prefix)
    }


def test_many_endpoints_leave_series_for_the_recent_ones_only():
    """20,000 endpoints (the deliverer's own test feeds 100,000; a worker's bookkeeping per
    delivery is heavier) with a 2 s window and a sweep every second: a bound of 3,000."""
    now = [NOW]
    w = make_worker(lambda *_: HttpResponse(204), now, BreakerConfig(window=2.0, pause=1.0, max_pause=1.0, probe_timeout=1.0))
    w.deliverer.sweep_every = 1.0
    window, every = w.deliverer.breakers.config.window, w.deliverer.sweep_every

    async def scenario() -> int:
        largest = 0
        for i in range(20_000):
            now[0] = NOW + i / 1000  # 1,000 new endpoints a second
            await process(w, record(f"wm_{i}"))
            largest = max(largest, len(w._breaker_shown))
        return largest

    largest = asyncio.run(scenario())
    assert largest <= (window + every) * 1000 + 1
    shown = exported("webhook_circuit_state", "wm_")
    assert shown == set(w._breaker_shown) and len(shown) <= largest  # the registry too, not only the cache
    assert "wm_19999" in shown and "wm_0" not in shown


def test_series_of_deleted_subscriptions_leave_the_registry():
    now = [NOW]
    w = make_worker(lambda url, *_: HttpResponse(410 if "gone" in url else 204), now)
    w.table.get = lambda sub_id, get=w.table.get: (
        None if sub_id in w.table.deleted else dataclasses.replace(get(sub_id), url=f"https://hooks.example.com/{sub_id}")
    )

    async def scenario() -> None:
        await process(w, record("del_ok"))
        await process(w, record("del_gone"))
        assert exported("webhook_circuit_state", "del_") == {"del_ok", "del_gone"}
        assert exported("hookstream_delivery_endpoint_gone_total", "del_") == {"del_gone"}
        w.table.deleted |= {"del_ok", "del_gone"}
        for sub_id in ("del_ok", "del_gone"):
            await process(w, record(sub_id, due_at=NOW))  # back from a retry tier: deleted, dropped

    asyncio.run(scenario())
    assert exported("webhook_circuit_state", "del_") == set()
    assert exported("hookstream_delivery_endpoint_gone_total", "del_") == set()


def test_an_open_circuit_stays_on_the_gauge_while_its_endpoint_is_idle():
    now = [NOW]
    w = make_worker(lambda *_: HttpResponse(503), now, BreakerConfig(min_requests=2, window=1.0))

    async def scenario() -> None:
        for step in (0.0, 1.0):
            now[0] = NOW + step
            await process(w, record("open_down"))
        now[0] = NOW + 600.0  # long idle; other endpoints' traffic runs the sweep
        w.deliverer._next_sweep = 0.0
        await process(w, record("open_other"))

    asyncio.run(scenario())
    assert exported("webhook_circuit_state", "open_") >= {"open_down"}
    assert w._breaker_shown["open_down"] == 1


def test_event_tenant_series_lookups_unused_for_two_ttls_are_dropped():
    w = make_worker(lambda *_: HttpResponse(204), [NOW])
    w._series_aged_at = t0 = 0.0  # (whole seconds: no float rounding at the edges)
    a, b = w._new_series("invoice.sent", "t_a"), w._new_series("invoice.sent", "t_b")
    w._age_series(t0 + SERIES_TTL)
    assert w._new_series("invoice.sent", "t_a") is a  # used again: back in the current generation, same children
    w._age_series(t0 + 2 * SERIES_TTL)
    assert set(w._series) == set() and set(w._series_old) == {("invoice.sent", "t_a")}
    w._age_series(t0 + 3 * SERIES_TTL)
    assert not w._series and not w._series_old
    assert w._new_series("invoice.sent", "t_b") is not b
