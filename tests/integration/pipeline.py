"""Helpers for tests that run pipeline workers as real processes against the real broker."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from hookstream.core.settings import Settings


class WorkerProcess:
    """``python -m hookstream <args>`` as a child process, its output in a log file."""

    def __init__(self, env: dict[str, str], args: list[str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hookstream", *args], env=env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no final commit."""
        if self.alive:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        self._log.close()

    def stop(self, timeout: float = 30.0) -> int:
        if self.alive:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
            raise AssertionError(f"worker did not stop within {timeout}s; log: {self.log_path.read_text()[-2000:]}")
        finally:
            self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def worker(env: dict[str, str], args: list[str], log_path: Path) -> Iterator[WorkerProcess]:
    w = WorkerProcess(env, args, log_path)
    try:
        yield w
    finally:
        if w.alive:
            w.kill()


def produce(settings: Settings, topic: str, records: list[tuple[bytes | None, bytes | None]]) -> None:
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "enable.idempotence": True, "linger.ms": 5})
    for key, value in records:
        producer.produce(settings.topic(topic), key=key, value=value)
        producer.poll(0)
    assert producer.flush(30) == 0


class TopicReader:
    """Reads a whole topic (every partition, from the beginning) outside any consumer group."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.topic = settings.topic(topic)
        self.consumer = Consumer(
            {"bootstrap.servers": settings.kafka_bootstrap, "group.id": "test-reader", "enable.auto.commit": False,
             "log_level": 0}
        )
        md = self.consumer.list_topics(self.topic, timeout=10).topics[self.topic]
        self.consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in md.partitions])
        self.records: list = []

    def read_until(self, predicate, timeout: float, *, what: str = "records") -> list:
        """Poll until ``predicate(records)`` holds; fails after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not predicate(self.records):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}: have {len(self.records)} on {self.topic}")
            for msg in self.consumer.consume(500, 0.2):
                if msg.error():
                    assert msg.error().code() == KafkaError._PARTITION_EOF, msg.error()
                    continue
                self.records.append(msg)
        return self.records

    def settle(self, quiet: float = 2.0) -> list:
        """Keep reading until nothing new arrives for ``quiet`` seconds (to catch extras)."""
        last = time.monotonic()
        while time.monotonic() - last < quiet:
            msgs = [m for m in self.consumer.consume(500, 0.2) if not m.error()]
            if msgs:
                self.records += msgs
                last = time.monotonic()
        return self.records

    def close(self) -> None:
        self.consumer.close()
