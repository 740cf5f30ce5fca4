"""`topics ensure` against the real broker: creates, is idempotent, reports drift."""

import time

from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from hookstream.core.topics import DEAD_LETTERS, SUBSCRIPTIONS, ensure_topics, topic_specs


def test_ensure_creates_every_topic_with_its_config(settings):
    report = ensure_topics(settings)
    specs = topic_specs(settings)
    assert sorted(report.created) == sorted(settings.topic(s.name) for s in specs)
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    md = admin.list_topics(timeout=10).topics
    for spec in specs:
        assert len(md[settings.topic(spec.name)].partitions) == spec.partitions
    res = ConfigResource(ConfigResource.Type.TOPIC, settings.topic(SUBSCRIPTIONS))
    config = admin.describe_configs([res])[res].result(10)
    assert config["cleanup.policy"].value == "compact"
    for name in ("events.payment", "events.customer", "events.sales_order", "events.invoice"):
        assert settings.topic(name) in md


def test_ensure_twice_is_idempotent(settings):
    ensure_topics(settings)
    second = ensure_topics(settings)
    assert second.created == []
    assert second.differences == {}
    assert len(second.unchanged) == len(topic_specs(settings))


def test_ensure_reports_a_topic_configured_differently(settings):
    ensure_topics(settings)
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    name = settings.topic(DEAD_LETTERS)
    entry = ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET)
    res = ConfigResource(ConfigResource.Type.TOPIC, name, incremental_configs=[entry])
    admin.incremental_alter_configs([res])[res].result(10)
    deadline = time.monotonic() + 20  # the change reaches the broker's config cache asynchronously
    while admin.describe_configs([res])[res].result(10)["retention.ms"].value != "1000":
        assert time.monotonic() < deadline, "the altered config never showed up"
        time.sleep(0.2)
    report = ensure_topics(settings)
    assert list(report.differences) == [name]
    assert any("retention.ms=1000" in d for d in report.differences[name])


def test_a_topic_raised_to_more_partitions_is_kept_and_fewer_is_a_difference(settings, hs_env):
    import json
    import subprocess
    import sys

    from confluent_kafka.admin import NewPartitions, NewTopic

    from hookstream.core.topics import DELIVERIES

    specs = {s.name: s for s in topic_specs(settings)}
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    short = settings.topic(DEAD_LETTERS)  # made by something else, with fewer partitions than declared
    admin.create_topics([NewTopic(short, num_partitions=1, replication_factor=1)])[short].result(20)
    ensure_topics(settings)
    raised = settings.topic(DELIVERIES)
    wanted = specs[DELIVERIES].partitions + 4
    admin.create_partitions([NewPartitions(raised, wanted)])[raised].result(20)
    deadline = time.monotonic() + 20
    while len(admin.list_topics(raised, timeout=10).topics[raised].partitions) != wanted:
        assert time.monotonic() < deadline, "the new partitions never showed up"
        time.sleep(0.2)

    report = ensure_topics(settings)
    assert report.raised == {raised: wanted} and raised in report.unchanged and raised not in report.differences
    assert report.differences[short][0] == f"partitions 1 (declared {specs[DEAD_LETTERS].partitions})"

    cli = subprocess.run([sys.executable, "-m", "hookstream", "topics", "ensure", "--json"], env=hs_env,
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 1  # the short topic, not the raised one
    doc = json.loads(cli.stdout)
    assert doc["raised_partitions"] == {raised: wanted} and list(doc["differences"]) == [short]
