"""hookstream.core.reading.read_range over a fake consumer: which records a range holds, where it
ends, and how it fails (tests/integration/test_reading.py runs it against the real broker)."""

from __future__ import annotations

import types

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from hookstream.core.errors import BrokerError, NotFoundError
from hookstream.core.reading import Offset, Time, read_range
from hookstream.core.settings import Settings

TOPIC = "t.deliveries.dlq"
SETTINGS = Settings.from_env({})


class Msg:
    def __init__(self, partition: int, offset: int, ts_ms: int = 0, value: bytes | None = None, error=None) -> None:
        self._p, self._o, self._ts, self._v, self._e = partition, offset, ts_ms, value, error

    def partition(self): return self._p
    def offset(self): return self._o
    def value(self): return self._v
    def timestamp(self): return (1, self._ts)
    def error(self): return self._e


class FakeConsumer:
    """The part of confluent_kafka.Consumer a reader uses. ``logs``: partition -> [(offset,
    timestamp ms)] (offsets may skip: compaction, transaction markers); ``low``: the oldest offset
    kept per partition. ``eof`` emits end-of-partition events as librdkafka does with
    ``enable.partition.eof``; ``stuck`` delivers nothing at all; ``errors`` are served first."""

    def __init__(self, logs: dict[int, list[tuple[int, int]]], *, low: dict[int, int] | None = None,
                 high: dict[int, int] | None = None, eof: bool = True, stuck: bool = False, errors=(),
                 missing: bool = False) -> None:
        self.logs, self.low, self.high, self.eof, self.stuck, self.missing = logs, low or {}, high or {}, eof, stuck, missing
        self.errors = list(errors)
        self.positions: dict[int, int] = {}
        self.paused: set[int] = set()
        self.assigned: list[tuple[int, int]] | None = None
        self.closed = False
        self._eof_sent: set[int] = set()

    def _high(self, p: int) -> int:
        if p in self.high:
            return self.high[p]
        return self.logs[p][-1][0] + 1 if self.logs[p] else self.low.get(p, 0)

    def list_topics(self, topic, timeout):
        if self.missing:
            error = KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART)
            return types.SimpleNamespace(topics={topic: types.SimpleNamespace(partitions={}, error=error)})
        return types.SimpleNamespace(topics={topic: types.SimpleNamespace(partitions=dict.fromkeys(self.logs), error=None)})

    def get_watermark_offsets(self, tp, timeout):
        return self.low.get(tp.partition, 0), self._high(tp.partition)

    def offsets_for_times(self, tps, timeout):
        out = []
        for tp in tps:
            later = [o for o, ts in self.logs[tp.partition] if ts >= tp.offset]
            out.append(TopicPartition(tp.topic, tp.partition, later[0] if later else -1))
        return out

    def assign(self, tps):
        self.assigned = [(tp.partition, tp.offset) for tp in tps]
        self.positions = {tp.partition: tp.offset for tp in tps}

    def pause(self, tps):
        self.paused |= {tp.partition for tp in tps}

    def append(self, partition: int, ts_ms: int) -> None:
        """A record written while the reader reads."""
        self.logs[partition].append((self._high(partition), ts_ms))

    def poll(self, timeout):
        if self.errors:
            return self.errors.pop(0)
        if self.stuck:
            return None
        for p in sorted(self.positions):
            if p in self.paused:
                continue
            pending = [(o, ts) for o, ts in self.logs[p] if o >= self.positions[p]]
            if pending:
                offset, ts = pending[0]
                self.positions[p] = offset + 1
                return Msg(p, offset, ts, f"{p}@{offset}".encode())
            if self.eof and p not in self._eof_sent:
                self._eof_sent.add(p)
                return Msg(p, self._high(p), error=KafkaError(KafkaError._PARTITION_EOF))
        return None

    def close(self):
        self.closed = True


def _read(consumer, **kw) -> list[tuple[int, int]]:
    return [(m.partition(), m.offset()) for m in read_range(SETTINGS, TOPIC, consumer=consumer, **kw)]


def _log(n: int, start: int = 0, ts0: int = 1000) -> list[tuple[int, int]]:
    """n records from offset ``start``, one second apart from ``ts0`` ms."""
    return [(start + i, ts0 + 1000 * i) for i in range(n)]


def test_no_bounds_reads_every_partition_whole_in_offset_order():
    consumer = FakeConsumer({0: _log(3), 1: _log(2), 2: []})
    got = _read(consumer)
    assert sorted(got) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]
    assert [o for p, o in got if p == 0] == [0, 1, 2]
    assert not consumer.closed  # an injected consumer is the caller's to close


def test_an_empty_partition_is_not_even_assigned():
    consumer = FakeConsumer({0: _log(2), 1: [], 2: []}, low={2: 7})  # 2: everything it held has expired
    assert _read(consumer) == [(0, 0), (0, 1)]
    assert consumer.assigned == [(0, 0)]


def test_nothing_to_read_assigns_nothing():
    consumer = FakeConsumer({0: [], 1: []})
    assert _read(consumer) == [] and consumer.assigned is None


