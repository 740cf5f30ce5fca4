"""The transactional outbox on SQLite and PostgreSQL, relayed to the real broker.

The crash test runs `hookstream outbox relay` as a separate process, kills it with SIGKILL while
it publishes, restarts it, and checks with an independent consumer that every row arrived at
least once, with the id stored in the row.
"""

import collections
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from confluent_kafka import KafkaError, KafkaException
from sqlalchemy import Column, MetaData, String, Table, insert, select, text, update

from hookstream.core.db import Base, make_engine, migrate, session_factory
from hookstream.core.topics import ensure_topics
from hookstream.producers import DomainEvents, Outbox, OutboxRelay, OutboxRow, Publisher, add_to_outbox, outbox_status
from hookstream.schemas import Event, InvalidEventError, example, parse_event
from tests.fakes import FakeProducer
from tests.integration.consume import TopicReader
from tests.sizes import limit_message_bytes

HOOKSTREAM = str(Path(sys.executable).with_name("hookstream"))
outbox = OutboxRow.__table__


@pytest.fixture
def engine(database_url):
    engine = make_engine(database_url)
    migrate(engine)
    yield engine
    engine.dispose()


def _order_event(order_id: str, n: int) -> Event:
    data = {**example("sales_order.confirmed"), "order_id": order_id, "order_number": f"SO-{order_id}-{n}"}
    return Event.new("sales_order.confirmed", "tenant-a", data)


def _fill(engine, count: int, entities: int = 20) -> list[str]:
    """``count`` events over ``entities`` orders, committed in transactions of 500; their ids in seq order."""
    ids = []
    for start in range(0, count, 500):
        with engine.begin() as conn:
            for n in range(start, min(start + 500, count)):
                ids.append(add_to_outbox(conn, _order_event(f"so_{n % entities}", n)).id)
    return ids


def _stored_ids(engine, *, sent=None) -> list[str]:
    query = select(outbox.c.event_id).order_by(outbox.c.seq)
    if sent is not None:
        query = query.where(outbox.c.sent_at.is_not(None) if sent else outbox.c.sent_at.is_(None))
    with engine.connect() as conn:
        return list(conn.scalars(query))


def _by_entity(ids_and_keys) -> dict:
    out = collections.defaultdict(list)
    for key, event_id in ids_and_keys:
        out[key].append(event_id)
    return out


# ----------------------------------------------------------------------------- writing
def test_outbox_table_matches_its_migration(engine):
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diffs if "outbox" in repr(d)] == []


def test_event_commits_or_rolls_back_with_the_business_change(engine):
    orders = Table("orders_for_test", MetaData(), Column("id", String(32), primary_key=True))
    orders.create(engine)
    Session = session_factory(engine)
    with Session.begin() as session:
        session.execute(insert(orders).values(id="so_1"))
        DomainEvents(Outbox(session)).sales_orders.confirmed("tenant-a", {**example("sales_order.confirmed"), "order_id": "so_1"})
    with pytest.raises(RuntimeError):
        with Session.begin() as session:
            session.execute(insert(orders).values(id="so_2"))
            DomainEvents(Outbox(session)).sales_orders.confirmed("tenant-a", {**example("sales_order.confirmed"), "order_id": "so_2"})
            raise RuntimeError("the business change failed")
    with engine.connect() as conn:
        assert list(conn.scalars(select(orders.c.id))) == ["so_1"]
        assert list(conn.scalars(select(outbox.c.entity_id))) == ["so_1"]


def test_invalid_event_is_refused_before_it_reaches_the_outbox(engine):
    with pytest.raises(InvalidEventError, match="sales_order.cancelled: data.reason is required"):
        with engine.begin() as conn:
            data = {k: v for k, v in example("sales_order.cancelled").items() if k != "reason"}
            add_to_outbox(conn, Event.new("sales_order.cancelled", "tenant-a", data))
    assert _stored_ids(engine) == []


