"""``Hookstream`` (sync) and ``AsyncHookstream`` on httpx, sharing one set of resource classes.

Each resource method describes its request as a ``_Call`` (method, path, query, body, how to
read the answer) and hands it to the client's ``_run``: the sync client returns the result,
the async one a coroutine of it. So each route is written down once for both.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import httpx

from hookstream.client._errors import HookstreamAPIError
from hookstream.client._models import Attempt, DeadLetter, Endpoint, EndpointWithSecret, Message, Page

TENANT_HEADER = "Hookstream-Tenant"


@dataclasses.dataclass(frozen=True)
class _Call:
    method: str
    path: str
    params: Mapping[str, Any] | None = None
    json: Any = None
    headers: Mapping[str, str] | None = None
    parse: Callable[[Any], Any] = lambda doc: doc


def _seg(value: str) -> str:
    return quote(value, safe="")


def _clean(values: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON body without the fields left out."""
    return {k: v for k, v in values.items() if v is not None}


def _query(params: Mapping[str, Any]) -> dict[str, Any]:
    """Query parameters without the ones left out (booleans as true/false)."""
    return {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in params.items() if v is not None}


def _page(item: Callable[[dict], Any]) -> Callable[[Any], Page]:
    return lambda doc: Page([item(d) for d in doc["data"]], doc.get("iterator"), doc["done"])


