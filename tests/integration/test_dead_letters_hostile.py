"""Dead-letter tools against the real broker, fed what a hostile tenant or a broken writer can
leave on ``deliveries.dlq``: one odd entry never breaks `dlq list`, `dlq show` or `dlq replay
--dry-run`, and nothing stored reaches the terminal unescaped."""

from __future__ import annotations

import subprocess
import sys
import time

import orjson
import pytest

from hookstream.delivery.dead_letters import read
from hookstream.core.wire import DeliveryRecord, delivery_id
from hookstream.core.topics import DEAD_LETTERS
from hookstream.schemas import Event, example
from tests.integration.pipeline import produce

HOSTILE = "ev\x1b]8;;https://evil.example/\x07CLICK\x1b]8;;\x07\x1b[31m"


def _delivery(tenant: str, sub: str, event_id: str, at) -> bytes:
    ev = Event.new("invoice.sent", tenant, example("invoice.sent")).to_dict() | {"id": event_id}
    rec = DeliveryRecord(delivery_id=delivery_id(event_id, sub), subscription_id=sub, tenant_id=tenant, event_id=event_id,
                         event_type="invoice.sent", occurred_at=ev["occurred_at"], event=ev, attempt=1,
                         attempts=({"at": 1.0, "status": 500, "error": "boom \x1b[2J", "duration_ms": 3.0},))
    return orjson.dumps(orjson.loads(rec.to_bytes()) | {"reason": "exhausted \x1b]0;owned\x07", "dead_lettered_at": at})


@pytest.fixture
def entries(loopback_settings):
    now = time.time()
    reference = {"reason": "too_large: refused", "dead_lettered_at": -1e18, "value_bytes": 2_000_000,
                 "excerpt": "{\"delivery_id\": \"\x9b2J", "ref": {"topic": loopback_settings.topic("deliveries"), "partition": 0,
                                                            "offset": 9, "event_id": HOSTILE, "delivery_id": "msg_x",
                                                            "subscription_id": "sub_h", "tenant_id": "acme", "event_type": "invoice.sent"}}
    produce(loopback_settings, DEAD_LETTERS, [
        (b"sub_h", _delivery("acme", "sub_h", HOSTILE, 1e300)),  # OverflowError in a datetime
        (b"sub_h", _delivery("acme", "sub_h", "ev-big", 2**62)),  # OSError / ValueError
        (None, orjson.dumps(reference)),
        (b"sub_ok", _delivery("acme", "sub_ok", "ev-ok", now - 60)),
    ])
    return list(read(loopback_settings))


def _raw_controls(text: str) -> list[str]:
    return [c for c in text if (ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) <= 0x9F]


def test_odd_entries_are_listed_shown_and_dry_run_replayed(loopback_env, entries):
    run = lambda *a: subprocess.run([sys.executable, "-m", "hookstream", *a], env=loopback_env,  # noqa: E731
                                    capture_output=True, text=True, timeout=60)
    assert len(entries) == 4 and sorted(d.dead_lettered_at is None for d in entries) == [False, True, True, True]
    # partitions (so the order) differ by key: pick entries by what they hold
    reference_entry = next(d for d in entries if d.malformed)
    hostile_entry = next(d for d in entries if d.record and d.record.event_id == HOSTILE)

    listed = run("dlq", "list", "--tenant", "acme")
    assert listed.returncode == 0, listed.stderr
    assert len(listed.stdout.splitlines()) == 1 + 4 and _raw_controls(listed.stdout) == []  # the header, 4 entries
    assert "exhausted \\x1b]0;owned\\x07" in listed.stdout

    for d in entries:
        shown = run("dlq", "show", d.id, "--tenant", "acme")
        assert shown.returncode == 0, shown.stderr
        assert _raw_controls(shown.stdout) == [], shown.stdout
    reference = run("dlq", "show", reference_entry.id)
    assert "event_id          ev\\x1b]8;;https://evil.example/\\x07CLICK\\x1b]8;;\\x07\\x1b[31m\n" in reference.stdout
    assert "original         topic=" in reference.stdout and "  value_bytes     2000000\n" in reference.stdout
    assert "  excerpt         {\"delivery_id\": \"\\x9b2J\n" in reference.stdout
    history = run("dlq", "show", hostile_entry.id)
    assert "error=boom \\x1b[2J" in history.stdout and "dead_lettered_at  None\n" in history.stdout

    dry = run("dlq", "replay", "--tenant", "acme", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would replay 3 dead letter(s)" in dry.stdout and _raw_controls(dry.stdout) == []
    recent = run("dlq", "replay", "--tenant", "acme", "--since", "1h", "--dry-run")  # no time: in no window
    assert recent.returncode == 0 and "would replay 1 dead letter(s)" in recent.stdout


def test_an_id_beyond_kafkas_limits_is_a_one_line_error(loopback_env, entries):
    for entry in ("99999999999-0", "0-99999999999999999999"):
        shown = subprocess.run([sys.executable, "-m", "hookstream", "dlq", "show", entry], env=loopback_env,
                               capture_output=True, text=True, timeout=60)
        assert shown.returncode == 2 and shown.stderr.startswith(f"error: {entry!r} is not a dead-letter id")
        assert shown.stderr.count("\n") == 1
