"""The twelve event types: valid JSON Schemas, valid examples, the fields an ERP would send."""

import pytest
from jsonschema import Draft202012Validator

from hookstream.core.topics import event_topic_for
from hookstream.schemas import (
    ENTITY_FIELDS, EVENT_TYPES, Event, InvalidEventError, encode_event, entity_field, example, get_schema, json_schema,
    validate_data,
)

TWELVE = {
    "payment.received", "payment.failed", "customer.created", "customer.updated", "sales_order.created",
    "sales_order.confirmed", "sales_order.cancelled", "invoice.created", "invoice.sent", "invoice.authorized",
    "invoice.rejected", "invoice.cancelled",
}


def test_there_are_exactly_the_twelve_event_types():
    assert set(EVENT_TYPES) == TWELVE
    assert len(EVENT_TYPES) == 12


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_schema_document_is_valid_json_schema_2020_12(event_type):
    Draft202012Validator.check_schema(json_schema(event_type))


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_example_data_is_valid_for_its_type(event_type):
    validate_data(event_type, example(event_type))
    # and the reference implementation agrees with the fast validator
    doc = Event.new(event_type, "acme", example(event_type)).to_dict()
    assert list(Draft202012Validator(json_schema(event_type)).iter_errors(doc)) == []


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_type_requires_its_entity_id(event_type):
    field = entity_field(event_type)
    assert field == ENTITY_FIELDS[event_type.split(".")[0]]
    assert field in get_schema(event_type).data["required"]
    data = example(event_type)
    del data[field]
    with pytest.raises(InvalidEventError) as info:
        validate_data(event_type, data)
    assert info.value.field == f"data.{field}"


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_type_has_a_topic_of_its_aggregate(event_type):
    assert event_topic_for(event_type) == "events." + event_type.split(".")[0]


@pytest.mark.parametrize(
    "event_type, field",
    [
        ("payment.received", "amount"), ("payment.received", "currency"), ("payment.received", "customer_id"),
        ("payment.failed", "failure_code"), ("payment.failed", "failure_reason"),
        ("customer.created", "name"), ("customer.updated", "changed_fields"),
        ("sales_order.created", "lines"), ("sales_order.created", "total"), ("sales_order.created", "tax_total"),
        ("sales_order.cancelled", "reason"),
        ("invoice.created", "invoice_number"), ("invoice.created", "due_date"), ("invoice.created", "lines"),
        ("invoice.authorized", "authorization_number"), ("invoice.authorized", "authorized_at"),
        ("invoice.rejected", "reasons"), ("invoice.cancelled", "reason"), ("invoice.sent", "channel"),
    ],
)
def test_business_fields_are_required(event_type, field):
    data = example(event_type)
    del data[field]
    with pytest.raises(InvalidEventError, match=f"{event_type}: data.{field} is required"):
        validate_data(event_type, data)


@pytest.mark.parametrize("amount", [12.5, "12,50", "-3.00", "1.23456", "", "1e3"])
def test_money_is_a_non_negative_decimal_string(amount):
    data = {**example("payment.received"), "amount": amount}
    with pytest.raises(InvalidEventError, match="data.amount must be a non-negative decimal amount as a string"):
        validate_data("payment.received", data)


@pytest.mark.parametrize("currency", ["eur", "EURO", "€", 978])
def test_currency_is_an_iso_4217_code(currency):
    with pytest.raises(InvalidEventError, match="data.currency must be an ISO 4217 currency code"):
        validate_data("payment.received", {**example("payment.received"), "currency": currency})


def test_order_lines_are_checked_line_by_line():
    data = example("sales_order.created")
    data["lines"][1]["unit_price"] = "80,00"
    with pytest.raises(InvalidEventError) as info:
        validate_data("sales_order.created", data)
    assert info.value.field == "data.lines[1].unit_price"


def test_an_order_needs_at_least_one_line():
    with pytest.raises(InvalidEventError, match="data.lines must have at least 1 item"):
        validate_data("sales_order.created", {**example("sales_order.created"), "lines": []})


def test_a_rejected_invoice_needs_at_least_one_reason_with_code_and_message():
    with pytest.raises(InvalidEventError, match="data.reasons must have at least 1 item"):
        validate_data("invoice.rejected", {**example("invoice.rejected"), "reasons": []})
    with pytest.raises(InvalidEventError, match=r"data.reasons\[0\].message is required"):
        validate_data("invoice.rejected", {**example("invoice.rejected"), "reasons": [{"code": "539"}]})


def test_authorization_date_is_an_rfc_3339_timestamp():
    with pytest.raises(InvalidEventError, match="data.authorized_at must be an RFC 3339 timestamp"):
        validate_data("invoice.authorized", {**example("invoice.authorized"), "authorized_at": "28/11/2026"})


def test_example_is_a_fresh_copy_each_time():
    first = example("sales_order.created")
    first["lines"].clear()
    assert example("sales_order.created")["lines"]


def test_unknown_versions_are_refused():
    with pytest.raises(InvalidEventError, match="unsupported schema_version 2"):
        get_schema("invoice.sent", 2)
    event = Event.new("invoice.sent", "acme", example("invoice.sent"), schema_version=2)
    with pytest.raises(InvalidEventError, match="unsupported schema_version 2"):
        encode_event(event)
