"""hookstream.core.topics._wait_until_served: a created topic counts as ready only once every partition's
leader answers, not as soon as metadata names a leader (fakes: the admin client's answers are the
input; tests/integration/test_broker_restart.py meets the real window on a busy machine)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from confluent_kafka import KafkaError, KafkaException

from hookstream.core.errors import TopicError
from hookstream.core.topics import _wait_until_served


class _Answer:
    def __init__(self, error: KafkaError | None) -> None:
        self.error = error

    def result(self):
        if self.error is not None:
            raise KafkaException(self.error)
        return SimpleNamespace(offset=0)


class _Admin:
    """Metadata names leader 1 for every partition at once; ListOffsets is refused with
    NOT_LEADER_OR_FOLLOWER by the partitions in ``closed`` for the first ``refusals`` rounds."""

    def __init__(self, partitions: dict[str, int], closed: set[tuple[str, int]], refusals: int) -> None:
        self.partitions, self.closed, self.refusals = partitions, closed, refusals
        self.rounds = 0

    def list_topics(self, timeout=None):
        return SimpleNamespace(topics={
            name: SimpleNamespace(error=None, partitions={p: SimpleNamespace(leader=1) for p in range(n)})
            for name, n in self.partitions.items()
        })

    def list_offsets(self, requests, request_timeout=None):
        self.rounds += 1
        refusing = self.rounds <= self.refusals
        return {
            tp: _Answer(KafkaError(KafkaError.NOT_LEADER_FOR_PARTITION) if refusing and (tp.topic, tp.partition) in self.closed else None)
            for tp in requests
        }


def test_waits_until_every_partition_leader_answers_not_just_until_metadata_names_one():
    admin = _Admin({"events.sales_order": 6, "events.payment": 6}, closed={("events.sales_order", 5)}, refusals=3)
    _wait_until_served(admin, ["events.sales_order", "events.payment"], timeout=10)
    assert admin.rounds == 4  # three refused rounds, then every partition answered


def test_a_partition_that_never_opens_is_named_in_a_one_line_error():
    admin = _Admin({"events.sales_order": 6, "events.payment": 6}, closed={("events.sales_order", 5)}, refusals=10**6)
    with pytest.raises(TopicError, match=r"not served within 0s: events\.sales_order$"):
        _wait_until_served(admin, ["events.sales_order", "events.payment"], timeout=0.3)
