"""hookstream.shell.services and hookstream.delivery.messages: the API's service layer, on SQLite,
with fakes for Kafka (publishing, requeueing, recovery, the dead-letter topic)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from hookstream.core.db import make_engine, migrate
from hookstream.core.errors import BrokerError, NotFoundError, ValidationError
from hookstream.core.settings import Settings
from hookstream.core.wire import DeliveryRecord, delivery_id
from hookstream.delivery import dead_letters as dl
from hookstream.delivery.attempt_log import AttemptRow
from hookstream.delivery.messages import endpoint_stats, list_messages
from hookstream.schemas import Event, parse_event
from hookstream.shell.services import ConflictError, DeadLetterService, EndpointService, MessageService
from hookstream.shell.services.messages import MessageFilter
from hookstream.shell.services.pages import decode_cursor, encode_cursor
from hookstream.streams.recovery import RecoveryReport
from hookstream.subscriptions import SubscriptionStore

PUBLIC = "93.184.215.14"
URL = "https://hooks.example.com/in"


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'api.db'}", state_dir=tmp_path / "state")


@pytest.fixture
def store(settings):
    s = SubscriptionStore.open(settings, resolver=lambda host, port: [PUBLIC])
    yield s
    s.engine.dispose()


class Calls:
    def __init__(self) -> None:
        self.published = 0
        self.requeued: list[DeliveryRecord] = []
        self.recovered: list[tuple] = []
        self.fail_publish = False

    def publish(self):
        if self.fail_publish:
            raise BrokerError("cannot reach Kafka")
        self.published += 1

    def requeue(self, _settings, record):
        self.requeued.append(record)

    def recover(self, _settings, sub, *, since, until, dry_run):
        self.recovered.append((sub.id, since, until, dry_run))
        return RecoveryReport(scanned=3, queued=2)


@pytest.fixture
def calls():
    return Calls()


@pytest.fixture
def endpoints(settings, store, calls) -> EndpointService:
    return EndpointService(settings, store, publish=calls.publish, requeue=calls.requeue, recover_fn=calls.recover)


# ---------------------------------------------------------------------------- endpoints
def test_create_returns_the_secret_once_and_publishes(endpoints, calls):
    made = endpoints.create(tenant_id="acme", url=URL, events=["payment.*"], description="main")
    assert made.secret.startswith("whsec_") and made.published and calls.published == 1
    assert made.endpoint.tenant_id == "acme" and made.endpoint.events == ("payment.*",)
    shown = endpoints.get(made.endpoint.id, tenant_id="acme").to_public()
    assert made.secret not in str(shown)


def test_a_change_kafka_did_not_take_is_saved_and_says_so(endpoints, calls):
    calls.fail_publish = True
    made = endpoints.create(tenant_id="acme", url=URL, events=["*"])
    assert not made.published and made.endpoint.unpublished
    assert endpoints.get(made.endpoint.id, tenant_id="acme").id == made.endpoint.id


def test_list_pages_newest_first_without_repeats(endpoints):
    ids = [endpoints.create(tenant_id="acme", url=URL, events=["*"]).endpoint.id for _ in range(5)]
    endpoints.create(tenant_id="beta", url=URL, events=["*"])
    seen, iterator, pages = [], None, 0
    for _ in range(10):
        page = endpoints.list(tenant_id="acme", limit=2, iterator=iterator)
        pages += 1
        seen += [s.id for s in page.data]
        if page.done:
            assert page.iterator is None
            break
        iterator = page.iterator
    assert pages == 3 and seen == ids[::-1]


def test_list_filters_by_status_and_event_type(endpoints):
    pay = endpoints.create(tenant_id="acme", url=URL, events=["payment.*"]).endpoint
    inv = endpoints.create(tenant_id="acme", url=URL, events=["invoice.sent"]).endpoint
    endpoints.disable(inv.id, tenant_id="acme")
    assert [s.id for s in endpoints.list(tenant_id="acme", status="disabled").data] == [inv.id]
    assert [s.id for s in endpoints.list(tenant_id="acme", event_type="payment.received").data] == [pay.id]
    with pytest.raises(ValidationError, match="status"):
        endpoints.list(tenant_id="acme", status="deleted")


@pytest.mark.parametrize("limit", [0, 251, -1, True])
def test_limit_outside_1_to_250_is_refused(endpoints, limit):
    with pytest.raises(ValidationError, match="limit"):
        endpoints.list(tenant_id="acme", limit=limit)


@pytest.mark.parametrize("iterator", ["garbage!", "e30", encode_cursor("messages", 5), encode_cursor("endpoints", 5),
                                      encode_cursor("endpoints", ["a"])])
def test_an_iterator_not_from_this_listing_is_refused(endpoints, iterator):
    with pytest.raises(ValidationError, match="iterator"):
        endpoints.list(tenant_id="acme", iterator=iterator)


def test_cursor_round_trip():
    assert decode_cursor("x", encode_cursor("x", [1.5, 2, 3])) == [1.5, 2, 3]
    assert decode_cursor("x", None) is None


OTHER_TENANT_CALLS = {
    "get": lambda e, i: e.get(i, tenant_id="beta"),
    "update": lambda e, i: e.update(i, tenant_id="beta", description="x"),
    "delete": lambda e, i: e.delete(i, tenant_id="beta"),
    "enable": lambda e, i: e.enable(i, tenant_id="beta"),
    "disable": lambda e, i: e.disable(i, tenant_id="beta"),
    "rotate": lambda e, i: e.rotate_secret(i, tenant_id="beta"),
    "secret": lambda e, i: e.secret(i, tenant_id="beta"),
    "test": lambda e, i: e.send_test(i, tenant_id="beta", event_type="payment.received"),
    "recover": lambda e, i: e.recover(i, tenant_id="beta", since=0.0),
    "stats": lambda e, i: e.stats(i, tenant_id="beta"),
}


@pytest.mark.parametrize("call", OTHER_TENANT_CALLS.values(), ids=OTHER_TENANT_CALLS.keys())
def test_another_tenants_endpoint_is_not_found(endpoints, calls, call):
    sub = endpoints.create(tenant_id="acme", url=URL, events=["*"]).endpoint
    with pytest.raises(NotFoundError):
        call(endpoints, sub.id)
    assert endpoints.get(sub.id, tenant_id="acme").active and not calls.requeued and not calls.recovered


def test_rotate_keeps_the_old_secret_for_the_grace_window(endpoints):
    made = endpoints.create(tenant_id="acme", url=URL, events=["*"])
    rotated = endpoints.rotate_secret(made.endpoint.id, tenant_id="acme", grace_seconds=3600)
    assert rotated.secret != made.secret and endpoints.secret(made.endpoint.id, tenant_id="acme") == rotated.secret
    values = [s.reveal() for s in rotated.endpoint.secrets]
    assert values == [rotated.secret, made.secret] and rotated.endpoint.secrets[1].expires_at is not None


def test_send_test_queues_a_valid_example_for_this_endpoint_only(endpoints, calls):
    sub = endpoints.create(tenant_id="acme", url=URL, events=["invoice.*"]).endpoint
    message_id = endpoints.send_test(sub.id, tenant_id="acme", event_type="payment.failed")
    (record,) = calls.requeued
    assert record.subscription_id == sub.id and record.tenant_id == "acme" and record.replay_of == "test"
    event = parse_event(orjson.dumps(record.event))  # the example passes its own schema
    assert event.type == "payment.failed" and message_id == record.delivery_id == delivery_id(event.id, sub.id)


def test_send_test_refuses_unknown_types_and_disabled_endpoints(endpoints, calls):
    sub = endpoints.create(tenant_id="acme", url=URL, events=["*"]).endpoint
    with pytest.raises(ValidationError, match="event_type"):
        endpoints.send_test(sub.id, tenant_id="acme", event_type="payment.nope")
    endpoints.disable(sub.id, tenant_id="acme")
    with pytest.raises(ConflictError, match="disabled"):
        endpoints.send_test(sub.id, tenant_id="acme", event_type="payment.received")
    with pytest.raises(ConflictError, match="disabled"):
        endpoints.recover(sub.id, tenant_id="acme", since=0.0)
    assert not calls.requeued and not calls.recovered


def test_recover_hands_the_window_to_streams_recovery(endpoints, calls):
    sub = endpoints.create(tenant_id="acme", url=URL, events=["*"]).endpoint
    report = endpoints.recover(sub.id, tenant_id="acme", since=100.0, until=200.0, dry_run=True)
    assert report.queued == 2 and calls.recovered == [(sub.id, 100.0, 200.0, True)]


# ---------------------------------------------------------------------------- messages
NOW = 1_800_000_000.0


def attempt(engine, n: int, delivery: str, status: str, *, tenant="acme", sub="sub_1", at=NOW, ms=10.0, code=200,
            event_type="invoice.sent"):
    with engine.begin() as conn:
        conn.execute(AttemptRow.__table__.insert().values(
            delivery_id=delivery, event_id=f"ev-{delivery}", event_type=event_type, tenant_id=tenant, subscription_id=sub,
            attempt=n, status=status, http_status=code, duration_ms=ms, error=None if status == "succeeded" else "HTTP 500",
            response_excerpt="ok", attempted_at=datetime.fromtimestamp(at, UTC)))


@pytest.fixture
def engine(settings):
    e = make_engine(settings.database_url)
    migrate(e)
    yield e
    e.dispose()


@pytest.fixture
def log_rows(engine):
    # in the order the worker writes them: the log's row order is its time order
    attempt(engine, 1, "msg_a", "failed", at=NOW, code=500, ms=30.0)
    attempt(engine, 1, "msg_b", "failed", at=NOW + 1, code=500, ms=20.0, event_type="payment.received")
    attempt(engine, 1, "msg_c", "dead", at=NOW + 2, code=400, ms=40.0, sub="sub_2")
    attempt(engine, 1, "msg_x", "succeeded", tenant="beta", sub="sub_9", at=NOW + 3)
    attempt(engine, 2, "msg_a", "succeeded", at=NOW + 5, ms=10.0)


@pytest.mark.parametrize(("status", "expected"), [
    (None, ["msg_a", "msg_c", "msg_b"]), ("succeeded", ["msg_a"]), ("pending", ["msg_b"]),
    ("failed", ["msg_c", "msg_b"]), ("dead", ["msg_c"]),
])
def test_messages_by_status_newest_latest_attempt_first(engine, log_rows, status, expected):
    assert [m.id for m in list_messages(engine, tenant_id="acme", status=status)] == expected


def test_message_filters_and_fields(engine, log_rows):
    (a,) = list_messages(engine, tenant_id="acme", endpoint_id="sub_1", event_type="invoice.*")
    assert (a.attempts, a.status, a.last_status_code, a.endpoint_id) == (2, "succeeded", 200, "sub_1")
    assert a.first_attempt_at < a.last_attempt_at
    assert [m.id for m in list_messages(engine, tenant_id="acme", since=NOW + 1.5, until=NOW + 4)] == ["msg_c"]
    with pytest.raises(ValidationError, match="status"):
        list_messages(engine, tenant_id="acme", status="sent")


def test_message_pages(settings, store, engine, log_rows):
    service = MessageService(settings, store, engine=engine)
    first = service.list(tenant_id="acme", limit=2)
    second = service.list(tenant_id="acme", limit=2, iterator=first.iterator)
    assert [m.id for m in first.data] == ["msg_a", "msg_c"] and not first.done
    assert [m.id for m in second.data] == ["msg_b"] and second.done
    with pytest.raises(ValidationError, match="until"):
        service.list(tenant_id="acme", filters=MessageFilter(since=NOW, until=NOW))


def test_another_tenants_message_is_not_found(settings, store, engine, log_rows):
    service = MessageService(settings, store, engine=engine)
    assert service.get("msg_x", tenant_id="beta").tenant_id == "beta"
    for call in (service.get, service.attempts, service.resend):
        with pytest.raises(NotFoundError):
            call("msg_x", tenant_id="acme")
    assert [m.id for m in service.list(tenant_id="beta").data] == ["msg_x"]


def test_attempts_carry_time_code_duration_reason_and_excerpt(settings, store, engine, log_rows):
    rows = MessageService(settings, store, engine=engine).attempts("msg_a", tenant_id="acme")
    assert [(r["attempt"], r["status"], r["status_code"], r["duration_ms"], r["reason"]) for r in rows] == [
        (1, "failed", 500, 30.0, "HTTP 500"), (2, "succeeded", 200, 10.0, None)]
    assert rows[0]["attempted_at"].endswith("Z") and rows[0]["response_excerpt"] == "ok"


def test_stats_count_and_time_the_endpoints_attempts(engine, log_rows):
    attempt(engine, 1, "msg_old", "failed", at=NOW - 7200, ms=99.0)
    stats = endpoint_stats(engine, "sub_1", tenant_id="acme", now=NOW + 10)
    assert stats["hour"]["attempts"] == 3 and stats["hour"]["succeeded"] == 1 and stats["hour"]["failed"] == 2
    assert stats["hour"]["latency_ms"]["p50"] == 20.0 and stats["hour"]["latency_ms"]["max"] == 30.0
    assert stats["day"]["attempts"] == 4 and stats["day"]["latency_ms"]["p99"] == 99.0
    empty = endpoint_stats(engine, "sub_1", tenant_id="beta", now=NOW + 10)
    assert empty["day"]["attempts"] == 0 and empty["day"]["latency_ms"]["p50"] is None


def test_resend_requeues_the_same_webhook_id(settings, store, engine, calls):
    sub, _ = store.add("acme", URL, ["*"])
    event = Event.new("invoice.sent", "acme", {"invoice_id": "x"})
    attempt(engine, 1, "msg_r", "dead", sub=sub.id)
    service = MessageService(settings, store, engine=engine, find_event=lambda _s, m: event, requeue=calls.requeue)
    assert service.resend("msg_r", tenant_id="acme").id == "msg_r"
    (record,) = calls.requeued
    assert (record.delivery_id, record.subscription_id, record.event_id, record.attempt, record.replay_of) == (
        "msg_r", sub.id, event.id, 0, "resend")
    store.disable(sub.id, tenant_id="acme")
    with pytest.raises(ConflictError):
        service.resend("msg_r", tenant_id="acme")


# ---------------------------------------------------------------------------- dead letters
def dead(partition: int, offset: int, tenant: str, at: float | None) -> dl.DeadLetter:
    record = DeliveryRecord(delivery_id=f"msg_{offset}", subscription_id="sub_1", tenant_id=tenant, event_id="e",
                            event_type="invoice.sent", occurred_at="2026-11-28T12:00:00Z", event={})
    return dl.DeadLetter(f"{partition}-{offset}", "client_error: HTTP 400", at, record, {})


def test_dlq_list_filters_by_tenant_and_pages_newest_first(settings):
    entries = [dead(0, 1, "acme", 100.0), dead(1, 1, "acme", 300.0), dead(0, 2, "beta", 200.0), dead(2, 7, "acme", None)]
    service = DeadLetterService(settings, read=lambda _s, since=None: iter(entries))
    from hookstream.shell.services.dlq import make_filter

    first = service.list(make_filter(tenant_id="acme"), limit=2)
    rest = service.list(make_filter(tenant_id="acme"), limit=2, iterator=first.iterator)
    assert [d.id for d in first.data] == ["1-1", "0-1"] and [d.id for d in rest.data] == ["2-7"] and rest.done
    assert len(service.list(make_filter(tenant_id=None)).data) == 4
    with pytest.raises(ValidationError, match="since"):
        make_filter(tenant_id=None, since="yesterday")


def test_dlq_replay_hands_the_matching_entries_to_dead_letters_replay(settings):
    entries = [dead(0, 1, "acme", 100.0), dead(0, 2, "beta", 200.0)]
    seen = []

    def replay(_settings, chosen, *, dry_run, force):
        seen.append(([d.id for d in chosen], dry_run, force))
        return dl.ReplayReport(replayed=[d.id for d in chosen])

    from hookstream.shell.services.dlq import make_filter

    service = DeadLetterService(settings, read=lambda _s, since=None: iter(entries), replay=replay)
    _entries, report = service.replay(make_filter(tenant_id="beta"), dry_run=True)
    assert report.replayed == ["0-2"] and seen == [(["0-2"], True, False)]
    _entries, report = service.replay(make_filter(tenant_id="nobody"))
    assert report.replayed == [] and len(seen) == 1


@pytest.mark.parametrize("text", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
def test_times_outside_the_calendar_in_utc_are_refused(text):
    from hookstream.shell.services.times import window

    with pytest.raises(ValidationError, match="since"):
        window(text, None)


def test_recover_never_hands_a_time_before_1970_to_the_broker(endpoints, calls):
    sub = endpoints.create(tenant_id="acme", url=URL, events=["*"]).endpoint
    endpoints.recover(sub.id, tenant_id="acme", since=-86400.0)
    assert calls.recovered[-1][1] == 0.0
