"""The subscriptions table as the workers hold it: rebuilt from the compacted topic, no database.

``SubscriptionTable`` is pure: feed it the topic's records (``apply``) and ask it who to deliver
to. ``follow`` runs a consumer that reads every partition of the topic from the beginning
(``assign``, never a consumer group: every worker needs the whole table, and nothing is ever
committed) and keeps the table current; ``ready`` is set once it has read up to the end
offsets seen when it started. ``FollowerThread`` runs ``follow`` in the background.

A record the follower cannot apply (``decode`` says why, as a ``WireFormatError``; or any other
exception, which would be a bug) is logged with its partition, offset and key, counted in
``hookstream_subscriptions_records_skipped_total{reason}`` and skipped: the topic is compacted, so
a follower that stopped on such a record would stop on it again at every restart, and every
tenant's deliveries would stop with it. The key's previous state, if any, stays in the table.

The table opens each record's sealed secrets and header values with its keyring as the record
is applied, once per subscription version: the delivery hot path only reads them. A record
whose secrets do not open (a key id this process lacks) makes the table load its keyring again
once (``reload``: a key added to the key file since the start, as ``secrets rotate-key --new``
does, is then picked up without a restart); if it still does not open, the subscription is kept
with ``sealed_error`` set and logged, and the delivery worker dead-letters its records with that
reason.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition
from prometheus_client import Counter

from hookstream.core.crypto import Keyring, load_keyring
from hookstream.core.errors import BrokerError, HookstreamError, TopicError
from hookstream.core.kafka import make_consumer
from hookstream.core.reading import read_range
from hookstream.core.settings import Settings
from hookstream.subscriptions import filters
from hookstream.subscriptions.models import Subscription
from hookstream.core.wire import WireFormatError
from hookstream.subscriptions.topic import decode
from hookstream.core.topics import SUBSCRIPTIONS

log = logging.getLogger("hookstream.subscriptions")

RECORDS_SKIPPED = Counter(
    "hookstream_subscriptions_records_skipped",
    "Records on the subscriptions topic the follower skipped: unreadable (WireFormatError) or error (a bug).",
    ["reason"],
)


class SubscriptionTable:
    """Current subscriptions by id, from the topic's records. Thread-safe; never touches Kafka.

    The highest ``version`` of an id wins (a late record of an older state is ignored); a
    tombstone removes the id, and a state no newer than the last one seen before the tombstone
    cannot bring it back.
    """

    def __init__(self, keyring: Keyring, *, reload: Callable[[], Keyring] | None = None) -> None:
        self._keyring = keyring
        self._reload = reload
        self._lock = threading.Lock()
        self._by_id: dict[str, Subscription] = {}
        self._by_tenant: dict[str, dict[str, Subscription]] = {}
        self._deleted_at: dict[str, int] = {}  # id -> newest version seen before its tombstone

    def apply(self, key: bytes, value: bytes | None) -> bool:
        """Apply one record; True when the table changed. ``WireFormatError`` for an unreadable record."""
        if value is None:
            try:
                sub_id = key.decode("utf-8")
            except (UnicodeDecodeError, AttributeError):
                raise WireFormatError("the key is not UTF-8") from None
            with self._lock:
                gone = self._by_id.pop(sub_id, None)
                if gone is None:
                    return False
                self._by_tenant.get(gone.tenant_id, {}).pop(sub_id, None)
                self._deleted_at[sub_id] = gone.version
                return True
        sub = decode(key, value, self._keyring)
        if sub.sealed_error and self._reloaded():
            sub = decode(key, value, self._keyring)
        if sub.sealed_error:
            log.error("%s (version %d); its deliveries are dead-lettered (no_valid_secret) until it is fixed",
                      sub.sealed_error, sub.version)
        with self._lock:
            current = self._by_id.get(sub.id)
            if current is not None and sub.version < current.version:
                return False
            if current is None and sub.version <= self._deleted_at.get(sub.id, 0):
                return False
            if current is not None and current.tenant_id != sub.tenant_id:
                self._by_tenant.get(current.tenant_id, {}).pop(sub.id, None)
            self._by_id[sub.id] = sub
            self._by_tenant.setdefault(sub.tenant_id, {})[sub.id] = sub
            return current != sub

    def _reloaded(self) -> bool:
        """Load the keyring again; True when it changed (only after a value did not open)."""
        if self._reload is None:
            return False
        try:
            fresh = self._reload()
        except HookstreamError as exc:
            log.error("could not load the secret keys again: %s", exc)
            return False
        if fresh.ids == self._keyring.ids:
            return False
        log.info("secret keys loaded again: %s (were %s)", ", ".join(fresh.ids), ", ".join(self._keyring.ids))
        self._keyring = fresh
        return True

    def get(self, subscription_id: str) -> Subscription | None:
        with self._lock:
            return self._by_id.get(subscription_id)

    def for_tenant(self, tenant_id: str) -> list[Subscription]:
        """The tenant's subscriptions, active and disabled, oldest first."""
        with self._lock:
            subs = list(self._by_tenant.get(tenant_id, {}).values())
        return sorted(subs, key=lambda s: (s.created_at, s.id))

    def matching(self, tenant_id: str, event_type: str) -> list[Subscription]:
        """The tenant's active subscriptions whose filters select ``event_type``."""
        return [s for s in self.for_tenant(tenant_id) if s.active and filters.matches(s.events, event_type)]

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._by_id)

    def snapshot(self) -> dict[str, Subscription]:
        with self._lock:
            return dict(self._by_id)

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, subscription_id: object) -> bool:
        return subscription_id in self._by_id

    def __iter__(self) -> Iterator[Subscription]:
        return iter(self.snapshot().values())


