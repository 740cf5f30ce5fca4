"""Publisher: validates before sending, routes by aggregate and entity, never drops a failure silently."""


import pytest
from confluent_kafka import KafkaError

from hookstream.core.settings import Settings
from hookstream.producers import PublishError, Publisher
from hookstream.schemas import Event, InvalidEventError, example, parse_event
from tests.fakes import FakeProducer


@pytest.fixture
def unit_settings(tmp_path):
    return Settings(kafka_bootstrap="127.0.0.1:1", topic_prefix="t1.", state_dir=tmp_path)


def _event(event_type="payment.received", **data):
    return Event.new(event_type, "acme", {**example(event_type), **data})


def test_producer_is_idempotent_and_waits_for_all_replicas(unit_settings):
    config = Publisher(unit_settings, producer=FakeProducer(), delivery_timeout=7).config
    assert config["enable.idempotence"] is True
    assert config["acks"] == "all"
    assert config["message.timeout.ms"] == 7000


def test_invalid_event_raises_naming_type_and_field_and_nothing_is_produced(unit_settings):
    producer = FakeProducer()
    publisher = Publisher(unit_settings, producer=producer)
    with pytest.raises(InvalidEventError) as info:
        publisher.publish(_event(amount="12,50"))
    assert (info.value.event_type, info.value.field) == ("payment.received", "data.amount")
    assert str(info.value).startswith("payment.received: data.amount must be")
    assert producer.produced == []


@pytest.mark.parametrize(
    "event_type, topic, key_field",
    [("payment.failed", "t1.events.payment", "payment_id"), ("customer.updated", "t1.events.customer", "customer_id"),
     ("sales_order.cancelled", "t1.events.sales_order", "order_id"), ("invoice.authorized", "t1.events.invoice", "invoice_id")],
)
def test_event_goes_to_its_aggregate_topic_keyed_by_entity_id(unit_settings, event_type, topic, key_field):
    producer = FakeProducer()
    event = _event(event_type)
    Publisher(unit_settings, producer=producer).publish(event)
    [(sent_topic, key, value)] = producer.produced
    assert (sent_topic, key) == (topic, event.data[key_field].encode())
    assert parse_event(value) == event


def test_publish_returns_where_the_broker_put_the_event(unit_settings):
    delivery = Publisher(unit_settings, producer=FakeProducer()).publish(_event())
    assert delivery.done and delivery.error is None
    assert (delivery.partition, delivery.offset) == (hash(delivery.key) % 6, 0)


def test_failed_delivery_report_raises_from_publish(unit_settings):
    producer = FakeProducer(fail_keys={b"pay_bad"})
    publisher = Publisher(unit_settings, producer=producer)
    with pytest.raises(PublishError) as info:
        publisher.publish(_event(payment_id="pay_bad"))
    assert info.value.code == "_MSG_TIMED_OUT"
    assert "was not delivered to t1.events.payment" in str(info.value)
    publisher.close()  # already reported: not raised twice


def test_failed_delivery_of_an_event_sent_without_waiting_is_raised_by_flush(unit_settings):
    publisher = Publisher(unit_settings, producer=FakeProducer(fail_keys={b"pay_bad"}))
    publisher.send(_event(payment_id="pay_ok"))
    bad = publisher.send(_event(payment_id="pay_bad"))
    with pytest.raises(PublishError) as info:
        publisher.flush()
    assert info.value.event_ids == (bad.event_id,)
    publisher.flush()  # reported once


def test_several_failures_are_raised_together(unit_settings):
    publisher = Publisher(unit_settings, producer=FakeProducer(fail_keys={b"a", b"b"}))
    ids = {publisher.send(_event(payment_id=k)).event_id for k in ("a", "ok", "b")}
    with pytest.raises(PublishError, match="^2 events were not delivered") as info:
        publisher.close()
    assert set(info.value.event_ids) < ids


def test_missing_topic_failure_says_how_to_create_topics(unit_settings):
    publisher = Publisher(unit_settings, producer=FakeProducer(fail_keys={b"pay_01JD8Z6M3Q"}, error=KafkaError.UNKNOWN_TOPIC_OR_PART))
    with pytest.raises(PublishError, match="hookstream topics ensure"):
        publisher.publish(_event())