# ----------------------------------------------------------------------------- relaying
@pytest.mark.kafka
def test_relay_publishes_pending_rows_in_order_and_marks_them_sent(engine, settings):
    ensure_topics(settings)
    ids = _fill(engine, 1200)
    with Publisher(settings) as publisher:
        relay = OutboxRelay(engine, publisher, batch_size=250)
        assert relay.drain() == 1200
        assert relay.drain() == 0  # nothing is published twice
    with TopicReader(settings, ["events.sales_order"]) as reader:
        messages = reader.read_until(lambda m: len(m) >= 1200)
    received = _by_entity((m.key(), parse_event(m.value()).id) for m in messages)
    with engine.connect() as conn:
        expected = _by_entity(conn.execute(select(outbox.c.entity_id, outbox.c.event_id).order_by(outbox.c.seq)))
    assert received == {k.encode(): v for k, v in expected.items()}
    assert sorted(i for v in received.values() for i in v) == sorted(ids)
    status = outbox_status(engine)
    assert (status.pending, status.sent, status.oldest_pending) == (0, 1200, None)


def _fill_keys(engine, keys: list[str]) -> list[str]:
    with engine.begin() as conn:
        return [add_to_outbox(conn, _order_event(key, n)).id for n, key in enumerate(keys)]


def _marked(engine) -> list[tuple[str, bool, int, bool]]:
    """(entity, sent, attempts, has error) per row in seq order."""
    query = select(outbox.c.entity_id, outbox.c.sent_at, outbox.c.attempts, outbox.c.last_error).order_by(outbox.c.seq)
    with engine.connect() as conn:
        return [(e, s is not None, a, err is not None) for e, s, a, err in conn.execute(query)]


class _UnknownTopicOnProduce(FakeProducer):
    """produce() itself refuses ``refuse_keys`` for a reason that may pass (the topic is missing)."""

    def produce(self, topic, value, key, on_delivery):
        if key in self.refuse_keys:
            raise KafkaException(KafkaError(KafkaError._UNKNOWN_TOPIC))
        super().produce(topic, value, key, on_delivery)


@pytest.mark.parametrize("how", ["delivery report", "refused by produce"])
def test_only_rows_before_a_failure_are_marked_and_the_rest_retried_in_order(engine, settings, how):
    _fill_keys(engine, ["so_a", "so_b", "so_bad", "so_c"])
    producer = FakeProducer(fail_keys={b"so_bad"}) if how == "delivery report" else _UnknownTopicOnProduce(refuse_keys={b"so_bad"})
    publisher = Publisher(settings, producer=producer)
    result = OutboxRelay(engine, publisher).relay_batch()
    assert (result.published, result.error.event_ids != ()) == (2, True)
    assert _marked(engine) == [("so_a", True, 0, False), ("so_b", True, 0, False), ("so_bad", False, 1, True), ("so_c", False, 0, False)]
    publisher.close()  # every outcome was collected by the relay: nothing left to raise
    producer.fail_keys = producer.refuse_keys = set()
    assert OutboxRelay(engine, Publisher(settings, producer=producer)).drain() == 2
    assert [k for _, k, _ in producer.produced][-2:] == [b"so_bad", b"so_c"]  # in order
    assert [sent for _, sent, _, _ in _marked(engine)] == [True] * 4


@pytest.mark.kafka
def test_failed_deliveries_stay_pending_with_the_error_and_go_out_later(engine, settings):
    ids = _fill(engine, 30)  # the topics do not exist yet: every delivery fails
    with Publisher(settings, delivery_timeout=2) as publisher:
        result = OutboxRelay(engine, publisher, ack_timeout=20).relay_batch()
    assert result.published == 0
    assert "was not delivered" in str(result.error)
    status = outbox_status(engine)
    assert (status.pending, status.failing) == (30, 1)
    ensure_topics(settings)
    with Publisher(settings) as publisher:
        assert OutboxRelay(engine, publisher).drain() == 30
    with TopicReader(settings, ["events.sales_order"]) as reader:
        messages = reader.read_until(lambda m: len({parse_event(x.value()).id for x in m}) >= 30)
    assert {parse_event(m.value()).id for m in messages} == set(ids)  # maybe twice, never lost
    assert outbox_status(engine).failing == 0