def table_for(settings: Settings) -> SubscriptionTable:
    """An empty table with the settings' keyring, loaded again when a value does not open."""
    return SubscriptionTable(load_keyring(settings), reload=lambda: load_keyring(settings))


def _consumer(settings: Settings) -> Consumer:
    # librdkafka insists on a group id, but with assign() and no commits no group is ever joined.
    return make_consumer(
        settings,
        f"hookstream-subscriptions-view-{uuid.uuid4().hex[:8]}",
        **{"enable.partition.eof": True, "client.id": "hookstream-subscriptions-view", "log_level": 0},
    )


def _end_offsets(consumer: Consumer, settings: Settings, timeout: float) -> dict[int, tuple[int, int]]:
    topic = settings.topic(SUBSCRIPTIONS)
    try:
        metadata = consumer.list_topics(topic, timeout=timeout)
    except KafkaException as exc:
        raise BrokerError(f"cannot reach Kafka at {settings.kafka_bootstrap}: {exc.args[0].str()}") from None
    described = metadata.topics.get(topic)
    if described is None or described.error is not None or not described.partitions:
        raise TopicError(f"topic {topic} does not exist; create it with `hookstream topics ensure`")
    offsets = {}
    for p in sorted(described.partitions):
        try:
            offsets[p] = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
        except KafkaException as exc:
            raise BrokerError(f"cannot read the offsets of {topic} [{p}]: {exc.args[0].str()}") from None
    return offsets


def follow(
    settings: Settings,
    table: SubscriptionTable,
    stop_event: threading.Event,
    ready_event: threading.Event | None = None,
    *,
    poll_timeout: float = 0.2,
    metadata_timeout: float = 10.0,
) -> None:
    """Keep ``table`` current from the topic until ``stop_event`` is set (blocking).

    ``ready_event`` is set once every partition has been read up to the end offset it had when
    this started: from then on the table is at least as new as the topic was at start.
    """
    topic = settings.topic(SUBSCRIPTIONS)
    consumer = _consumer(settings)
    try:
        ends = _end_offsets(consumer, settings, metadata_timeout)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        behind = {p for p, (low, high) in ends.items() if high > low}
        if not behind and ready_event is not None:
            ready_event.set()
        while not stop_event.is_set():
            for msg in consumer.consume(num_messages=500, timeout=poll_timeout):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        position = msg.offset()
                    elif err.fatal():
                        raise BrokerError(f"reading {topic} failed: {err.str()}")
                    else:
                        log.warning("reading %s: %s (retrying)", topic, err.str())
                        continue
                else:
                    position = msg.offset() + 1
                    _apply(table, msg)
                if behind and msg.partition() in behind and position >= ends[msg.partition()][1]:
                    behind.discard(msg.partition())
                    if not behind and ready_event is not None:
                        ready_event.set()
    finally:
        consumer.close()


def _apply(table: SubscriptionTable, msg) -> None:
    """Apply one record; a record that cannot be applied is logged, counted and skipped.

    Whatever a record holds, the follower goes on: it is the only way every tenant's
    subscriptions reach the workers, and a compacted topic keeps a bad record (until a newer
    state of its key replaces it), so dying on it would mean dying again on every restart."""
    try:
        table.apply(msg.key(), msg.value())
    except WireFormatError as exc:
        _skipped(msg, "unreadable", str(exc))
    except Exception as exc:  # a bug, not the record's fault alone: still never a reason to stop
        _skipped(msg, "error", type(exc).__name__)


def _skipped(msg, reason: str, why: str) -> None:
    RECORDS_SKIPPED.labels(reason=reason).inc()
    key = msg.key()
    shown = key[:80].decode("utf-8", "replace") if isinstance(key, bytes) else repr(key)
    what = "an unreadable record" if reason == "unreadable" else "a record it could not apply"
    log.error("skipped %s on %s [%d] at offset %d (key %r): %s", what, msg.topic(), msg.partition(), msg.offset(), shown, why)


def load_table(settings: Settings, *, timeout: float = 30.0) -> SubscriptionTable:
    """A table read from the topic up to its current end (a one-off reader: tools, tests, sync),
    within ``timeout`` seconds in all (``hookstream.core.reading.read_range``: ``BrokerError``)."""
    table = table_for(settings)
    for msg in read_range(settings, settings.topic(SUBSCRIPTIONS), timeout=min(timeout, 10.0), deadline=timeout,
                          client_id="hookstream-subscriptions-view"):
        _apply(table, msg)
    return table


class FollowerThread:
    """``follow`` on a daemon thread: ``start()``, ``wait_ready()``, ``stop()``; ``error`` if it died."""

    def __init__(self, settings: Settings, table: SubscriptionTable | None = None) -> None:
        self.settings = settings
        self.table = table if table is not None else table_for(settings)
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="subscriptions-follower", daemon=True)

    def _run(self) -> None:
        try:
            follow(self.settings, self.table, self._stop, self.ready)
        except BaseException as exc:  # kept for the owner to see: a follower must never stop silently
            self.error = exc
            log.error("the subscriptions follower stopped: %s", exc)

    def start(self) -> "FollowerThread":
        self._thread.start()
        return self

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """True once caught up; False on timeout or when the follower died (see ``error``)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.ready.wait(0.05):
            if not self._thread.is_alive():
                return self.ready.is_set()
            if deadline is not None and time.monotonic() >= deadline:
                return False
        return True

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
