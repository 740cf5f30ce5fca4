"""A hostile tenant against the API in process (issue 15's review): forged iterators, odd filter
values, idempotency keys chosen to collide. Each test failed before its fix."""

from __future__ import annotations

import base64
import json

import pytest

from hookstream.schemas import example
from tests.unit.api_helpers import Api, assert_problem
from tests.unit.test_api_events import FakePublisher


@pytest.fixture
def publisher() -> FakePublisher:
    return FakePublisher()


@pytest.fixture
def api(tmp_path, publisher) -> Api:
    return Api(tmp_path, publisher=publisher)


def _cursor(kind: str, key) -> str:
    return base64.urlsafe_b64encode(json.dumps([kind, key]).encode()).decode().rstrip("=")


@pytest.mark.parametrize("key", [10**30, -(10**30), 2**63, -(2**63) - 1])
async def test_a_forged_message_iterator_out_of_the_databases_range_is_422_not_500(api, key):
    async with api.client() as client:
        response = await client.get("/v1/messages", params={"iterator": _cursor("messages", key)}, headers=api.auth(api.acme))
    assert_problem(response, 422, "validation_error", "iterator")


async def test_a_message_iterator_at_the_edge_of_the_range_is_a_page(api):
    async with api.client() as client:
        for key in (2**63 - 1, 0, -1):
            response = await client.get("/v1/messages", params={"iterator": _cursor("messages", key)}, headers=api.auth(api.acme))
            assert response.status_code == 200, response.text
            assert response.json()["data"] == []


@pytest.mark.parametrize("value", ["\x00", "a b", "x" * 129, "é"])
async def test_an_endpoint_listing_refuses_an_event_type_filter_that_names_nothing(api, value):
    async with api.client() as client:
        response = await client.get("/v1/endpoints", params={"event_type": value}, headers=api.auth(api.acme))
    assert_problem(response, 422, "validation_error", "event_type")


async def test_a_single_events_idempotency_key_never_replays_an_event_of_a_batch(api, publisher):
    """A batch under key B keys its events B:0, B:1, ...; a single event sent later under the key
    "B:0" is another request and must be published, not answered with the batch's first event."""
    event = {"type": "payment.received", "data": example("payment.received")}
    async with api.client() as client:
        batch = await client.post("/v1/events/batch", json={"events": [event]}, headers=api.auth(api.acme, **{"Idempotency-Key": "B"}))
        assert batch.status_code == 202, batch.text
        single = await client.post("/v1/events", json=event, headers=api.auth(api.acme, **{"Idempotency-Key": "B:0"}))
    assert single.status_code == 202, single.text
    assert "idempotent-replayed" not in single.headers
    assert single.json()["id"] != batch.json()["results"][0]["event"]["id"]
    assert len(publisher.published) == 2


async def test_the_same_idempotency_key_in_two_tenants_makes_two_events(api, publisher):
    event = {"type": "payment.received", "data": example("payment.received")}
    async with api.client() as client:
        a = await client.post("/v1/events", json=event, headers=api.auth(api.acme, **{"Idempotency-Key": "K"}))
        g = await client.post("/v1/events", json=event, headers=api.auth(api.globex, **{"Idempotency-Key": "K"}))
    assert a.status_code == g.status_code == 202
    assert "idempotent-replayed" not in g.headers
    assert a.json()["id"] != g.json()["id"] and g.json()["tenant_id"] == "globex"
    assert [e.tenant_id for e in publisher.published] == ["acme", "globex"]


