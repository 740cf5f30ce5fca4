"""Messages (one event to one endpoint: the webhook-id), their attempts, and resend; and the
attempt log as operators read it (``hookstream deliveries list|show``, across tenants when no
tenant is named)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from sqlalchemy import Engine

from hookstream.core.errors import NotFoundError, ValidationError
from hookstream.core.settings import Settings
from hookstream.core.wire import DeliveryRecord
from hookstream.delivery import attempt_log
from hookstream.delivery import messages as msgs
from hookstream.delivery.messages import Message
from hookstream.schemas import Event
from hookstream.subscriptions import SubscriptionStore
from hookstream.shell.services.endpoints import Tenant, _AnyTenant
from hookstream.shell.services.errors import ConflictError
from hookstream.shell.services.ids import known, word
from hookstream.shell.services.pages import DEFAULT_LIMIT, Page, check_limit, decode_cursor, page_of

_MIN_ID, _MAX_ID = -(2**63), 2**63 - 1  # the range of a BIGINT (PostgreSQL) and an INTEGER (SQLite)


@dataclasses.dataclass(frozen=True, kw_only=True)
class MessageFilter:
    endpoint_id: str | None = None
    event_type: str | None = None
    status: str | None = None
    since: float | None = None  # unix seconds, on the latest attempt's time
    until: float | None = None


MAX_DELIVERIES = 10_000  # the database's integers end somewhere; a screen much sooner


class MessageService:
    def __init__(
        self,
        settings: Settings,
        store: SubscriptionStore | None,  # None: reads only (no resend)
        *,
        engine: Engine | None = None,
        find_event: Callable[[Settings, Message], Event] = msgs.find_event,
        requeue: Callable[[Settings, DeliveryRecord], None] = msgs.requeue,
    ) -> None:
        self.settings = settings
        self.store = store
        self.engine = engine or store.engine
        self._find_event = find_event
        self._requeue = requeue

    def list(self, *, tenant_id: str, limit: int = DEFAULT_LIMIT, iterator: str | None = None,
             filters: MessageFilter = MessageFilter()) -> Page[Message]:
        """The tenant's messages, newest latest attempt first (a message attempted again moves
        to the front, so a listing in progress may show it twice)."""
        check_limit(limit)
        before = decode_cursor("messages", iterator)
        # a row id: a forged one past the databases' 64-bit integers would fail the query (a 500)
        if before is not None and (isinstance(before, bool) or not isinstance(before, int) or not _MIN_ID <= before <= _MAX_ID):
            raise ValidationError("iterator: not an iterator this listing returned")
        if filters.since is not None and filters.until is not None and filters.until <= filters.since:
            raise ValidationError("until: must be later than since")
        rows = msgs.list_messages(
            self.engine, tenant_id=tenant_id, endpoint_id=word(filters.endpoint_id, "endpoint_id"),
            event_type=word(filters.event_type, "event_type"),
            status=filters.status, since=filters.since, until=filters.until, before=before, limit=limit + 1,
        )
        return page_of(rows, limit, "messages", lambda m: m.cursor)

    def get(self, message_id: str, *, tenant_id: str) -> Message:
        return msgs.get_message(self.engine, known(message_id, "message"), tenant_id=tenant_id)

    def attempts(self, message_id: str, *, tenant_id: str) -> list[dict]:
        return msgs.list_attempts(self.engine, known(message_id, "message"), tenant_id=tenant_id)

    def resend(self, message_id: str, *, tenant_id: str) -> Message:
        """Send the message again to its endpoint: the same webhook-id, a fresh attempt count.
        The event is read back from its topic (``find_event``)."""
        message = msgs.get_message(self.engine, known(message_id, "message"), tenant_id=tenant_id)
        sub = self.store.get(message.endpoint_id, tenant_id=tenant_id)  # deleted: not found
        if not sub.active:
            raise ConflictError(f"endpoint {sub.id} is disabled; enable it first")
        event = self._find_event(self.settings, message)
        envelope = event.to_dict()
        record = DeliveryRecord(
            delivery_id=message.id, subscription_id=sub.id, tenant_id=tenant_id, event_id=event.id, event_type=event.type,
            occurred_at=envelope["occurred_at"], event=envelope, replay_of="resend",
        )
        self._requeue(self.settings, record)
        return message

    # ------------------------------------------------------------------ the attempt log (operators)
    def deliveries(self, *, tenant_id: Tenant, endpoint_id: str | None = None, status: str | None = None,
                   limit: int = 50, flag: str = "") -> list[dict]:
        """One row per delivery (its latest attempt, the attempt count), newest first; ``ANY_TENANT``:
        every tenant's. ``flag`` prefixes the names in errors (the CLI's ``--status``)."""
        if status is not None and status not in attempt_log.STATUSES:
            raise ValidationError(f"{flag}status: {status!r} is not one of {', '.join(attempt_log.STATUSES)}")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_DELIVERIES:
            raise ValidationError(f"{flag}limit must be from 1 to {MAX_DELIVERIES} (got {limit})")
        if isinstance(tenant_id, _AnyTenant):
            return attempt_log.list_deliveries_all_tenants(self.engine, subscription_id=endpoint_id, status=status, limit=limit)
        return attempt_log.list_deliveries(self.engine, tenant_id=tenant_id, subscription_id=endpoint_id, status=status, limit=limit)

    def delivery_attempts(self, delivery_id: str, *, tenant_id: Tenant) -> list[dict]:
        """Every attempt of one delivery, as the attempt log has it; ``NotFoundError`` when none."""
        if isinstance(tenant_id, _AnyTenant):
            rows = attempt_log.attempts_of_any_tenant(self.engine, delivery_id)
        else:
            rows = attempt_log.attempts_of(self.engine, delivery_id, tenant_id=tenant_id)
        if not rows:
            whose = "" if isinstance(tenant_id, _AnyTenant) else f" for tenant {tenant_id}"
            raise NotFoundError(f"no attempts recorded for delivery {delivery_id!r}{whose}")
        return rows
