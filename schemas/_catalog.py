"""The twelve event types: what each one's ``data`` holds, version by version, with an example.

An event type is ``<aggregate>.<verb>``; its aggregate decides the topic (``events.<aggregate>``)
and the field that holds the entity id, which becomes the Kafka key so that one entity's events
stay in order. A published version is frozen: later changes to it may only add optional fields
(``schemas/published/`` keeps each published version, and a test refuses breaking changes).
A breaking change is a new version next to the old one.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from hookstream.schemas._errors import InvalidEventError
from hookstream.schemas._fields import (
    ADDRESS, CODE, CURRENCY, DATE, DATETIME, EMAIL, ID, LINE, MONEY, NUMBER, PHONE, Schema, array_of, enum, obj, text,
)

ENTITY_FIELDS = {
    "payment": "payment_id",
    "customer": "customer_id",
    "sales_order": "order_id",
    "invoice": "invoice_id",
}

TENANT_ID: Schema = {
    "type": "string",
    "minLength": 1,
    "maxLength": 128,
    "pattern": r"^[^\s\x00-\x1f\x7f]+$",
    "description": "a tenant id of 1-128 characters without spaces or control characters",
}
EVENT_ID: Schema = {
    "type": "string",
    "minLength": 1,
    "maxLength": 128,
    "pattern": r"^[^\s]+$",
    "description": "a unique event id (UUIDv7 from hookstream's producers)",
}


@dataclasses.dataclass(frozen=True)
class EventSchema:
    """One version of one event type."""

    type: str
    version: int
    description: str
    data: Schema  # JSON Schema of the event's ``data``
    example_data: dict[str, Any]

    @property
    def aggregate(self) -> str:
        return self.type.rsplit(".", 1)[0]

    @property
    def entity_field(self) -> str:
        return ENTITY_FIELDS[self.aggregate]

    def document(self) -> Schema:
        """The JSON Schema (2020-12) of a whole event of this type and version: envelope and data."""
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"urn:hookstream:event:{self.type}:v{self.version}",
            "title": f"{self.type} v{self.version}",
            "description": self.description,
            "type": "object",
            "required": ["id", "type", "tenant_id", "occurred_at", "schema_version", "data"],
            "properties": {
                "id": EVENT_ID,
                "type": {"const": self.type},
                "tenant_id": TENANT_ID,
                "occurred_at": DATETIME,
                "schema_version": {"const": self.version},
                "correlation_id": {
                    "type": ["string", "null"],
                    "maxLength": 128,
                    "description": "an id tying this event to the request or process that caused it",
                },
                "data": self.data,
            },
        }


# ----------------------------------------------------------------------------- shared parts
_CUSTOMER_FIELDS: dict[str, Schema] = {
    "email": EMAIL,
    "phone": PHONE,
    "tax_id": text(32, "a tax or VAT id of at most 32 characters"),
    "billing_address": ADDRESS,
    "shipping_address": ADDRESS,
    "preferred_currency": CURRENCY,
    "payment_terms_days": {"type": "integer", "minimum": 0, "maximum": 365, "description": "days from 0 to 365"},
    "external_ref": text(128),
}
_PAYMENT_METHOD = enum("card", "bank_transfer", "direct_debit", "cash", "cheque", "wallet", "other")
_TOTALS = {"subtotal": MONEY, "tax_total": MONEY, "total": MONEY}

_ORDER_LINES = [
    {"line_number": 1, "sku": "WID-100", "description": "Steel widget, 100 mm", "quantity": "4", "unit": "pcs",
     "unit_price": "12.50", "tax_rate": "19", "tax_amount": "9.50", "line_total": "50.00"},
    {"line_number": 2, "sku": "SRV-INST", "description": "Installation", "quantity": "1.5", "unit": "h",
     "unit_price": "80.00", "discount": "20.00", "tax_rate": "19", "tax_amount": "19.00", "line_total": "100.00"},
]
_ADDRESS_EXAMPLE = {"line1": "Friedrichstrasse 120", "postal_code": "10117", "city": "Berlin", "country": "DE"}


def _v1(type_: str, description: str, data: Schema, example: dict[str, Any]) -> EventSchema:
    return EventSchema(type_, 1, description, data, example)


_SCHEMAS = [
    _v1(
        "payment.received",
        "A payment from a customer arrived (card capture, bank transfer, ...).",
        obj(
            {"payment_id": ID, "customer_id": ID, "amount": MONEY, "currency": CURRENCY, "method": _PAYMENT_METHOD},
            {"invoice_id": ID, "order_id": ID, "reference": text(140, "the bank or processor reference, at most 140 characters"),
             "value_date": DATE},
        ),
        {"payment_id": "pay_01JD8Z6M3Q", "customer_id": "cus_4711", "invoice_id": "inv_2026_000123",
         "amount": "178.50", "currency": "EUR", "method": "bank_transfer", "reference": "RF18 5390 0754 7034",
         "value_date": "2026-11-28"},
    ),
    _v1(
        "payment.failed",
        "A payment attempt failed; failure_code is machine-readable, failure_reason is for people.",
        obj(
            {"payment_id": ID, "customer_id": ID, "amount": MONEY, "currency": CURRENCY, "method": _PAYMENT_METHOD,
             "failure_code": CODE, "failure_reason": text(500)},
            {"invoice_id": ID, "order_id": ID, "retryable": {"type": "boolean", "description": "true or false"},
             "processor_code": text(32, "the processor's own code, at most 32 characters")},
        ),
        {"payment_id": "pay_01JD8Z9K2B", "customer_id": "cus_4711", "invoice_id": "inv_2026_000123",
         "amount": "178.50", "currency": "EUR", "method": "card", "failure_code": "insufficient_funds",
         "failure_reason": "The card issuer declined the charge: insufficient funds.", "retryable": True,
         "processor_code": "51"},
    ),
    _v1(
        "customer.created",
        "A customer account was created.",
        obj({"customer_id": ID, "name": text(200), "kind": enum("company", "individual")}, _CUSTOMER_FIELDS),
        {"customer_id": "cus_4711", "name": "Kranich Maschinenbau GmbH", "kind": "company",
         "email": "accounts@kranich.example", "phone": "+4930123456", "tax_id": "DE123456789",
         "billing_address": _ADDRESS_EXAMPLE, "preferred_currency": "EUR", "payment_terms_days": 30},
    ),
    _v1(
        "customer.updated",
        "A customer account changed: the customer as it is now, and which fields changed.",
        obj(
            {"customer_id": ID, "name": text(200), "kind": enum("company", "individual"),
             "changed_fields": {
                 **array_of(enum("name", "kind", *_CUSTOMER_FIELDS), min_items=1, max_items=len(_CUSTOMER_FIELDS) + 2),
                 "uniqueItems": True,
                 "description": "a non-empty list of the customer fields that changed",
             }},
            _CUSTOMER_FIELDS,
        ),
        {"customer_id": "cus_4711", "name": "Kranich Maschinenbau GmbH", "kind": "company",
         "email": "billing@kranich.example", "payment_terms_days": 45, "changed_fields": ["email", "payment_terms_days"]},
    ),
    _v1(
        "sales_order.created",
        "A sales order was entered: its lines and totals (line totals exclude tax; total = subtotal + tax_total).",
        obj(
            {"order_id": ID, "order_number": NUMBER, "customer_id": ID, "currency": CURRENCY,
             "lines": array_of(LINE, min_items=1, description="at least one order line"), **_TOTALS},
            {"discount_total": MONEY, "requested_delivery_date": DATE, "shipping_address": ADDRESS,
             "customer_reference": text(64, "the customer's purchase order number, at most 64 characters")},
        ),
        {"order_id": "so_8812", "order_number": "SO-2026-08812", "customer_id": "cus_4711", "currency": "EUR",
         "lines": _ORDER_LINES, "subtotal": "150.00", "discount_total": "20.00", "tax_total": "28.50", "total": "178.50",
         "requested_delivery_date": "2026-12-05", "shipping_address": _ADDRESS_EXAMPLE, "customer_reference": "PO-55102"},
    ),
    _v1(
        "sales_order.confirmed",
        "A sales order was confirmed to the customer.",
        obj(
            {"order_id": ID, "order_number": NUMBER, "customer_id": ID, "currency": CURRENCY, "total": MONEY},
            {"expected_delivery_date": DATE, "confirmed_by": ID},
        ),
        {"order_id": "so_8812", "order_number": "SO-2026-08812", "customer_id": "cus_4711", "currency": "EUR",
         "total": "178.50", "expected_delivery_date": "2026-12-04", "confirmed_by": "usr_anna"},
    ),
    _v1(
        "sales_order.cancelled",
        "A sales order was cancelled, with the reason.",
        obj(
            {"order_id": ID, "order_number": NUMBER, "customer_id": ID, "reason": text(500)},
            {"reason_code": enum("customer_request", "out_of_stock", "payment_failed", "fraud_suspected", "duplicate", "other"),
             "cancelled_by": ID},
        ),
        {"order_id": "so_8812", "order_number": "SO-2026-08812", "customer_id": "cus_4711",
         "reason": "Customer ordered the 120 mm widget instead.", "reason_code": "customer_request", "cancelled_by": "usr_anna"},
    ),
    _v1(
        "invoice.created",
        "An invoice was issued (not yet sent or authorized): its lines and totals.",
        obj(
            {"invoice_id": ID, "invoice_number": NUMBER, "customer_id": ID, "issue_date": DATE, "due_date": DATE,
             "currency": CURRENCY, "lines": array_of(LINE, min_items=1, description="at least one invoice line"), **_TOTALS},
            {"order_id": ID, "discount_total": MONEY, "billing_address": ADDRESS},
        ),
        {"invoice_id": "inv_2026_000123", "invoice_number": "2026-000123", "customer_id": "cus_4711", "order_id": "so_8812",
         "issue_date": "2026-11-28", "due_date": "2026-12-28", "currency": "EUR", "lines": _ORDER_LINES,
         "subtotal": "150.00", "discount_total": "20.00", "tax_total": "28.50", "total": "178.50",
         "billing_address": _ADDRESS_EXAMPLE},
    ),
    _v1(
        "invoice.sent",
        "An invoice was sent to the customer.",
        obj(
            {"invoice_id": ID, "invoice_number": NUMBER, "customer_id": ID, "channel": enum("email", "post", "portal", "edi", "e_invoicing_network")},
            {"recipient": text(254, "the address it was sent to, at most 254 characters")},
        ),
        {"invoice_id": "inv_2026_000123", "invoice_number": "2026-000123", "customer_id": "cus_4711",
         "channel": "email", "recipient": "accounts@kranich.example"},
    ),
    _v1(
        "invoice.authorized",
        "The tax authority authorized an (electronic) invoice: its authorization number and date.",
        obj(
            {"invoice_id": ID, "invoice_number": NUMBER, "customer_id": ID,
             "authorization_number": text(64, "the authority's authorization number, at most 64 characters"),
             "authorized_at": DATETIME},
            {"authority": text(64, "the authorizing authority, at most 64 characters"),
             "access_key": text(64, "the document's access or verification key, at most 64 characters")},
        ),
        {"invoice_id": "inv_2026_000123", "invoice_number": "2026-000123", "customer_id": "cus_4711",
         "authorization_number": "135260012345678", "authorized_at": "2026-11-28T14:03:11Z", "authority": "SEFAZ-SP",
         "access_key": "35261112345678000190550010000001231000001234"},
    ),
    _v1(
        "invoice.rejected",
        "The tax authority rejected an (electronic) invoice: one entry per reason.",
        obj(
            {"invoice_id": ID, "invoice_number": NUMBER, "customer_id": ID,
             "reasons": array_of(
                 obj({"code": text(32, "the authority's reason code"), "message": text(500)}, {"field": text(128)}),
                 min_items=1, max_items=100, description="at least one rejection reason",
             )},
            {"authority": text(64, "the rejecting authority, at most 64 characters")},
        ),
        {"invoice_id": "inv_2026_000123", "invoice_number": "2026-000123", "customer_id": "cus_4711",
         "reasons": [{"code": "539", "message": "Duplicate invoice number with a different access key.", "field": "invoice_number"}],
         "authority": "SEFAZ-SP"},
    ),
    _v1(
        "invoice.cancelled",
        "An invoice was cancelled, with the reason (and the authority's cancellation number when it has one).",
        obj(
            {"invoice_id": ID, "invoice_number": NUMBER, "customer_id": ID, "reason": text(500)},
            {"cancellation_number": text(64, "the authority's cancellation protocol number, at most 64 characters"),
             "cancelled_by": ID},
        ),
        {"invoice_id": "inv_2026_000123", "invoice_number": "2026-000123", "customer_id": "cus_4711",
         "reason": "Issued to the wrong legal entity.", "cancellation_number": "135260012399999"},
    ),
]

SCHEMAS: dict[tuple[str, int], EventSchema] = {(s.type, s.version): s for s in _SCHEMAS}
EVENT_TYPES: tuple[str, ...] = tuple(dict.fromkeys(s.type for s in _SCHEMAS))
CURRENT_VERSIONS: dict[str, int] = {t: max(v for (tt, v) in SCHEMAS if tt == t) for t in EVENT_TYPES}


def unknown_type(event_type: object) -> InvalidEventError:
    shown = repr(event_type) if not isinstance(event_type, str) else repr(event_type[:60])
    return InvalidEventError(
        f"unknown event type {shown} (known: see `hookstream schemas list`)", code="unknown_type", field="type"
    )


def get_schema(event_type: str, version: int | None = None) -> EventSchema:
    """One version (default: the current one) of an event type; ``InvalidEventError`` if there is none."""
    if event_type not in CURRENT_VERSIONS:
        raise unknown_type(event_type)
    version = CURRENT_VERSIONS[event_type] if version is None else version
    try:
        return SCHEMAS[(event_type, version)]
    except KeyError:
        known = ", ".join(str(v) for (t, v) in SCHEMAS if t == event_type)
        raise InvalidEventError(
            f"{event_type}: unsupported schema_version {version!r} (known: {known})",
            code="unknown_version", event_type=event_type, field="schema_version",
        ) from None


def json_schema(event_type: str, version: int | None = None) -> Schema:
    """The JSON Schema document of a whole event of this type (a fresh copy)."""
    return copy.deepcopy(get_schema(event_type, version).document())


def example(event_type: str) -> dict[str, Any]:
    """A valid example ``data`` object for the current version of ``event_type`` (a fresh copy)."""
    return copy.deepcopy(get_schema(event_type).example_data)


def entity_field(event_type: str) -> str:
    """The ``data`` field holding the entity id (the Kafka key): payment_id, customer_id, order_id or invoice_id."""
    return get_schema(event_type).entity_field