async def test_a_client_that_leaves_mid_body_is_not_logged_as_an_unexpected_error(api, publisher, caplog):
    """A slowloris-like client sends half a body and hangs up: nothing to answer, nothing published,
    and no 'unexpected error' traceback a stranger could print into the log at will."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/v1/events", "raw_path": b"/v1/events", "root_path": "", "query_string": b"",
             "headers": [(b"host", b"api.test"), (b"authorization", f"Bearer {api.acme}".encode()),
                         (b"content-type", b"application/json"), (b"content-length", b"1000")],
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 80), "state": {}, "app": api.app}
    messages = iter([{"type": "http.request", "body": b'{"type":', "more_body": True}, {"type": "http.disconnect"}])
    sent = []

    async def receive():
        return next(messages, {"type": "http.disconnect"})

    async def send(message):
        sent.append(message)

    with caplog.at_level("DEBUG", logger="hookstream.api"):
        await api.app(scope, receive, send)
    assert not [r for r in caplog.records if r.levelno >= 30], [r.getMessage() for r in caplog.records]
    assert all(m.get("status", 0) < 500 for m in sent if m["type"] == "http.response.start"), sent
    assert publisher.published == []


@pytest.mark.parametrize("header", ["Hookstream-Tenant", "Authorization"])
async def test_a_request_with_two_tenant_or_authorization_headers_is_refused(api, header):
    """Two values of one header: a proxy may check one and the app use the other; refused (400)."""
    values = {"Hookstream-Tenant": ["acme", "globex"], "Authorization": [f"Bearer {api.admin}", f"Bearer {api.acme}"]}[header]
    headers = [("Authorization", f"Bearer {api.admin}")] if header != "Authorization" else []
    headers += [(header, v) for v in values]
    async with api.client() as client:
        response = await client.get("/v1/endpoints", headers=headers)
    assert_problem(response, 400, "duplicate_header", header)


def test_strangers_unknown_keys_never_push_a_real_key_out_of_the_key_cache():
    """A stranger sending thousands of made-up, well-formed keys must not flush the cache of real
    keys (each flush makes every busy key read the database again)."""
    from hookstream.shell.api.keys import KeyCache

    cache = KeyCache(ttl=60.0, size=100, clock=lambda: 0.0)
    real = object()
    cache.put("real", real)  # type: ignore[arg-type]
    for i in range(1000):
        cache.put(f"unknown-{i}", None)
    assert cache.get("real") == (True, real)


async def test_a_body_that_stops_coming_is_408_after_the_read_timeout():
    """Slowloris: a client that sends part of a body and then nothing holds its connection only
    until the read timeout, then gets a 408 problem (here 0.05 s instead of 30 s)."""
    import asyncio

    from starlette.requests import Request

    from hookstream.shell.api.problems import BodyGuard

    async def app(scope, receive, send):
        await Request(scope, receive).body()
        raise AssertionError("the body never completes")

    guard = BodyGuard(app, max_body_bytes=1000, read_timeout=0.05)
    stalled = asyncio.Event()  # never set: the rest of the body never arrives
    first = True

    async def receive():
        nonlocal first
        if first:
            first = False
            return {"type": "http.request", "body": b'{"a":', "more_body": True}
        await stalled.wait()

    sent = []

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/events", "headers": [(b"content-length", b"100")]}
    await asyncio.wait_for(guard(scope, receive, send), 10)
    assert sent[0]["status"] == 408
    assert json.loads(sent[1]["body"])["code"] == "request_timeout"


async def test_a_body_that_trickles_in_is_408_after_the_body_timeout():
    """Slowloris, patient: a byte now and then, never pausing as long as the read timeout, still
    gets a 408 once the whole body has taken longer than the body timeout (here 0.2 s)."""
    import asyncio

    from starlette.requests import Request

    from hookstream.shell.api.problems import BodyGuard

    async def app(scope, receive, send):
        await Request(scope, receive).body()
        raise AssertionError("the body never completes")

    guard = BodyGuard(app, max_body_bytes=10_000, read_timeout=5.0, body_timeout=0.2)
    chunks = 0

    async def receive():
        nonlocal chunks
        chunks += 1
        await asyncio.sleep(0.01)  # well within the read timeout, every time
        return {"type": "http.request", "body": b" ", "more_body": True}

    sent = []

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/events", "headers": [(b"content-length", b"10000")]}
    await asyncio.wait_for(guard(scope, receive, send), 10)
    assert sent[0]["status"] == 408 and chunks < 1000
    assert json.loads(sent[1]["body"])["code"] == "request_timeout"
    assert "did not all arrive within 0.2s" in json.loads(sent[1]["body"])["detail"]
