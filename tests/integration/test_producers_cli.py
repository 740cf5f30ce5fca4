"""The commands as a user runs them: `hookstream publish` and `hookstream outbox relay --once|status`."""

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from hookstream.core.db import make_engine, migrate
from hookstream.core.topics import ensure_topics
from hookstream.producers import add_to_outbox
from hookstream.schemas import Event, example, parse_event
from tests.integration.consume import TopicReader

pytestmark = pytest.mark.kafka
HOOKSTREAM = str(Path(sys.executable).with_name("hookstream"))


def _run(env, *args, stdin=None):
    return subprocess.run([HOOKSTREAM, *args], env=env, capture_output=True, text=True, input=stdin, timeout=120)


def test_publish_prints_the_event_id_once_the_broker_has_it(settings, hs_env, tmp_path):
    ensure_topics(settings)
    data_file = tmp_path / "invoice.json"
    data_file.write_text(json.dumps(example("invoice.authorized")))
    inline = _run(hs_env, "publish", "--tenant", "acme", "--type", "payment.received", "--data", json.dumps(example("payment.received")))
    from_file = _run(hs_env, "publish", "--tenant", "acme", "--type", "invoice.authorized", "--data", f"@{data_file}", "--correlation-id", "req-7")
    from_stdin = _run(hs_env, "publish", "--tenant", "acme", "--type", "invoice.sent", "--data", "@-", "--json",
                      stdin=json.dumps(example("invoice.sent")))
    for result in (inline, from_file, from_stdin):
        assert result.returncode == 0, result.stderr
    ids = {inline.stdout.strip(), from_file.stdout.strip(), json.loads(from_stdin.stdout)["id"]}
    assert all(uuid.UUID(i).version == 7 for i in ids)
    with TopicReader(settings, ["events.payment", "events.invoice"]) as reader:
        messages = reader.read_until(lambda m: len(m) >= 3)
    events = {e.id: e for e in (parse_event(m.value()) for m in messages)}
    assert set(events) == ids
    assert events[from_file.stdout.strip()].correlation_id == "req-7"


def test_publish_with_an_empty_tenant_sends_nothing(settings, hs_env):
    ensure_topics(settings)
    result = _run(hs_env, "publish", "--tenant", "", "--type", "invoice.sent", "--data", json.dumps(example("invoice.sent")))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "error: invoice.sent: tenant_id must not be empty\n"
    with TopicReader(settings, ["events.invoice"]) as reader:
        assert reader.read_until(lambda m: False, timeout=6, idle=3) == []


def test_relay_once_publishes_the_outbox_and_exits(settings, hs_env):
    ensure_topics(settings)
    engine = make_engine(settings.database_url)
    migrate(engine)
    with engine.begin() as conn:
        ids = [add_to_outbox(conn, Event.new("customer.created", "acme", example("customer.created"))).id for _ in range(5)]
    before = _run(hs_env, "outbox", "status")
    relayed = _run(hs_env, "outbox", "relay", "--once")
    after = _run(hs_env, "outbox", "status", "--json")
    assert before.stdout.startswith("5 pending (0 failing), oldest from ")
    assert (relayed.returncode, relayed.stdout) == (0, "published 5 events\n"), relayed.stderr
    assert json.loads(after.stdout) == {"pending": 0, "sent": 5, "failing": 0, "set_aside": 0, "oldest_pending": None}
    with TopicReader(settings, ["events.customer"]) as reader:
        messages = reader.read_until(lambda m: len(m) >= 5)
    assert [parse_event(m.value()).id for m in messages] == ids  # one key, one partition: in order


def test_relay_prints_a_set_aside_rows_stored_strings_escaped(settings, hs_env):
    """A row written before ids were checked (or edited by hand) can hold terminal controls in its
    event id and payload: the relay's set-aside line shows them escaped."""
    from sqlalchemy import update

    from hookstream.producers import OutboxRow

    ensure_topics(settings)
    engine = make_engine(settings.database_url)
    migrate(engine)
    hostile = "ev\x1b]0;owned\x07\x9b2J"
    with engine.begin() as conn:
        stored = add_to_outbox(conn, Event.new("customer.created", "acme", example("customer.created"))).id
        ok = add_to_outbox(conn, Event.new("customer.created", "acme", example("customer.created"))).id
        conn.execute(update(OutboxRow.__table__).where(OutboxRow.__table__.c.event_id == stored)
                     .values(event_id=hostile, payload='{"id": "\x1b[2J\u009b"'))
    engine.dispose()
    relayed = _run(hs_env, "outbox", "relay", "--once")
    assert (relayed.returncode, relayed.stdout) == (0, "published 1 events\n"), relayed.stderr
    line = next(x for x in relayed.stderr.splitlines() if x.startswith("set aside outbox row"))
    assert "(event ev\\x1b]0;owned\\x07\\x9b2J), it will not be published: unparseable: " in line
    assert not [c for c in relayed.stderr if (ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) <= 0x9F]
    with TopicReader(settings, ["events.customer"]) as reader:
        assert [parse_event(m.value()).id for m in reader.read_until(lambda m: len(m) >= 1)] == [ok]
