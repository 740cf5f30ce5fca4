"""``hookstream deliveries`` and ``hookstream delivery``: user errors are one line, no traceback."""

from __future__ import annotations

import dataclasses
import json

import pytest

from hookstream.shell.cli import main


def test_an_unknown_status_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOOKSTREAM_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    assert main(["deliveries", "list", "--status", "lost"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --status: 'lost' is not one of succeeded, failed, dead") and "Traceback" not in err


def test_show_of_an_unknown_delivery_is_not_found(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOOKSTREAM_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    assert main(["deliveries", "show", "msg_nope"]) == 3
    assert capsys.readouterr().err == "error: no attempts recorded for delivery 'msg_nope'\n"
    assert main(["deliveries", "show", "msg_nope", "--tenant", "acme"]) == 3
    assert capsys.readouterr().err == "error: no attempts recorded for delivery 'msg_nope' for tenant acme\n"
    assert main(["deliveries", "show", "msg_nope", "--tenant", "not a tenant"]) == 2
    assert capsys.readouterr().err.startswith("error: tenant: 'not a tenant' is not a tenant id")


def test_an_empty_log_lists_nothing_and_says_whose(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOOKSTREAM_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    assert main(["deliveries", "list"]) == 0
    assert capsys.readouterr().out == "all tenants (no --tenant given)\nno deliveries\n"
    assert main(["deliveries", "list", "--tenant", "acme"]) == 0
    assert capsys.readouterr().out == "no deliveries\n"
    assert main(["deliveries", "list", "--json"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "[]" and err == "all tenants (no --tenant given)\n"
    assert main(["deliveries", "list", "--tenant", "acme", "--json"]) == 0
    assert capsys.readouterr() == ("[]\n", "")


def test_a_bad_worker_option_is_a_config_error(capsys):
    assert main(["delivery", "worker", "--concurrency", "0"]) == 2
    assert capsys.readouterr().err.startswith("error: --concurrency must be from 1 to 1000000")


def test_a_limit_beyond_the_maximum_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOOKSTREAM_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    for limit in ("99999999999999999999", "10001", "0"):
        assert main(["deliveries", "list", "--limit", limit]) == 2
        assert capsys.readouterr().err == f"error: --limit must be from 1 to 10000 (got {limit})\n"
    assert main(["deliveries", "list", "--limit", "10000"]) == 0


@pytest.mark.parametrize(("args", "message"), [
    (["--metrics-port", "99999999"], "error: --metrics-port must be from 0 to 65535 (got 99999999)\n"),
    (["--concurrency", "99999999999999999999"], "error: --concurrency must be from 1 to 1000000 (got 99999999999999999999)\n"),
])
def test_a_worker_option_out_of_range_is_a_config_error(args, message, capsys):
    assert main(["delivery", "worker", *args]) == 2
    assert capsys.readouterr().err == message


HOSTILE_ID = "ev\x1b]8;;https://evil.example/\x07CLICK-ME\x1b]8;;\x07\x1b[31m"


def _seed_hostile_attempt(db) -> str:
    """An attempt whose stored strings (event id, error, endpoint answer) carry terminal controls,
    written as the worker writes it (ids from before the envelope check, or records off the topic)."""
    from datetime import UTC, datetime

    from sqlalchemy import insert

    from hookstream.delivery.attempt import AttemptReport
    from hookstream.delivery.attempt_log import AttemptRow, make_row
    from hookstream.delivery.outcome import RetryLater, RetryReason
    from hookstream.core.db import make_engine, migrate
    from hookstream.core.wire import DeliveryRecord, delivery_id

    rec = DeliveryRecord(delivery_id=delivery_id(HOSTILE_ID, "sub_1"), subscription_id="sub_1", tenant_id="acme",
                         event_id=HOSTILE_ID, event_type="invoice.sent", occurred_at="2026-11-28T12:00:00Z", event={})
    rep = AttemptReport(1, 1_795_000_000.0, 0.01, RetryLater(RetryReason.CONNECTION_ERROR), None, "EndpointUnreachable: \x1b]0;owned\x07")
    engine = make_engine(f"sqlite:///{db}", all_tenants=True)
    migrate(engine)
    rows = [make_row(rec, rep, "failed"), make_row(rec, dataclasses.replace(rep, attempt=2, status=500, error=None,
                                                                            excerpt="\u009b2J\x1b[2Jbody".encode()), "failed")]
    with engine.begin() as c:
        for row in rows:
            c.execute(insert(AttemptRow.__table__).values(**row | {"attempted_at": datetime.fromtimestamp(row["attempted_at"], UTC)}))
    engine.dispose()
    return rec.delivery_id


def _raw_controls(text: str) -> list[str]:
    return [c for c in text if (ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) <= 0x9F]


def test_show_and_list_escape_what_tenants_and_endpoints_stored(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOOKSTREAM_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    delivery = _seed_hostile_attempt(tmp_path / "x.db")
    assert main(["deliveries", "show", delivery, "--tenant", "acme"]) == 0
    out = capsys.readouterr().out
    assert _raw_controls(out) == []
    assert "(event ev\\x1b]8;;https://evil.example/\\x07CLICK-ME\\x1b]8;;\\x07\\x1b[31m)" in out
    assert "EndpointUnreachable: \\x1b]0;owned\\x07" in out and "HTTP 500" in out
    assert "  '\\x9b2J\\x1b[2Jbody'\n" in out  # the attempt's RESPONSE cell
    assert main(["deliveries", "list", "--tenant", "acme"]) == 0
    out = capsys.readouterr().out
    assert _raw_controls(out) == [] and delivery in out
    assert main(["deliveries", "show", delivery, "--json"]) == 0  # JSON escapes by itself, and keeps the value
    out = capsys.readouterr().out
    assert _raw_controls(out) == [] and json.loads(out)["attempts"][0]["event_id"] == HOSTILE_ID
