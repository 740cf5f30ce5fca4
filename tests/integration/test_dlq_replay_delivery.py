"""A dead letter replayed after the endpoint is fixed is delivered once, with its original webhook-id."""

from __future__ import annotations

import json

from aiohttp import web

from hookstream.delivery.dead_letters import read
from tests.integration.delivery_helpers import (  # noqa: F401  (cfg, env, receiver, store are fixtures)
    cfg,
    cli,
    env,
    make_record,
    produce_records,
    receiver,
    store,
    subscribe,
    wait_for,
)
from tests.integration.pipeline import worker


def test_replayed_dead_letters_reach_the_fixed_endpoint_once_each(cfg, env, store, receiver, tmp_path):
    broken = {"yes": True}

    async def flaky(_request, _n):
        return web.Response(status=400 if broken["yes"] else 204)

    sub_id, _secret = subscribe(store, cfg, "acme", receiver.route("/flaky", flaky))
    records = [make_record(sub_id, "acme", n) for n in range(3)]
    want = {r.delivery_id for r in records}
    with worker(env, ["delivery", "worker"], tmp_path / "worker.log") as w:
        produce_records(cfg, records)
        wait_for(lambda: {d.record.delivery_id for d in read(cfg) if d.record} >= want, 60, "three dead letters")
        assert len(receiver.hits_for("/flaky")) == 3  # a 400 is dead-lettered after one attempt

        broken["yes"] = False
        first = cli(env, "dlq", "replay", "--subscription", sub_id, "--yes", "--json")
        assert first.returncode == 0, first.stderr
        assert len(json.loads(first.stdout)["replayed"]) == 3

        ok = lambda: [h for h in receiver.hits_for("/flaky")[3:]]  # noqa: E731
        wait_for(lambda: len(ok()) >= 3, 60, "the replayed deliveries")
        assert sorted(h.headers["webhook-id"] for h in ok()) == sorted(want)

        again = cli(env, "dlq", "replay", "--subscription", sub_id, "--yes", "--json")
        assert again.returncode == 0, again.stderr
        doc = json.loads(again.stdout)
        assert doc["replayed"] == [] and len(doc["already_replayed"]) == 3
        import time

        time.sleep(2.0)
        assert len(ok()) == 3, "a second replay of the same range must not deliver again"
        assert w.alive, w.log()[-2000:]