def test_a_time_window_is_from_the_first_record_at_its_start_to_before_the_first_at_its_end():
    # records at 1 s, 2 s, ... 5 s
    consumer = FakeConsumer({0: _log(5), 1: _log(5, ts0=1500)})
    got = _read(consumer, start=Time(2.0), end=Time(4.0))
    assert sorted(got) == [(0, 1), (0, 2), (1, 1), (1, 2)]  # 2 s, 3 s and 2.5 s, 3.5 s


def test_a_window_after_the_last_record_or_before_the_first_reads_nothing():
    assert _read(FakeConsumer({0: _log(3)}), start=Time(60.0)) == []
    assert _read(FakeConsumer({0: _log(3)}), start=Time(0.0), end=Time(0.5)) == []


def test_a_time_before_1970_is_1970_not_the_brokers_special_values():
    consumer = FakeConsumer({0: _log(2)})
    assert _read(consumer, start=Time(-5.0)) == [(0, 0), (0, 1)]


def test_an_offset_window_in_one_partition():
    consumer = FakeConsumer({0: _log(5), 1: _log(5)})
    assert _read(consumer, start=Offset(2), end=Offset(4), partitions=[1]) == [(1, 2), (1, 3)]
    assert consumer.assigned == [(1, 2)]


def test_offsets_outside_what_a_partition_keeps_are_held_to_it():
    consumer = FakeConsumer({0: _log(3, start=10)}, low={0: 10})
    assert _read(consumer, start=Offset(0), end=Offset(11)) == [(0, 10)]
    assert _read(FakeConsumer({0: _log(3, start=10)}, low={0: 10}), start=Offset(99)) == []
    assert _read(FakeConsumer({0: _log(3, start=10)}, low={0: 10}), start=Offset(0), end=Offset(5)) == []


def test_the_end_is_the_high_watermark_when_reading_starts():
    consumer = FakeConsumer({0: _log(2), 1: _log(1)}, eof=False)
    reading = read_range(SETTINGS, TOPIC, consumer=consumer)
    first = next(reading)
    consumer.append(0, 99_000)
    consumer.append(1, 99_000)
    rest = list(reading)
    assert sorted((m.partition(), m.offset()) for m in [first, *rest]) == [(0, 0), (0, 1), (1, 0)]


def test_without_end_of_partition_events_the_last_record_ends_the_partition():
    consumer = FakeConsumer({0: _log(3), 1: _log(1)}, eof=False)
    assert sorted(_read(consumer)) == [(0, 0), (0, 1), (0, 2), (1, 0)]
    assert consumer.paused == {0, 1}


def test_a_gap_before_the_end_ends_the_partition_at_end_of_partition():
    # offsets 3 and 4 hold no record (compacted, or transaction markers): the high watermark is 5
    consumer = FakeConsumer({0: _log(3)}, high={0: 5})
    assert _read(consumer) == [(0, 0), (0, 1), (0, 2)]


def test_a_record_past_the_end_ends_the_partition_and_is_not_read():
    # the end (offset 2) falls in a gap: the next record the broker gives is past it
    consumer = FakeConsumer({0: [(0, 1000), (1, 2000), (5, 6000)]}, eof=False)
    assert _read(consumer, end=Offset(3)) == [(0, 0), (0, 1)]


def test_a_stalled_read_is_one_broker_error_line():
    consumer = FakeConsumer({0: _log(2)}, stuck=True)
    with pytest.raises(BrokerError, match=r"^reading t\.deliveries\.dlq stalled \(no answer within 2s\)$"):
        _read(consumer, timeout=2.0)


def test_a_read_that_runs_out_of_time_is_a_broker_error():
    with pytest.raises(BrokerError, match="took longer than 0s"):
        _read(FakeConsumer({0: _log(2)}), deadline=0.0)


def test_an_error_from_the_broker_is_a_broker_error_naming_it():
    consumer = FakeConsumer({0: _log(2)}, errors=[Msg(-1, -1, error=KafkaError(KafkaError._ALL_BROKERS_DOWN))])
    with pytest.raises(BrokerError) as caught:
        _read(consumer)
    assert str(caught.value).startswith("reading t.deliveries.dlq failed: ") and "\n" not in str(caught.value)


def test_a_broker_that_cannot_be_reached_is_a_broker_error():
    class Unreachable(FakeConsumer):
        def list_topics(self, topic, timeout):
            raise KafkaException(KafkaError(KafkaError._TRANSPORT, "connection refused"))

    with pytest.raises(BrokerError, match="cannot read t.deliveries.dlq: connection refused"):
        _read(Unreachable({0: []}))


def test_a_missing_topic_is_an_error_unless_missing_is_fine():
    with pytest.raises(BrokerError, match="does not exist; run `hookstream topics ensure`"):
        _read(FakeConsumer({}, missing=True))
    assert _read(FakeConsumer({}, missing=True), missing_ok=True) == []


def test_a_partition_the_topic_lacks_is_not_found():
    with pytest.raises(NotFoundError, match="t.deliveries.dlq has no partition 9"):
        _read(FakeConsumer({0: _log(1)}), partitions=[9])


def test_a_position_is_an_offset_or_a_time():
    with pytest.raises(TypeError):
        _read(FakeConsumer({0: _log(1)}), start=5)
