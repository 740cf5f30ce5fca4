"""``ensure_topics`` on the real broker: when it returns, every partition of the topics it created
is open on its leader (a ListOffsets answer, not just a leader named in metadata). Producing
before that can lose an event for good (KAFKA-15591; hookstream.topics._wait_until_served)."""

from __future__ import annotations

from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from hookstream.core.kafka import admin_config
from hookstream.core.topics import ensure_topics


def test_every_partition_of_the_created_topics_answers_as_soon_as_ensure_returns(settings):
    report = ensure_topics(settings)
    assert report.created, "the test's own prefix: every topic is new"
    admin = AdminClient(admin_config(settings))
    topics = admin.list_topics(timeout=10).topics
    tps = [TopicPartition(name, p) for name in report.created for p in topics[name].partitions]
    answers = admin.list_offsets({tp: OffsetSpec.latest() for tp in tps}, request_timeout=10)
    refused = []
    for tp, fut in answers.items():
        try:
            assert fut.result().offset == 0
        except Exception as exc:  # collected: the message names every partition not yet open
            refused.append(f"{tp.topic}[{tp.partition}]: {exc}")
    assert not refused, f"{len(refused)} of {len(tps)} partitions not open: {refused[:5]}"
