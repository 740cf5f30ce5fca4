"""Replication of the pipeline's topics: how many replicas ``topics ensure`` wants, the settings
that go with them, and what it reports as drift (fakes for the admin client; the real cluster:
tests/integration/test_cluster_topics.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from hookstream.core import topics
from hookstream.core.errors import ConfigError, TopicError
from hookstream.core.settings import Settings
from hookstream.core.topics import replication_config, replication_drift, replication_factor


@pytest.mark.parametrize(("live", "wanted"), [(1, 1), (2, 2), (3, 3), (5, 3)])
def test_replicas_are_three_or_every_live_broker_when_fewer(live, wanted):
    assert replication_factor(Settings(), live) == wanted


def test_the_setting_overrides_the_broker_count():
    assert replication_factor(Settings(replication_factor=2), 5) == 2
    assert Settings.from_env({"HOOKSTREAM_REPLICATION_FACTOR": "4"}).replication_factor == 4
    assert Settings.from_env({}).replication_factor == 0  # 0: min(3, live brokers)


@pytest.mark.parametrize("value", ["-1", "three", "40000", "1.5"])
def test_a_bad_replication_factor_names_the_variable(value):
    with pytest.raises(ConfigError, match="HOOKSTREAM_REPLICATION_FACTOR"):
        Settings.from_env({"HOOKSTREAM_REPLICATION_FACTOR": value})


@pytest.mark.parametrize(("replicas", "min_isr"), [(1, "1"), (2, "1"), (3, "2"), (5, "4")])
def test_min_insync_is_one_less_than_the_replicas_and_unclean_election_is_off(replicas, min_isr):
    assert replication_config(replicas) == {"min.insync.replicas": min_isr, "unclean.leader.election.enable": "false"}


def test_a_topic_as_wanted_has_no_drift():
    assert replication_drift(3, {"min.insync.replicas": "2", "unclean.leader.election.enable": "false"}, 3) == []


def test_fewer_replicas_than_wanted_is_drift_and_so_is_their_min_insync():
    diffs = replication_drift(1, {"min.insync.replicas": "1", "unclean.leader.election.enable": "false"}, 3)
    assert diffs == ["replication factor 1 (wanted 3)", "min.insync.replicas=1 (wanted 2)"]


def test_unclean_election_on_is_drift():
    assert replication_drift(3, {"min.insync.replicas": "2", "unclean.leader.election.enable": "true"}, 3) == [
        "unclean.leader.election.enable=true (wanted false)"]


def test_more_replicas_than_wanted_is_no_drift_when_a_broker_is_down():
    # a 3-node cluster with one node down wants 2 replicas for new topics; its RF-3 topics are fine
    assert replication_drift(3, {"min.insync.replicas": "2", "unclean.leader.election.enable": "false"}, 2) == []
    assert replication_drift(3, {"min.insync.replicas": "1", "unclean.leader.election.enable": "false"}, 2) == [
        "min.insync.replicas=1 (wanted 2)"]


class _Admin:
    def __init__(self, brokers: int) -> None:
        self.brokers = brokers
        self.created: list = []

    def list_topics(self, timeout=None):
        return SimpleNamespace(topics={}, brokers={i: object() for i in range(1, self.brokers + 1)})

    def create_topics(self, new, **kw):
        self.created += new
        raise AssertionError("nothing may be created with more replicas than brokers")


def test_more_replicas_than_live_brokers_is_one_line_naming_both_and_creates_nothing(monkeypatch):
    admin = _Admin(brokers=2)
    monkeypatch.setattr(topics, "_admin", lambda settings: admin)
    with pytest.raises(TopicError) as err:
        topics.ensure_topics(Settings(replication_factor=3))
    message = str(err.value)
    assert "replication factor 3 (HOOKSTREAM_REPLICATION_FACTOR) is more than the 2 live broker(s)" in message
    assert "\n" not in message and admin.created == []


def test_no_live_broker_is_named(monkeypatch):
    monkeypatch.setattr(topics, "_admin", lambda settings: _Admin(brokers=0))
    with pytest.raises(TopicError, match="no live Kafka broker at 127.0.0.1:9092"):
        topics.ensure_topics(Settings())
