"""The circuit breaker with the real broker, the real delivery worker and a real receiver:
endpoints that fail often but are up get every message; an endpoint that is down is shed."""

from __future__ import annotations

import collections
import random
import re
import threading

import pytest
from aiohttp import web

from hookstream.core.wire import DeliveryRecord
from hookstream.core.topics import DEAD_LETTERS
from tests.integration.delivery_helpers import (  # noqa: F401  (cfg, env, receiver, store are fixtures)
    cfg, env, fail_first_attempt, make_record, produce_records, receiver, scrape, status, store, subscribe, wait_for,
)
from tests.integration.pipeline import TopicReader, worker

pytestmark = pytest.mark.kafka

# 8 attempts, a second apart. The breaker's window is short so that it judges these endpoints
# within the test (by default it would not before 30 s); its pause stays at the default 30 s,
# so a wrong opening would stall the flaky endpoints well past the time allowed below.
SCHEDULE = "1s,1s,1s,1s,1s,1s,1s"
MESSAGES = 300


class RandomHalf:
    """Answers 500 to a random half of requests and keeps the ids it accepted. A message that
    failed ``give_in_after`` times is accepted: with 300 messages, fair coins would fail all 8
    attempts of about one (the retry schedule running out, which is not what this is about)."""

    def __init__(self, seed: int, give_in_after: int = 5) -> None:
        self.give_in_after = give_in_after
        self.rng = random.Random(seed)
        self.failures: collections.Counter[str] = collections.Counter()
        self.delivered: set[str] = set()
        self.lock = threading.Lock()  # (the receiver runs in its own thread)

    async def __call__(self, request, _n):
        msg_id = request.headers.get("webhook-id", "")
        with self.lock:
            fail = self.failures[msg_id] < self.give_in_after and self.rng.random() < 0.5
            if fail:
                self.failures[msg_id] += 1
            else:
                self.delivered.add(msg_id)
        return web.Response(status=500 if fail else 200)


def _metric(metrics: str, name: str, **labels: str) -> float:
    shown = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    match = re.search(rf"^{re.escape(name)}{{{re.escape(shown)}}} (\S+)$", metrics, re.M)
    return float(match.group(1)) if match else 0.0


def test_endpoints_failing_half_their_requests_get_every_message(cfg, env, store, receiver, tmp_path):
    env = dict(env, HOOKSTREAM_RETRY_SCHEDULE=SCHEDULE, HOOKSTREAM_BREAKER_WINDOW="3s")
    half = RandomHalf(seed=7)
    first_id, _ = subscribe(store, cfg, "acme", receiver.route("/first", fail_first_attempt()))
    half_id, _ = subscribe(store, cfg, "acme", receiver.route("/half", half))
    records: list[DeliveryRecord] = []
    for i in range(MESSAGES):
        records += [make_record(first_id, "acme", i), make_record(half_id, "acme", i)]
    wanted = {sid: {r.delivery_id for r in records if r.subscription_id == sid} for sid in (first_id, half_id)}

    def accepted_at_first() -> set[str]:  # /first accepts an id's second request
        hits = collections.Counter(h.headers["webhook-id"] for h in receiver.hits_for("/first"))
        return {i for i, n in hits.items() if n >= 2}

    dlq = TopicReader(cfg, DEAD_LETTERS)
    with worker(env, ["delivery", "worker", "--metrics-port", "0"], tmp_path / "worker.log") as w:
        produce_records(cfg, records)
        wait_for(lambda: wanted[first_id] <= accepted_at_first(), 60, "every message at the endpoint failing first attempts")
        wait_for(lambda: wanted[half_id] <= half.delivered, 60, "every message at the endpoint failing a random half")
        metrics = scrape(w.log())
        assert w.alive, w.log()[-3000:]
    dead = dlq.settle(1.0)
    dlq.close()
    assert dead == [], f"{len(dead)} dead letters"
    # the breaker never stood in their way: no record was skipped for an open circuit
    assert _metric(metrics, "hookstream_delivery_skipped_total", reason="breaker_open") == 0.0
    for sid in (first_id, half_id):
        assert _metric(metrics, "webhook_circuit_state", subscription_id=sid) == 0.0
    failed = sum(half.failures.values())
    print(f"/first: {len(receiver.hits_for('/first'))} requests for {MESSAGES} messages; /half: {failed} of {failed + MESSAGES} failed")
    assert failed > MESSAGES * 0.6  # it really failed about half of its requests


def test_an_endpoint_that_is_down_is_shed(cfg, env, store, receiver, tmp_path):
    env = dict(env, HOOKSTREAM_RETRY_SCHEDULE=SCHEDULE, HOOKSTREAM_BREAKER_WINDOW="2s")
    down_id, _ = subscribe(store, cfg, "acme", receiver.route("/down", status(500)))
    ok_id, _ = subscribe(store, cfg, "acme", receiver.route("/ok", status(200)))
    records = [make_record(down_id, "acme", i) for i in range(MESSAGES)]
    dlq = TopicReader(cfg, DEAD_LETTERS)
    with worker(env, ["delivery", "worker", "--metrics-port", "0"], tmp_path / "worker.log") as w:
        wait_for(lambda: "metrics: http" in w.log(), 30, "the worker's metrics endpoint")
        produce_records(cfg, records)
        wait_for(lambda: _metric(scrape(w.log()), "webhook_circuit_state", subscription_id=down_id) == 1.0, 30, "the circuit to open")
        requests_when_opened = len(receiver.hits_for("/down"))
        # the healthy endpoint beside it is not held up
        healthy = [make_record(ok_id, "acme", i) for i in range(50)]
        produce_records(cfg, healthy)
        wait_for(lambda: len(receiver.hits_for("/ok")) >= 50, 30, "the healthy endpoint's deliveries")
        # shed: its records wait in the retry tiers without using their attempts (the default 30 s
        # pause has not passed, so not even a probe went out), far fewer than 8 attempts each.
        # The first skips come when its retries fall due (1 s after their failed attempt), which
        # on a busy machine can be after the healthy endpoint got its 50.
        wait_for(lambda: _metric(scrape(w.log()), "hookstream_delivery_skipped_total", reason="breaker_open") > 0,
                 30, "records of the open circuit to be skipped")
        assert w.alive, w.log()[-3000:]
    assert len(receiver.hits_for("/down")) <= requests_when_opened + 64  # at most what was in flight as it opened
    assert requests_when_opened < MESSAGES * 8
    dead = dlq.settle(1.0)  # and none of its records ran out of attempts: skips do not count
    dlq.close()
    assert dead == [], f"{len(dead)} dead letters"
