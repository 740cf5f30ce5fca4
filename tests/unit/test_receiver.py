"""delivery.receiver in-process, on the test's loop: one test per way a request can be refused."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from standardwebhooks import Webhook

from hookstream.shell.receiver import RECEIVED, create_app, fixed_secrets, subscription_secrets
from hookstream.delivery.signing import build_headers
from hookstream.core.errors import NotFoundError, ValidationError
from hookstream.core.secrets import Secret

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BODY = orjson.dumps({"type": "payment.received", "timestamp": "2026-11-28T16:00:00Z", "data": {"tenant_id": "acme", "amount": 1200}})


def signed(body: bytes = BODY, *, secret=SECRET, msg_id: str = "msg_1", at: float | None = None) -> dict[str, str]:
    return build_headers(msg_id, int(time.time() if at is None else at), body, secret)


@pytest.fixture
async def receiver():
    """``start(source=..., **kw)`` -> (client, printed lines)."""
    clients = []

    async def start(source=None, **kw):
        lines: list[str] = []
        app = create_app(source or fixed_secrets(SECRET), printer=lines.append, **kw)
        client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client, lines

    yield start
    for client in clients:
        await client.close()


async def post(client, body: bytes, headers: dict[str, str], path: str = "/webhooks"):
    r = await client.post(path, data=body, headers=headers)
    return r.status, (await r.json() if r.status != 204 else None)


async def test_signed_request_is_accepted_and_printed(receiver):
    client, lines = await receiver()
    status, reply = await post(client, BODY, signed(msg_id="msg_2fQb"))
    assert (status, reply) == (204, None)
    (line,) = lines
    assert line.split("  ")[1:] == ["msg_2fQb", "payment.received", "tenant=acme", "valid 204"]
    assert datetime.strptime(line.split("  ")[0], "%Y-%m-%dT%H:%M:%SZ")
    # an in-process test (the end-to-end one) can look at what arrived
    (seen,) = client.server.app[RECEIVED]
    assert (seen.webhook_id, seen.event_type, seen.tenant, seen.status, seen.valid) == ("msg_2fQb", "payment.received", "acme", 204, True)


async def test_request_signed_by_the_reference_library_is_accepted(receiver):
    client, lines = await receiver()
    sent_at = datetime.now(UTC)
    signature = Webhook(SECRET).sign("msg_ref", sent_at, BODY.decode())
    headers = {"webhook-id": "msg_ref", "webhook-timestamp": str(int(sent_at.timestamp())), "webhook-signature": signature}
    assert (await post(client, BODY, headers))[0] == 204


async def test_tampered_body_is_refused_as_bad_signature(receiver):
    client, lines = await receiver()
    headers = signed()
    tampered = BODY.replace(b"1200", b"9200")
    status, reply = await post(client, tampered, headers)
    assert status == 401
    assert reply["reason"] == "bad_signature" and "no webhook-signature entry matches" in reply["message"]
    assert "  invalid 401  bad_signature: " in lines[0]


async def test_request_signed_with_another_secret_is_refused(receiver):
    client, _ = await receiver()
    status, reply = await post(client, BODY, signed(secret=Secret.generate().reveal()))
    assert (status, reply["reason"]) == (401, "bad_signature")


async def test_old_timestamp_is_refused(receiver):
    client, lines = await receiver()
    status, reply = await post(client, BODY, signed(at=time.time() - 600))
    assert (status, reply["reason"]) == (401, "timestamp_too_old")
    assert "more than the 300s allowed" in reply["message"]
    assert "invalid 401  timestamp_too_old" in lines[0]


async def test_future_timestamp_is_refused(receiver):
    client, _ = await receiver()
    status, reply = await post(client, BODY, signed(at=time.time() + 600))
    assert (status, reply["reason"]) == (401, "timestamp_too_new")


async def test_tolerance_can_be_widened(receiver):
    client, _ = await receiver(tolerance=3600)
    assert (await post(client, BODY, signed(at=time.time() - 600)))[0] == 204


@pytest.mark.parametrize("header", ["webhook-id", "webhook-timestamp", "webhook-signature"])
async def test_missing_header_is_refused_naming_it(receiver, header):
    client, lines = await receiver()
    headers = {k: v for k, v in signed().items() if k != header}
    status, reply = await post(client, BODY, headers)
    assert (status, reply["reason"]) == (400, "missing_header")
    assert reply["message"] == f"the {header} header is missing or empty"
    assert f"invalid 400  missing_header: the {header} header" in lines[0]


async def test_timestamp_that_is_not_unix_seconds_is_refused(receiver):
    client, _ = await receiver()
    headers = signed() | {"webhook-timestamp": "2026-11-28T16:00:00Z"}
    status, reply = await post(client, BODY, headers)
    assert (status, reply["reason"]) == (400, "invalid_timestamp")


async def test_signed_body_that_is_not_a_webhook_payload_is_refused(receiver):
    client, lines = await receiver()
    body = b"[1, 2, 3]"
    status, reply = await post(client, body, signed(body))
    assert (status, reply["reason"]) == (400, "bad_payload")
    assert "  -  tenant=-  invalid 400" in lines[0]


async def test_fail_rate_one_answers_every_authentic_request_with_503(receiver):
    client, lines = await receiver(fail_rate=1.0)
    status, reply = await post(client, BODY, signed())
    assert (status, reply) == (503, {"status": "valid", "reason": "simulated_failure", "message": "--fail-rate"})
    assert "valid 503  simulated_failure" in lines[0]
    # a forged request is still refused for what it is
    assert (await post(client, BODY, signed(secret=Secret.generate().reveal())))[0] == 401


async def test_fail_rate_fails_about_that_share(receiver):
    client, _ = await receiver(fail_rate=0.3, rng=random.Random(1))
    statuses = [(await post(client, BODY, signed(msg_id=f"msg_{i}")))[0] for i in range(60)]
    assert set(statuses) == {204, 503}
    assert 8 <= statuses.count(503) <= 28


def test_fail_rate_outside_0_to_1_is_refused():
    with pytest.raises(ValidationError, match="fail rate"):
        create_app(fixed_secrets(SECRET), fail_rate=1.5)


# ------------------------------------------------------------------ secrets from a subscription


class FakeStore:
    def __init__(self, *secrets: Secret, tenant: str = "globex") -> None:
        self.subscription = SimpleNamespace(secrets=secrets, tenant_id=tenant)
        self.deleted = False

    def get(self, subscription_id: str, *, tenant_id: str):
        assert tenant_id == self.subscription.tenant_id
        if self.deleted:
            raise NotFoundError(f"no subscription {subscription_id!r}")
        return self.subscription


async def test_subscription_secrets_verify_during_rotation_and_name_the_tenant(receiver):
    old, new = Secret.generate().reveal(), Secret.generate().reveal()
    grace_until = datetime.now(UTC) + timedelta(hours=1)
    store = FakeStore(Secret.parse(new), Secret.parse(old, expires_at=grace_until))
    client, lines = await receiver(subscription_secrets(store, "sub_1", tenant_id="globex"))
    body = orjson.dumps({"type": "invoice.sent", "timestamp": "2026-11-28T16:00:00Z", "data": {}})
    assert (await post(client, body, signed(body, secret=old)))[0] == 204
    assert (await post(client, body, signed(body, secret=new)))[0] == 204
    assert all("invoice.sent  tenant=globex  valid 204" in line for line in lines)


async def test_expired_secret_of_a_subscription_is_refused(receiver):
    old, new = Secret.generate().reveal(), Secret.generate().reveal()
    store = FakeStore(Secret.parse(new), Secret.parse(old, expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    client, _ = await receiver(subscription_secrets(store, "sub_1", tenant_id="globex"))
    assert (await post(client, BODY, signed(secret=old)))[1]["reason"] == "bad_signature"


async def test_subscription_deleted_while_receiving_answers_500_with_the_reason(receiver):
    store = FakeStore(Secret.parse(SECRET))
    client, lines = await receiver(subscription_secrets(store, "sub_1", tenant_id="globex"))
    store.deleted = True
    status, reply = await post(client, BODY, signed())
    assert (status, reply["reason"]) == (500, "secrets_unavailable")
    assert "no subscription 'sub_1'" in lines[0]
