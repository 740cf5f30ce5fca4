"""Isolation and crash safety of the delivery worker (real broker, real processes, real receiver)."""

from __future__ import annotations

import collections
import random

import pytest

from hookstream.core.topics import DEAD_LETTERS
from tests.integration.delivery_helpers import (  # noqa: F401  (cfg, env, receiver, store are fixtures)
    BlackHole, Receiver, cfg, env, fail_first_attempt, make_record, paced_produce, percentile, produce_records,
    receiver, scrape, status, store, subscribe, wait_for,
)
from tests.integration.pipeline import TopicReader, worker

pytestmark = pytest.mark.kafka


def _latencies(receiver: Receiver, path: str, sent: dict[str, float]) -> list[float]:
    first: dict[str, float] = {}
    for hit in receiver.hits_for(path):
        first.setdefault(hit.headers["webhook-id"], hit.at)
    return [first[d] - t for d, t in sent.items() if d in first]


def test_a_hung_endpoint_does_not_slow_a_healthy_one(cfg, env, store, receiver, tmp_path):
    """The healthy endpoint's p99 delivery latency beside a hung endpoint stays within 2x its
    p99 alone.

    Latency runs from the broker's acknowledgement of the record (when a consumer can first read
    it) to its arrival at the receiver. The hung endpoint accepts connections and never answers
    (the request timeout is 2 s here), on a socket of its own so that its connections do not load
    the healthy receiver. The machine is shared and its load drifts, so the two conditions are
    measured in alternating rounds on the same worker and the rounds pooled.
    """
    hole = BlackHole()
    healthy_id, _ = subscribe(store, cfg, "acme", receiver.route("/healthy", status(200)))
    hung_id, _ = subscribe(store, cfg, "acme", hole.url())
    rounds, per_round, rate = 4, 200, 100.0
    trials: list[tuple[float, float]] = []

    def measure() -> tuple[list[float], list[float]]:
        lat_alone: list[float] = []
        lat_mixed: list[float] = []
        for _ in range(rounds):
            alone = [make_record(healthy_id, "acme", i) for i in range(per_round)]
            sent = paced_produce(cfg, alone, rate)
            wait_for(lambda: len(_latencies(receiver, "/healthy", sent)) == per_round, 30, "the healthy deliveries")
            lat_alone += _latencies(receiver, "/healthy", sent)

            # the same healthy load, with the hung endpoint's records interleaved one for one
            mixed, healthy = [], []
            for i in range(per_round):
                h = make_record(healthy_id, "acme", i)
                healthy.append(h)
                mixed += [h, make_record(hung_id, "acme", i)]
            sent_mixed = paced_produce(cfg, mixed, 2 * rate)
            sent = {h.delivery_id: sent_mixed[h.delivery_id] for h in healthy}
            wait_for(lambda: len(_latencies(receiver, "/healthy", sent)) == per_round, 30, "the healthy deliveries beside the hung one")
            lat_mixed += _latencies(receiver, "/healthy", sent)
        return lat_alone, lat_mixed

    with worker(env, ["delivery", "worker", "--metrics-port", "0"], tmp_path / "worker.log") as w:
        warm = [make_record(healthy_id, "acme", i) for i in range(50)]
        produce_records(cfg, warm)
        wait_for(lambda: len(receiver.hits_for("/healthy")) >= 50, 60, "the warm-up deliveries")
        # A hung endpoint that blocked the healthy one would add up to the 2 s request timeout to
        # every trial. Load from elsewhere on a shared machine moves one trial's tail by tens of
        # ms. So up to three trials are measured and the bound must hold in one of them: a real
        # loss of isolation fails all three.
        for _ in range(3):
            lat_alone, lat_mixed = measure()
            for name, lat in (("alone", lat_alone), ("beside a hung endpoint", lat_mixed)):
                shown = ", ".join(f"p{int(q * 100)} {percentile(lat, q) * 1000:.1f}" for q in (0.5, 0.9, 0.99))
                print(f"healthy endpoint {name}: {shown} ms")
            trials.append((percentile(lat_alone, 0.99), percentile(lat_mixed, 0.99)))
            if trials[-1][1] <= 2 * trials[-1][0]:
                break
        metrics = scrape(w.log())
        assert w.alive, w.log()[-3000:]
    hole.close()
    # the hung endpoint really was tried, and timed out
    assert 'webhook_retries_total{event="invoice.sent",reason="timeout",tenant_id="acme"}' in metrics
    assert 'webhook_retries_total{event="invoice.sent",reason="timeout",tenant_id="acme"} 0.0' not in metrics

    p99_alone, p99_mixed = trials[-1]
    assert p99_mixed <= 2 * p99_alone, f"healthy p99 (alone, beside the hung endpoint) per trial: {trials}"


def test_sigkill_under_load_loses_no_delivery(cfg, env, store, receiver, tmp_path):
    """Two workers share the load; one is SIGKILLed mid-stream; every delivery still succeeds.

    A fifth of the records go to an endpoint that fails each delivery's first attempt, so the
    kill also lands on records travelling through a retry tier. (The breaker is set out of reach:
    this test is about offsets, not about endpoints that are down.)
    """
    env = dict(env, HOOKSTREAM_BREAKER_MIN_REQUESTS="1000000")
    ok_id, _ = subscribe(store, cfg, "acme", receiver.route("/ok", status(200)))
    flaky_id, _ = subscribe(store, cfg, "acme", receiver.route("/flaky", fail_first_attempt()))
    rng = random.Random(6)
    records = [make_record(ok_id if rng.random() < 0.8 else flaky_id, "acme", i) for i in range(3000)]
    expected = {r.delivery_id for r in records}

    def received() -> set[str]:
        return {h.headers["webhook-id"] for h in receiver.hits_for("/ok")} | {h.headers["webhook-id"] for h in receiver.hits_for("/flaky")}

    def succeeded() -> set[str]:
        ids = {h.headers["webhook-id"] for h in receiver.hits_for("/ok")}
        flaky = collections.Counter(h.headers["webhook-id"] for h in receiver.hits_for("/flaky"))
        return ids | {d for d, n in flaky.items() if n >= 2}

    with worker(env, ["delivery", "worker"], tmp_path / "a.log") as a, worker(env, ["delivery", "worker"], tmp_path / "b.log") as b:
        produce_records(cfg, records)
        wait_for(lambda: len(received()) >= 1000, 60, "a third of the deliveries")
        a.kill()  # SIGKILL, mid-stream: no shutdown, no final commit
        try:
            wait_for(lambda: expected <= succeeded(), 90, "every delivery to succeed after the kill")
        except AssertionError:
            missing = expected - succeeded()
            raise AssertionError(f"{len(missing)} deliveries missing; worker b log: {b.log()[-3000:]}") from None
        assert b.alive, b.log()[-3000:]
    dlq = TopicReader(cfg, DEAD_LETTERS)
    assert dlq.settle(1.0) == []
    dlq.close()
    hits = receiver.hits_for("/ok")
    duplicates = len(hits) - len({h.headers["webhook-id"] for h in hits})
    print(f"{len(expected)} deliveries succeeded across a SIGKILL; {duplicates} repeated at /ok, with their original webhook-id")
