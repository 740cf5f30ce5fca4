"""Records really travel through the broker with both client libraries the pipeline uses."""

import asyncio
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from hookstream.core.kafka import consumer_config, producer_config


def _create(settings, name, partitions=3):
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[name].result(30)


def test_confluent_kafka_round_trip_with_manual_commit(settings, group_id):
    topic = settings.topic("roundtrip")
    _create(settings, topic)
    producer = Producer(producer_config(settings))
    sent = {f"k{i}".encode(): uuid.uuid4().bytes for i in range(50)}
    for key, value in sent.items():
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0

    consumer = Consumer(consumer_config(settings, group_id))
    consumer.subscribe([topic])
    got = {}
    try:
        while len(got) < len(sent):
            msg = consumer.poll(10)
            assert msg is not None, f"only {len(got)} of {len(sent)} records arrived"
            assert msg.error() is None, msg.error()
            got[msg.key()] = msg.value()
            consumer.commit(msg, asynchronous=False)
    finally:
        consumer.close()
    assert got == sent

    # the committed offsets survive: a new member of the same group reads nothing more
    again = Consumer(consumer_config(settings, group_id))
    again.subscribe([topic])
    try:
        assert again.poll(3) is None
    finally:
        again.close()


def test_aiokafka_round_trip(settings, group_id):
    topic = settings.topic("aio")
    _create(settings, topic, partitions=2)

    async def run():
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=True, acks="all")
        await producer.start()
        try:
            for i in range(20):
                await producer.send_and_wait(topic, key=b"same-entity", value=str(i).encode())
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=settings.kafka_bootstrap, group_id=group_id,
            auto_offset_reset="earliest", enable_auto_commit=False,
        )
        await consumer.start()
        values = []
        try:
            while len(values) < 20:
                batch = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 20)
                for records in batch.values():
                    values += [int(r.value) for r in records]
            await consumer.commit()
        finally:
            await consumer.stop()
        return values

    # one key -> one partition -> the order it was sent in
    assert asyncio.run(run()) == list(range(20))
