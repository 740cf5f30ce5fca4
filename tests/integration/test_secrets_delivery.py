"""Secrets in the delivery worker (real broker, real worker process, real HTTP receiver).

Sealed secrets and header values open in the worker and reach the endpoint as they were given;
a subscription sealed under a key the worker lacks is dead-lettered naming the key id while the
worker goes on; and no secret, header value or URL token shows in the worker's log, the
attempt log or the dead letters (distinctive values are planted, then searched for in bytes).
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from standardwebhooks.webhooks import Webhook

from hookstream.core.crypto import Keyring, new_key_entry
from hookstream.subscriptions.models import Status, Subscription
from hookstream.core.secrets import Secret
from hookstream.subscriptions.topic import encode, publish_pending
from hookstream.core.topics import DEAD_LETTERS, DELIVERIES
from tests.integration.delivery_helpers import (  # noqa: F401  (cfg, env, receiver, store are fixtures)
    cfg, cli, env, make_record, produce_records, receiver, status, store, wait_for,
)
from tests.integration.pipeline import TopicReader, produce, worker
from tests.integration.subscriptions_helpers import produce_raw

pytestmark = pytest.mark.kafka

HEADER_VALUE = "Bearer PLANTED-HEADER-7f3a9c"
URL_TOKEN = "PLANTED-URL-TOKEN-51be02"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when this returns: connections are refused


def test_sealed_values_open_in_the_worker_and_never_show_in_its_output(cfg, env, store, receiver, tmp_path):
    ok, ok_secret = store.add(
        "acme", receiver.route("/ok", status(204)) + f"?token={URL_TOKEN}", ["*"], headers={"Authorization": HEADER_VALUE}
    )
    down, down_secret = store.add(
        "acme", f"http://127.0.0.1:{closed_port()}/in?token={URL_TOKEN}'|x", ["*"], headers={"Authorization": HEADER_VALUE}
    )
    # (the client prints that URL normalised, ' and | percent-encoded: not the string it was given)
    publish_pending(cfg)
    # a subscription whose record was sealed under a key this worker does not hold
    t = datetime.now(UTC)
    lost = Subscription(
        id="sub_lostkey", tenant_id="acme", url=receiver.route("/lost", status(204)), events=("*",), status=Status.ACTIVE,
        secrets=(Secret.generate(),), created_at=t, updated_at=t, version=1,
    )
    produce_raw(cfg, [encode(lost, Keyring.parse(new_key_entry("k-gone")))])

    records = {name: make_record(sid, "acme", n) for n, (name, sid) in enumerate([("lost", lost.id), ("ok", ok.id), ("down", down.id)])}
    dlq = TopicReader(cfg, DEAD_LETTERS)
    log_path = tmp_path / "worker.log"
    with worker(env, ["delivery", "worker"], log_path) as w:
        produce_records(cfg, [records["lost"]])
        produce_records(cfg, [records["ok"], records["down"]])
        dead = dlq.read_until(lambda rs: len(rs) >= 2, 60, what="two dead letters")
        wait_for(lambda: receiver.hits_for("/ok"), 30, "the delivery to /ok")
        assert w.alive, w.log()[-3000:]  # the unknown key did not stop it
        assert w.stop() == 0, w.log()[-3000:]

    # the sealed values opened: the header as given, the signature by the secret
    hit = receiver.hits_for("/ok")[0]
    assert hit.headers["authorization"] == HEADER_VALUE
    Webhook(ok_secret).verify(hit.body, hit.headers)
    assert receiver.hits_for("/lost") == []

    by_sub = {orjson.loads(m.value())["subscription_id"]: orjson.loads(m.value()) for m in dead}
    assert "'k-gone'" in by_sub[lost.id]["reason"] and by_sub[lost.id]["reason"].startswith("no_valid_secret")
    assert len(by_sub[down.id]["attempts"]) == 4 and by_sub[down.id]["attempts"][0]["error"]

    planted = [HEADER_VALUE.encode(), URL_TOKEN.encode(), ok_secret.encode(), down_secret.encode(), ok_secret[6:30].encode()]
    dlq_bytes = b"".join(m.value() for m in dead)
    log_bytes = log_path.read_bytes()
    attempts = cli(env, "deliveries", "list", "--json")
    assert attempts.returncode == 0, attempts.stderr
    assert ok.id in attempts.stdout and down.id in attempts.stdout
    db_path = Path(env["HOOKSTREAM_DATABASE_URL"].removeprefix("sqlite:///"))
    attempt_rows = b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "*"))
    for value in planted:
        assert value not in dlq_bytes, value
        assert value not in log_bytes, value
        assert value.decode() not in attempts.stdout + attempts.stderr, value
    for value in (HEADER_VALUE.encode(), ok_secret.encode(), down_secret.encode()):
        assert value not in attempt_rows, value  # the database: attempt log and subscriptions
