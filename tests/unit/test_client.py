"""hookstream.client: requests it makes and how it reads answers, against httpx.MockTransport
(the real app: test_api_management.py and tests/integration/test_api_management_live.py)."""

from __future__ import annotations

import json

import httpx
import pytest

import hookstream.client as client
from hookstream.client import AsyncHookstream, Hookstream, HookstreamAPIError

ENDPOINT = {"id": "sub_1", "tenant_id": "acme", "url": "https://x/", "events": ["*"], "status": "active", "description": "",
            "headers": {}, "secrets": [], "created_at": "t", "updated_at": "t", "version": 1, "published": True, "new_field": 1}


def test_the_public_names():
    assert set(client.__all__) == {"TENANT_HEADER", "AsyncHookstream", "Attempt", "DeadLetter", "Endpoint",
                                   "EndpointWithSecret", "Hookstream", "HookstreamAPIError", "Message", "Page"}
    assert all(hasattr(client, name) for name in client.__all__)


def recorder(answer):
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer(request)

    return seen, httpx.MockTransport(handler)


def test_requests_carry_the_key_the_tenant_and_escaped_ids():
    seen, transport = recorder(lambda r: httpx.Response(200, json=ENDPOINT))
    with Hookstream("http://api", "hsk_x", tenant="acme", transport=transport) as hs:
        endpoint = hs.endpoints.get("sub/../1")
    (request,) = seen
    assert request.headers["authorization"] == "Bearer hsk_x" and request.headers["hookstream-tenant"] == "acme"
    assert request.url.raw_path == b"/v1/endpoints/sub%2F..%2F1"
    assert endpoint.id == "sub_1" and not hasattr(endpoint, "new_field")  # unknown fields ignored


def test_lists_send_only_the_given_filters_and_read_pages():
    page = {"data": [], "iterator": "abc", "done": False}
    seen, transport = recorder(lambda r: httpx.Response(200, json=page))
    with Hookstream("http://api", "hsk_x", transport=transport) as hs:
        got = hs.messages.list(status="failed", limit=10)
        hs.dlq.replay(tenant_id="acme", dry_run=True)
    assert dict(seen[0].url.params) == {"status": "failed", "limit": "10"}
    assert got.iterator == "abc" and not got.done and got.data == []
    assert json.loads(seen[1].content) == {"tenant_id": "acme", "dry_run": True, "force": False}


def test_a_problem_becomes_an_error_with_its_code_and_field():
    problem = {"type": "urn:hookstream:problem:rate_limited", "title": "Too Many Requests", "status": 429,
               "detail": "slow down", "code": "rate_limited", "field": None}
    _seen, transport = recorder(lambda r: httpx.Response(429, json=problem, headers={"Retry-After": "2"}))
    with Hookstream("http://api", "hsk_x", transport=transport) as hs, pytest.raises(HookstreamAPIError) as err:
        hs.endpoints.list()
    assert (err.value.status, err.value.code, err.value.detail, err.value.retry_after) == (429, "rate_limited", "slow down", 2.0)


def test_an_answer_that_is_not_a_problem_still_raises():
    _seen, transport = recorder(lambda r: httpx.Response(502, text="bad gateway"))
    with Hookstream("http://api", "hsk_x", transport=transport) as hs, pytest.raises(HookstreamAPIError) as err:
        hs.endpoints.get("sub_1")
    assert err.value.status == 502 and err.value.code == "http_error"


async def test_the_async_client_shares_the_resources():
    seen, transport = recorder(lambda r: httpx.Response(204))
    async with AsyncHookstream("http://api", "hsk_x", transport=transport) as hs:
        assert await hs.endpoints.delete("sub_1") is None
    assert seen[0].method == "DELETE" and seen[0].url.path == "/v1/endpoints/sub_1"
