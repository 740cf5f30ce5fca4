"""Reading a stretch of a topic back: the one reader behind every tool that looks into the past
(``dlq list``/``show``, ``replay events``, the bench's latency split).

A range is ``[start, end)`` in each partition read. A position is an ``Offset`` or a ``Time``
(Unix seconds of the broker's record time, turned into an offset with the broker's time index:
the first record at or after it). No ``start`` means the oldest record kept; no ``end`` means the
end. The end is never past the high watermark as of the start of the read (the first record
asked for: the reader is a generator): what is written while reading is not read, so a read
always finishes, and a partition with nothing in the range is not read at all. Each wait for
the broker is bounded (``timeout``), and so, optionally, is the whole read (``deadline``); a read
that fails, stalls or runs out of time is one ``BrokerError`` line.

The reader is assigned its partitions (no consumer group is joined) and never commits: reading
back changes nothing for the workers.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Collection, Iterator
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from hookstream.core.errors import BrokerError, NotFoundError
from hookstream.core.kafka import make_consumer
from hookstream.core.settings import Settings


@dataclasses.dataclass(frozen=True)
class Offset:
    """A position by offset, the same in every partition read (usually one: ``partitions=[p]``)."""

    value: int


@dataclasses.dataclass(frozen=True)
class Time:
    """A position by the broker's record time, in Unix seconds (a time before 1970 is 1970)."""

    seconds: float


Position = Offset | Time


def read_range(
    settings: Settings,
    topic: str,
    *,
    start: Position | None = None,
    end: Position | None = None,
    partitions: Collection[int] | None = None,
    timeout: float = 10.0,
    deadline: float | None = None,
    missing_ok: bool = False,
    client_id: str = "hookstream-reader",
    consumer: Any = None,
) -> Iterator[Message]:
    """The records of ``topic`` (the full name) from ``start`` up to ``end``, in each of
    ``partitions`` (all when None), in offset order within a partition.

    ``BrokerError`` when the broker cannot be reached or answers an error, when no record comes
    within ``timeout`` seconds while some are still due, or when the whole read takes more than
    ``deadline`` seconds; when ``topic`` does not exist, unless ``missing_ok`` (then nothing is
    read). ``NotFoundError`` for a partition the topic does not have. ``consumer`` replaces the
    one built from ``settings`` (tests); the caller then closes it.
    """
    own = consumer is None
    if own:
        consumer = _consumer(settings, topic, client_id)
    try:
        yield from _read(consumer, topic, start=start, end=end, partitions=partitions, timeout=timeout,
                         deadline=deadline, missing_ok=missing_ok)
    finally:
        if own:
            consumer.close()


def watermarks(settings: Settings, topic: str, partition: int, *, timeout: float = 10.0) -> tuple[int, int]:
    """(oldest offset kept, next offset to be written) of one partition; ``NotFoundError`` when
    the topic has no such partition, ``BrokerError`` when the broker cannot say."""
    consumer = _consumer(settings, topic, "hookstream-reader")
    try:
        described = _describe(consumer, topic, timeout, missing_ok=False)
        if partition not in described.partitions:
            raise NotFoundError(f"{topic} has no partition {partition}")
        return _watermarks(consumer, topic, partition, timeout)
    finally:
        consumer.close()


def _consumer(settings: Settings, topic: str, client_id: str) -> Consumer:
    """``make_consumer``'s consumer (no auto-commit, read committed), assigned partitions only, so
    its group id is never used to join or commit; end-of-partition events on, so a read ends
    without waiting."""
    try:
        return make_consumer(settings, client_id, **{"client.id": client_id, "enable.partition.eof": True, "log_level": 3})
    except KafkaException as exc:  # a configuration librdkafka refuses (a bad bootstrap address, say)
        raise BrokerError(f"cannot read {topic}: {_why(exc)}") from None


