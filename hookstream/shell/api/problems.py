"""Errors as ``application/problem+json`` (RFC 9457), and the one place exceptions become them.

Every error response of the API is a problem document::

    {"type": "urn:hookstream:problem:invalid_event", "title": "Unprocessable Content", "status": 422,
     "detail": "payment.received: data.amount must be ...", "code": "invalid_event", "field": "data.amount"}

``code`` is stable (clients branch on it; ``type`` is the same code as a URN), ``detail`` is one
line for a person, ``field`` names the input at fault when there is one. Routes and services
``raise Problem(status, code, detail, field)``; ``install(app)`` maps everything else:

- FastAPI's ``RequestValidationError``: 400 ``invalid_json`` for a body that is not JSON, else
  422 ``validation_error`` naming the first field at fault;
- ``HTTPException`` (404 for an unknown path, 405, ...): its status, code from ``CODES``;
- hookstream's own errors from the service layer: ``NotFoundError`` 404, ``ValidationError`` 422
  (``InvalidEventError``: ``invalid_event`` with its field), ``EventTooLargeError`` 413,
  ``BrokerError`` 503 with ``Retry-After`` (the broker's address stays out of the answer);
- a body over the limit: 413 ``too_large`` (``BodyGuard``, before the route reads it);
- a client that hangs up mid-body (``ClientDisconnect``): no answer, a debug line only;
- anything else: 500 ``internal_error`` with no internals in the answer (the traceback is logged).
  Bad input never gets here: every route checks what it reads.
"""

from __future__ import annotations

import asyncio
import http
import logging
from typing import Any

import orjson
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hookstream.core.errors import BrokerError, ConfigError, HookstreamError, NotFoundError, TopicError, ValidationError

log = logging.getLogger("hookstream.api")

MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:hookstream:problem:"
BODY_READ_TIMEOUT = 30.0  # seconds a request body may pause before 408 (a client that stops sending)
BROKER_RETRY_AFTER = 5  # seconds a client should wait after a 503 from the broker

# The code of a bare HTTP status (an HTTPException without one of ours).
CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    406: "not_acceptable", 408: "request_timeout", 409: "conflict", 413: "too_large", 415: "unsupported_media_type",
    422: "validation_error", 429: "rate_limited", 500: "internal_error", 503: "unavailable",
}


