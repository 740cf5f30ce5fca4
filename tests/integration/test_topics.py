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
