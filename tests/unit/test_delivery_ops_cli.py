"""``hookstream dlq`` and ``hookstream replay``: bad input is one line (exit 2) before any
connection; `dlq show` prints every part of an entry with stored strings escaped."""

from __future__ import annotations

import orjson
import pytest

import hookstream.delivery.dead_letters as dead_letters
from hookstream.core.wire import decode_dead_letter
from hookstream.shell.cli import main


@pytest.fixture(autouse=True)
def no_broker(monkeypatch, tmp_path):
    # nothing listens here: a command that got as far as connecting would fail another way
    monkeypatch.setenv("HOOKSTREAM_KAFKA_BOOTSTRAP", "127.0.0.1:9")
    monkeypatch.setenv("HOOKSTREAM_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("HOOKSTREAM_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")


@pytest.mark.parametrize(("argv", "message"), [
    (["dlq", "show", "99999999999-0"], "error: '99999999999-0' is not a dead-letter id: a partition is at most 2147483647"),
    (["dlq", "show", "0-99999999999999999999", "--tenant", "acme"], "error: '0-99999999999999999999' is not a dead-letter id"),
    (["dlq", "list", "--since", "99999999999d"], "error: --since: '99999999999d' reaches back before year 1"),
    (["dlq", "list", "--until", "99999999999d"], "error: --until: '99999999999d' reaches back before year 1"),
    (["dlq", "list", "--since", "nan"], "error: --since: 'nan' is not a time"),
    (["dlq", "list", "--since", "-2h"], "error: --since: '-2h' is not a time"),
    (["dlq", "replay", "--since", "99999999999d", "--dry-run"], "error: --since: '99999999999d' reaches back before year 1"),
    (["replay", "events", "--subscription", "sub_x", "--since", "1h", "--tenant", "not a tenant"], "error: tenant: 'not a tenant'"),
])
def test_bad_input_is_one_error_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1, err


REFERENCE = {
    "reason": "too_large: the record for t.deliveries.retry.1 was refused \x1b[2J", "dead_lettered_at": 5.0,
    "value_bytes": 2_000_000, "excerpt": "{\"delivery_id\": \"\x1b]0;owned\x07",
    "ref": {"topic": "t.deliveries", "partition": 1, "offset": 9, "event_id": "ev\x1b[2J\x1b]0;owned\x07", "delivery_id": "msg_x",
            "subscription_id": "sub_1", "tenant_id": "acme", "event_type": "invoice.sent"},
}


def _raw_controls(text: str) -> list[str]:
    return [c for c in text if (ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) <= 0x9F]


def test_show_prints_a_references_source_size_and_excerpt_escaped(monkeypatch, capsys):
    # the lookup's Kafka side is tested against the broker (tests/integration/test_dead_letters_hostile.py)
    monkeypatch.setattr(dead_letters, "find_any_tenant", lambda settings, entry: decode_dead_letter(2, 3, orjson.dumps(REFERENCE)))
    assert main(["dlq", "show", "2-3"]) == 0
    out = capsys.readouterr().out
    assert _raw_controls(out) == []
    assert "event_id          ev\\x1b[2J\\x1b]0;owned\\x07\n" in out
    assert "original         topic=t.deliveries partition=1 offset=9\n" in out
    assert "  value_bytes     2000000\n" in out
    assert "  excerpt         {\"delivery_id\": \"\\x1b]0;owned\\x07\n" in out
    assert "refused \\x1b[2J" in out


def test_show_of_an_unreadable_entry_prints_where_it_came_from(monkeypatch, capsys):
    malformed = {"reason": "malformed: not JSON", "topic": "t.deliveries", "partition": 0, "offset": 7, "key_b64": None,
                 "value_b64": "eA==", "dead_lettered_at": 1e300}
    monkeypatch.setattr(dead_letters, "find_any_tenant", lambda settings, entry: decode_dead_letter(0, 1, orjson.dumps(malformed)))
    assert main(["dlq", "show", "0-1"]) == 0
    out = capsys.readouterr().out
    assert "dead_lettered_at  None\n" in out  # out of range: unknown, and the rest still shown
    assert "original         topic=t.deliveries partition=0 offset=7\n" in out and "  value_b64       eA==\n" in out
