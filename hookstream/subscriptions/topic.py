"""The compacted subscriptions topic: a ``Subscription`` to and from its record, and publishing
the store's changes to it.

The record's wire format (one record per change, key = subscription id; a delete is a
tombstone) is ``hookstream.core.wire``'s, with every other record that crosses a topic.
``version`` grows with every change of a subscription; readers keep the highest version per id.
Secrets and header values travel sealed (``sealed.py``, the same sealed values as in the
database): a reader opens them with its keyring, once per record, and a record it cannot open (a
key id it lacks) is still read, with ``sealed_error`` saying why and no secrets. Format 1,
written by versions before sealing, had them in clear; it is still read, so an upgrade does not
stop deliveries, until ``sync`` or ``hookstream secrets rotate-key`` republishes every
subscription sealed.

Publishing is a repair loop, not a fire-and-forget side effect: ``publish_pending`` publishes
every row whose ``published_version`` is behind its ``version`` and records what reached Kafka,
all inside one database transaction that locks those rows, so two publishers cannot interleave
an older state after a newer one. The CLI runs it after every change; ``sync`` republishes
everything (rebuilding a lost topic) and tombstones ids the topic holds but the store does not.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from hookstream.core.db import bind_all_tenants
from hookstream.core.errors import BrokerError, TopicError
from hookstream.core.kafka import make_producer
from hookstream.core.crypto import Keyring
from hookstream.core.secrets import InvalidSecretError
from hookstream.core.time import format_time, parse_time
from hookstream.core.settings import Settings
from hookstream.core.wire import (
    SUBSCRIPTION_CLEAR_WIRE_FORMAT,
    SubscriptionRecord,
    WireFormatError,
    decode_subscription,
    encode_subscription,
)
from hookstream.subscriptions import sealed
from hookstream.subscriptions.models import (
    Status,
    Subscription,
    SubscriptionRow,
)
from hookstream.core.topics import SUBSCRIPTIONS

log = logging.getLogger("hookstream.subscriptions")

DEFAULT_TIMEOUT = 10.0


# ---------------------------------------------------------------------------- Subscription <-> record
# The record's format is core's (hookstream.core.wire); here a ``Subscription`` becomes a record
# (its secrets and header values sealed) and back (opened with the keyring).
def _record(sub: Subscription | SubscriptionRow, secrets: list, headers: dict) -> SubscriptionRecord:
    return SubscriptionRecord(
        id=sub.id,
        tenant_id=sub.tenant_id,
        url=sub.url,
        events=tuple(sub.events),
        status=str(Status(sub.status)),
        secrets=tuple(secrets),
        headers=headers,
        description=sub.description or "",
        created_at=format_time(sub.created_at),
        updated_at=format_time(sub.updated_at),
        version=sub.version,
    )


def _sealed_record(sub: Subscription, keyring: Keyring) -> SubscriptionRecord:
    if sub.sealed_error:
        raise WireFormatError(f"cannot publish {sub.id}: {sub.sealed_error}")
    return _record(sub, sealed.seal_secrets(sub.secrets, keyring, sub.id), sealed.seal_headers(sub.headers, keyring, sub.id))


def to_wire(sub: Subscription, keyring: Keyring) -> dict[str, Any]:
    """The record's JSON document, with ``sub``'s secrets and header values sealed by ``keyring``."""
    return _sealed_record(sub, keyring).to_doc()


def encode(sub: Subscription, keyring: Keyring) -> tuple[bytes, bytes]:
    """(key, value) of the record carrying ``sub``'s current state."""
    return encode_subscription(_sealed_record(sub, keyring))


def encode_row(row: SubscriptionRow) -> bytes:
    """The value of the record carrying a store row: its sealed values as they are (no key needed)."""
    return encode_subscription(_record(row, [dict(i) for i in row.secrets or []], dict(row.headers or {})))[1]


