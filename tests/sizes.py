"""Valid events of a chosen size, for the tests of the event size limit."""

from __future__ import annotations

import random
import string

from hookstream.schemas import Event, encode_event, example


def invoice_of_size(tenant: str, min_bytes: int, **data) -> Event:
    """A valid ``invoice.created`` whose serialised envelope is at least ``min_bytes`` (up to ~600 KB:
    the schema allows 1,000 lines of at most 500 characters). The descriptions are random letters,
    so compression (lz4 on the wire) cannot shrink the record under a broker's limit."""
    base = {**example("invoice.created"), **data}
    rng = random.Random(min_bytes)
    line = {**base["lines"][0], "description": "".join(rng.choices(string.ascii_letters + string.digits, k=500))}
    one = len(encode_event(Event.new("invoice.created", tenant, {**base, "lines": [line]})))
    per_line = len(encode_event(Event.new("invoice.created", tenant, {**base, "lines": [line, line]}))) - one
    count = max(1, 1 + -(-(min_bytes - one) // per_line))
    if count > 1000:
        raise ValueError(f"{min_bytes} bytes is more than an invoice.created can hold")
    alphabet = string.ascii_letters + string.digits
    lines = [{**line, "line_number": i + 1, "description": "".join(rng.choices(alphabet, k=500))} for i in range(count)]
    event = Event.new("invoice.created", tenant, {**base, "lines": lines})
    assert len(encode_event(event)) >= min_bytes
    return event


def limit_message_bytes(settings, topic: str, limit: int | None, *, timeout: float = 30.0) -> None:
    """Set (or with ``None`` remove) the real broker's ``max.message.bytes`` on ``topic`` (full name),
    and wait until the broker reports it."""
    import time

    from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    op = AlterConfigOpType.SET if limit is not None else AlterConfigOpType.DELETE
    entry = ConfigEntry("max.message.bytes", str(limit) if limit is not None else "", incremental_operation=op)
    for future in admin.incremental_alter_configs([ConfigResource("topic", topic, incremental_configs=[entry])]).values():
        future.result(timeout)
    deadline = time.monotonic() + timeout
    while True:
        [described] = admin.describe_configs([ConfigResource("topic", topic)]).values()
        value = described.result(timeout)["max.message.bytes"].value
        if (limit is None and value == "1048588") or value == str(limit):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{topic}: max.message.bytes is still {value}")
        time.sleep(0.1)
