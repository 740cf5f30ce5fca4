"""The management API against the real pipeline: the real broker, the stream and delivery workers
as processes, a real receiver. The app runs in process (httpx.ASGITransport) and is driven through
hookstream.client: create an endpoint, ingest, see the event delivered and signed, listed as a
message with its attempts; resend; rotate the secret; send a test message; recover."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from standardwebhooks import Webhook

from hookstream.client import AsyncHookstream
from hookstream.core.settings import Settings
from hookstream.core.topics import ensure_topics
from hookstream.schemas import example
from hookstream.shell.api.app import create_app
from tests.integration.delivery_helpers import Receiver, status
from tests.integration.pipeline import worker

pytestmark = pytest.mark.kafka


async def eventually(check, timeout: float, what: str):
    """``check()`` (a coroutine function) until it returns something truthy; bounded."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


async def test_endpoint_to_delivery_messages_resend_rotate_test_recover(loopback_env, receiver, tmp_path):
    env = dict(loopback_env, HOOKSTREAM_RETRY_SCHEDULE="200ms,400ms", HOOKSTREAM_REQUEST_TIMEOUT="2s")
    settings = Settings.from_env(env)
    ensure_topics(settings)
    url = receiver.route("/hook", status(204))
    app = create_app(settings)
    key = app.state.ctx.key_store.create(tenant_id="acme", name="live")[1]
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)

    with worker(env, ["streams", "worker"], tmp_path / "streams.log") as sw, \
         worker(env, ["delivery", "worker"], tmp_path / "delivery.log") as dw:
        try:
            await _scenario(app, key, transport, receiver, url, sw, dw)
        finally:
            await app.state.ctx.close()  # the app's publisher and engine (no lifespan under ASGITransport)
        assert sw.alive and dw.alive


async def _scenario(app, key, transport, receiver, url, sw, dw) -> None:
    hits = lambda: receiver.hits_for("/hook")  # noqa: E731
    async with AsyncHookstream("http://api", key, transport=transport) as hs:
        made = await hs.endpoints.create(url, ["invoice.*"], description="live")
        assert made.endpoint.published and made.secret.startswith("whsec_")

        # ingest: fanned out by the stream worker, signed and POSTed by the delivery worker
        accepted = await hs.events.create("invoice.sent", example("invoice.sent"))
        first = await eventually(lambda: _first(hits()), 90, f"the delivery (streams alive: {sw.alive}, delivery alive: {dw.alive})")
        payload = Webhook(made.secret).verify(first.body, first.headers)
        assert payload["type"] == "invoice.sent" and payload["data"]["invoice_id"] == example("invoice.sent")["invoice_id"]
        message_id = first.headers["webhook-id"]

        # listed as a message, with its attempt
        message = await eventually(lambda: _message(hs, made.endpoint.id, message_id), 30, "the message in the attempt log")
        assert (message.status, message.attempts, message.event_type) == ("succeeded", 1, "invoice.sent")
        assert message.event_id == accepted["id"]
        (attempt,) = await hs.messages.attempts(message_id)
        assert (attempt.status, attempt.status_code, attempt.reason) == ("succeeded", 204, None) and attempt.duration_ms >= 0

        # resend: the same webhook-id again, read back from the event topic
        await hs.messages.resend(message_id)
        again = await eventually(lambda: _nth(hits(), 2), 60, "the resend")
        assert again.headers["webhook-id"] == message_id
        Webhook(made.secret).verify(again.body, again.headers)
        await eventually(lambda: _attempts(hs, message_id, 2), 30, "the resend's attempt")

        # rotate: a test message is signed with the new secret and, in the grace window, the old
        rotated = await hs.endpoints.rotate_secret(made.endpoint.id)
        assert rotated.secret != made.secret
        await eventually(lambda: _rotated(hs, made.endpoint.id), 30, "the rotation on the topic")
        test_id = await hs.endpoints.send_test(made.endpoint.id, "payment.failed")
        test_hit = await eventually(lambda: _with_id(hits(), test_id), 60, "the test message")
        assert Webhook(rotated.secret).verify(test_hit.body, test_hit.headers)["type"] == "payment.failed"
        Webhook(made.secret).verify(test_hit.body, test_hit.headers)
        test_message = await eventually(lambda: _get(hs, test_id), 30, "the test message in the log")
        assert test_message.endpoint_id == made.endpoint.id

        # recover: the window's events again, with the webhook-ids of the first time
        before = len(hits())
        report = await hs.endpoints.recover(made.endpoint.id, "1h")
        assert (report["queued"], report["refused"]) == (1, {})  # the test message never was on an event topic
        recovered = await eventually(lambda: _nth(hits(), before + 1), 60, "the recovered delivery")
        assert recovered.headers["webhook-id"] == message_id

        stats = await hs.endpoints.stats(made.endpoint.id)
        assert stats["hour"]["succeeded"] >= 3 and stats["hour"]["latency_ms"]["p50"] is not None


async def _first(hits):
    return hits[0] if hits else None


async def _nth(hits, n):
    return hits[n - 1] if len(hits) >= n else None


async def _with_id(hits, webhook_id):
    return next((h for h in hits if h.headers.get("webhook-id") == webhook_id), None)


async def _message(hs, endpoint_id, message_id):
    page = await hs.messages.list(endpoint_id=endpoint_id)
    return next((m for m in page.data if m.id == message_id), None)


async def _attempts(hs, message_id, n):
    return len(await hs.messages.attempts(message_id)) >= n


async def _get(hs, message_id):
    from hookstream.client import HookstreamAPIError

    try:
        return await hs.messages.get(message_id)
    except HookstreamAPIError as exc:
        if exc.status == 404:
            return None
        raise


async def _rotated(hs, endpoint_id):
    return (await hs.endpoints.get(endpoint_id)).published