def decode(key: bytes, value: bytes, keyring: Keyring) -> Subscription:
    """The subscription a record carries, its secrets opened; ``WireFormatError`` naming the problem
    when the record is unreadable, and never any other exception: the record is untrusted (anyone
    who can write to the topic wrote it) and a follower must skip it, not die on it. Secrets that
    do not open, or open to something that is not a signing secret, are not an error here: the
    subscription comes back with ``sealed_error`` set and no secrets or headers."""
    record = decode_subscription(key, value)
    try:
        return _subscription(record, keyring)
    except KeyError as exc:  # a secret without its "secret"
        raise WireFormatError(f"field {str(exc.args[0])[:40]!r} is missing") from None
    except OverflowError:  # a time that is not a UTC time (0001-01-01T00:00:00+01:00)
        raise WireFormatError("a time is out of range") from None
    except Exception:
        # Not the exception's text: it could quote a value, and values include secrets.
        raise WireFormatError("a field has the wrong type or value") from None


def _subscription(record: SubscriptionRecord, keyring: Keyring) -> Subscription:
    headers = record.headers
    if record.format == SUBSCRIPTION_CLEAR_WIRE_FORMAT:
        try:
            secrets, error = sealed.parse_secrets(list(record.secrets), record.id), None
        except InvalidSecretError as exc:  # one is not a signing secret
            secrets, error = (), str(exc)
    else:
        secrets, headers, error = sealed.open_fields(list(record.secrets), headers, keyring, record.id)
    if error is not None:
        secrets, headers = (), {}
    return Subscription(
        id=record.id,
        tenant_id=record.tenant_id,
        url=record.url,
        events=record.events,
        status=Status(record.status),
        secrets=secrets,
        headers=headers,
        description=record.description,
        created_at=parse_time(record.created_at),
        updated_at=parse_time(record.updated_at),
        version=record.version,
        sealed_error=error,
    )


# ---------------------------------------------------------------------------- publishing
@dataclasses.dataclass
class PublishReport:
    published: list[str] = dataclasses.field(default_factory=list)  # ids whose state was published
    tombstoned: list[str] = dataclasses.field(default_factory=list)  # ids whose tombstone was published
    strays: list[str] = dataclasses.field(default_factory=list)  # ids on the topic but not in the store (sync)

    def as_dict(self) -> dict[str, list[str]]:
        return dataclasses.asdict(self)


def publish_pending(settings: Settings, *, engine: Engine | None = None, timeout: float = DEFAULT_TIMEOUT) -> PublishReport:
    """Publish every change the topic has not seen yet (all tenants); ``BrokerError`` if some could not be.

    What was published is recorded even when other records fail, and the rest stays pending
    for the next call. Safe to run from any number of processes at once.
    """
    return _publish(settings, engine, only_pending=True, timeout=timeout)


def sync(settings: Settings, *, engine: Engine | None = None, timeout: float = DEFAULT_TIMEOUT) -> PublishReport:
    """Republish the whole store, then tombstone ids the topic holds that the store does not."""
    from hookstream.subscriptions.view import load_table  # view imports this module

    engine = engine or _engine(settings)
    report = _publish(settings, engine, only_pending=False, timeout=timeout)
    table = load_table(settings, timeout=max(timeout, 30.0))
    on_topic = set(table.ids())
    if on_topic:
        with Session(engine) as session:
            bind_all_tenants(session)  # the topic holds every tenant's subscriptions
            known = set(session.scalars(select(SubscriptionRow.id).where(SubscriptionRow.id.in_(on_topic))))
        report.strays = sorted(on_topic - known)
        if report.strays:
            failed = _produce(settings, [(i, None) for i in report.strays], timeout)
            if failed:
                raise BrokerError(f"could not publish {len(failed)} tombstone(s) to {settings.topic(SUBSCRIPTIONS)}: {_first(failed)}")
    return report


