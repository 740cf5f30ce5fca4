"""Outbox rows the relay cannot read (on SQLite and PostgreSQL): each is set aside with its reason
and the relay goes on with the rows behind it, instead of dying at that row on every start."""

import threading

import orjson
import pytest
from sqlalchemy import select, update

import hookstream.producers._outbox as outbox_module
from hookstream.core.db import make_engine, migrate
from hookstream.producers import OutboxRelay, OutboxRow, Publisher, add_to_outbox
from hookstream.schemas import Event, example
from tests.fakes import FakeProducer

outbox = OutboxRow.__table__


@pytest.fixture
def engine(database_url):
    engine = make_engine(database_url)
    migrate(engine)
    yield engine
    engine.dispose()


def _rows(engine, keys: list[str]) -> list[str]:
    with engine.begin() as conn:
        return [add_to_outbox(conn, Event.new("payment.received", "acme", dict(example("payment.received"), payment_id=key))).id
                for key in keys]


def _edit(engine, event_id: str, payload: str) -> None:
    with engine.begin() as conn:
        conn.execute(update(outbox).where(outbox.c.event_id == event_id).values(payload=payload))


def _state(engine) -> list[tuple[str, bool, str | None]]:
    query = select(outbox.c.entity_id, outbox.c.sent_at, outbox.c.set_aside_reason).order_by(outbox.c.seq)
    with engine.connect() as conn:
        return [(entity, sent is not None, reason) for entity, sent, reason in conn.execute(query)]


def _run_until_drained(relay: OutboxRelay, engine, reported: list) -> None:
    """``relay.run`` on a thread until no row is pending (bounded), then stopped: it must not raise."""
    stop, raised = threading.Event(), []

    def run():
        try:
            relay.run(stop, poll_interval=0.05, on_error=reported.append)
        except BaseException as exc:  # noqa: BLE001 - what the test is about
            raised.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    for _ in range(200):  # at most ~10 s
        if raised or all(sent or reason for _, sent, reason in _state(engine)):
            break
        stop.wait(0.05)
    stop.set()
    thread.join(10)
    assert not raised, f"relay.run raised {raised[0]!r}"
    assert not thread.is_alive()


def test_a_row_nested_1000_deep_is_set_aside_as_unparseable_and_the_rows_behind_it_go_out(engine, settings):
    first, deep, last = _rows(engine, ["pay_1", "pay_deep", "pay_3"])
    doc = orjson.loads(orjson.dumps(Event.new("payment.received", "acme", example("payment.received")).to_dict()))
    doc["id"] = deep
    _edit(engine, deep, orjson.dumps(doc).decode()[:-1] + ',"correlation_id":' + "[" * 1000 + "]" * 1000 + "}")
    producer, reported, seen = FakeProducer(), [], []
    relay = OutboxRelay(engine, Publisher(settings, producer=producer), on_set_aside=seen.append)
    _run_until_drained(relay, engine, reported)
    assert _state(engine) == [
        ("pay_1", True, None),
        ("pay_deep", False, "unparseable: payment.received: correlation_id is nested more than 32 levels deep (objects and arrays)"),
        ("pay_3", True, None),
    ]
    assert [k for _, k, _ in producer.produced] == [b"pay_1", b"pay_3"]
    assert [row.event_id for row in seen] == [deep] and reported == []


def test_a_row_whose_reading_raises_unexpectedly_is_set_aside_as_internal_error(engine, settings, monkeypatch, caplog):
    real_parse = outbox_module.parse_event

    def parse_with_a_bug(value):  # stands for a bug nobody foresaw, met by one row's bytes
        if b"pay_bug" in value:
            raise RuntimeError("a bug nobody foresaw")
        return real_parse(value)

    monkeypatch.setattr(outbox_module, "parse_event", parse_with_a_bug)
    _rows(engine, ["pay_1", "pay_bug", "pay_3"])
    producer, reported = FakeProducer(), []
    relay = OutboxRelay(engine, Publisher(settings, producer=producer), on_set_aside=lambda row: None)
    with caplog.at_level("ERROR", logger="hookstream.outbox"):
        _run_until_drained(relay, engine, reported)
    assert _state(engine) == [("pay_1", True, None), ("pay_bug", False, "internal_error: RuntimeError: a bug nobody foresaw"),
                              ("pay_3", True, None)]
    assert [k for _, k, _ in producer.produced] == [b"pay_1", b"pay_3"]
    assert [r.exc_info[0] for r in caplog.records if r.exc_info] == [RuntimeError]  # the traceback, logged once
