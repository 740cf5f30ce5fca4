"""Domain helpers: each service method makes its event type from the service's own records."""

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from hookstream.producers import DomainEvents
from hookstream.schemas import InvalidEventError, encode_event, example


class ListSink:
    def __init__(self):
        self.events = []

    def publish(self, event):
        self.events.append(event)
        return f"sent {event.id}"


@pytest.fixture
def sink():
    return ListSink()


@pytest.fixture
def events(sink):
    return DomainEvents(sink)


def test_every_helper_makes_a_valid_event_of_its_type(events, sink):
    payment, customer = example("payment.received"), example("customer.created")
    order, invoice = example("sales_order.created"), example("invoice.created")
    now = datetime(2026, 11, 28, 14, 3, 11, tzinfo=timezone.utc)
    events.payments.received("acme", payment)
    events.payments.failed("acme", payment, failure_code="card_declined", failure_reason="Declined by issuer", retryable=False)
    events.customers.created("acme", customer)
    events.customers.updated("acme", customer, changed_fields=["email"])
    events.sales_orders.created("acme", order)
    events.sales_orders.confirmed("acme", order, expected_delivery_date=date(2026, 12, 4))
    events.sales_orders.cancelled("acme", order, reason="Customer changed their mind", reason_code="customer_request")
    events.invoices.created("acme", invoice)
    events.invoices.sent("acme", invoice, channel="email", recipient="ap@example.com")
    events.invoices.authorized("acme", invoice, authorization_number="135260012345678", authorized_at=now)
    events.invoices.rejected("acme", invoice, reasons=[{"code": "539", "message": "Duplicate number"}])
    events.invoices.cancelled("acme", invoice, reason="Wrong customer")
    assert [e.type for e in sink.events] == [
        "payment.received", "payment.failed", "customer.created", "customer.updated", "sales_order.created",
        "sales_order.confirmed", "sales_order.cancelled", "invoice.created", "invoice.sent", "invoice.authorized",
        "invoice.rejected", "invoice.cancelled",
    ]
    for event in sink.events:
        encode_event(event)  # raises if invalid
    assert sink.events[9].data["authorized_at"] == "2026-11-28T14:03:11.000000Z"
    assert sink.events[5].data["expected_delivery_date"] == "2026-12-04"


def test_helper_returns_what_the_sink_returns(events):
    assert events.payments.received("acme", example("payment.received")).startswith("sent ")


def test_helper_keeps_only_the_fields_of_the_event(events, sink):
    order = {**example("sales_order.created"), "internal_margin": "12.5", "warehouse": "B"}
    events.sales_orders.confirmed("acme", order)
    assert set(sink.events[0].data) == {"order_id", "order_number", "customer_id", "currency", "total"}


def test_helper_turns_decimals_into_decimal_strings_and_drops_none(events, sink):
    payment = {**example("payment.received"), "amount": Decimal("1234.50"), "invoice_id": None}
    events.payments.received("acme", payment, correlation_id="req-42")
    event = sink.events[0]
    assert event.data["amount"] == "1234.50"
    assert "invoice_id" not in event.data
    assert event.correlation_id == "req-42"
    encode_event(event)


def test_helper_event_is_checked_when_published(events, sink):
    payment = {k: v for k, v in example("payment.received").items() if k != "currency"}
    events.payments.received("acme", payment)
    with pytest.raises(InvalidEventError, match="payment.received: data.currency is required"):
        encode_event(sink.events[0])
