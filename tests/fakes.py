"""Fakes for unit tests (the integration tests use the real broker)."""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException


class FakeMessage:
    def __init__(self, topic: str, partition: int, offset: int, key: bytes, value: bytes) -> None:
        self._t, self._p, self._o, self._k, self._v = topic, partition, offset, key, value

    def topic(self): return self._t
    def partition(self): return self._p
    def offset(self): return self._o
    def key(self): return self._k
    def value(self): return self._v


class FakeProducer:
    """Stands in for confluent_kafka.Producer: records what is produced; delivery reports are
    served by poll/flush like the real one. ``fail_keys`` fail with ``error``; ``refuse_keys`` are
    refused by produce() itself (too large); so is a record whose key + value + headers exceed
    ``max_bytes`` (librdkafka checks all three against ``message.max.bytes`` in produce());
    ``full`` times the local queue reports itself full; ``hold`` keeps reports back (an
    unreachable broker)."""

    def __init__(self, *, fail_keys=(), refuse_keys=(), error=KafkaError._MSG_TIMED_OUT, full: int = 0, hold: bool = False,
                 max_bytes: int = 10**9) -> None:
        self.produced: list[tuple[str, bytes, bytes]] = []
        self.fail_keys = set(fail_keys)
        self.refuse_keys = set(refuse_keys)
        self.error = error
        self.full = full
        self.hold = hold
        self.max_bytes = max_bytes
        self.polls = 0
        self._reports: list = []

    def produce(self, topic, value, key=None, on_delivery=None, headers=None):
        if self.full:
            self.full -= 1
            raise BufferError("Local: Queue full")
        if key in self.refuse_keys or record_size(key, value, headers) > self.max_bytes:
            raise KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
        self.produced.append((topic, key, value))
        if key in self.fail_keys:
            self._reports.append((on_delivery, KafkaError(self.error), None))
        else:
            msg = FakeMessage(topic, hash(key) % 6, len(self.produced) - 1, key, value)
            self._reports.append((on_delivery, None, msg))

    def poll(self, timeout=0):
        self.polls += 1
        if self.hold:
            return 0
        reports, self._reports = self._reports, []
        for callback, err, msg in reports:
            callback(err, msg)
        return len(reports)

    def flush(self, timeout=0):
        self.poll(timeout)
        return len(self._reports)


def record_size(key, value, headers=None) -> int:
    """What librdkafka's produce() compares with ``message.max.bytes``: key, value and headers."""
    size = len(key or b"") + len(value or b"")
    for name, v in (headers.items() if isinstance(headers, dict) else headers or ()):
        size += len(name) + len(v or b"")
    return size
