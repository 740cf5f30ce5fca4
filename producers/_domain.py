"""Domain helpers: one class per publishing service, one method per event it publishes.

    events = DomainEvents(publisher)            # or Outbox(session), AsyncPublisher, ...
    events.payments.received(tenant_id, payment)
    events.invoices.authorized(tenant_id, invoice, authorization_number="135...", authorized_at=now)

Each method takes the service's own record of the entity (a mapping) and keeps only the fields
the event's schema has, dropping ``None`` (absent); what the event adds (a failure code, a
reason, an authorization number) comes as keyword arguments. ``Decimal`` amounts become decimal
strings, ``datetime`` RFC 3339 UTC, ``date`` YYYY-MM-DD. The event goes to the sink's
``publish(event)``, and whatever that returns is returned (a ``PublishAck``, a coroutine for the
async publisher, the ``Event`` for the outbox).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Protocol

from hookstream.schemas import Event, format_timestamp, get_schema


class EventSink(Protocol):
    def publish(self, event: Event) -> Any: ...


def to_json_value(value: Any) -> Any:
    """Python values a service holds -> the JSON values the schemas expect."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        return format_timestamp(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {k: to_json_value(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [to_json_value(v) for v in value]
    return value


class _Service:
    def __init__(self, sink: EventSink) -> None:
        self._sink = sink

    def _emit(
        self,
        event_type: str,
        tenant_id: str,
        entity: Mapping[str, Any],
        extra: Mapping[str, Any],
        correlation_id: str | None,
        occurred_at: dt.datetime | None,
    ) -> Any:
        fields = get_schema(event_type).data["properties"]
        data = {k: to_json_value(v) for k, v in entity.items() if k in fields and v is not None}
        data.update({k: to_json_value(v) for k, v in extra.items() if v is not None})
        event = Event.new(event_type, tenant_id, data, correlation_id=correlation_id, occurred_at=occurred_at)
        return self._sink.publish(event)


class Payments(_Service):
    def received(self, tenant_id: str, payment: Mapping[str, Any], *, correlation_id: str | None = None,
                 occurred_at: dt.datetime | None = None) -> Any:
        return self._emit("payment.received", tenant_id, payment, {}, correlation_id, occurred_at)

    def failed(self, tenant_id: str, payment: Mapping[str, Any], *, failure_code: str, failure_reason: str,
               retryable: bool | None = None, correlation_id: str | None = None, occurred_at: dt.datetime | None = None) -> Any:
        extra = {"failure_code": failure_code, "failure_reason": failure_reason, "retryable": retryable}
        return self._emit("payment.failed", tenant_id, payment, extra, correlation_id, occurred_at)


class Customers(_Service):
    def created(self, tenant_id: str, customer: Mapping[str, Any], *, correlation_id: str | None = None,
                occurred_at: dt.datetime | None = None) -> Any:
        return self._emit("customer.created", tenant_id, customer, {}, correlation_id, occurred_at)

    def updated(self, tenant_id: str, customer: Mapping[str, Any], *, changed_fields: Iterable[str],
                correlation_id: str | None = None, occurred_at: dt.datetime | None = None) -> Any:
        extra = {"changed_fields": list(changed_fields)}
        return self._emit("customer.updated", tenant_id, customer, extra, correlation_id, occurred_at)


class SalesOrders(_Service):
    def created(self, tenant_id: str, order: Mapping[str, Any], *, correlation_id: str | None = None,
                occurred_at: dt.datetime | None = None) -> Any:
        return self._emit("sales_order.created", tenant_id, order, {}, correlation_id, occurred_at)

    def confirmed(self, tenant_id: str, order: Mapping[str, Any], *, expected_delivery_date: dt.date | None = None,
                  confirmed_by: str | None = None, correlation_id: str | None = None,
                  occurred_at: dt.datetime | None = None) -> Any:
        extra = {"expected_delivery_date": expected_delivery_date, "confirmed_by": confirmed_by}
        return self._emit("sales_order.confirmed", tenant_id, order, extra, correlation_id, occurred_at)

    def cancelled(self, tenant_id: str, order: Mapping[str, Any], *, reason: str, reason_code: str | None = None,
                  cancelled_by: str | None = None, correlation_id: str | None = None,
                  occurred_at: dt.datetime | None = None) -> Any:
        extra = {"reason": reason, "reason_code": reason_code, "cancelled_by": cancelled_by}
        return self._emit("sales_order.cancelled", tenant_id, order, extra, correlation_id, occurred_at)


class Invoices(_Service):
    def created(self, tenant_id: str, invoice: Mapping[str, Any], *, correlation_id: str | None = None,
                occurred_at: dt.datetime | None = None) -> Any:
        return self._emit("invoice.created", tenant_id, invoice, {}, correlation_id, occurred_at)

    def sent(self, tenant_id: str, invoice: Mapping[str, Any], *, channel: str, recipient: str | None = None,
             correlation_id: str | None = None, occurred_at: dt.datetime | None = None) -> Any:
        extra = {"channel": channel, "recipient": recipient}
        return self._emit("invoice.sent", tenant_id, invoice, extra, correlation_id, occurred_at)

    def authorized(self, tenant_id: str, invoice: Mapping[str, Any], *, authorization_number: str,
                   authorized_at: dt.datetime, authority: str | None = None, access_key: str | None = None,
                   correlation_id: str | None = None, occurred_at: dt.datetime | None = None) -> Any:
        extra = {"authorization_number": authorization_number, "authorized_at": authorized_at,
                 "authority": authority, "access_key": access_key}
        return self._emit("invoice.authorized", tenant_id, invoice, extra, correlation_id, occurred_at)

    def rejected(self, tenant_id: str, invoice: Mapping[str, Any], *, reasons: Iterable[Mapping[str, str]],
                 authority: str | None = None, correlation_id: str | None = None,
                 occurred_at: dt.datetime | None = None) -> Any:
        extra = {"reasons": [dict(r) for r in reasons], "authority": authority}
        return self._emit("invoice.rejected", tenant_id, invoice, extra, correlation_id, occurred_at)

    def cancelled(self, tenant_id: str, invoice: Mapping[str, Any], *, reason: str,
                  cancellation_number: str | None = None, cancelled_by: str | None = None,
                  correlation_id: str | None = None, occurred_at: dt.datetime | None = None) -> Any:
        extra = {"reason": reason, "cancellation_number": cancellation_number, "cancelled_by": cancelled_by}
        return self._emit("invoice.cancelled", tenant_id, invoice, extra, correlation_id, occurred_at)


class DomainEvents:
    """The four services' helpers bound to one sink."""

    def __init__(self, sink: EventSink) -> None:
        self.payments = Payments(sink)
        self.customers = Customers(sink)
        self.sales_orders = SalesOrders(sink)
        self.invoices = Invoices(sink)
