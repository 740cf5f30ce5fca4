"""hookstream.core.reading.read_range against the real broker: a topic of several partitions, one of
them empty, read whole, by time window and by offset, ending at the end of each partition."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Producer

from hookstream.core.errors import BrokerError, NotFoundError
from hookstream.core.kafka import producer_config
from hookstream.core.reading import Offset, Time, read_range, watermarks
from hookstream.core.topics import TopicSpec, ensure_topics

T0 = float(int(time.time()) - 600)  # record times (CreateTime) the test sets, in seconds: in the past, as the broker requires


@pytest.fixture
def topic(settings) -> str:
    """``reading`` with 3 partitions: 0 holds records at T0+0..4 s, 1 at T0+0.5..2.5 s, 2 nothing."""
    ensure_topics(settings, [TopicSpec("reading", 3, {}, "read_range test")])
    name = settings.topic("reading")
    producer = Producer(producer_config(settings))
    failed = []
    for partition, times in ((0, [0, 1, 2, 3, 4]), (1, [0.5, 1.5, 2.5])):
        for n, t in enumerate(times):
            producer.produce(name, value=f"{partition}:{n}".encode(), partition=partition, timestamp=int((T0 + t) * 1000),
                             on_delivery=lambda err, _msg: err and failed.append(err.str()))
    assert producer.flush(30) == 0 and failed == []
    return name


def _values(settings, topic, **kw) -> list[str]:
    return [m.value().decode() for m in read_range(settings, topic, timeout=10.0, **kw)]


def test_a_whole_topic_is_read_to_its_end_empty_partition_included(settings, topic):
    got = _values(settings, topic)
    assert sorted(got) == ["0:0", "0:1", "0:2", "0:3", "0:4", "1:0", "1:1", "1:2"]
    assert [v for v in got if v.startswith("0:")] == ["0:0", "0:1", "0:2", "0:3", "0:4"]  # in order within a partition


def test_a_time_window_holds_the_records_from_its_start_to_before_its_end(settings, topic):
    assert sorted(_values(settings, topic, start=Time(T0 + 1), end=Time(T0 + 3))) == ["0:1", "0:2", "1:1", "1:2"]
    assert _values(settings, topic, start=Time(T0 + 60)) == []  # after every record
    assert sorted(_values(settings, topic, end=Time(T0 + 0.5))) == ["0:0"]


def test_an_offset_range_of_one_partition(settings, topic):
    assert _values(settings, topic, start=Offset(1), end=Offset(3), partitions=[0]) == ["0:1", "0:2"]
    assert _values(settings, topic, start=Offset(2), partitions=[1]) == ["1:2"]
    assert _values(settings, topic, partitions=[2]) == []


def test_records_written_after_reading_started_are_not_read(settings, topic):
    reading = read_range(settings, topic, partitions=[0])
    first = next(reading)
    producer = Producer(producer_config(settings))
    producer.produce(topic, value=b"0:late", partition=0)
    assert producer.flush(30) == 0
    assert [first.value(), *(m.value() for m in reading)] == [b"0:0", b"0:1", b"0:2", b"0:3", b"0:4"]
    assert watermarks(settings, topic, 0) == (0, 6)  # the late record is there, for the next read


def test_a_missing_topic_or_partition_is_one_clear_error(settings, topic):
    with pytest.raises(BrokerError, match="does not exist; run `hookstream topics ensure`"):
        _values(settings, settings.topic("nothing-here"))
    assert _values(settings, settings.topic("nothing-here"), missing_ok=True) == []
    with pytest.raises(NotFoundError, match="has no partition 9"):
        _values(settings, topic, partitions=[9])
    with pytest.raises(NotFoundError, match="has no partition 9"):
        watermarks(settings, topic, 9)


def test_an_unreachable_broker_is_a_broker_error_within_the_timeout(settings):
    from hookstream.core.settings import Settings

    nowhere = Settings.from_env({"HOOKSTREAM_KAFKA_BOOTSTRAP": "127.0.0.1:9"})
    with pytest.raises(BrokerError, match="cannot read"):
        list(read_range(nowhere, "anything", timeout=1.0))
