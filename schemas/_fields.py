"""Building blocks of the event schemas: the JSON Schema of an id, an amount, a date, an address.

Every block carries a ``description`` that reads as the end of "must be ...": validation errors
quote it, so a refused event says what was expected ("data.amount must be a decimal amount as a
string ..."). Money is a decimal *string* with an ISO 4217 currency next to it, never a float.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

_DATE = r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
_TIME = r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]{1,9})?"
_OFFSET = r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"

ID: Schema = {
    "type": "string",
    "minLength": 1,
    "maxLength": 128,
    "pattern": r"^[^\s]+$",
    "description": "an identifier of 1-128 characters without spaces",
}
NUMBER: Schema = {  # invoice and order numbers as printed on documents: may contain spaces
    "type": "string",
    "minLength": 1,
    "maxLength": 64,
    "description": "a document number of 1-64 characters",
}
MONEY: Schema = {
    "type": "string",
    "pattern": r"^(0|[1-9][0-9]{0,17})(\.[0-9]{1,4})?$",
    "description": 'a non-negative decimal amount as a string with at most 4 decimals, e.g. "1250.00"',
}
UNIT_PRICE: Schema = {
    "type": "string",
    "pattern": r"^(0|[1-9][0-9]{0,17})(\.[0-9]{1,6})?$",
    "description": 'a non-negative decimal price as a string with at most 6 decimals, e.g. "19.99"',
}
QUANTITY: Schema = {
    "type": "string",
    "pattern": r"^(0|[1-9][0-9]{0,11})(\.[0-9]{1,6})?$",
    "description": 'a non-negative decimal quantity as a string, e.g. "2" or "1.5"',
}
PERCENT: Schema = {
    "type": "string",
    "pattern": r"^(0|[1-9][0-9]{0,2})(\.[0-9]{1,4})?$",
    "description": 'a percentage as a decimal string, e.g. "19" or "7.5"',
}
CURRENCY: Schema = {
    "type": "string",
    "pattern": r"^[A-Z]{3}$",
    "description": 'an ISO 4217 currency code of three capital letters, e.g. "EUR"',
}
COUNTRY: Schema = {
    "type": "string",
    "pattern": r"^[A-Z]{2}$",
    "description": 'an ISO 3166-1 alpha-2 country code, e.g. "DE"',
}
DATE: Schema = {
    "type": "string",
    "format": "date",
    "pattern": f"^{_DATE}$",
    "description": 'a calendar date as YYYY-MM-DD, e.g. "2026-11-30"',
}
DATETIME: Schema = {
    "type": "string",
    "format": "date-time",
    "pattern": f"^{_DATE}T{_TIME}{_OFFSET}$",
    "description": 'an RFC 3339 timestamp with a UTC offset, e.g. "2026-11-28T14:03:00Z"',
}
EMAIL: Schema = {
    "type": "string",
    "format": "email",
    "maxLength": 254,
    "pattern": r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
    "description": "an email address",
}
PHONE: Schema = {
    "type": "string",
    "pattern": r"^\+[1-9][0-9]{6,14}$",
    "description": 'a phone number in E.164 form, e.g. "+4930123456"',
}
CODE: Schema = {
    "type": "string",
    "pattern": r"^[a-z][a-z0-9_]{0,63}$",
    "description": 'a lower-case code of letters, digits and underscores, e.g. "card_declined"',
}


def text(max_length: int, description: str = "") -> Schema:
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": max_length,
        "description": description or f"a non-empty text of at most {max_length} characters",
    }


def enum(*values: str) -> Schema:
    return {"type": "string", "enum": list(values), "description": "one of " + ", ".join(values)}


def obj(required: dict[str, Schema], optional: dict[str, Schema] | None = None, *, description: str = "") -> Schema:
    """An object with exactly these fields: unknown fields are refused (they are typos more often than not)."""
    schema: Schema = {
        "type": "object",
        "required": list(required),
        "properties": {**required, **(optional or {})},
        "additionalProperties": False,
    }
    if description:
        schema["description"] = description
    return schema


def array_of(item: Schema, *, min_items: int = 0, max_items: int = 1000, description: str = "") -> Schema:
    schema: Schema = {"type": "array", "items": item, "maxItems": max_items}
    if min_items:
        schema["minItems"] = min_items
    if description:
        schema["description"] = description
    return schema


ADDRESS = obj(
    {"line1": text(200), "city": text(100), "country": COUNTRY},
    {"line2": text(200), "postal_code": text(20), "region": text(100)},
    description="a postal address",
)

LINE = obj(
    {
        "line_number": {"type": "integer", "minimum": 1, "description": "a line number from 1"},
        "description": text(500),
        "quantity": QUANTITY,
        "unit_price": UNIT_PRICE,
        "line_total": MONEY,
    },
    {"sku": ID, "unit": text(16), "discount": MONEY, "tax_rate": PERCENT, "tax_amount": MONEY},
    description="a document line: quantity x unit price, less discount; line_total excludes tax",
)