def _engine(settings: Settings) -> Engine:
    from hookstream.core.db import open_database

    return open_database(settings)


def _publish(settings: Settings, engine: Engine | None, *, only_pending: bool, timeout: float) -> PublishReport:
    engine = engine or _engine(settings)
    report = PublishReport()
    query = select(SubscriptionRow).order_by(SubscriptionRow.updated_at, SubscriptionRow.id).with_for_update()
    if only_pending:
        query = query.where(SubscriptionRow.published_version < SubscriptionRow.version)
    failed: dict[str, str] = {}
    with Session(engine) as session, session.begin():
        bind_all_tenants(session)  # one topic for every tenant: publishing is a cross-tenant operation
        rows = list(session.scalars(query))
        if not rows:
            return report
        records = [
            (row.id, None if row.status == Status.DELETED else encode_row(row)) for row in rows
        ]
        failed = _produce(settings, records, timeout)
        for row in rows:
            if row.id in failed:
                continue
            if row.status == Status.DELETED:
                session.delete(row)  # the tombstone is out: the row has done its job
                report.tombstoned.append(row.id)
            else:
                row.published_version = row.version
                report.published.append(row.id)
    if failed:
        log.warning("%d subscription change(s) not published, kept pending: %s", len(failed), _first(failed))
        raise BrokerError(
            f"{len(failed)} subscription change(s) could not be published to {settings.topic(SUBSCRIPTIONS)} "
            f"({_first(failed)}); they stay pending"
        )
    if report.published or report.tombstoned:
        log.info("published %d subscription state(s) and %d tombstone(s)", len(report.published), len(report.tombstoned))
    return report


def _first(failed: dict[str, str]) -> str:
    sub_id, why = next(iter(failed.items()))
    return f"{sub_id}: {why}"


def _produce(settings: Settings, records: list[tuple[str, bytes | None]], timeout: float) -> dict[str, str]:
    """Produce (id, value) records in order and wait for them; returns {id: error} for the failures.

    Raises ``BrokerError``/``TopicError`` before producing anything when Kafka or the topic is
    unreachable, so nothing is half-done in that common case.
    """
    topic = settings.topic(SUBSCRIPTIONS)
    producer = make_producer(
        settings,
        **{
            "message.timeout.ms": int(timeout * 1000),
            "socket.connection.setup.timeout.ms": int(min(timeout, 10.0) * 1000),
            "client.id": "hookstream-subscriptions",
            "log_level": 0,
        },
    )
    try:
        metadata = producer.list_topics(topic, timeout=timeout)
    except KafkaException as exc:
        raise BrokerError(f"cannot reach Kafka at {settings.kafka_bootstrap}: {exc.args[0].str()}") from None
    described = metadata.topics.get(topic)
    if described is None or described.error is not None:
        if described is not None and described.error.code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
            raise BrokerError(f"cannot use topic {topic}: {described.error.str()}")
        raise TopicError(f"topic {topic} does not exist; create it with `hookstream topics ensure`")

    failed: dict[str, str] = {}
    delivered: set[str] = set()

    def on_delivery(err: KafkaError | None, msg) -> None:
        sub_id = msg.key().decode("utf-8")
        if err is not None:
            failed.setdefault(sub_id, err.str())
        else:
            delivered.add(sub_id)

    for sub_id, value in records:
        try:
            producer.produce(topic, key=sub_id.encode("utf-8"), value=value, on_delivery=on_delivery)
        except (KafkaException, BufferError) as exc:
            failed.setdefault(sub_id, str(exc))
        producer.poll(0)
    producer.flush(timeout)
    for sub_id, _ in records:
        if sub_id not in delivered and sub_id not in failed:
            failed[sub_id] = f"not acknowledged within {timeout:g}s"
    # A state delivered after an earlier state of the same id failed is still the newest: keep it.
    for sub_id in delivered:
        failed.pop(sub_id, None)
    return failed
