"""Publishing to the real broker: every type round-trips, invalid events never leave, per-entity order holds."""

import collections

import pytest

from hookstream.core.topics import EVENT_TOPICS, ensure_topics
from hookstream.producers import AsyncPublisher, PublishError, DomainEvents, Publisher
from hookstream.schemas import EVENT_TYPES, Event, InvalidEventError, entity_field, example, parse_event
from tests.integration.consume import TopicReader

pytestmark = pytest.mark.kafka


@pytest.fixture
def topics(settings):
    ensure_topics(settings)
    return settings


def test_every_type_round_trips_through_the_broker_with_its_schema(topics):
    settings = topics
    sent = {}
    with Publisher(settings) as publisher:
        for event_type in EVENT_TYPES:
            event = Event.new(event_type, "tenant-a", example(event_type), correlation_id=f"req-{event_type}")
            delivery = publisher.publish(event)
            sent[event.id] = (event, delivery)
    with TopicReader(settings, EVENT_TOPICS.values()) as reader:
        messages = reader.read_until(lambda m: len(m) >= len(sent))
    assert len(messages) == 12
    for msg in messages:
        event = parse_event(msg.value())  # validates against the schema
        original, delivery = sent[event.id]
        assert event == original
        assert msg.topic() == settings.topic("events." + event.type.split(".")[0])
        assert msg.key() == event.data[entity_field(event.type)].encode()
        assert (msg.partition(), msg.offset()) == (delivery.partition, delivery.offset)


def test_invalid_events_are_refused_naming_the_field_and_never_reach_the_topic(topics):
    settings = topics
    with Publisher(settings) as publisher:
        missing = {k: v for k, v in example("invoice.authorized").items() if k != "authorization_number"}
        with pytest.raises(InvalidEventError, match="invoice.authorized: data.authorization_number is required"):
            publisher.publish(Event.new("invoice.authorized", "tenant-a", missing))
        with pytest.raises(InvalidEventError, match="invoice.sent: tenant_id must not be empty"):
            publisher.publish(Event.new("invoice.sent", "", example("invoice.sent")))
        with pytest.raises(InvalidEventError, match=r"invoice.created: data.lines\[0\].quantity must be"):
            bad_lines = example("invoice.created")
            bad_lines["lines"][0]["quantity"] = 4
            publisher.publish(Event.new("invoice.created", "tenant-a", bad_lines))
        marker = publisher.publish(Event.new("invoice.sent", "tenant-a", example("invoice.sent")))
    with TopicReader(settings, ["events.invoice"]) as reader:
        messages = reader.read_until(lambda m: False, timeout=10, idle=3)
    assert [parse_event(m.value()).id for m in messages] == [marker.event_id]


def test_order_per_entity_holds_across_many_events(topics):
    settings = topics
    published = collections.defaultdict(list)
    with Publisher(settings) as publisher:
        events = DomainEvents(publisher)
        for round_ in range(150):
            for n in range(40):
                customer = {**example("customer.created"), "customer_id": f"cus_{n}", "name": f"Customer {n} r{round_}"}
                event = Event.new("customer.updated", "tenant-a", {**customer, "changed_fields": ["name"]})
                publisher.send(event)
                published[event.data["customer_id"]].append(event.id)
        events.customers.created("tenant-a", example("customer.created"))  # and one acked through a helper
    total = sum(map(len, published.values())) + 1
    with TopicReader(settings, ["events.customer"]) as reader:
        messages = reader.read_until(lambda m: len(m) >= total, timeout=60)
    received = collections.defaultdict(list)
    partitions = set()
    for msg in messages:
        event = parse_event(msg.value())
        if event.type == "customer.updated":
            received[event.data["customer_id"]].append(event.id)
            partitions.add(msg.partition())
    assert received == published
    assert len(partitions) > 1  # the keys really were spread over partitions


async def test_async_publisher_round_trips(topics):
    settings = topics
    async with AsyncPublisher(settings) as publisher:
        one = await publisher.publish(Event.new("payment.received", "tenant-a", example("payment.received")))
        many = await publisher.publish_many(
            [Event.new("payment.failed", "tenant-a", {**example("payment.failed"), "payment_id": f"pay_{i}"}) for i in range(50)]
        )
    with TopicReader(settings, ["events.payment"]) as reader:
        messages = reader.read_until(lambda m: len(m) >= 51)
    assert sorted(parse_event(m.value()).id for m in messages) == sorted([one.event_id] + [d.event_id for d in many])
    assert all(d.offset is not None for d in many)


def test_a_failed_delivery_reaches_the_caller(settings):
    # no topics exist under this test's prefix and the broker does not create them
    with Publisher(settings, delivery_timeout=3) as publisher:
        with pytest.raises(PublishError) as info:
            publisher.publish(Event.new("invoice.sent", "tenant-a", example("invoice.sent")), timeout=20)
    assert info.value.code in {"_MSG_TIMED_OUT", "_UNKNOWN_TOPIC", "UNKNOWN_TOPIC_OR_PART"}
    assert settings.topic("events.invoice") in str(info.value)