class Problem(HTTPException):
    """An error answered as a problem document. An ``HTTPException`` too, so FastAPI passes it
    through unchanged wherever it is raised (body parsing, dependencies, routes)."""

    def __init__(self, status: int, code: str, detail: str, field: str | None = None, *,
                 headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(status_code=status, detail=detail, headers=headers)
        self.status = status
        self.code = code
        self.field = field
        self.extra = extra or {}  # extension members (RFC 9457 section 3.2), e.g. a batch's "errors"

    def document(self) -> dict[str, Any]:
        doc = {"type": TYPE_PREFIX + self.code, "title": _title(self.status), "status": self.status,
               "detail": self.detail, "code": self.code}
        if self.field is not None:
            doc["field"] = self.field
        return {**self.extra, **doc}

    def response(self) -> Response:
        return Response(orjson.dumps(self.document()), status_code=self.status, headers=self.headers, media_type=MEDIA_TYPE)


class ProblemDocument(BaseModel):
    """The problem document, for the OpenAPI description of every error response."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "type": "urn:hookstream:problem:unauthorized", "title": "Unauthorized", "status": 401,
        "detail": "no API key: send 'Authorization: Bearer hsk_...'", "code": "unauthorized"}]})
    type: str
    title: str
    status: int
    detail: str
    code: str
    field: str | None = None


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status described as a problem document."""
    schema = ProblemDocument.model_json_schema()
    return {s: {"description": _title(s), "content": {MEDIA_TYPE: {"schema": schema}}} for s in statuses}


def body_too_large(limit: int, what: str = "the request body") -> Problem:
    return Problem(413, "too_large", f"{what} is over the limit of {limit} bytes")


def _title(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


# ----------------------------------------------------------------------------- handlers
async def _problem(_request: Request, exc: Problem) -> Response:
    return exc.response()


async def _http_exception(_request: Request, exc: StarletteHTTPException) -> Response:
    detail = exc.detail if isinstance(exc.detail, str) else _title(exc.status_code)
    return Problem(exc.status_code, CODES.get(exc.status_code, "error"), detail, headers=exc.headers).response()


async def _validation(_request: Request, exc: RequestValidationError) -> Response:
    errors = exc.errors()
    first = errors[0] if errors else {}
    field = _field(first.get("loc", ()))
    if first.get("type") == "json_invalid":
        return Problem(400, "invalid_json", f"the body is not valid JSON: {first.get('msg', '')}".rstrip(": ")).response()
    message = str(first.get("msg", "is invalid"))
    more = len(errors) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more > 0 else ""
    return Problem(422, "validation_error", f"{field or 'the request'}: {message}{suffix}", field or None).response()


def _field(loc: Any) -> str:
    """``("body", "data", "amount")`` -> ``"data.amount"``; ``("query", "limit")`` -> ``"limit"``."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return ".".join(parts)


async def _hookstream_error(_request: Request, exc: HookstreamError) -> Response:
    from hookstream.producers import EventTooLargeError
    from hookstream.schemas import InvalidEventError

    if isinstance(exc, EventTooLargeError):
        return Problem(413, "too_large", str(exc)).response()
    if isinstance(exc, InvalidEventError):
        return Problem(422, "invalid_event", exc.reason, exc.field).response()
    if isinstance(exc, ValidationError):
        return Problem(422, "validation_error", str(exc), getattr(exc, "field", None)).response()
    if isinstance(exc, NotFoundError):
        return Problem(404, "not_found", str(exc)).response()
    if isinstance(exc, (BrokerError, TopicError)):
        log.warning("broker unavailable: %s", exc)
        return Problem(503, "broker_unavailable", "the event broker did not answer in time; retry later",
                       headers={"Retry-After": str(BROKER_RETRY_AFTER)}).response()
    if isinstance(exc, ConfigError):
        log.error("configuration error: %s", exc)
        return Problem(500, "internal_error", "the server is misconfigured; the error was logged").response()
    return Problem(400, "bad_request", str(exc)).response()


def install(app: FastAPI) -> None:
    """Register the handlers above and the ``BodyGuard`` on ``app``."""
    app.add_exception_handler(Problem, _problem)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HookstreamError, _hookstream_error)


# ----------------------------------------------------------------------------- the guard
class BodyGuard:
    """Pure ASGI middleware: the outermost of ours.

    - refuses a body over ``max_body_bytes`` with 413: at once when ``Content-Length`` says so,
      else when the bytes read pass it (the route's read raises ``Problem``);
    - answers 408 ``request_timeout`` when a body pauses for ``read_timeout`` seconds (a client that
      sends part of a body and then nothing would hold its connection and task for ever), or has
      not all arrived ``body_timeout`` seconds after the first read (one that trickles it);
    - turns any exception that escaped every handler into a 500 problem without internals,
      logging the traceback (Starlette would answer ``text/plain`` and re-raise).
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int, read_timeout: float = BODY_READ_TIMEOUT,
                 body_timeout: float = float("inf")) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.read_timeout = read_timeout
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        length = _content_length(scope)
        if length is not None and length > limit:
            await _send(send, body_too_large(limit).response())
            return
        seen = 0
        started = False
        body_done = False
        deadline: float | None = None

        async def limited_receive() -> Message:
            nonlocal seen, body_done, deadline
            if body_done:  # after the body only a disconnect comes, whenever it does: no timeout
                return await receive()
            now = asyncio.get_running_loop().time()
            if deadline is None:
                deadline = now + self.body_timeout
            wait = min(self.read_timeout, deadline - now)
            try:
                message = await asyncio.wait_for(receive(), max(0.0, wait))
            except TimeoutError:
                # and the connection is closed after the answer: the rest of that body is not awaited
                close = {"Connection": "close"}
                if wait < self.read_timeout:
                    raise Problem(408, "request_timeout", f"the request body did not all arrive within {self.body_timeout:g}s", headers=close) from None
                raise Problem(408, "request_timeout", f"the request body stopped arriving for {self.read_timeout:g}s", headers=close) from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise body_too_large(limit)
                body_done = not message.get("more_body", False)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except ClientDisconnect:  # the client left mid-body: nobody to answer, nothing went wrong here
            log.debug("client left during %s %s", scope.get("method"), scope.get("path"))
            return
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            if isinstance(exc, Problem):
                response = exc.response()
            else:
                log.exception("unexpected error on %s %s", scope.get("method"), scope.get("path"))
                response = Problem(500, "internal_error", "an unexpected error occurred; it was logged").response()
            if started:
                raise
            await _send(send, response)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() and len(value) < 20 else None
    return None


async def _send(send: Send, response: Response) -> None:
    await send({"type": "http.response.start", "status": response.status_code, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})