def _read(consumer, topic: str, *, start: Position | None, end: Position | None, partitions: Collection[int] | None,
          timeout: float, deadline: float | None, missing_ok: bool) -> Iterator[Message]:
    give_up = None if deadline is None else time.monotonic() + deadline
    described = _describe(consumer, topic, timeout, missing_ok)
    if described is None:
        return
    chosen = sorted(described.partitions) if partitions is None else list(dict.fromkeys(partitions))
    for p in chosen:
        if p not in described.partitions:
            raise NotFoundError(f"{topic} has no partition {p}")
    ends: dict[int, int] = {}
    starts: list[TopicPartition] = []
    bounds = {p: _watermarks(consumer, topic, p, timeout) for p in chosen}
    first = _offsets(consumer, topic, start, bounds, timeout, default=0)
    last = _offsets(consumer, topic, end, bounds, timeout, default=1)
    for p in chosen:
        if first[p] < last[p]:
            ends[p] = last[p]
            starts.append(TopicPartition(topic, p, first[p]))
    if not ends:
        return
    consumer.assign(starts)

    def finished(partition: int) -> None:
        del ends[partition]
        consumer.pause([TopicPartition(topic, partition)])  # nothing more is wanted from it

    while ends:
        wait = timeout
        if give_up is not None:
            wait = min(wait, give_up - time.monotonic())
            if wait <= 0:
                raise BrokerError(f"reading {topic} took longer than {deadline:g}s")
        msg = consumer.poll(wait)
        if msg is None:
            if give_up is not None and time.monotonic() >= give_up:
                raise BrokerError(f"reading {topic} took longer than {deadline:g}s")
            raise BrokerError(f"reading {topic} stalled (no answer within {timeout:g}s)")
        error = msg.error()
        partition = msg.partition()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:  # the end (records past the last one read were aborted or compacted)
                if partition in ends:
                    finished(partition)
                continue
            raise BrokerError(f"reading {topic} failed: {error.str()}")
        if partition not in ends:  # fetched before its partition was finished
            continue
        offset = msg.offset()
        if offset >= ends[partition]:  # past a gap (compaction, transaction markers)
            finished(partition)
            continue
        yield msg
        if offset + 1 >= ends[partition]:
            finished(partition)


def _describe(consumer, topic: str, timeout: float, missing_ok: bool):
    try:
        described = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
    except KafkaException as exc:
        raise BrokerError(f"cannot read {topic}: {_why(exc)}") from None
    if described is not None and described.error is None:
        return described
    if described is not None and described.error.code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
        raise BrokerError(f"cannot read {topic}: {described.error.str()}")
    if missing_ok:
        return None
    raise BrokerError(f"topic {topic} does not exist; run `hookstream topics ensure`")


def _watermarks(consumer, topic: str, partition: int, timeout: float) -> tuple[int, int]:
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout)
    except KafkaException as exc:
        raise BrokerError(f"cannot read {topic}: {_why(exc)}") from None
    return low, high


def _offsets(consumer, topic: str, position: Position | None, bounds: dict[int, tuple[int, int]], timeout: float,
             *, default: int) -> dict[int, int]:
    """Partition -> the offset ``position`` names, within what the partition holds (``default``
    picks the low or the high watermark when there is no position)."""
    if position is None:
        return {p: bounds[p][default] for p in bounds}
    if isinstance(position, Offset):
        return {p: min(max(position.value, low), high) for p, (low, high) in bounds.items()}
    if not isinstance(position, Time):
        raise TypeError(f"a position is an Offset or a Time, not {position!r}")
    # before 1970 the broker's -1 and -2 would mean "latest" and "earliest": 1970 it is
    millis = int(max(position.seconds, 0.0) * 1000)
    try:
        found = consumer.offsets_for_times([TopicPartition(topic, p, millis) for p in bounds], timeout=timeout)
    except KafkaException as exc:
        raise BrokerError(f"cannot read {topic}: {_why(exc)}") from None
    out = {}
    for tp in found:
        if tp.error is not None:
            raise BrokerError(f"cannot read {topic}: {tp.error.str()}")
        low, high = bounds[tp.partition]
        out[tp.partition] = high if tp.offset < 0 else min(max(tp.offset, low), high)  # -1: no record that late
    return out


def _why(exc: KafkaException) -> str:
    arg = exc.args[0] if exc.args else exc
    return arg.str() if isinstance(arg, KafkaError) else str(arg)
