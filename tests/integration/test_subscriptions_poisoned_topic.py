"""Both workers against a subscriptions topic holding records they cannot read (issue 12).

Before the fix, one record whose ``created_at`` has no UTC time (or a value nested ~100,000 deep)
made the delivery worker exit 70 at start and the stream worker restart its follower forever
without becoming ready: no tenant got anything. Now the records are skipped, logged and counted,
and every other tenant's events are delivered."""

from __future__ import annotations

import json
import re

import pytest

from hookstream.core.crypto import load_keyring
from hookstream.core.topics import SUBSCRIPTIONS
from hookstream.producers import Publisher
from hookstream.schemas import Event, example
from tests.integration.delivery_helpers import cfg, env, receiver, scrape, status, store, subscribe, wait_for  # noqa: F401
from tests.integration.pipeline import produce, worker
from tests.integration.test_subscriptions_view import encode_cannot_sign, make_sub
from hookstream.subscriptions.topic import encode

pytestmark = pytest.mark.kafka


def _poison(cfg) -> list[tuple[bytes, bytes]]:
    keyring = load_keyring(cfg)
    key, value = encode(make_sub("sub_poison_time", tenant="mallory"), keyring)
    doc = json.loads(value)
    doc["created_at"] = "0001-01-01T00:00:00+01:00"
    bad_secret = encode_cannot_sign(make_sub("sub_poison_secret", tenant="mallory"), keyring)
    return [(key, json.dumps(doc).encode()), (b"sub_poison_deep", b"[" * 100_000), bad_secret]


def test_workers_skip_poisoned_subscription_records_and_deliver_to_everyone_else(cfg, env, store, receiver, tmp_path):
    subscribe(store, cfg, "beta", receiver.route("/ok", status(200)))
    produce(cfg, SUBSCRIPTIONS, _poison(cfg))
    with worker(env, ["delivery", "worker", "--metrics-port", "0"], tmp_path / "d.log") as d, \
         worker(env, ["streams", "worker"], tmp_path / "s.log") as s:
        with Publisher(cfg) as publisher:
            for _ in range(3):
                publisher.send(Event.new("payment.received", "beta", example("payment.received")))
            publisher.flush()
        wait_for(lambda: len(receiver.hits_for("/ok")) >= 3 or not (d.alive and s.alive), 90, "beta's deliveries")
        assert d.alive, d.log()[-3000:]
        assert s.alive, s.log()[-3000:]
        assert len(receiver.hits_for("/ok")) == 3
        wait_for(lambda: "metrics: http" in d.log(), 30, "the delivery worker's metrics URL")
        skipped = re.search(r'hookstream_subscriptions_records_skipped_total\{reason="unreadable"\} (\S+)', scrape(d.log()))
        assert skipped and float(skipped.group(1)) == 2.0
        for log in (d.log(), s.log()):
            assert log.count("skipped an unreadable record") == 2 and "subscriptions follower stopped" not in log
            assert "cannot sign" in log  # the subscription with the bad secret is kept, marked, and said so
