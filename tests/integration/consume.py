"""An independent consumer for integration tests: reads topics from the start with its own group."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable

from confluent_kafka import Consumer, KafkaException

from hookstream.core.kafka import consumer_config
from hookstream.core.settings import Settings


class TopicReader:
    """Reads the given (base) topics from the beginning; ``read_until`` collects messages."""

    def __init__(self, settings: Settings, base_topics: Iterable[str]) -> None:
        self.consumer = Consumer(consumer_config(settings, f"reader-{uuid.uuid4().hex[:8]}", **{"log_level": 3}))
        self.consumer.subscribe([settings.topic(t) for t in base_topics])
        self.messages: list = []

    def read_until(self, done: Callable[[list], bool], timeout: float = 30.0, idle: float | None = None) -> list:
        """Poll until ``done(messages)`` holds, or ``idle`` seconds pass with nothing new, or ``timeout``."""
        deadline = time.monotonic() + timeout
        last_new = time.monotonic()
        while time.monotonic() < deadline and not done(self.messages):
            if idle is not None and time.monotonic() - last_new > idle:
                break
            for msg in self.consumer.consume(500, timeout=0.2):
                if msg.error():
                    raise KafkaException(msg.error())
                self.messages.append(msg)
                last_new = time.monotonic()
        return self.messages

    def close(self) -> None:
        self.consumer.close()

    def __enter__(self) -> "TopicReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
