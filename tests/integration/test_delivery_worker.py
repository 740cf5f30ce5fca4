"""The delivery worker as a real process, against the real broker and a real HTTP receiver."""

from __future__ import annotations

import base64
import json

import orjson
import pytest
from standardwebhooks.webhooks import Webhook

from hookstream.delivery.signing import verify
from hookstream.core.topics import DEAD_LETTERS, DELIVERIES
from tests.integration.delivery_helpers import (  # noqa: F401  (cfg, env, receiver, store are fixtures)
    cfg, cli, env, fail_times, make_record, produce_records, receiver, scrape, status, store, subscribe, wait_for,
)
from tests.integration.pipeline import TopicReader, produce, worker

pytestmark = pytest.mark.kafka

def test_signed_retried_and_dead_lettered(cfg, env, store, receiver, tmp_path):
    ok_id, ok_secret = subscribe(store, cfg, "acme", receiver.route("/ok", status(200)))
    flaky_id, _ = subscribe(store, cfg, "acme", receiver.route("/flaky", fail_times(2)))
    down_id, _ = subscribe(store, cfg, "acme", receiver.route("/down", status(500)))
    bad_id, _ = subscribe(store, cfg, "beta", receiver.route("/bad", status(400)))
    receiver.route("/elsewhere", status(200))
    moved_id, _ = subscribe(store, cfg, "beta", receiver.route("/moved", status(302, Location=f"http://127.0.0.1:{receiver.port}/elsewhere")))
    records = {name: make_record(sid, tenant) for name, sid, tenant in [
        ("ok", ok_id, "acme"), ("flaky", flaky_id, "acme"), ("down", down_id, "acme"), ("bad", bad_id, "beta"), ("moved", moved_id, "beta"),
    ]}
    dlq = TopicReader(cfg, DEAD_LETTERS)
    with worker(env, ["delivery", "worker", "--metrics-port", "0"], tmp_path / "worker.log") as w:
        produce(cfg, DELIVERIES, [(b"sub_x", b"{not json"), (b"sub_x", orjson.dumps({"delivery_id": "msg_x"}))])
        produce_records(cfg, list(records.values()))
        wait_for(lambda: len(receiver.hits_for("/flaky")) >= 3 and len(receiver.hits_for("/down")) >= 4, 60, "the retries")
        every = dlq.read_until(lambda rs: len(rs) >= 5, 30, what="five dead letters")
        assert w.alive, w.log()[-3000:]
        metrics = scrape(w.log())
        assert w.stop() == 0, w.log()[-3000:]

    # the metrics dashboards query, with their labels
    assert 'webhook_deliveries_total{event="invoice.sent",status="succeeded",tenant_id="acme"} 2.0' in metrics
    assert 'webhook_deliveries_total{event="invoice.sent",status="dead",tenant_id="acme"} 1.0' in metrics
    assert 'webhook_deliveries_total{event="invoice.sent",status="failed",tenant_id="acme"} 5.0' in metrics
    assert 'webhook_retries_total{event="invoice.sent",reason="server_error",tenant_id="acme"} 5.0' in metrics
    assert 'webhook_delivery_http_status_total{event="invoice.sent",status_code="302"} 1.0' in metrics
    # (the +Inf bucket: how long the two took depends on the machine's load, not on the worker)
    assert 'webhook_delivery_duration_seconds_bucket{event="invoice.sent",le="+Inf",tenant_id="beta"} 2.0' in metrics
    assert 'webhook_dead_letters_total{event="invoice.sent",reason="retries_exhausted",tenant_id="acme"} 1.0' in metrics
    assert 'webhook_dead_letters_total{event="invoice.sent",reason="redirect",tenant_id="beta"} 1.0' in metrics
    assert 'webhook_dead_letters_total{event="unknown",reason="malformed",tenant_id="unknown"} 2.0' in metrics
    assert "webhook_inflight_requests 0.0" in metrics
    assert "hookstream_delivery_malformed_total 2.0" in metrics
    assert f'webhook_circuit_state{{subscription_id="{down_id}"}} 0.0' in metrics
    assert "hookstream_consumer_lag{" in metrics or "# TYPE hookstream_consumer_lag gauge" in metrics
    # every series ops/ may query is there (tests/monitoring.py is the contract)
    from tests.monitoring import METRICS

    for name in METRICS:
        if name.startswith("webhook_"):
            assert f"\n{name}{{" in metrics or f"\n{name} " in metrics, name

    # signatures verify with the reference library, and with our own verifier
    (hit,) = receiver.hits_for("/ok")
    Webhook(ok_secret).verify(hit.body, hit.headers)
    verify(hit.body, hit.headers, ok_secret)
    assert hit.headers["webhook-id"] == records["ok"].delivery_id
    assert hit.headers["content-type"] == "application/json"
    assert hit.headers["user-agent"].startswith("hookstream/")
    assert orjson.loads(hit.body) == {"type": "invoice.sent", "timestamp": "2026-11-28T12:00:00Z", "data": records["ok"].event["data"]}

    # failing twice then succeeding: three attempts, one webhook-id
    flaky = receiver.hits_for("/flaky")
    assert len(flaky) == 3
    assert {h.headers["webhook-id"] for h in flaky} == {records["flaky"].delivery_id}
    # each retry waited for its tier's delay (200 ms, then 400 ms, +-20%): the tier paused until due
    assert flaky[1].at - flaky[0].at >= 0.16 and flaky[2].at - flaky[1].at >= 0.32

    # unreadable records are set aside on the dead-letter topic, with the reason and the bytes
    docs = [orjson.loads(m.value()) for m in every]
    aside = [d for d in docs if d["reason"].startswith("malformed")]
    assert sorted(d["reason"] for d in aside) == ["malformed: delivery_id is missing or not a non-empty string".replace("delivery_id", "subscription_id"), "malformed: the value is not JSON"]
    assert base64.b64decode(next(d for d in aside if "JSON" in d["reason"])["value_b64"]) == b"{not json"

    # always 500: every attempt of the schedule, then the dead-letter topic with the history
    by_id = {d["delivery_id"]: d for d in docs if not d["reason"].startswith("malformed")}
    assert set(by_id) == {records["down"].delivery_id, records["bad"].delivery_id, records["moved"].delivery_id}
    down = by_id[records["down"].delivery_id]
    assert len(receiver.hits_for("/down")) == 4
    assert [a["attempt"] for a in down["attempts"]] == [1, 2, 3, 4]
    assert all(a["status"] == 500 and a["duration"] >= 0 and a["at"] > 0 for a in down["attempts"])
    assert down["reason"].startswith("retries_exhausted")
    assert "whsec_" not in json.dumps(down) and "secret" not in json.dumps(down)
    # 400: one attempt, then dead
    assert len(receiver.hits_for("/bad")) == 1
    assert [a["status"] for a in by_id[records["bad"].delivery_id]["attempts"]] == [400]
    # a redirect is a failure, never followed
    assert len(receiver.hits_for("/moved")) == 1 and receiver.hits_for("/elsewhere") == []
    assert by_id[records["moved"].delivery_id]["reason"] == "redirect (HTTP 302)"
    dlq.close()

    # the attempt log saw every attempt
    listed = json.loads(cli(env, "deliveries", "list", "--json").stdout)
    assert {r["delivery_id"]: r["status"] for r in listed} == {
        records["ok"].delivery_id: "succeeded", records["flaky"].delivery_id: "succeeded",
        records["down"].delivery_id: "dead", records["bad"].delivery_id: "dead", records["moved"].delivery_id: "dead",
    }
    dead_only = json.loads(cli(env, "deliveries", "list", "--status", "dead", "--tenant", "beta", "--json").stdout)
    assert {r["delivery_id"] for r in dead_only} == {records["bad"].delivery_id, records["moved"].delivery_id}
    shown = json.loads(cli(env, "deliveries", "show", records["flaky"].delivery_id, "--json").stdout)
    assert [(a["attempt"], a["status"], a["http_status"]) for a in shown["attempts"]] == [(1, "failed", 500), (2, "failed", 500), (3, "succeeded", 200)]
    missing = cli(env, "deliveries", "show", "msg_nothing")
    assert missing.returncode == 3 and missing.stderr.startswith("error: ") and "Traceback" not in missing.stderr
