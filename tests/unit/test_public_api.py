"""The public names of `schemas` and `producers`: what other parts of hookstream import."""

from hookstream import producers
from hookstream import schemas


def test_schemas_exports_the_contract_the_streams_worker_uses():
    assert set(schemas.__all__) == {
        "CURRENT_VERSIONS", "ENTITY_FIELDS", "EVENT_TYPES", "Event", "EventSchema", "InvalidEventError",
        "breaking_changes", "encode_event", "entity_field", "event_from_dict", "example", "format_timestamp",
        "get_schema", "json_schema", "new_event_id", "parse_event", "validate_data", "validate_event",
    }
    assert all(hasattr(schemas, name) for name in schemas.__all__)


def test_producers_exports_publishers_helpers_and_outbox():
    assert set(producers.__all__) == {
        "AsyncPublisher", "BatchResult", "Customers", "PublishAck", "PublishError", "DomainEvents", "EventSink", "EventTooLargeError",
        "Invoices", "Outbox", "OutboxRelay", "OutboxRow", "OutboxStatus", "OutgoingRecord", "Payments", "Publisher",
        "SalesOrders", "add_to_outbox", "outbox_status", "to_json_value",
    }
    assert all(hasattr(producers, name) for name in producers.__all__)
    # renamed, with no alias (README never documented them): "Delivery" is the webhook's, not the broker's ack
    assert not hasattr(producers, "Delivery") and not hasattr(producers, "DeliveryError")


def test_invalid_event_error_is_a_validation_error_and_publish_error_a_broker_error():
    from hookstream.core.errors import BrokerError, ValidationError

    assert issubclass(schemas.InvalidEventError, ValidationError)
    assert issubclass(producers.PublishError, BrokerError)
