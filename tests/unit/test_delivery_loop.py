"""hookstream.delivery.loop: the delivery worker's Kafka loop driven pass by pass with a fake consumer
and producer (no broker, no clock, no sleeps): pausing a tier partition whose head is not due,
resuming it, revoked and lost partitions, commit positions when records finish out of order, and a
producer that refuses a forward stopping the worker without committing past it. The real broker
is in tests/integration/test_delivery_worker*.py."""

from __future__ import annotations

import asyncio
import time
import types
from datetime import UTC, datetime

import orjson
import pytest
from confluent_kafka import KafkaError, TopicPartition
from prometheus_client import REGISTRY

from hookstream.core.errors import BrokerError
from hookstream.core.settings import Settings
from hookstream.core.wire import DeliveryRecord, delivery_id
from hookstream.delivery import loop as loop_module
from hookstream.delivery.loop import COMMIT_INTERVAL, HEALTH_INTERVAL, CommitRelay
from hookstream.delivery.transport import HttpResponse, MockTransport
from hookstream.delivery.worker import Worker
from tests.fakes import FakeMessage, FakeProducer

SETTINGS = Settings(retry_schedule=(5.0, 300.0), topic_prefix="t.")
MAIN = ("t.deliveries", 0)
TIER = ("t.deliveries.retry.1", 0)
SETTLE_ROUNDS = 200  # event-loop turns a test waits for the records' tasks, at most


class Message(FakeMessage):
    def error(self):
        return None


class FakeConsumer:
    """Stands in for confluent_kafka.Consumer: one log per partition and a position in it;
    ``consume`` serves the rebalance callbacks first (librdkafka calls them from inside a poll),
    then returns records of the assigned, unpaused partitions from their positions. ``commits``
    holds every commit as {(topic, partition): offset}."""

    def __init__(self) -> None:
        self.logs: dict[tuple[str, int], list[Message]] = {}
        self.pos: dict[tuple[str, int], int] = {}
        self.assigned: list[tuple[str, int]] = []
        self.paused: set[tuple[str, int]] = set()
        self.seeks: list[tuple[str, int, int]] = []
        self.commits: list[tuple[dict[tuple[str, int], int], bool]] = []
        self.stale: list[Message] = []  # fetched before a rebalance, returned by the next consume
        self.pending: list[tuple[str, list[TopicPartition]]] = []
        self.callbacks: dict = {}
        self.closed = False

    # what the test does (the broker's side)
    def append(self, tp: tuple[str, int], value: bytes, key: bytes = b"sub_1") -> int:
        log = self.logs.setdefault(tp, [])
        log.append(Message(tp[0], tp[1], len(log), key, value))
        return len(log) - 1

    def rebalance(self, kind: str, *tps: tuple[str, int]) -> None:
        self.pending.append((kind, [TopicPartition(t, p) for t, p in tps]))

    # the confluent_kafka.Consumer methods the loop uses
    def subscribe(self, topics, on_assign, on_revoke, on_lost) -> None:
        self.topics = topics
        self.callbacks = {"assign": on_assign, "revoke": on_revoke, "lost": on_lost}

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Message]:
        while self.pending:
            kind, tps = self.pending.pop(0)
            keys = [(p.topic, p.partition) for p in tps]
            if kind == "assign":
                self.assigned += keys
                for k in keys:
                    self.pos.setdefault(k, 0)
            else:
                self.assigned = [k for k in self.assigned if k not in keys]
            self.callbacks[kind](self, tps)
        out, self.stale = self.stale[:num_messages], self.stale[num_messages:]
        for tp in self.assigned:
            log = self.logs.get(tp, [])
            while tp not in self.paused and self.pos[tp] < len(log) and len(out) < num_messages:
                out.append(log[self.pos[tp]])
                self.pos[tp] += 1
        return out

    def pause(self, partitions) -> None:
        self.paused |= {(p.topic, p.partition) for p in partitions}

    def resume(self, partitions) -> None:
        self.paused -= {(p.topic, p.partition) for p in partitions}

    def seek(self, p) -> None:
        self.seeks.append((p.topic, p.partition, p.offset))
        self.pos[(p.topic, p.partition)] = p.offset

    def commit(self, offsets=None, asynchronous=True) -> None:
        self.commits.append(({(o.topic, o.partition): o.offset for o in offsets}, asynchronous))

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(*tp) for tp in self.assigned]

    def close(self) -> None:
        self.closed = True

    def committed_for(self, tp: tuple[str, int]) -> list[int]:
        return [c[tp] for c, _ in self.commits if tp in c]


