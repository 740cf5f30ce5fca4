"""``hookstream receive``: a local webhook endpoint that checks what a sender sends it.

It verifies every POST the way a careful receiver does (``signing.verify``: the three
Standard Webhooks headers, the timestamp within the tolerance, a ``v1`` signature matching a
secret) and answers like one: 204 when authentic, 400 when the request is malformed (a header
missing, a timestamp that is not unix seconds, a body that is not a ``{"type": ...}`` object),
401 when it is not authentic or not fresh. The reply's JSON and the printed line name the reason.

The secret is given (``--secret whsec_...``) or read from the subscription store
(``--subscription sub_...``), then again on every request, so a rotation is followed and both
the new and the rotated-out secret verify during the grace window. ``--fail-rate`` answers that
share of authentic requests with 503, to watch the sender retry.

It runs on aiohttp, the ``receiver`` extra; the command itself (options, the one-line error
when aiohttp is missing) is ``hookstream.shell.cli._receive``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import typer
from aiohttp import web

from hookstream.delivery.errors import (
    InvalidTimestampError,
    MissingHeaderError,
    NoMatchingSignatureError,
    NoValidSecretError,
    TimestampTooNewError,
    TimestampTooOldError,
    WebhookVerificationError,
)
from hookstream.delivery.signing import DEFAULT_TOLERANCE_SECONDS, Secret, verify
from hookstream.core.errors import ConfigError, HookstreamError, ValidationError
from hookstream.core.time import format_unix

__all__ = ["RECEIVED", "Received", "create_app", "fixed_secrets", "run", "serve", "subscription_secrets"]

# The secrets to verify with, asked for on every request; and the tenant they belong to, if known.
SecretSource = Callable[[], Awaitable[tuple[list[Secret], str | None]]]
Printer = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class Received:
    """One request and the answer it got: what the printed line and the tests look at."""

    at: float
    webhook_id: str
    event_type: str
    tenant: str
    status: int
    reason: str | None = None  # None when authentic
    detail: str = ""

    @property
    def valid(self) -> bool:
        return self.reason is None or self.reason == "simulated_failure"

    def line(self) -> str:
        when = format_unix(self.at, timespec="seconds")
        verdict = "valid" if self.valid else "invalid"
        tail = f"  {self.reason}: {self.detail}" if self.reason else ""
        return f"{when}  {self.webhook_id}  {self.event_type}  tenant={self.tenant}  {verdict} {self.status}{tail}"


# Every request the app answered, in order: for tests that run the receiver in-process.
RECEIVED = web.AppKey("received", list[Received])

# Malformed requests are 400; requests that are well-formed but not authentic or not fresh, 401.
_REASONS: list[tuple[type[WebhookVerificationError], int, str]] = [
    (MissingHeaderError, 400, "missing_header"),
    (InvalidTimestampError, 400, "invalid_timestamp"),
    (TimestampTooOldError, 401, "timestamp_too_old"),
    (TimestampTooNewError, 401, "timestamp_too_new"),
    (NoMatchingSignatureError, 401, "bad_signature"),
]


def classify(exc: WebhookVerificationError) -> tuple[int, str]:
    for kind, status, reason in _REASONS:
        if isinstance(exc, kind):
            return status, reason
    return 401, "not_verified"


def fixed_secrets(secret: str) -> SecretSource:
    """One secret from the command line (``whsec_...``); a bad one fails here, not per request."""
    parsed = [Secret.parse(secret)]

    async def source() -> tuple[list[Secret], str | None]:
        return parsed, None

    return source


def subscription_secrets(store: Any, subscription_id: str, *, tenant_id: str) -> SecretSource:
    """The current secrets of a subscription (rotated-out ones until they expire), read per request."""

    def read() -> tuple[list[Secret], str | None]:
        sub = store.get(subscription_id, tenant_id=tenant_id)
        return list(sub.secrets), sub.tenant_id

    async def source() -> tuple[list[Secret], str | None]:
        return await asyncio.to_thread(read)

    return source


def _describe(body: bytes) -> tuple[dict[str, Any] | None, str, str | None]:
    """The payload (if it is a JSON object), its type, and a tenant id if it carries one."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, "-", None
    if not isinstance(doc, dict):
        return None, "-", None
    kind = doc.get("type") if isinstance(doc.get("type"), str) else "-"
    data = doc.get("data") if isinstance(doc.get("data"), dict) else {}
    tenant = data.get("tenant_id") or doc.get("tenant_id")
    return doc, kind, tenant if isinstance(tenant, str) else None


def create_app(
    secrets: SecretSource,
    *,
    printer: Printer = typer.echo,
    fail_rate: float = 0.0,
    rng: random.Random | None = None,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
) -> web.Application:
    """The receiver as an aiohttp app: POST to any path. ``app[RECEIVED]`` lists every request."""
    if not 0.0 <= fail_rate <= 1.0:
        raise ValidationError(f"fail rate: {fail_rate} is not between 0 and 1")
    rng = rng or random.Random()
    app = web.Application()
    received: list[Received] = []
    app[RECEIVED] = received

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        now = time.time()
        doc, kind, tenant = _describe(body)
        webhook_id = request.headers.get("webhook-id", "").strip()[:255] or "-"
        status, reason, detail = 204, None, ""
        try:
            keys, owner = await secrets()
            tenant = tenant or owner
            verify(body, request.headers, keys, tolerance=tolerance, now=now)
            if doc is None or kind == "-":
                status, reason, detail = 400, "bad_payload", 'the body is not a JSON object with a "type"'
            elif rng.random() < fail_rate:
                status, reason, detail = 503, "simulated_failure", "--fail-rate"
        except WebhookVerificationError as exc:
            (status, reason), detail = classify(exc), str(exc)
        except NoValidSecretError as exc:
            status, reason, detail = 401, "no_valid_secret", str(exc)
        except HookstreamError as exc:  # the store: the subscription deleted meanwhile, or unreachable
            status, reason, detail = 500, "secrets_unavailable", str(exc)
        entry = Received(now, webhook_id, kind, tenant or "-", status, reason, detail)
        received.append(entry)
        printer(entry.line())
        if status == 204:
            return web.Response(status=204)
        return web.json_response({"status": "valid" if entry.valid else "invalid", "reason": reason, "message": detail}, status=status)

    app.router.add_post("/{path:.*}", handle)
    return app


async def serve(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start ``app`` on ``host:port`` (0: a free port); returns the runner and the bound port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port") from None
    return runner, runner.addresses[0][1]


async def run(app: web.Application, host: str, port: int, announce: str) -> None:
    """Serve ``app`` until SIGINT/SIGTERM (``hookstream receive``)."""
    runner, bound = await serve(app, host, port)
    typer.echo(f"listening on http://{host}:{bound}/ ({announce}); Ctrl-C to stop", err=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
