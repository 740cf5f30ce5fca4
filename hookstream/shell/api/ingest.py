"""Ingest: events from HTTP requests onto the event topics, idempotently (the service behind
``POST /v1/events`` and ``POST /v1/events/batch``; routes only parse and answer).

An incoming event is the documented envelope; the server fills what is left out: ``id`` (a new
UUIDv7), ``occurred_at`` (now), ``schema_version`` (the type's current one) and ``tenant_id``
(the tenant the request acts for; when given it must be that tenant: 403 ``tenant_mismatch``).
Then it is validated with ``hookstream.schemas`` (422 ``invalid_event`` naming the field) and
its serialised size checked against ``HOOKSTREAM_MAX_EVENT_BYTES`` (413), before anything is
sent. Published with the ``AsyncPublisher`` (as the bytes checked here: validated once, keyed
by entity), it is answered
202 once the broker acknowledged it; a broker that does not is 503 with ``Retry-After``.

Idempotency (``idempotency.py``): by the ``Idempotency-Key`` header, else by the event's own
``id`` when the client gave one; without either, every request is a new event. In a batch the
header ``K`` keys event ``i`` apart from any single request's key (a single request under the key
``K:0`` is not the batch's first event).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from datetime import datetime, timezone
from typing import Any

import orjson
from fastapi.concurrency import run_in_threadpool

from hookstream.core.errors import HookstreamError
from hookstream.producers import PublishError, EventTooLargeError
from hookstream.schemas import CURRENT_VERSIONS, Event, InvalidEventError, event_from_dict, format_timestamp, new_event_id
from hookstream.shell.api.context import ApiContext
from hookstream.shell.api.idempotency import IdempotencyStore, Request
from hookstream.shell.api.problems import BROKER_RETRY_AFTER, Problem

MAX_BATCH = 1000
MAX_IDEMPOTENCY_KEY = 255
PRUNE_EVERY = 600.0  # seconds between two deletions of forgotten idempotency rows (per process)
PUBLISH_TIMEOUT = 30.0

log = logging.getLogger("hookstream.api")


@dataclasses.dataclass(frozen=True)
class Outcome:
    """One event's answer: ``status`` (202, or the problem's), the body, whether it was replayed."""

    status: int
    body: dict[str, Any]
    replayed: bool = False


def accepted_body(event: Event) -> dict[str, Any]:
    """What a 202 says about an event: its envelope without ``data``."""
    body = {"id": event.id, "type": event.type, "tenant_id": event.tenant_id,
            "occurred_at": format_timestamp(event.occurred_at), "schema_version": event.schema_version}
    if event.correlation_id is not None:
        body["correlation_id"] = event.correlation_id
    return body


def check_idempotency_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY or not all("\x21" <= c <= "\x7e" for c in key):
        raise Problem(400, "invalid_idempotency_key", f"Idempotency-Key: 1-{MAX_IDEMPOTENCY_KEY} printable ASCII characters without spaces", "Idempotency-Key")
    return key


def build_event(doc: Any, tenant_id: str, max_event_bytes: int, *, where: str = "") -> tuple[Event, bool, bytes]:
    """The event a request body describes, filled in and validated: (event, whether the client
    gave its id, its wire bytes). Raises ``Problem`` (403/413/422) for anything wrong, naming the
    field. Validated once: the bytes are what the publisher sends (``publish_many(encoded=...)``)."""
    if not isinstance(doc, dict):
        raise Problem(422, "invalid_event", f"{where}an event is a JSON object (got {_json_type(doc)})", where.rstrip(": ") or None)
    doc = dict(doc)
    given = doc.get("tenant_id")
    if given is None:
        doc["tenant_id"] = tenant_id
    elif given != tenant_id:
        if isinstance(given, str):
            raise Problem(403, "tenant_mismatch", f"{where}tenant_id names another tenant than the one this request acts for", f"{where}tenant_id".replace(": ", "."))
        raise Problem(422, "invalid_event", f"{where}tenant_id must be a string", f"{where}tenant_id".replace(": ", "."))
    client_id = doc.get("id") is not None
    if not client_id:
        doc["id"] = new_event_id()
    if doc.get("occurred_at") is None:
        doc["occurred_at"] = format_timestamp(datetime.now(timezone.utc))
    if doc.get("schema_version") is None and isinstance(doc.get("type"), str) and doc["type"] in CURRENT_VERSIONS:
        doc["schema_version"] = CURRENT_VERSIONS[doc["type"]]
    try:
        event = event_from_dict(doc)
        value = event.to_bytes()  # valid: event_from_dict checked every field it holds
    except InvalidEventError as exc:
        field = f"{where.rstrip(': ')}.{exc.field}" if where and exc.field else (exc.field or None)
        raise Problem(422, "invalid_event", f"{where}{exc.reason}", field) from None
    except TypeError as exc:  # a value orjson refuses (cannot come from a JSON body; kept for safety)
        raise Problem(422, "invalid_event", f"{where}not serializable as JSON: {exc}") from None
    if len(value) > max_event_bytes:
        raise Problem(413, "too_large", f"{where}{EventTooLargeError(event.id, event.type, len(value), max_event_bytes)}")
    return event, client_id, value


def fingerprint(doc: Any) -> str:
    """The hash that tells two requests under one key apart (key order and spacing do not count)."""
    return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _json_type(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number", type(None): "null"}.get(type(value), "a value")


class Ingest:
    """The ingest service of one API process."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx
        self.store = IdempotencyStore(ctx.engine)
        self._pruned_at = 0.0

    @classmethod
    def of(cls, ctx: ApiContext) -> "Ingest":
        ingest = ctx.extra.get("ingest")
        if ingest is None:
            ingest = ctx.extra["ingest"] = cls(ctx)
        return ingest

    async def one(self, tenant_id: str, doc: Any, idempotency_key: str | None) -> Outcome:
        """Validate, claim the key, publish, record: one event."""
        event, client_id, value = build_event(doc, tenant_id, self.ctx.settings.max_event_bytes)
        key = f"key:{idempotency_key}" if idempotency_key else (f"id:{event.id}" if client_id else None)
        outcomes = await self._publish(tenant_id, [(event, value, key, doc)])
        outcome = outcomes[0]
        if outcome.status >= 400:
            raise Problem(outcome.status, outcome.body["code"], outcome.body["detail"], outcome.body.get("field"),
                          headers={"Retry-After": str(BROKER_RETRY_AFTER)} if outcome.status == 503 else None)
        return outcome

    async def batch(self, tenant_id: str, docs: list[Any], idempotency_key: str | None) -> list[Outcome]:
        """Validate every event (one invalid: 422 listing each, nothing sent), then publish them
        side by side; one outcome per event, in order."""
        if not 1 <= len(docs) <= MAX_BATCH:
            raise Problem(422, "validation_error", f"events: 1 to {MAX_BATCH} events per batch (got {len(docs)})", "events")
        built, errors = [], []
        for i, doc in enumerate(docs):
            try:
                built.append(build_event(doc, tenant_id, self.ctx.settings.max_event_bytes, where=f"events.{i}: "))
            except Problem as exc:
                errors.append({"index": i, **exc.document()})
        if errors:
            first = errors[0]
            raise Problem(first["status"] if len(errors) == 1 else 422, first["code"] if len(errors) == 1 else "invalid_batch",
                          f"{len(errors)} of {len(docs)} events are invalid; nothing was sent. The first: {first['detail']}",
                          first.get("field"), extra={"errors": errors})
        items, seen = [], set()
        for i, ((event, client_id, value), doc) in enumerate(zip(built, docs)):
            key = f"batch:{idempotency_key}:{i}" if idempotency_key else (f"id:{event.id}" if client_id else None)
            if key is not None:
                if key in seen:
                    raise Problem(422, "duplicate_event_id", f"events.{i}: id {event.id} appears twice in the batch", f"events.{i}.id")
                seen.add(key)
            items.append((event, value, key, doc))
        return await self._publish(tenant_id, items)

    async def _publish(self, tenant_id: str, items: list[tuple[Event, bytes, str | None, Any]]) -> list[Outcome]:
        keyed = [(i, event, key, doc) for i, (event, _, key, doc) in enumerate(items) if key is not None]
        claims = {}
        if keyed:
            requests = [Request(key, fingerprint(doc), event.id, format_timestamp(event.occurred_at)) for _, event, key, doc in keyed]
            for (i, _, _, _), claim in zip(keyed, await run_in_threadpool(self.store.claim, tenant_id, requests)):
                claims[i] = claim
        outcomes: list[Outcome | None] = [None] * len(items)
        to_send: list[tuple[int, Event, bytes]] = []
        for i, (event, value, key, _doc) in enumerate(items):
            claim = claims.get(i)
            if claim is None or claim.kind == "new":
                if claim is not None and (claim.event_id, claim.occurred_at) != (event.id, format_timestamp(event.occurred_at)):
                    # a retry of a failed or abandoned request: publish the event it first made
                    event = dataclasses.replace(event, id=claim.event_id, occurred_at=datetime.fromisoformat(claim.occurred_at))
                    value = event.to_bytes()  # the same (valid) event under its first id and time
                to_send.append((i, event, value))
            elif claim.kind == "replay":
                outcomes[i] = Outcome(202, claim.response or {}, replayed=True)
            elif claim.kind == "in_flight":
                outcomes[i] = _problem(409, "idempotency_in_flight", "a request with this idempotency key is being published; retry shortly", "Idempotency-Key")
            else:
                outcomes[i] = _problem(409, "idempotency_key_reused", "this idempotency key was used for another request in the last 24 h", "Idempotency-Key")
        results = await self._send([e for _, e, _ in to_send], [v for _, _, v in to_send]) if to_send else []
        done, failed = {}, []
        for (i, _, _), result in zip(to_send, results):
            outcomes[i] = result
            key = items[i][2]
            if key is not None:
                if result.status == 202:
                    done[key] = result.body
                else:
                    failed.append(key)
        if done or failed:
            await run_in_threadpool(self.store.finish, tenant_id, done, failed)
        await self._maybe_prune()
        return [o for o in outcomes if o is not None]

    async def _send(self, events: list[Event], encoded: list[bytes]) -> list[Outcome]:
        """Publish ``events`` (in order, one ``publish_many``) and say what became of each. After a
        timeout, which events were acknowledged is not known: all count as failed (503), so a
        retry publishes them again with the same ids (at least once, never lost)."""
        try:
            await self.ctx.publisher.publish_many(events, timeout=PUBLISH_TIMEOUT, encoded=encoded)
        except EventTooLargeError as exc:  # checked already: kept for safety
            return [_problem(413, "too_large", str(exc))] * len(events)
        except InvalidEventError as exc:  # validated already: kept for safety
            return [_problem(422, "invalid_event", exc.reason, exc.field)] * len(events)
        except PublishError as exc:
            failed = set(exc.event_ids)
            timed_out = exc.code == "_TIMED_OUT" or not failed
            log.warning("%d of %d event(s) not acknowledged by the broker: %s", len(events) if timed_out else len(failed), len(events), exc)
            return [_broker_failed(e) if timed_out or e.id in failed else Outcome(202, accepted_body(e)) for e in events]
        except HookstreamError as exc:
            log.warning("%d event(s) not published: %s", len(events), exc)
            return [_broker_failed(e) for e in events]
        return [Outcome(202, accepted_body(e)) for e in events]

    async def _maybe_prune(self) -> None:
        now = time.monotonic()
        if now - self._pruned_at >= PRUNE_EVERY:
            self._pruned_at = now
            await run_in_threadpool(self.store.prune)


def _broker_failed(event: Event) -> Outcome:
    return _problem(503, "broker_unavailable", f"event {event.id} was not acknowledged by the broker; "
                    "retry with the same Idempotency-Key or event id")


def _problem(status: int, code: str, detail: str, field: str | None = None) -> Outcome:
    return Outcome(status, Problem(status, code, detail, field).document())