class Writer:
    """The attempt-log writer: acknowledges each row at once, or (``hold``) when the test says."""

    alive = True
    error = None

    def __init__(self, *, hold: bool = False) -> None:
        self.hold = hold
        self.rows: list = []
        self.acks: list = []

    def submit(self, row, ack) -> None:
        self.rows.append(row)
        if self.hold:
            self.acks.append(ack)
        else:
            ack()

    def stop(self) -> None:
        pass


class Table:
    def __init__(self, *subs) -> None:
        self.subs = {s.id: s for s in subs}

    def get(self, sub_id):
        return self.subs.get(sub_id)


class Clock:
    """The loop's ``time`` module: wall time and monotonic time the test moves."""

    def __init__(self) -> None:
        self.now = time.time()
        self.mono = 1000.0

    def module(self):
        return types.SimpleNamespace(time=lambda: self.now, monotonic=lambda: self.mono)


def subscription(sub_id: str = "sub_1"):
    from hookstream.subscriptions.models import Status, Subscription
    from hookstream.core.secrets import Secret

    t = datetime(2026, 11, 28, tzinfo=UTC)
    return Subscription(id=sub_id, tenant_id="acme", url=f"https://hooks.example.com/{sub_id}", events=("*",),
                        status=Status.ACTIVE, secrets=(Secret.generate(),), created_at=t, updated_at=t, version=1)


def record(event_id: str, sub_id: str = "sub_1", *, due_at: float | None = None, attempt: int = 0) -> bytes:
    return DeliveryRecord(
        delivery_id=delivery_id(event_id, sub_id), subscription_id=sub_id, tenant_id="acme", event_id=event_id,
        event_type="invoice.sent", occurred_at="2026-11-28T12:00:00Z", event={"data": {}}, attempt=attempt,
        due_at=due_at,
    ).to_bytes()