def test_unacknowledged_event_times_out_and_stays_reported_by_flush(unit_settings):
    producer = FakeProducer(hold=True)
    publisher = Publisher(unit_settings, producer=producer)
    with pytest.raises(PublishError, match="not acknowledged .* within 0.2s; it is still queued"):
        publisher.publish(_event(), timeout=0.2)
    with pytest.raises(PublishError, match=r"1 event\(s\) not acknowledged"):
        publisher.flush(timeout=0)


def test_full_local_queue_is_waited_out_not_dropped(unit_settings):
    producer = FakeProducer(full=3)
    Publisher(unit_settings, producer=producer).publish(_event())
    assert len(producer.produced) == 1
    assert producer.polls >= 3


def test_on_delivery_callback_gets_each_delivery(unit_settings):
    seen = []
    publisher = Publisher(unit_settings, producer=FakeProducer())
    sent = [publisher.send(_event(), on_delivery=seen.append) for _ in range(3)]
    publisher.flush()
    assert seen == sent


def test_leaving_the_with_block_flushes(unit_settings):
    producer = FakeProducer(fail_keys={b"pay_bad"})
    with pytest.raises(PublishError):
        with Publisher(unit_settings, producer=producer) as publisher:
            publisher.send(_event(payment_id="pay_bad"))


def test_an_error_inside_the_with_block_keeps_its_identity_and_notes_failed_deliveries(unit_settings):
    with pytest.raises(KeyError) as info:
        with Publisher(unit_settings, producer=FakeProducer(fail_keys={b"pay_bad"})) as publisher:
            publisher.send(_event(payment_id="pay_bad"))
            raise KeyError("boom")
    assert any("was not delivered" in note for note in info.value.__notes__)


def test_a_closed_publisher_refuses_to_send(unit_settings):
    publisher = Publisher(unit_settings, producer=FakeProducer())
    publisher.close()
    with pytest.raises(RuntimeError, match="closed"):
        publisher.send(_event())


# ---------------------------------------------------------------------------- the size limit
def test_event_over_the_size_limit_is_refused_naming_size_and_limit_and_nothing_is_produced(unit_settings):
    from hookstream.producers import EventTooLargeError
    from hookstream.schemas import encode_event
    from tests.sizes import invoice_of_size

    producer = FakeProducer()
    publisher = Publisher(unit_settings.model_copy(update=dict(max_event_bytes=2048)), producer=producer)
    big = invoice_of_size("acme", 2049)
    size = len(encode_event(big))
    for attempt in (publisher.publish, publisher.send, publisher.prepare):
        with pytest.raises(EventTooLargeError) as info:
            attempt(big)
        assert (info.value.size, info.value.limit, info.value.event_ids) == (size, 2048, (big.id,))
        assert f"is {size} bytes serialised, over the limit of 2048 bytes" in str(info.value)
        assert "\n" not in str(info.value)
    assert isinstance(info.value, PublishError) and info.value.exit_code == 2
    assert producer.produced == []
    publisher.close()  # a refusal is the caller's at once, never reported again


def test_event_at_the_size_limit_is_sent(unit_settings):
    from hookstream.schemas import encode_event
    from tests.sizes import invoice_of_size

    event = invoice_of_size("acme", 1500)
    producer = FakeProducer()
    Publisher(unit_settings.model_copy(update=dict(max_event_bytes=len(encode_event(event)))), producer=producer).publish(event)
    assert len(producer.produced) == 1


def test_a_stored_record_over_a_since_lowered_limit_is_refused(unit_settings):
    from hookstream.producers import EventTooLargeError

    producer = FakeProducer()
    publisher = Publisher(unit_settings.model_copy(update=dict(max_event_bytes=1024)), producer=producer)
    from hookstream.producers import OutgoingRecord

    record = OutgoingRecord("ev_1", "t1.events.payment", b"pay_1", b"x" * 1025, "payment.received")
    with pytest.raises(EventTooLargeError, match="event ev_1 \\(payment.received\\) is 1025 bytes"):
        publisher.send_record(record)
    assert producer.produced == []


def test_produce_refusing_a_record_raises_a_delivery_error_naming_it(unit_settings):
    producer = FakeProducer(refuse_keys={b"pay_big"})
    publisher = Publisher(unit_settings, producer=producer)
    with pytest.raises(PublishError) as info:
        publisher.send(_event(payment_id="pay_big"))
    assert info.value.code == "MSG_SIZE_TOO_LARGE"
    assert "larger than the broker accepts" in str(info.value)
