"""producers: how services publish events, directly or through a transactional outbox.

    with Publisher(settings) as publisher:                 # or: async with AsyncPublisher(settings)
        events = DomainEvents(publisher)
        events.payments.received(tenant_id, payment)      # validated, keyed by payment_id, acked

    with session.begin():                                  # the outbox: same transaction as the change
        session.add(order)
        DomainEvents(Outbox(session)).sales_orders.created(tenant_id, order_record)

and ``hookstream outbox relay`` publishes what the outbox holds.
"""

from hookstream.producers._async import AsyncPublisher
from hookstream.producers._domain import Customers, DomainEvents, EventSink, Invoices, Payments, SalesOrders, to_json_value
from hookstream.producers._errors import EventTooLargeError, PublishError
from hookstream.producers._outbox import (
    BatchResult, Outbox, OutboxRelay, OutboxRow, OutboxStatus, add_to_outbox, outbox_status,
)
from hookstream.producers._publisher import OutgoingRecord, PublishAck, Publisher

__all__ = [
    "AsyncPublisher",
    "BatchResult",
    "Customers",
    "DomainEvents",
    "EventSink",
    "EventTooLargeError",
    "Invoices",
    "Outbox",
    "OutboxRelay",
    "OutboxRow",
    "OutboxStatus",
    "OutgoingRecord",
    "Payments",
    "PublishAck",
    "PublishError",
    "Publisher",
    "SalesOrders",
    "add_to_outbox",
    "outbox_status",
    "to_json_value",
]
