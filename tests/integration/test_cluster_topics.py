"""`topics ensure` on the three-node cluster: three replicas, min.insync.replicas 2, no unclean
election; drift in replication reported like any other; more replicas than brokers refused."""

import os
import subprocess
import sys

import pytest
from confluent_kafka.admin import ConfigResource, NewTopic

from hookstream.core.kafka import make_admin
from hookstream.core.topics import DEAD_LETTERS, ensure_topics, topic_specs

pytestmark = [pytest.mark.kafka, pytest.mark.cluster, pytest.mark.timeout(300)]


def test_ensure_replicates_every_topic_three_times_with_min_insync_two_and_no_unclean_election(cluster_settings):
    settings = cluster_settings
    report = ensure_topics(settings)
    specs = topic_specs(settings)
    assert sorted(report.created) == sorted(settings.topic(s.name) for s in specs)
    admin = make_admin(settings)
    md = admin.list_topics(timeout=10).topics
    names = [settings.topic(s.name) for s in specs]
    for name in names:
        assert {len(p.replicas) for p in md[name].partitions.values()} == {3}, name
        assert {len(p.isrs) for p in md[name].partitions.values()} == {3}, name
    resources = [ConfigResource(ConfigResource.Type.TOPIC, n) for n in names]
    for resource, future in admin.describe_configs(resources).items():
        config = future.result(10)
        assert config["min.insync.replicas"].value == "2", resource.name
        assert config["unclean.leader.election.enable"].value == "false", resource.name
    again = ensure_topics(settings)
    assert again.created == [] and again.differences == {}


def test_a_topic_made_with_one_replica_is_reported(cluster_settings):
    settings = cluster_settings
    name = settings.topic(DEAD_LETTERS)
    (spec,) = [s for s in topic_specs(settings) if s.name == DEAD_LETTERS]
    admin = make_admin(settings)
    admin.create_topics([NewTopic(name, num_partitions=spec.partitions, replication_factor=1,
                                 config={**spec.config, "min.insync.replicas": "1"})])[name].result(30)
    report = ensure_topics(settings)
    assert list(report.differences) == [name]
    assert report.differences[name] == ["replication factor 1 (wanted 3)", "min.insync.replicas=1 (wanted 2)"]
    assert name not in report.created and len(report.created) == len(topic_specs(settings)) - 1


def test_more_replicas_than_live_brokers_is_a_one_line_error_naming_both(cluster_env):
    env = dict(cluster_env, HOOKSTREAM_REPLICATION_FACTOR="4", PATH=os.environ["PATH"])
    result = subprocess.run([sys.executable, "-m", "hookstream", "topics", "ensure"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: replication factor 4 (HOOKSTREAM_REPLICATION_FACTOR) is more than the 3 live broker(s) at "
                      f"{cluster_env['HOOKSTREAM_KAFKA_BOOTSTRAP']}; start more brokers or lower it"]
    md = make_admin(Settings_of(cluster_env)).list_topics(timeout=10).topics
    assert not [t for t in md if t.startswith(cluster_env["HOOKSTREAM_TOPIC_PREFIX"])]  # nothing created


def Settings_of(env):
    from hookstream.core.settings import Settings

    return Settings.from_env(env)
