"""``hookstream bench --brokers 3``: the bench checks that its topics on a three-node cluster are
replicated on every node with ``min.insync.replicas`` 2, and reports it. On the session's shared cluster (the ``kafka_cluster`` fixture): the bench's own fresh cluster is the
same ``LocalCluster``, and a full ``--brokers 3 --quick`` run takes minutes (docs/benchmarks.md
has those runs)."""

import pytest

from hookstream.core.kafka import make_admin
from hookstream.core.topics import DELIVERIES, ensure_topics, topic_specs
from hookstream.core.errors import HookstreamError
from hookstream.shell.bench import _check_replication

pytestmark = [pytest.mark.kafka, pytest.mark.cluster, pytest.mark.timeout(180)]


def test_bench_topics_are_replicated_on_every_node_with_min_insync_two(cluster_settings):
    ensure_topics(cluster_settings)
    assert _check_replication(cluster_settings, 3) == {"replication_factor": 3, "min_insync_replicas": 2}
    with pytest.raises(HookstreamError, match=f"fewer than 4 replicas .*{cluster_settings.topic(DELIVERIES)}"):
        _check_replication(cluster_settings, 4)
    topics = make_admin(cluster_settings).list_topics(timeout=30).topics
    deliveries = topics[cluster_settings.topic(DELIVERIES)].partitions
    assert len(deliveries) == 12 and all(sorted(p.replicas) == [1, 2, 3] for p in deliveries.values())
    assert len(topic_specs(cluster_settings)) == len([t for t in topics if t.startswith(cluster_settings.topic_prefix)])