@pytest.fixture
def clock(monkeypatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(loop_module, "time", c.module())
    return c


def make_worker(*, status=200, hold=False, producer=None, subs=("sub_1",)):
    consumer, commits = FakeConsumer(), CommitRelay()
    transport = MockTransport(lambda url, *_: HttpResponse(status(url) if callable(status) else status))
    w = Worker(SETTINGS, table=Table(*(subscription(s) for s in subs)), engine=None, consumer=consumer,
               producer=producer or FakeProducer(), commits=commits, writer=Writer(hold=hold), transport=transport)
    return w, consumer, transport


async def start(w: Worker, clock: Clock, *tps: tuple[str, int]) -> None:
    w.loop = asyncio.get_running_loop()
    w._subscribe()
    w._start_clock(clock.mono)
    w.consumer.rebalance("assign", *tps)


async def step(w: Worker, clock: Clock) -> None:
    """One pass of the loop with its commit and health check due, then the records' tasks run."""
    clock.mono += max(COMMIT_INTERVAL, HEALTH_INTERVAL)
    w._step(clock.mono)
    for _ in range(SETTLE_ROUNDS):  # bounded
        if not w._tasks:
            break
        await asyncio.sleep(0)  # a turn of the event loop, not a wait
    assert not w._tasks, "the records' tasks did not finish"


async def test_records_finishing_out_of_order_are_committed_only_up_to_the_lowest_unfinished(clock):
    w, consumer, transport = make_worker(hold=True)
    for n in range(3):
        consumer.append(MAIN, record(f"ev{n}"))
    await start(w, clock, MAIN)
    await step(w, clock)
    assert len(transport.requests) == 3 and len(w.writer.acks) == 3 and w.in_flight == 3
    first, second, third = w.writer.acks
    third()
    second()  # offsets 1 and 2 are durable, 0 is not
    await step(w, clock)
    assert max(consumer.committed_for(MAIN), default=0) == 0
    first()
    await step(w, clock)
    assert consumer.committed_for(MAIN)[-1] == 3 and w.in_flight == 0
    consumer.commits.clear()
    await step(w, clock)
    assert consumer.commits == []  # nothing new: nothing committed again


async def test_a_failed_commit_is_offered_again(clock):
    w, consumer, _ = make_worker()
    consumer.append(MAIN, record("ev0"))
    await start(w, clock, MAIN)
    await step(w, clock)
    await step(w, clock)
    assert consumer.committed_for(MAIN) == [0, 1]  # the first pass committed before the record finished
    consumer.commits.clear()
    w._on_commit(KafkaError(KafkaError.REQUEST_TIMED_OUT), [TopicPartition(*MAIN, 1)])
    await step(w, clock)
    assert consumer.committed_for(MAIN) == [1]


async def test_a_tier_partition_whose_head_is_not_due_is_paused_and_resumed_at_the_due_time(clock):
    w, consumer, transport = make_worker()
    head = consumer.append(TIER, record("ev_tier", due_at=clock.now + 100, attempt=1))
    consumer.append(TIER, record("ev_tier_next", due_at=clock.now + 100, attempt=1))
    consumer.append(MAIN, record("ev_main"))
    await start(w, clock, MAIN, TIER)
    await step(w, clock)
    # the tier waits (paused, its position back at the head); the main topic flows meanwhile
    assert TIER in consumer.paused and (*TIER, head) in consumer.seeks and TIER in w.due_paused
    assert [r[0] for r in transport.requests] == ["https://hooks.example.com/sub_1"] and w.in_flight == 0
    handle = w.due_paused[TIER]
    assert 99 <= handle.when() - w.loop.time() <= 100  # the timer is set for the due time, not polled
    assert all(o <= head for o in consumer.committed_for(TIER))  # never past the head not taken
    await step(w, clock)
    assert len(transport.requests) == 1  # still paused: nothing taken
    clock.now += 100  # the due time comes; the timer fires
    handle.cancel()
    w._resume_due(TIER, w.parts[TIER])
    assert TIER not in consumer.paused and TIER not in w.due_paused and consumer.seeks[-1] == (*TIER, head)
    await step(w, clock)
    await step(w, clock)
    assert len(transport.requests) == 3 and w.in_flight == 0
    assert consumer.committed_for(TIER)[-1] == 2


async def test_a_revoked_partition_commits_only_what_is_durable_and_drops_its_unfinished_work(clock):
    w, consumer, transport = make_worker(hold=True)
    for n in range(3):
        consumer.append(MAIN, record(f"ev{n}"))
    paused_head = consumer.append(TIER, record("ev_tier", due_at=clock.now + 100, attempt=1))
    await start(w, clock, MAIN, TIER)
    await step(w, clock)
    first, second, third = w.writer.acks
    first()
    third()  # offset 1 is still in flight when the partitions are revoked
    handle = w.due_paused[TIER]
    consumer.commits.clear()
    consumer.rebalance("revoke", MAIN, TIER)
    consumer.stale.append(Message(*MAIN, 3, b"sub_1", record("ev3")))  # fetched before the revoke
    await step(w, clock)
    # the revoke committed synchronously up to the unfinished offset, and nothing past it ever after
    revoke_commit, asynchronous = consumer.commits[0]
    assert revoke_commit[MAIN] == 1 and revoke_commit[TIER] <= paused_head and asynchronous is False
    assert MAIN not in w.parts and TIER not in w.parts and TIER not in w.due_paused and handle.cancelled()
    assert len(transport.requests) == 3  # the record fetched before the revoke was not taken
    second()  # finishes late, on a partition this worker no longer owns
    await step(w, clock)
    assert consumer.committed_for(MAIN) == [1] and len(consumer.commits) == 1


async def test_lost_partitions_commit_nothing(clock):
    w, consumer, _ = make_worker(hold=True)
    for n in range(2):
        consumer.append(MAIN, record(f"ev{n}"))
    await start(w, clock, MAIN)
    await step(w, clock)
    w.writer.acks[0]()  # offset 0 durable, 1 not
    consumer.commits.clear()
    consumer.rebalance("lost", MAIN)
    await step(w, clock)
    assert MAIN not in w.parts
    w.writer.acks[1]()
    await step(w, clock)
    assert consumer.commits == []  # a lost partition is someone else's already: not even the durable part


async def test_a_reassigned_partition_starts_afresh(clock):
    w, consumer, transport = make_worker()
    consumer.append(MAIN, record("ev0"))
    await start(w, clock, MAIN)
    await step(w, clock)
    old = w.parts[MAIN]
    consumer.rebalance("revoke", MAIN)
    consumer.rebalance("assign", MAIN)
    consumer.append(MAIN, record("ev1"))
    await step(w, clock)
    await step(w, clock)
    assert w.parts[MAIN] is not old and len(transport.requests) == 2 and consumer.committed_for(MAIN)[-1] == 2


async def test_a_tier_partition_paused_until_due_is_retried_after_a_rebalance_hands_it_back(clock):
    """librdkafka keeps a pause across revoke and re-assign (the fake does too); the resume timer
    goes with the revoke, so the new assignment must not inherit the pause (found by the fault suite)."""
    w, consumer, transport = make_worker()
    head = consumer.append(TIER, record("ev_tier", due_at=clock.now + 100, attempt=1))
    await start(w, clock, TIER)
    await step(w, clock)
    assert TIER in consumer.paused and TIER in w.due_paused and transport.requests == []
    consumer.rebalance("revoke", TIER)
    consumer.rebalance("assign", TIER)
    consumer.pos[TIER] = head  # the group's committed position: never past the head not taken
    await step(w, clock)
    assert TIER in consumer.paused and TIER in w.due_paused  # paused again, by the new owner's timer
    clock.now += 100
    handle = w.due_paused[TIER]
    handle.cancel()
    w._resume_due(TIER, w.parts[TIER])
    await step(w, clock)
    await step(w, clock)
    assert len(transport.requests) == 1 and consumer.committed_for(TIER)[-1] == head + 1


async def test_the_loop_stops_taking_records_at_the_in_flight_bound(clock):
    w, consumer, transport = make_worker(hold=True)
    w.concurrency = 2
    for n in range(5):
        consumer.append(MAIN, record(f"ev{n}"))
    await start(w, clock, MAIN)
    await step(w, clock)
    assert w.in_flight == 2 and len(transport.requests) == 2 and consumer.pos[MAIN] == 2
    for ack in list(w.writer.acks):
        ack()
    await step(w, clock)
    assert len(transport.requests) == 4


async def test_a_forward_the_broker_refuses_stops_the_worker_without_committing_past_it():
    failures = REGISTRY.get_sample_value("hookstream_delivery_worker_failures_total", {"kind": "kafka"}) or 0.0
    producer = FakeProducer(fail_keys={b"sub_down"}, error=KafkaError._MSG_TIMED_OUT)
    w, consumer, transport = make_worker(status=lambda url: 500 if url.endswith("sub_down") else 200, producer=producer,
                                         subs=("sub_1", "sub_down"))
    consumer.append(MAIN, record("ev0"))
    refused = consumer.append(MAIN, record("ev1", "sub_down"), key=b"sub_down")  # a 500: forwarded to tier 1, refused
    consumer.append(MAIN, record("ev2"))
    consumer.rebalance("assign", MAIN)
    stop = asyncio.Event()
    with pytest.raises(BrokerError, match="Kafka failed: .*stopped, records in flight will be delivered again"):
        await asyncio.wait_for(w.run(stop), 30)
    assert [t for t, _k, _v in producer.produced] == ["t.deliveries.retry.1"]
    assert consumer.committed_for(MAIN) and max(consumer.committed_for(MAIN)) <= refused
    assert consumer.closed and not stop.is_set()
    assert REGISTRY.get_sample_value("hookstream_delivery_worker_failures_total", {"kind": "kafka"}) == failures + 1
    assert len(transport.requests) == 3


async def test_a_forward_acknowledged_finishes_the_record(clock):
    producer = FakeProducer()
    w, consumer, _ = make_worker(status=500, producer=producer)
    consumer.append(MAIN, record("ev0"))
    await start(w, clock, MAIN)
    await step(w, clock)
    assert w.in_flight == 1 and consumer.committed_for(MAIN) == [0]  # the forward is not acknowledged yet
    await step(w, clock)  # the pass polls the producer: the report arrives
    await step(w, clock)
    forwarded = orjson.loads(producer.produced[0][2])
    assert forwarded["attempt"] == 1 and forwarded["due_at"] is not None
    assert w.in_flight == 0 and consumer.committed_for(MAIN)[-1] == 1
