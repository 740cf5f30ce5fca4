"""Endpoints (subscriptions): the store's operations plus publishing, tests, recovery, stats.

Every change is saved in the store, then published to the compacted topic (``publish_pending``,
which also publishes what an earlier change left pending), as ``hookstream subscriptions`` does:
when Kafka cannot be reached the change stays saved and pending (``published`` is False) and
``hookstream subscriptions sync`` or the next change publishes it.

The secret is returned in clear by ``create`` and ``rotate_secret`` (once, to whoever made the
change) and by ``secret`` (the API serves that to admin keys only); everything else carries it
masked.

Operators (the CLI) may act without naming the tenant: ``tenant_id=ANY_TENANT`` finds the
endpoint whichever tenant owns it (the store's cross-tenant ``get_any_tenant``) and then acts as
that tenant. The API never passes it: its tenant always comes from the key.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Mapping

from hookstream.core.errors import HookstreamError, ValidationError
from hookstream.core.settings import Settings
from hookstream.core.wire import DeliveryRecord, delivery_id
from hookstream.delivery import messages as msgs
from hookstream.schemas import EVENT_TYPES, Event, encode_event, example
from hookstream.streams.recovery import RecoveryReport, recover
from hookstream.subscriptions import Subscription, SubscriptionStore, matches, publish_pending
from hookstream.subscriptions.topic import PublishReport, sync
from hookstream.core.time import format_time
from hookstream.shell.services.errors import ConflictError
from hookstream.shell.services.ids import known, word
from hookstream.shell.services.pages import DEFAULT_LIMIT, Page, check_limit, decode_cursor, page_of

log = logging.getLogger("hookstream.api")

PUBLISH_TIMEOUT = 10.0  # seconds to reach Kafka before a saved change is left pending
STATUS_FILTERS = ("active", "disabled")


class DisabledError(ConflictError):
    """Recovery asked of a disabled endpoint: 409 in the API; exit 2 in the CLI, as ``replay
    events`` always answered (``recover`` itself refuses it as invalid input)."""

    exit_code = 2


class _AnyTenant:
    """The marker for "whichever tenant owns it" (operators only; never a tenant id)."""

    def __repr__(self) -> str:
        return "ANY_TENANT"


ANY_TENANT = _AnyTenant()
Tenant = str | _AnyTenant


def _warn_unpublished(exc: HookstreamError) -> None:
    log.warning("saved, but not published to Kafka yet (%s); it stays pending until the next change or "
                "`hookstream subscriptions sync`", exc)


@dataclasses.dataclass(frozen=True)
class Changed:
    endpoint: Subscription
    published: bool
    secret: str | None = None  # only after create and rotate_secret


class EndpointService:
    def __init__(
        self,
        settings: Settings,
        store: SubscriptionStore,
        *,
        publish: Callable[[], object] | None = None,
        requeue: Callable[[Settings, DeliveryRecord], None] = msgs.requeue,
        recover_fn: Callable[..., RecoveryReport] = recover,
        on_unpublished: Callable[[HookstreamError], None] = _warn_unpublished,
    ) -> None:
        self.settings = settings
        self.store = store
        self._publish_fn = publish or (lambda: publish_pending(settings, engine=store.engine, timeout=PUBLISH_TIMEOUT))
        self._requeue = requeue
        self._recover = recover_fn
        self._on_unpublished = on_unpublished  # a saved change Kafka did not take (it stays pending)

    def owner(self, endpoint_id: str, *, tenant_id: Tenant) -> str:
        """The tenant to act as: ``tenant_id``, or for ``ANY_TENANT`` the endpoint's owner."""
        if isinstance(tenant_id, _AnyTenant):
            return self.store.get_any_tenant(known(endpoint_id, "subscription")).tenant_id
        return tenant_id

    # ------------------------------------------------------------------ reads
    def get(self, endpoint_id: str, *, tenant_id: Tenant) -> Subscription:
        if isinstance(tenant_id, _AnyTenant):
            return self.store.get_any_tenant(known(endpoint_id, "subscription"))
        return self.store.get(known(endpoint_id, "subscription"), tenant_id=tenant_id)

    def every(self, *, tenant_id: Tenant) -> list[Subscription]:
        """Every endpoint of the tenant (``ANY_TENANT``: of every tenant, by tenant), unpaginated."""
        if isinstance(tenant_id, _AnyTenant):
            return self.store.list_all_tenants()
        return self.store.list(tenant_id=tenant_id)

    def list(
        self, *, tenant_id: str, limit: int = DEFAULT_LIMIT, iterator: str | None = None,
        status: str | None = None, event_type: str | None = None,
    ) -> Page[Subscription]:
        """The tenant's endpoints, newest first; ``status`` (active, disabled) and ``event_type``
        (endpoints whose filters select it) narrow the list."""
        check_limit(limit)
        after = decode_cursor("endpoints", iterator)
        word(event_type, "event_type")  # names nothing otherwise: refused, as the message listing does
        if status is not None and status not in STATUS_FILTERS:
            raise ValidationError(f"status: {status!r} is not one of {', '.join(STATUS_FILTERS)}")
        subs = sorted(self.store.list(tenant_id=tenant_id), key=_key, reverse=True)
        if status is not None:
            subs = [s for s in subs if s.status == status]
        if event_type is not None:
            subs = [s for s in subs if matches(s.events, event_type)]
        if after is not None:
            after = tuple(after) if isinstance(after, list) else None
            if after is None or len(after) != 2 or not all(isinstance(x, str) for x in after):
                raise ValidationError("iterator: not an iterator this listing returned")
            subs = [s for s in subs if _key(s) < after]
        return page_of(subs[: limit + 1], limit, "endpoints", lambda s: list(_key(s)))

    def secret(self, endpoint_id: str, *, tenant_id: str) -> str:
        """The current signing secret in clear (the API: admin keys only)."""
        sub = self.store.get(known(endpoint_id, "subscription"), tenant_id=tenant_id)
        if sub.sealed_error or not sub.secrets:
            raise ConflictError(f"endpoint {endpoint_id}: its secret cannot be read ({sub.sealed_error or 'none'}); rotate it")
        return sub.secrets[0].reveal()

    def stats(self, endpoint_id: str, *, tenant_id: str) -> dict:
        self.store.get(known(endpoint_id, "subscription"), tenant_id=tenant_id)  # another tenant's: not found
        return msgs.endpoint_stats(self.store.engine, endpoint_id, tenant_id=tenant_id)

    # ------------------------------------------------------------------ writes
    def sync(self, *, timeout: float = PUBLISH_TIMEOUT) -> PublishReport:
        """Operators: republish every tenant's endpoints to the compacted topic and tombstone the
        ids it holds that the store no longer has (``hookstream subscriptions sync``)."""
        return sync(self.settings, engine=self.store.engine, timeout=timeout)

    def create(
        self, *, tenant_id: str, url: str, events: Iterable[str], description: str = "",
        headers: Mapping[str, str] | None = None, secret: str | None = None,
    ) -> Changed:
        sub, plain = self.store.add(tenant_id, url, events, secret=secret, description=description, headers=headers)
        return self._changed(sub, secret=plain)

    def update(
        self, endpoint_id: str, *, tenant_id: Tenant, url: str | None = None, events: Iterable[str] | None = None,
        description: str | None = None, headers: Mapping[str, str] | None = None,
    ) -> Changed:
        sub = self.store.update(known(endpoint_id, "subscription"), tenant_id=self.owner(endpoint_id, tenant_id=tenant_id), url=url, events=events, description=description, headers=headers)
        return self._changed(sub)

    def enable(self, endpoint_id: str, *, tenant_id: Tenant) -> Changed:
        return self._changed(self.store.enable(known(endpoint_id, "subscription"), tenant_id=self.owner(endpoint_id, tenant_id=tenant_id)))

    def disable(self, endpoint_id: str, *, tenant_id: Tenant) -> Changed:
        return self._changed(self.store.disable(known(endpoint_id, "subscription"), tenant_id=self.owner(endpoint_id, tenant_id=tenant_id)))

    def delete(self, endpoint_id: str, *, tenant_id: Tenant) -> Changed:
        """Delete; ``published`` once the tombstone is on the topic (else it stays pending).
        ``endpoint`` is the deleted endpoint as the store last had it."""
        sub = self.store.delete(known(endpoint_id, "subscription"), tenant_id=self.owner(endpoint_id, tenant_id=tenant_id))
        return Changed(sub, self._publish())

    def rotate_secret(self, endpoint_id: str, *, tenant_id: Tenant, grace_seconds: float | None = None,
                      secret: str | None = None) -> Changed:
        """A new secret (``secret``, or a generated one; returned this once); the older ones keep
        signing for the grace window (default ``HOOKSTREAM_SECRET_GRACE``)."""
        sub, plain = self.store.rotate_secret(known(endpoint_id, "subscription"), tenant_id=self.owner(endpoint_id, tenant_id=tenant_id),
                                              secret=secret, grace_seconds=grace_seconds)
        return self._changed(sub, secret=plain)

    # ------------------------------------------------------------------ the pipeline
    def send_test(self, endpoint_id: str, *, tenant_id: str, event_type: str) -> str:
        """Send an example event of ``event_type`` to this endpoint alone, through the delivery
        path (signed, retried, logged like any other); returns its message id (the webhook-id).
        The record goes on ``deliveries`` for this endpoint only, not on the event topics, so
        the tenant's other endpoints never see it."""
        if event_type not in EVENT_TYPES:
            raise ValidationError(f"event_type: {event_type!r} is not an event type (GET /v1/event-types lists them)")
        sub = self.store.get(known(endpoint_id, "subscription"), tenant_id=tenant_id)
        if not sub.active:
            raise ConflictError(f"endpoint {sub.id} is disabled; enable it first")
        event = Event.new(event_type, tenant_id, example(event_type), correlation_id=f"test:{sub.id}")
        encode_event(event)  # the example must pass its own schema
        envelope = event.to_dict()
        record = DeliveryRecord(
            delivery_id=delivery_id(event.id, sub.id), subscription_id=sub.id, tenant_id=tenant_id, event_id=event.id,
            event_type=event.type, occurred_at=envelope["occurred_at"], event=envelope, replay_of="test",
        )
        self._requeue(self.settings, record)
        return record.delivery_id

    def recover(self, endpoint_id: str, *, tenant_id: Tenant, since: float, until: float | None = None,
                dry_run: bool = False) -> RecoveryReport:
        """Re-send this endpoint's events of a time window (``hookstream replay events`` and the
        API's recover), with the webhook-ids of the first time."""
        sub = self.get(endpoint_id, tenant_id=tenant_id)
        if not sub.active:
            raise DisabledError(f"endpoint {sub.id} is disabled; enable it first")
        # the broker's time index starts at 1970 (and reads -1 and -2 as "latest" and "earliest")
        return self._recover(self.settings, sub, since=max(since, 0.0), until=until, dry_run=dry_run)

    # ------------------------------------------------------------------ helpers
    def _changed(self, sub: Subscription, *, secret: str | None = None) -> Changed:
        published = self._publish()
        if published:
            sub = self.store.get(sub.id, tenant_id=sub.tenant_id)  # its published flag, now true
        return Changed(sub, published, secret)

    def _publish(self) -> bool:
        try:
            self._publish_fn()
            return True
        except HookstreamError as exc:
            self._on_unpublished(exc)
            return False


def _key(sub: Subscription) -> tuple[str, str]:
    return (format_time(sub.created_at), sub.id)


def public(sub: Subscription) -> dict:
    """An endpoint as the API shows it: secrets masked, header values ``***``, URL query masked."""
    return sub.to_public()


__all__ = ["ANY_TENANT", "Changed", "EndpointService", "STATUS_FILTERS", "public"]
