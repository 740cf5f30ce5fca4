"""Every topic the pipeline uses, with its configuration, and ``ensure`` to create them.

Names are base names; ``Settings.topic()`` adds ``HOOKSTREAM_TOPIC_PREFIX``. ``ensure`` is
idempotent: it creates what is missing and reports any existing topic whose partition count or
configuration differs from what is declared here (it never silently alters a live topic:
repartitioning would break per-key ordering). A topic with *more* partitions than declared is not
a difference: an operator raised it to scale out (docs/operations.md, "Adding partitions"); it is
kept, and listed in ``EnsureReport.raised``. Fewer is a difference (Kafka cannot shrink a topic,
so fewer means it was made by something else).

Replication is decided when ``ensure`` runs, from the cluster it finds: ``replication_factor``
(``HOOKSTREAM_REPLICATION_FACTOR``, or min(3, live brokers) when 0) replicas per partition,
``min.insync.replicas`` one less (at least 1: with ``acks=all`` a write then survives one broker
down, and is refused rather than kept on a single copy when two are), and no unclean leader
election (an out-of-sync replica never becomes leader and drops acknowledged records). A topic
with fewer replicas, another ``min.insync.replicas`` or unclean election on is reported like any
other difference.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable

from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, OffsetSpec

from hookstream.core.errors import TopicError
from hookstream.core.kafka import make_admin
from hookstream.core.settings import Settings

DAY_MS = 24 * 3600 * 1000

# Aggregate -> event topic. Event types are "<aggregate>.<verb>".
EVENT_TOPICS = {
    "payment": "events.payment",
    "customer": "events.customer",
    "sales_order": "events.sales_order",
    "invoice": "events.invoice",
}
SUBSCRIPTIONS = "subscriptions"
DELIVERIES = "deliveries"
DEAD_LETTERS = "deliveries.dlq"
INVALID_EVENTS = "events.invalid"


def retry_topic(tier: int) -> str:
    """Retry tier ``tier`` (1-based): holds records whose attempt ``tier + 1`` is due later."""
    return f"deliveries.retry.{tier}"


@dataclasses.dataclass(frozen=True)
class TopicSpec:
    name: str  # base name, before the prefix
    partitions: int
    config: dict[str, str]
    purpose: str


def event_topic_for(event_type: str) -> str:
    """``invoice.sent`` -> ``events.invoice`` (base name)."""
    aggregate = event_type.rsplit(".", 1)[0]
    try:
        return EVENT_TOPICS[aggregate]
    except KeyError:
        raise TopicError(f"no event topic for event type {event_type!r}") from None


def topic_specs(settings: Settings) -> list[TopicSpec]:
    specs = [
        TopicSpec(
            name,
            6,
            {"cleanup.policy": "delete", "retention.ms": str(7 * DAY_MS)},
            f"{aggregate} events, keyed by entity id",
        )
        for aggregate, name in EVENT_TOPICS.items()
    ]
    specs += [
        TopicSpec(
            SUBSCRIPTIONS,
            1,
            {
                "cleanup.policy": "compact",
                "min.compaction.lag.ms": "0",
                "segment.ms": str(3600 * 1000),
                "delete.retention.ms": str(DAY_MS),
            },
            "current state of every subscription, keyed by id (tombstone on delete)",
        ),
        TopicSpec(
            DELIVERIES,
            12,
            {"cleanup.policy": "delete", "retention.ms": str(7 * DAY_MS)},
            "one record per (event, endpoint), keyed by subscription id",
        ),
    ]
    specs += [
        TopicSpec(
            retry_topic(tier),
            6,
            {"cleanup.policy": "delete", "retention.ms": str(14 * DAY_MS)},
            f"retry tier {tier}",
        )
        for tier in range(1, len(settings.retry_schedule) + 1)
    ]
    specs += [
        TopicSpec(
            DEAD_LETTERS,
            3,
            {"cleanup.policy": "delete", "retention.ms": str(30 * DAY_MS)},
            "deliveries whose retries ran out, with every attempt",
        ),
        TopicSpec(
            INVALID_EVENTS,
            3,
            {"cleanup.policy": "delete", "retention.ms": str(30 * DAY_MS)},
            "events that could not be read, with the reason and the original bytes",
        ),
    ]
    return specs


@dataclasses.dataclass
class EnsureReport:
    created: list[str] = dataclasses.field(default_factory=list)
    unchanged: list[str] = dataclasses.field(default_factory=list)
    differences: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    raised: dict[str, int] = dataclasses.field(default_factory=dict)  # topic -> its partitions, more than declared


def _admin(settings: Settings) -> AdminClient:
    return make_admin(settings)


def replication_factor(settings: Settings, live_brokers: int) -> int:
    """The replicas each new topic gets: ``HOOKSTREAM_REPLICATION_FACTOR``, or min(3, live brokers)."""
    if live_brokers < 1:
        raise TopicError(f"no live Kafka broker at {settings.kafka_bootstrap}")
    return settings.replication_factor or min(3, live_brokers)


def replication_config(replicas: int) -> dict[str, str]:
    """The topic configuration that goes with ``replicas`` replicas (see the module docstring)."""
    return {"min.insync.replicas": str(max(1, replicas - 1)), "unclean.leader.election.enable": "false"}


def replication_drift(replicas: int, config: dict[str, str], wanted: int) -> list[str]:
    """How an existing topic with ``replicas`` replicas (the fewest of any partition) and
    ``config`` differs from ``wanted`` replicas. More replicas than wanted is no difference (a
    cluster with a broker down wants fewer for new topics), and min.insync.replicas is then judged
    against the replicas the topic has."""
    diffs = []
    if replicas < wanted:
        diffs.append(f"replication factor {replicas} (wanted {wanted})")
    for key, want in replication_config(max(replicas, wanted)).items():
        have = config.get(key)
        if have != want:
            diffs.append(f"{key}={have} (wanted {want})")
    return diffs


def replicas(settings: Settings, base_names: Iterable[str], *, timeout: float = 30.0) -> dict[str, int]:
    """Full topic name -> the fewest replicas of any of its partitions, for existing topics."""
    topics = _admin(settings).list_topics(timeout=timeout).topics
    return {settings.topic(n): replicas_of(topics[settings.topic(n)]) for n in base_names if settings.topic(n) in topics}


def replicas_of(topic_metadata) -> int:
    """The fewest replicas of any partition of a topic (confluent-kafka ``TopicMetadata``)."""
    return min((len(p.replicas) for p in topic_metadata.partitions.values()), default=0)


def ensure_topics(settings: Settings, specs: Iterable[TopicSpec] | None = None, *, timeout: float = 30.0) -> EnsureReport:
    specs = list(specs if specs is not None else topic_specs(settings))
    admin = _admin(settings)
    report = EnsureReport()
    try:
        cluster = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise TopicError(f"cannot list topics at {settings.kafka_bootstrap}: {exc.args[0].str()}") from None
    existing = cluster.topics
    live = len(cluster.brokers)
    wanted = replication_factor(settings, live)
    missing = [s for s in specs if settings.topic(s.name) not in existing]
    if missing:
        if wanted > live:
            raise TopicError(
                f"replication factor {wanted} ({Settings.variable('replication_factor')}) is more than the "
                f"{live} live broker(s) at {settings.kafka_bootstrap}; start more brokers or lower it"
            )
        futures = admin.create_topics(
            [NewTopic(settings.topic(s.name), num_partitions=s.partitions, replication_factor=wanted,
                      config={**s.config, **replication_config(wanted)}) for s in missing],
            operation_timeout=timeout,
            request_timeout=timeout,
        )
        raced = []
        for name, fut in futures.items():
            try:
                fut.result()
                report.created.append(name)
            except KafkaException as exc:
                err = exc.args[0]
                if err.name() == "TOPIC_ALREADY_EXISTS":  # another process won the race
                    raced.append(name)
                else:
                    raise TopicError(f"cannot create topic {name}: {err.str()}") from None
        _wait_until_served(admin, report.created + raced, timeout)
        if raced:  # made elsewhere, or by now known to the broker our metadata came from: check it too
            existing = admin.list_topics(timeout=timeout).topics
    present = [s for s in specs if settings.topic(s.name) in existing and settings.topic(s.name) not in report.created]
    if present:
        actual = describe(settings, [s.name for s in present], admin=admin, metadata=existing, timeout=timeout)
        for spec in present:
            full = settings.topic(spec.name)
            partitions, config = actual[full]
            diffs = []
            if partitions < spec.partitions:
                diffs.append(f"partitions {partitions} (declared {spec.partitions})")
            elif partitions > spec.partitions:
                report.raised[full] = partitions
            for key, want in spec.config.items():
                have = config.get(key)
                if have != want:
                    diffs.append(f"{key}={have} (declared {want})")
            diffs += replication_drift(replicas_of(existing[full]), config, wanted)
            if diffs:
                report.differences[full] = diffs
            else:
                report.unchanged.append(full)
    return report


def _wait_until_served(admin: AdminClient, names: list[str], timeout: float) -> None:
    """Return only once every partition of the new topics is served by its leader.

    The controller acknowledges a creation at once, and metadata names a leader for every
    partition soon after, but the broker answers NOT_LEADER_OR_FOLLOWER until it has opened the
    partition's log (seconds later on a busy machine). Producing in that window can lose events
    silently: an idempotent producer's first request to a partition is refused, a later one is
    accepted (the broker takes any first sequence from a producer it has no state for), and the
    first request's records never land (KAFKA-15591; seen here as one event missing after
    ``ensure_topics``, tests/integration/test_broker_restart.py). A ListOffsets answer from every
    partition's leader shows it is open.
    """
    deadline = time.monotonic() + timeout
    pending = set(names)
    while pending:
        pending = _not_served(admin, pending, timeout)
        if pending and time.monotonic() > deadline:
            raise TopicError(f"topics created but not served within {timeout:.0f}s: {', '.join(sorted(pending))}")
        if pending:
            time.sleep(0.1)


def _not_served(admin: AdminClient, names: set[str], timeout: float) -> set[str]:
    """The topics of ``names`` with a partition that has no leader yet or whose leader does not answer."""
    topics = admin.list_topics(timeout=timeout).topics
    waiting = {
        n for n in names
        if n not in topics or topics[n].error is not None or any(p.leader < 0 for p in topics[n].partitions.values())
    }
    topic_of = {TopicPartition(n, p): n for n in names - waiting for p in topics[n].partitions}
    if topic_of:
        answers = admin.list_offsets({tp: OffsetSpec.latest() for tp in topic_of}, request_timeout=min(timeout, 10.0))
        for tp, fut in answers.items():
            try:
                fut.result()
            except KafkaException:  # NOT_LEADER_OR_FOLLOWER while the broker opens the log, or a timeout
                waiting.add(topic_of[TopicPartition(tp.topic, tp.partition)])
    return waiting


def describe(settings: Settings, base_names: Iterable[str], *, admin: AdminClient | None = None, metadata=None, timeout: float = 30.0) -> dict[str, tuple[int, dict[str, str]]]:
    """Full topic name -> (partition count, non-default configs) for existing topics."""
    admin = admin or _admin(settings)
    if metadata is None:
        metadata = admin.list_topics(timeout=timeout).topics
    names = [settings.topic(n) for n in base_names if settings.topic(n) in metadata]
    if not names:
        return {}
    futures = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, n) for n in names], request_timeout=timeout)
    out = {}
    for resource, fut in futures.items():
        try:
            entries = fut.result()
        except KafkaException as exc:
            raise TopicError(f"cannot describe topic {resource.name}: {exc.args[0].str()}") from None
        config = {k: v.value for k, v in entries.items() if v.value is not None}
        out[resource.name] = (len(metadata[resource.name].partitions), config)
    return out