def _raise_for_problem(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        doc = response.json()
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise HookstreamAPIError(response.status_code, "http_error", response.text[:200] or response.reason_phrase)
    retry = response.headers.get("Retry-After")
    raise HookstreamAPIError(
        response.status_code, str(doc.get("code") or doc.get("type") or "error"), str(doc.get("detail") or doc.get("title") or ""),
        doc.get("field"), retry_after=float(retry) if retry and retry.replace(".", "", 1).isdigit() else None, body=doc,
    )


def _result(call: _Call, response: httpx.Response) -> Any:
    _raise_for_problem(response)
    if response.status_code == 204 or not response.content:
        return call.parse(None)
    return call.parse(response.json())


class _Resource:
    def __init__(self, run: Callable[[_Call], Any]) -> None:
        self._run = run


class Events(_Resource):
    def create(self, type: str, data: Mapping[str, Any], *, tenant_id: str | None = None, id: str | None = None,
               occurred_at: str | None = None, correlation_id: str | None = None, idempotency_key: str | None = None) -> dict:
        """Ingest one event (202 once the broker has it); the answer names the event id."""
        body = _clean({"type": type, "data": dict(data), "tenant_id": tenant_id, "id": id, "occurred_at": occurred_at,
                       "correlation_id": correlation_id})
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return self._run(_Call("POST", "/v1/events", json=body, headers=headers))

    def create_batch(self, events: list[Mapping[str, Any]]) -> dict:
        """Up to 1,000 envelopes, all validated before any is sent; one result per event."""
        return self._run(_Call("POST", "/v1/events/batch", json={"events": [dict(e) for e in events]}))


class EventTypes(_Resource):
    def list(self) -> dict:
        return self._run(_Call("GET", "/v1/event-types"))

    def get(self, event_type: str) -> dict:
        """Its JSON Schema and an example."""
        return self._run(_Call("GET", f"/v1/event-types/{_seg(event_type)}"))


class Endpoints(_Resource):
    def create(self, url: str, events: list[str], *, description: str = "", headers: Mapping[str, str] | None = None,
               secret: str | None = None) -> EndpointWithSecret:
        body = _clean({"url": url, "events": list(events), "description": description,
                       "headers": dict(headers) if headers else None, "secret": secret})
        return self._run(_Call("POST", "/v1/endpoints", json=body, parse=EndpointWithSecret.from_json))

    def list(self, *, limit: int | None = None, iterator: str | None = None, status: str | None = None,
             event_type: str | None = None) -> Page[Endpoint]:
        params = _query({"limit": limit, "iterator": iterator, "status": status, "event_type": event_type})
        return self._run(_Call("GET", "/v1/endpoints", params=params, parse=_page(Endpoint.from_json)))

    def get(self, endpoint_id: str) -> Endpoint:
        return self._run(_Call("GET", f"/v1/endpoints/{_seg(endpoint_id)}", parse=Endpoint.from_json))

    def update(self, endpoint_id: str, *, url: str | None = None, events: list[str] | None = None,
               description: str | None = None, headers: Mapping[str, str] | None = None) -> Endpoint:
        body = _clean({"url": url, "events": list(events) if events is not None else None, "description": description,
                       "headers": dict(headers) if headers is not None else None})
        return self._run(_Call("PATCH", f"/v1/endpoints/{_seg(endpoint_id)}", json=body, parse=Endpoint.from_json))

    def delete(self, endpoint_id: str) -> None:
        return self._run(_Call("DELETE", f"/v1/endpoints/{_seg(endpoint_id)}", parse=lambda _doc: None))

    def enable(self, endpoint_id: str) -> Endpoint:
        return self._run(_Call("POST", f"/v1/endpoints/{_seg(endpoint_id)}/enable", parse=Endpoint.from_json))

    def disable(self, endpoint_id: str) -> Endpoint:
        return self._run(_Call("POST", f"/v1/endpoints/{_seg(endpoint_id)}/disable", parse=Endpoint.from_json))

    def get_secret(self, endpoint_id: str) -> str:
        """The current secret (admin keys only)."""
        return self._run(_Call("GET", f"/v1/endpoints/{_seg(endpoint_id)}/secret", parse=lambda doc: doc["key"]))

    def rotate_secret(self, endpoint_id: str, *, grace_seconds: float | None = None) -> EndpointWithSecret:
        body = _clean({"grace_seconds": grace_seconds})
        return self._run(_Call("POST", f"/v1/endpoints/{_seg(endpoint_id)}/secret/rotate", json=body,
                               parse=EndpointWithSecret.from_json))

    def send_test(self, endpoint_id: str, event_type: str) -> str:
        """Send an example event of ``event_type`` to this endpoint; returns the message id."""
        return self._run(_Call("POST", f"/v1/endpoints/{_seg(endpoint_id)}/test", json={"event_type": event_type},
                               parse=lambda doc: doc["message_id"]))

    def recover(self, endpoint_id: str, since: str, *, until: str | None = None, dry_run: bool = False) -> dict:
        body = _clean({"since": since, "until": until, "dry_run": dry_run})
        return self._run(_Call("POST", f"/v1/endpoints/{_seg(endpoint_id)}/recover", json=body))

    def stats(self, endpoint_id: str) -> dict:
        return self._run(_Call("GET", f"/v1/endpoints/{_seg(endpoint_id)}/stats"))


class Messages(_Resource):
    def list(self, *, endpoint_id: str | None = None, event_type: str | None = None, status: str | None = None,
             since: str | None = None, until: str | None = None, limit: int | None = None,
             iterator: str | None = None) -> Page[Message]:
        params = _query({"endpoint_id": endpoint_id, "event_type": event_type, "status": status, "since": since,
                         "until": until, "limit": limit, "iterator": iterator})
        return self._run(_Call("GET", "/v1/messages", params=params, parse=_page(Message.from_json)))

    def get(self, message_id: str) -> Message:
        return self._run(_Call("GET", f"/v1/messages/{_seg(message_id)}", parse=Message.from_json))

    def attempts(self, message_id: str) -> list[Attempt]:
        return self._run(_Call("GET", f"/v1/messages/{_seg(message_id)}/attempts",
                               parse=lambda doc: [Attempt.from_json(a) for a in doc["data"]]))

    def resend(self, message_id: str) -> Message:
        return self._run(_Call("POST", f"/v1/messages/{_seg(message_id)}/resend", parse=Message.from_json))


class DeadLetters(_Resource):
    """Admin keys only."""

    def list(self, *, tenant_id: str | None = None, endpoint_id: str | None = None, event_type: str | None = None,
             since: str | None = None, until: str | None = None, reason: str | None = None, limit: int | None = None,
             iterator: str | None = None) -> Page[DeadLetter]:
        params = _query({"tenant_id": tenant_id, "endpoint_id": endpoint_id, "event_type": event_type, "since": since,
                         "until": until, "reason": reason, "limit": limit, "iterator": iterator})
        return self._run(_Call("GET", "/v1/dlq", params=params, parse=_page(DeadLetter.from_json)))

    def replay(self, *, tenant_id: str | None = None, endpoint_id: str | None = None, event_type: str | None = None,
               since: str | None = None, until: str | None = None, reason: str | None = None, dry_run: bool = False,
               force: bool = False) -> dict:
        body = _clean({"tenant_id": tenant_id, "endpoint_id": endpoint_id, "event_type": event_type, "since": since,
                       "until": until, "reason": reason, "dry_run": dry_run, "force": force})
        return self._run(_Call("POST", "/v1/dlq/replay", json=body))


def _headers(api_key: str, tenant: str | None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
    if tenant is not None:
        headers[TENANT_HEADER] = tenant
    return headers


class _Base:
    def _attach(self) -> None:
        self.events = Events(self._run)
        self.event_types = EventTypes(self._run)
        self.endpoints = Endpoints(self._run)
        self.messages = Messages(self._run)
        self.dlq = DeadLetters(self._run)


class Hookstream(_Base):
    """The sync client. ``tenant``: the tenant an admin key acts for (sent as ``Hookstream-Tenant``);
    a tenant key needs none. ``transport``: any httpx transport (``httpx.ASGITransport(app)`` in tests)."""

    def __init__(self, base_url: str, api_key: str, *, tenant: str | None = None, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._http = httpx.Client(base_url=base_url, headers=_headers(api_key, tenant), timeout=timeout, transport=transport)
        self._attach()

    def _run(self, call: _Call) -> Any:
        response = self._http.request(call.method, call.path, params=call.params, json=call.json, headers=call.headers)
        return _result(call, response)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Hookstream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class AsyncHookstream(_Base):
    """The asyncio client: the same resources, every method a coroutine."""

    def __init__(self, base_url: str, api_key: str, *, tenant: str | None = None, timeout: float = 30.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._http = httpx.AsyncClient(base_url=base_url, headers=_headers(api_key, tenant), timeout=timeout, transport=transport)
        self._attach()

    async def _run(self, call: _Call) -> Any:
        response = await self._http.request(call.method, call.path, params=call.params, json=call.json, headers=call.headers)
        return _result(call, response)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> "AsyncHookstream":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()