@pytest.mark.kafka
def test_two_relays_at_once_never_publish_the_same_row(engine, settings):
    ensure_topics(settings)
    ids = _fill(engine, 3000, entities=30)
    counts = []

    def relay():
        relay_engine = make_engine(str(engine.url.render_as_string(hide_password=False)))
        with Publisher(settings) as publisher:
            counts.append(OutboxRelay(relay_engine, publisher, batch_size=100).drain())
        relay_engine.dispose()

    threads = [threading.Thread(target=relay) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(counts) == 3000
    with TopicReader(settings, ["events.sales_order"]) as reader:
        messages = reader.read_until(lambda m: len(m) >= 3000, timeout=60)
        reader.read_until(lambda m: False, timeout=3, idle=1.5)  # anything extra would show up here
    seen = [parse_event(m.value()).id for m in reader.messages]
    assert sorted(seen) == sorted(ids)  # each exactly once
    received = _by_entity((m.key().decode(), parse_event(m.value()).id) for m in messages)
    with engine.connect() as conn:
        assert received == _by_entity(conn.execute(select(outbox.c.entity_id, outbox.c.event_id).order_by(outbox.c.seq)))


# ----------------------------------------------------------------------------- crashing
def _start_relay(env, *args) -> subprocess.Popen:
    return subprocess.Popen(
        [HOOKSTREAM, "outbox", "relay", "--batch-size", "200", "--poll-interval", "100ms", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


@pytest.mark.kafka
def test_relay_killed_mid_batch_and_restarted_publishes_every_row_with_its_id(engine, settings, hs_env, database_url):
    ensure_topics(settings)
    env = {**hs_env, "HOOKSTREAM_DATABASE_URL": database_url}
    ids = _fill(engine, 12_000)
    reader = TopicReader(settings, ["events.sales_order"])
    seen: list[str] = []

    def distinct() -> set[str]:
        seen.extend(parse_event(m.value()).id for m in reader.messages[len(seen):])
        return set(seen)

    caught_mid_batch = 0
    relay = _start_relay(env)
    try:
        for kill in range(6):
            target = len(distinct()) + 400
            reader.read_until(lambda m: len(m) >= target, timeout=60)
            relay.send_signal(signal.SIGKILL)
            assert relay.wait(timeout=10) == -signal.SIGKILL
            reader.read_until(lambda m: False, timeout=10, idle=1.0)  # all that reached the broker
            published, marked = distinct(), set(_stored_ids(engine, sent=True))
            assert marked <= published  # a row is never marked sent before the broker has it
            assert _stored_ids(engine, sent=False), "the relay finished before it was killed; add rows"
            caught_mid_batch += bool(published - marked)  # published, then killed before marking
            if caught_mid_batch and kill >= 1:
                break
            relay = _start_relay(env)
        assert caught_mid_batch, "no kill landed between publishing a batch and marking it"

        relay = _start_relay(env)  # the loop mode, stopped with SIGTERM once the outbox is empty
        deadline = time.monotonic() + 90
        while outbox_status(engine).pending and time.monotonic() < deadline:
            time.sleep(0.2)
        relay.send_signal(signal.SIGTERM)
        out, err = relay.communicate(timeout=30)
        assert relay.returncode == 0, err
        assert out.splitlines()[-1].startswith("published ")
    finally:
        if relay.poll() is None:
            relay.kill()
            relay.wait()
    reader.read_until(lambda m: len(distinct()) >= len(ids), timeout=60)
    reader.close()
    assert set(seen) == set(ids)  # every row arrived, and no id the outbox does not hold
    assert outbox_status(engine).pending == 0
    assert len(seen) >= len(ids)  # at least once: the rows published-but-unmarked went out twice


# ----------------------------------------------------------------------------- the size limit, rows set aside
def test_an_event_over_the_size_limit_is_refused_before_it_reaches_the_outbox(engine, monkeypatch):
    from hookstream.producers import EventTooLargeError
    from tests.sizes import invoice_of_size

    big = invoice_of_size("tenant-a", 3000)
    with pytest.raises(EventTooLargeError, match=r"over the limit of 2048 bytes"):
        with engine.begin() as conn:
            add_to_outbox(conn, big, max_event_bytes=2048)
    monkeypatch.setenv("HOOKSTREAM_MAX_EVENT_BYTES", "2048")  # the default limit is the environment's
    with pytest.raises(EventTooLargeError, match=rf"event {big.id} \(invoice.created\) is \d+ bytes serialised"):
        with engine.begin() as conn:
            Outbox(conn).publish(big)
    assert _stored_ids(engine) == []
    monkeypatch.delenv("HOOKSTREAM_MAX_EVENT_BYTES")
    with engine.begin() as conn:
        add_to_outbox(conn, big)  # 256 KiB by default
    assert _stored_ids(engine) == [big.id]


def _set_aside(engine) -> dict[str, str]:
    query = select(outbox.c.event_id, outbox.c.set_aside_reason).where(outbox.c.set_aside_at.is_not(None))
    with engine.connect() as conn:
        return dict(conn.execute(query).all())


@pytest.mark.kafka
def test_relay_sets_aside_rows_it_can_never_publish_and_goes_on(engine, settings):
    """Too large for a since-lowered limit, refused by the broker for good, unparseable: each row is
    set aside with its reason, and the rows around them are published in order."""
    from tests.sizes import invoice_of_size

    ensure_topics(settings)
    invoice_topic = settings.topic("events.invoice")
    limit_message_bytes(settings, invoice_topic, 2000)  # the broker refuses any invoice record batch over 2,000 bytes
    with engine.begin() as conn:
        first = add_to_outbox(conn, _order_event("so_1", 1)).id
        too_large = add_to_outbox(conn, invoice_of_size("tenant-a", 9000, invoice_id="inv_big")).id
        refused = add_to_outbox(conn, invoice_of_size("tenant-a", 6000, invoice_id="inv_refused")).id
        unparseable = add_to_outbox(conn, _order_event("so_1", 2)).id
        last = add_to_outbox(conn, _order_event("so_1", 3)).id
        conn.execute(update(outbox).where(outbox.c.event_id == unparseable).values(payload='{"id": "edited by hand"'))
    seen = []
    with Publisher(settings.model_copy(update=dict(max_event_bytes=8000)), delivery_timeout=20) as publisher:
        relay = OutboxRelay(engine, publisher, ack_timeout=30, on_set_aside=seen.append)
        assert relay.drain() == 2
        assert relay.drain() == 0  # set-aside rows are not tried again
    reasons = _set_aside(engine)
    assert set(reasons) == {too_large, refused, unparseable}
    assert reasons[too_large].startswith(f"too_large: event {too_large} (invoice.created) is ")
    assert "over the limit of 8000 bytes" in reasons[too_large]
    assert reasons[refused].startswith("refused: ") and "MSG_SIZE_TOO_LARGE" in reasons[refused]
    assert reasons[unparseable].startswith("unparseable: ")
    assert [(r.event_id, r.reason) for r in seen] == [(i, reasons[i]) for i in (too_large, refused, unparseable)]
    assert _stored_ids(engine, sent=True) == [first, last]
    status = outbox_status(engine)
    assert (status.pending, status.sent, status.set_aside, status.failing) == (0, 2, 3, 0)
    with TopicReader(settings, ["events.sales_order", "events.invoice"]) as reader:
        reader.read_until(lambda m: len(m) >= 2)
        messages = reader.read_until(lambda m: False, timeout=4, idle=2)  # and nothing more
    assert [parse_event(m.value()).id for m in messages] == [first, last]


def test_a_row_produce_refuses_for_good_is_set_aside_and_the_rows_behind_it_go_out(engine, settings):
    _fill_keys(engine, ["so_a", "so_big", "so_c"])
    producer = FakeProducer(refuse_keys={b"so_big"})  # produce() raises MSG_SIZE_TOO_LARGE
    publisher = Publisher(settings, producer=producer)
    result = OutboxRelay(engine, publisher, on_set_aside=lambda row: None).relay_batch()
    assert (result.published, result.error, len(result.set_aside)) == (2, None, 1)
    assert "MSG_SIZE_TOO_LARGE" in result.set_aside[0].reason
    assert [k for _, k, _ in producer.produced] == [b"so_a", b"so_c"]
    assert [(e, sent) for e, sent, _, _ in _marked(engine)] == [("so_a", True), ("so_big", False), ("so_c", True)]
    assert outbox_status(engine).set_aside == 1
    publisher.close()


def test_rows_written_before_the_set_aside_columns_stay_pending_after_the_upgrade(database_url):
    from alembic import command

    from hookstream.core.db import _alembic_config

    engine = make_engine(database_url)
    command.upgrade(_alembic_config(engine), "0002_outbox")  # an outbox from before 0006
    with engine.begin() as conn:
        conn.execute(text("insert into outbox (event_id, event_type, tenant_id, entity_id, payload, created_at, attempts) "
                          "values ('ev_1', 'sales_order.confirmed', 't', 'so_1', '{}', CURRENT_TIMESTAMP, 0)"))
    migrate(engine)
    status = outbox_status(engine)
    assert (status.pending, status.set_aside) == (1, 0)
    engine.dispose()
