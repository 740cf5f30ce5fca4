"""``hookstream bench --brokers 3``: the bench's topics on a three-node cluster are replicated on
every node with ``min.insync.replicas`` 2, whatever ``topics ensure`` does on its own. On the
session's shared cluster (the ``kafka_cluster`` fixture): the bench's own fresh cluster is the
same ``LocalCluster``, and a full ``--brokers 3 --quick`` run takes minutes (docs/benchmarks.md
has those runs)."""

import pytest

from hookstream.core.kafka import make_admin
from hookstream.core.topics import DELIVERIES, ensure_topics, topic_specs
from hookstream.shell.bench import _check_replication, _create_replicated_topics

pytestmark = [pytest.mark.kafka, pytest.mark.cluster, pytest.mark.timeout(180)]


def test_bench_topics_are_replicated_on_every_node_with_min_insync_two(cluster_settings):
    _create_replicated_topics(cluster_settings)
    report = ensure_topics(cluster_settings)
    assert report.differences == {} and report.created == []  # as declared, nothing left to create
    assert _check_replication(cluster_settings, 3) == {"replication_factor": 3, "min_insync_replicas": 2}
    topics = make_admin(cluster_settings).list_topics(timeout=30).topics
    deliveries = topics[cluster_settings.topic(DELIVERIES)].partitions
    assert len(deliveries) == 12 and all(sorted(p.replicas) == [1, 2, 3] for p in deliveries.values())
    assert len(topic_specs(cluster_settings)) == len([t for t in topics if t.startswith(cluster_settings.topic_prefix)])
