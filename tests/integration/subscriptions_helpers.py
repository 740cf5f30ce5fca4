"""Helpers shared by the subscriptions integration tests (real broker, real databases)."""

from __future__ import annotations

import socket

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from hookstream.core.kafka import producer_config
from hookstream.core.settings import Settings
from hookstream.core.topics import SUBSCRIPTIONS, ensure_topics, topic_specs

PUBLIC = "93.184.215.14"


def public_dns(host: str, port: int) -> list[str]:
    return [PUBLIC]


def ensure_subscriptions_topic(settings: Settings) -> str:
    ensure_topics(settings, [s for s in topic_specs(settings) if s.name == SUBSCRIPTIONS])
    return settings.topic(SUBSCRIPTIONS)


def read_records(settings: Settings, timeout: float = 20.0) -> list[tuple[bytes, bytes | None]]:
    """Every (key, value) on the subscriptions topic, in order, read up to its current end."""
    topic = settings.topic(SUBSCRIPTIONS)
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka_bootstrap, "group.id": "unused-raw-reader", "enable.auto.commit": False,
         "enable.partition.eof": True, "log_level": 0}
    )
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=timeout)
        if high <= low:
            return []
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        out = []
        while True:
            msg = consumer.poll(timeout)
            assert msg is not None, f"no record from {topic} within {timeout}s"
            if msg.error():
                assert msg.error().code() == KafkaError._PARTITION_EOF, msg.error()
                if msg.offset() >= high:
                    return out
                continue
            out.append((msg.key(), msg.value()))
    finally:
        consumer.close()


def produce_raw(settings: Settings, records: list[tuple[bytes, bytes | None]]) -> None:
    producer = Producer(producer_config(settings))
    for key, value in records:
        producer.produce(settings.topic(SUBSCRIPTIONS), key=key, value=value)
    assert producer.flush(20) == 0


def dead_bootstrap() -> str:
    """A loopback address where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"127.0.0.1:{port}"
