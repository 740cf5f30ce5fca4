"""Kafka client settings and clients, shared by every part of the pipeline.

One place decides how hookstream talks to Kafka, so producers, workers and tools agree:
idempotent producers with ``acks=all``; consumers that never auto-commit (offsets are committed
only after the outcome is durable: at-least-once everywhere). ``make_producer``,
``make_consumer`` and ``make_admin`` build the clients from those configurations; a caller
passes only what differs for it (``client.id``, timeouts) as overrides, with the dotted
librdkafka names: ``make_producer(settings, **{"client.id": "hookstream-x"})``.
"""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from hookstream.core.settings import Settings


def admin_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    return {"bootstrap.servers": settings.kafka_bootstrap, "log_level": 3, **overrides}


def producer_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """confluent-kafka producer: idempotent, every in-sync replica acknowledges, small linger."""
    return {
        "bootstrap.servers": settings.kafka_bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        "client.id": "hookstream",
        **overrides,
    }


def consumer_config(settings: Settings, group_id: str, **overrides: Any) -> dict[str, Any]:
    """confluent-kafka consumer: manual commits only, read committed data, start at the earliest."""
    return {
        "bootstrap.servers": settings.kafka_bootstrap,
        "group.id": group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "partition.assignment.strategy": "cooperative-sticky",
        "client.id": "hookstream",
        **overrides,
    }


def make_producer(settings: Settings, **overrides: Any) -> Producer:
    """A producer with ``producer_config`` (idempotent, ``acks=all``) and ``overrides``."""
    return Producer(producer_config(settings, **overrides))


def make_consumer(settings: Settings, group_id: str, **overrides: Any) -> Consumer:
    """A consumer with ``consumer_config`` (manual commits, read committed) and ``overrides``."""
    return Consumer(consumer_config(settings, group_id, **overrides))


def make_admin(settings: Settings, **overrides: Any) -> AdminClient:
    return AdminClient(admin_config(settings, **overrides))


def produce_one(producer: Producer, topic: str, key: bytes, value: bytes, on_delivery, *, wait: float = 60.0) -> str | None:
    """Produce one record from a command-line tool; None, or why the client refused it at once
    (``message.max.bytes``, say). A full queue is waited out (the tool has nothing else to do),
    for ``wait`` seconds at most."""
    deadline = time.monotonic() + wait
    while True:
        try:
            producer.produce(topic, value, key, on_delivery=on_delivery)
        except BufferError:
            if time.monotonic() > deadline:
                return "the producer's queue stayed full"
            producer.poll(0.1)
            continue
        except KafkaException as exc:
            return exc.args[0].str()
        producer.poll(0)
        return None
