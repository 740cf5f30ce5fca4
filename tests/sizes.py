"""Valid events of a chosen size, for the tests of the event size limit."""

from __future__ import annotations

from schemas import Event, encode_event, example


def invoice_of_size(tenant: str, min_bytes: int, **data) -> Event:
    """A valid ``invoice.created`` whose serialised envelope is at least ``min_bytes`` (up to ~600 KB:
    the schema allows 1,000 lines of at most 500 characters)."""
    base = {**example("invoice.created"), **data}
    line = {**base["lines"][0], "description": "x" * 500}
    one = len(encode_event(Event.new("invoice.created", tenant, {**base, "lines": [line]})))
    per_line = len(encode_event(Event.new("invoice.created", tenant, {**base, "lines": [line, line]}))) - one
    count = max(1, 1 + -(-(min_bytes - one) // per_line))
    if count > 1000:
        raise ValueError(f"{min_bytes} bytes is more than an invoice.created can hold")
    lines = [{**line, "line_number": i + 1} for i in range(count)]
    event = Event.new("invoice.created", tenant, {**base, "lines": lines})
    assert len(encode_event(event)) >= min_bytes
    return event
