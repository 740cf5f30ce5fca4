"""One tenant's hostile endpoints cannot stop the delivery worker: the real worker process, the
real broker, tests/hostile_endpoint.py for tenant A (one subscription per misbehaviour) and a
healthy aiohttp receiver for tenant B.

Before issue #12 the first malformed status line raised out of the attempt, the worker died, and
every restart died again on the same record.
"""

from __future__ import annotations

import contextlib
import itertools
import json

import orjson
import pytest

from hookstream.core.topics import DEAD_LETTERS
from tests.hostile_endpoint import ANSWERS, CONTROL, EXPECTED, TLS_MODES, HostileEndpoint
from tests.integration.delivery_helpers import (  # noqa: F401  (cfg, env, receiver, store are fixtures)
    SCHEDULE, cfg, cli, env, make_record, produce_records, receiver, scrape, status, store, subscribe, wait_for,
)
from tests.integration.pipeline import TopicReader, worker

pytestmark = pytest.mark.kafka

HEALTHY_EVENTS = 30
ATTEMPTS = len(SCHEDULE.split(",")) + 1  # the first attempt and one per retry tier


@pytest.fixture
def hostile():
    with HostileEndpoint() as endpoint:
        yield endpoint


def test_hostile_endpoints_are_classified_and_the_healthy_tenant_gets_everything(cfg, env, store, receiver, hostile, tmp_path):
    modes = [m for m in ANSWERS if m != CONTROL] + [m for m in TLS_MODES if m in hostile.tls_ports]
    subs = {m: subscribe(store, cfg, "tenant_a", hostile.tls_url(m) if m in TLS_MODES else hostile.url(m))[0] for m in modes}
    healthy_id, _ = subscribe(store, cfg, "tenant_b", receiver.route("/ok", status(204)))
    hostile_records = {m: make_record(subs[m], "tenant_a") for m in modes}
    healthy_records = [make_record(healthy_id, "tenant_b", n) for n in range(HEALTHY_EVENTS)]
    failing = {m for m in modes if EXPECTED[m][0] != "success"}

    dlq = TopicReader(cfg, DEAD_LETTERS)
    with worker(env, ["delivery", "worker", "--metrics-port", "0"], tmp_path / "worker.log") as w:
        # interleaved, so healthy records queue behind hostile ones on the worker
        pairs = itertools.zip_longest(hostile_records.values(), healthy_records)
        produce_records(cfg, [r for pair in pairs for r in pair if r is not None])
        wait_for(lambda: len(receiver.hits_for("/ok")) >= HEALTHY_EVENTS or not w.alive, 60, "the healthy tenant's deliveries")
        assert w.alive, w.log()[-3000:]
        with contextlib.suppress(AssertionError):  # the checks below name the modes missing
            dlq.read_until(lambda rs: len(rs) >= len(failing) or not w.alive, 60, what="a dead letter per failing mode")
        dead = dlq.records
        assert w.alive, w.log()[-3000:]
        metrics = scrape(w.log())
        log = w.log()
        assert w.stop() == 0, log[-3000:]
    dlq.close()
    assert "Traceback" not in log, log[-3000:]

    # tenant B: every event, exactly its own
    assert sorted(h.headers["webhook-id"] for h in receiver.hits_for("/ok")) == sorted(r.delivery_id for r in healthy_records)

    # tenant A: every failing mode was retried through the schedule, then dead-lettered with its reason
    docs = {d["delivery_id"]: d for d in (orjson.loads(m.value()) for m in dead)}
    by_mode = {m: docs.get(hostile_records[m].delivery_id) for m in modes}
    missing = failing - {m for m, d in by_mode.items() if d is not None}
    assert not missing and {m for m, d in by_mode.items() if d is not None} == failing, (
        sorted(missing), [line for line in log.splitlines() if any(hostile_records[m].delivery_id in line or subs[m] in line for m in missing)][-20:])
    for mode in failing:
        reason, http_status, _ = EXPECTED[mode]
        doc = by_mode[mode]
        assert doc["reason"] == f"retries_exhausted after {ATTEMPTS} attempts, last {reason}" + (
            f" (HTTP {http_status})" if http_status else ""
        ), mode
        assert [a["result"] for a in doc["attempts"]] == [f"retry:{reason}"] * ATTEMPTS, mode
        assert all(a["status"] == http_status for a in doc["attempts"]), mode
        if http_status is None:  # what broke is named, never the URL
            assert all(a["error"].startswith("Endpoint") and "127.0.0.1" not in a["error"] for a in doc["attempts"]), mode

    # the attempt log: hostile deliveries dead or (the status decided) succeeded, the healthy ones succeeded
    listed = {r["delivery_id"]: r["status"] for r in json.loads(cli(env, "deliveries", "list", "--limit", "500", "--json").stdout)}
    for mode in modes:
        assert listed[hostile_records[mode].delivery_id] == ("dead" if mode in failing else "succeeded"), mode
    assert all(listed[r.delivery_id] == "succeeded" for r in healthy_records)

    # nothing was blamed on the worker itself
    assert 'reason="internal_error"' not in metrics
    # the new reasons reach the retries metric the dashboard reads
    for reason in ("protocol_error", "connection_error") + (("tls_error",) if any(m in TLS_MODES for m in modes) else ()):
        assert f'reason="{reason}",tenant_id="tenant_a"' in metrics, reason
