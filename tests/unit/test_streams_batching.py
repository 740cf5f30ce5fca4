"""hookstream.streams.app.run_batches: the stream agent's batching, driven with a fake producer and a
fake stream (no broker, no Faust, no sleeps). A batch's events are acked only once the broker
acknowledged every record of it, batches in order; a batch the broker refuses stops the worker and
neither it nor any batch after it is acked. The real broker is in tests/integration/test_streams_worker*.py."""

from __future__ import annotations

import asyncio
import types

from confluent_kafka import KafkaError, KafkaException

from hookstream.core.errors import BrokerError
from hookstream.core.settings import Settings
from hookstream.streams.app import RecordSink, run_batches

SETTLE_ROUNDS = 200  # event-loop turns a test waits for the agent, at most


class Producer:
    """confluent_kafka.Producer as the sink uses it: every report is held until the test delivers
    it (``deliver``), as the broker acknowledges when it will; ``refuse`` makes produce() raise."""

    def __init__(self, *, refuse: frozenset = frozenset()) -> None:
        self.held: dict[bytes, object] = {}
        self.refuse = refuse

    def produce(self, topic, value, key=None, on_delivery=None):
        if key in self.refuse:
            raise KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
        self.held[key] = on_delivery

    def deliver(self, *keys: bytes, error: int | None = None) -> None:
        for key in keys:
            err = KafkaError(error) if error is not None else None
            msg = types.SimpleNamespace(topic=lambda: "deliveries")
            self.held.pop(key)(err, msg)


class Handler:
    """EventHandler's contract: one event in, its records sent to the batch (here: one per event,
    keyed by the event's value); an event ``b"bug"`` raises (a bug not even set aside)."""

    def handle(self, message, batch) -> None:
        if message.value == b"bug":
            raise RuntimeError("a bug")
        batch.send("deliveries", message.value, b"record of " + message.value)


def events(*values: bytes) -> list:
    return [types.SimpleNamespace(message=types.SimpleNamespace(value=v)) for v in values]


class Agent:
    """The agent running ``run_batches`` over batches the test hands it one by one."""

    def __init__(self, producer: Producer) -> None:
        self.sink = RecordSink(Settings(), producer=producer)
        self.sink.loop = asyncio.get_running_loop()  # reports come on the loop here (no poll thread)
        self.batches: asyncio.Queue = asyncio.Queue()
        self.acked: list[bytes] = []
        self.stopped: list[Exception] = []
        self.task = asyncio.ensure_future(run_batches(self._batches(), Handler(), self.sink, self._ack, self.stopped.append))

    async def _batches(self):
        while (batch := await self.batches.get()) is not None:
            yield batch

    async def _ack(self, event) -> None:
        self.acked.append(event.message.value)

    async def take(self, *values: bytes) -> None:
        await self.batches.put(events(*values))
        await settle()

    async def end(self) -> None:
        await self.batches.put(None)
        await asyncio.wait_for(self.task, 10)


async def settle() -> None:
    for _ in range(SETTLE_ROUNDS):  # bounded turns of the event loop, no waiting on a clock
        await asyncio.sleep(0)


async def test_a_batch_is_acked_only_when_the_broker_acknowledged_every_record():
    producer = Producer()
    agent = Agent(producer)
    await agent.take(b"e1", b"e2", b"e3")
    assert set(producer.held) == {b"e1", b"e2", b"e3"} and agent.acked == []
    producer.deliver(b"e1", b"e3")
    await settle()
    assert agent.acked == []  # e2 is not acknowledged yet: none of the batch is acked
    producer.deliver(b"e2")
    await settle()
    assert agent.acked == [b"e1", b"e2", b"e3"] and agent.stopped == []
    await agent.end()


async def test_batches_are_acked_in_order_while_the_next_is_taken():
    producer = Producer()
    agent = Agent(producer)
    await agent.take(b"a1", b"a2")
    await agent.take(b"b1")  # taken while the first batch waits for the broker
    assert set(producer.held) == {b"a1", b"a2", b"b1"}
    producer.deliver(b"b1")  # the later batch is durable first
    await settle()
    assert agent.acked == []
    producer.deliver(b"a1", b"a2")
    await settle()
    assert agent.acked == [b"a1", b"a2", b"b1"]
    await agent.end()


async def test_a_refused_batch_stops_the_worker_and_nothing_from_it_on_is_acked():
    producer = Producer()
    agent = Agent(producer)
    await agent.take(b"ok")
    producer.deliver(b"ok")
    await settle()
    await agent.take(b"c1", b"c2")
    await agent.take(b"d1")
    producer.deliver(b"d1")  # the batch after the refused one is durable: still never acked
    producer.deliver(b"c1")
    producer.deliver(b"c2", error=KafkaError._MSG_TIMED_OUT)
    await settle()
    assert agent.acked == [b"ok"]
    assert len(agent.stopped) == 1 and isinstance(agent.stopped[0], BrokerError)
    assert "1 delivery record(s) refused by the broker" in str(agent.stopped[0])
    await agent.take(b"e1")  # the agent takes no more once stopping
    assert b"e1" not in producer.held
    await asyncio.wait_for(agent.task, 10)
    assert agent.acked == [b"ok"]


async def test_a_record_refused_by_produce_stops_the_worker():
    producer = Producer(refuse=frozenset({b"big"}))
    agent = Agent(producer)
    await agent.take(b"f1", b"big")
    producer.deliver(b"f1")
    await settle()
    assert agent.acked == [] and len(agent.stopped) == 1 and isinstance(agent.stopped[0], BrokerError)
    await agent.end()
    assert agent.acked == []


async def test_an_event_that_cannot_even_be_set_aside_stops_the_worker_without_acking_its_batch():
    producer = Producer()
    agent = Agent(producer)
    await agent.take(b"g1", b"bug")
    assert len(agent.stopped) == 1 and isinstance(agent.stopped[0], RuntimeError)
    assert agent.task.done()  # the agent took no more
    producer.deliver(b"g1")
    await settle()
    assert agent.acked == []
