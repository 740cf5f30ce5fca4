"""The stream worker's output batch: a full producer queue is waited out on the event loop without
blocking it, and every produce error (in produce() or in the delivery report) fails the batch."""

import asyncio
import types

import pytest
from confluent_kafka import KafkaError

from hookstream.core.errors import BrokerError
from hookstream.streams.app import Batch
from tests.fakes import FakeProducer


def _batch(producer):
    loop = asyncio.get_running_loop()
    return Batch(types.SimpleNamespace(producer=producer, loop=loop), loop)


async def _ticking(ticks: list) -> None:
    for _ in range(10_000):  # bounded: a stand-in for the consumer's heartbeats
        ticks.append(1)
        await asyncio.sleep(0)


async def test_a_full_queue_keeps_records_in_order_and_is_waited_out_without_blocking_the_loop():
    producer = FakeProducer(full=5)
    batch = _batch(producer)
    for n in range(3):
        batch.send("deliveries", f"k{n}".encode(), f"v{n}".encode())
    assert producer.produced == [] and len(batch.backlog) == 3  # nothing overtakes the first waiting record
    ticks: list = []
    heartbeat = asyncio.ensure_future(_ticking(ticks))
    await asyncio.wait_for(batch.drain_backlog(), 10)
    heartbeat.cancel()
    assert ticks, "the event loop was blocked while the queue was full"
    assert [(k, v) for _, k, v in producer.produced] == [(b"k0", b"v0"), (b"k1", b"v1"), (b"k2", b"v2")]
    durable = batch.close()
    producer.poll()
    await asyncio.wait_for(durable, 10)  # every record acknowledged


async def test_a_record_refused_by_produce_fails_the_batch():
    producer = FakeProducer(refuse_keys={b"big"})
    batch = _batch(producer)
    batch.send("deliveries", b"ok", b"v")
    batch.send("deliveries", b"big", b"v")
    durable = batch.close()
    producer.poll()
    with pytest.raises(BrokerError, match="1 delivery record\\(s\\) refused by the broker: \\['deliveries: Broker: Message size too large'\\]"):
        await asyncio.wait_for(durable, 10)


async def test_a_failed_delivery_report_fails_the_batch():
    producer = FakeProducer(fail_keys={b"bad"}, error=KafkaError.MSG_SIZE_TOO_LARGE)
    batch = _batch(producer)
    for key in (b"a", b"bad", b"b"):
        batch.send("deliveries", key, b"v")
    durable = batch.close()
    await asyncio.to_thread(producer.poll)  # reports arrive on another thread, as from the poll thread
    with pytest.raises(BrokerError, match="1 delivery record"):
        await asyncio.wait_for(durable, 10)
