"""AsyncPublisher: awaited acknowledgements, validation before anything is sent, failures raised."""

import pytest

from hookstream.core.settings import Settings
from hookstream.producers import AsyncPublisher, PublishError
from hookstream.schemas import Event, InvalidEventError, example
from tests.fakes import FakeProducer


@pytest.fixture
def unit_settings(tmp_path):
    return Settings(kafka_bootstrap="127.0.0.1:1", state_dir=tmp_path)


def _event(**data):
    return Event.new("invoice.sent", "acme", {**example("invoice.sent"), **data})


async def test_publish_returns_once_the_broker_acknowledged(unit_settings):
    producer = FakeProducer()
    async with AsyncPublisher(unit_settings, producer=producer) as publisher:
        delivery = await publisher.publish(_event())
    assert delivery.done and delivery.offset == 0
    assert producer.produced[0][0] == "events.invoice"


async def test_failed_delivery_is_raised_to_the_awaiting_caller(unit_settings):
    async with AsyncPublisher(unit_settings, producer=FakeProducer(fail_keys={b"inv_bad"})) as publisher:
        with pytest.raises(PublishError, match="was not delivered"):
            await publisher.publish(_event(invoice_id="inv_bad"))


async def test_one_invalid_event_in_a_batch_means_none_is_sent(unit_settings):
    producer = FakeProducer()
    async with AsyncPublisher(unit_settings, producer=producer) as publisher:
        with pytest.raises(InvalidEventError, match="invoice.sent: data.channel must be one of"):
            await publisher.publish_many([_event(), _event(channel="fax"), _event()])
    assert producer.produced == []


async def test_publish_many_keeps_order_and_names_every_failure(unit_settings):
    producer = FakeProducer(fail_keys={b"inv_2", b"inv_4"})
    async with AsyncPublisher(unit_settings, producer=producer) as publisher:
        events = [_event(invoice_id=f"inv_{i}") for i in range(6)]
        with pytest.raises(PublishError) as info:
            await publisher.publish_many(events)
    assert [k for _, k, _ in producer.produced] == [f"inv_{i}".encode() for i in range(6)]
    assert info.value.event_ids == (events[2].id, events[4].id)


async def test_unacknowledged_event_times_out_and_close_reports_it(unit_settings):
    publisher = AsyncPublisher(unit_settings, producer=FakeProducer(hold=True))
    with pytest.raises(PublishError, match="not acknowledged"):
        await publisher.publish(_event(), timeout=0.2)
    with pytest.raises(PublishError, match="not acknowledged"):
        await publisher.close(timeout=0)


async def test_one_event_over_the_size_limit_in_a_batch_means_none_is_sent(unit_settings):
    from hookstream.producers import EventTooLargeError
    from tests.sizes import invoice_of_size

    producer = FakeProducer()
    big = invoice_of_size("acme", 1025)
    async with AsyncPublisher(unit_settings.model_copy(update=dict(max_event_bytes=1024)), producer=producer) as publisher:
        with pytest.raises(EventTooLargeError, match=f"event {big.id} \\(invoice.created\\) is \\d+ bytes serialised, over the limit of 1024"):
            await publisher.publish_many([_event(), big, _event()])
        with pytest.raises(EventTooLargeError):
            await publisher.publish(big)
    assert producer.produced == []


async def test_a_record_refused_by_produce_stops_the_batch_there_and_names_the_rest(unit_settings):
    producer = FakeProducer(refuse_keys={b"inv_1"})
    events = [_event(invoice_id=f"inv_{i}") for i in range(3)]
    async with AsyncPublisher(unit_settings, producer=producer) as publisher:
        with pytest.raises(PublishError) as info:
            await publisher.publish_many(events)
    assert [k for _, k, _ in producer.produced] == [b"inv_0"]  # nothing after the refused one: order kept
    assert info.value.event_ids == (events[1].id, events[2].id)
    assert info.value.code == "MSG_SIZE_TOO_LARGE" and "1 later event(s) not sent" in str(info.value)


async def test_a_full_local_queue_is_waited_out_without_blocking_the_loop(unit_settings):
    producer = FakeProducer(full=3)
    async with AsyncPublisher(unit_settings, producer=producer) as publisher:
        delivery = await publisher.publish(_event())
    assert delivery.done and len(producer.produced) == 1
