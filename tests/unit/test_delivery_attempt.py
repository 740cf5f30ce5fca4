"""hookstream.delivery.attempt: the Deliverer's decisions, with a MockTransport and a fixed clock."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime

import orjson
import pytest
from standardwebhooks.webhooks import Webhook

from hookstream.delivery.attempt import DeadLettered, Delivered, Deliverer, Dropped, Limits, Retry
from hookstream.delivery.breaker import BreakerConfig, BreakerState, EndpointBreakers
from hookstream.delivery.errors import EndpointUnreachable
from hookstream.delivery.outcome import RetryReason
from hookstream.delivery.schedule import RetrySchedule
from hookstream.delivery.transport import HttpResponse, MockTransport
from hookstream.core.wire import DeliveryRecord, delivery_id
from hookstream.core.settings import Settings
from hookstream.subscriptions.models import Status, Subscription
from hookstream.core.secrets import Secret
from hookstream.subscriptions.urls import Reason, UnsafeURLError

NOW = 1_800_000_000.0
SECRET = Secret.generate().reveal()
SETTINGS = Settings(retry_schedule=(5.0, 300.0, 1800.0))


class Table:
    def __init__(self, *subs: Subscription) -> None:
        self.subs = {s.id: s for s in subs}

    def get(self, sub_id):
        return self.subs.get(sub_id)


def sub(sub_id="sub_1", *, status=Status.ACTIVE, secrets=None, headers=None) -> Subscription:
    t = datetime(2026, 11, 28, tzinfo=UTC)
    return Subscription(
        id=sub_id, tenant_id="acme", url=f"https://hooks.example.com/{sub_id}?token=abc", events=("*",), status=status,
        secrets=secrets or (Secret.parse(SECRET),), headers=headers or {}, created_at=t, updated_at=t, version=1,
    )


def record(sub_id="sub_1", **kw) -> DeliveryRecord:
    envelope = {"id": "ev1", "type": "invoice.sent", "tenant_id": "acme", "occurred_at": "2026-11-28T12:00:00.000000Z", "data": {"n": 1}}
    base = dict(
        delivery_id=delivery_id("ev1", sub_id), subscription_id=sub_id, tenant_id="acme", event_id="ev1",
        event_type="invoice.sent", occurred_at=envelope["occurred_at"], event=envelope,
    )
    base.update(kw)
    return DeliveryRecord(**base)


def deliverer(handler, *subs, breaker=None, limits=None, clock=lambda: NOW) -> tuple[Deliverer, MockTransport]:
    transport = MockTransport(handler)
    schedule = RetrySchedule(delays=SETTINGS.retry_schedule, random=lambda: 0.5)
    d = Deliverer(
        SETTINGS, Table(*(subs or (sub(),))), transport, schedule=schedule,
        breakers=EndpointBreakers(breaker), limits=limits, clock=clock,
    )
    return d, transport


def run(coro):
    return asyncio.run(coro)


def test_a_2xx_is_delivered_signed_with_the_delivery_id():
    d, t = deliverer(lambda *_: HttpResponse(204))
    decision = run(d.deliver(record()))
    assert isinstance(decision, Delivered) and decision.report.status == 204 and decision.report.attempt == 1
    url, body, headers = t.requests[0]
    assert headers["webhook-id"] == record().delivery_id
    assert orjson.loads(body) == {"type": "invoice.sent", "timestamp": "2026-11-28T12:00:00Z", "data": {"n": 1}}
    assert headers["webhook-timestamp"] == str(int(NOW))


def test_the_signature_verifies_with_standardwebhooks():
    import time

    d, t = deliverer(lambda *_: HttpResponse(200), clock=time.time)
    run(d.deliver(record()))
    _url, body, headers = t.requests[0]
    Webhook(SECRET).verify(body, headers)


def test_during_a_rotation_every_valid_secret_signs():
    old = Secret.generate().reveal()
    rotated = sub(secrets=(Secret.parse(SECRET), Secret.parse(old, expires_at=datetime.fromtimestamp(NOW + 3600, UTC))))
    d, t = deliverer(lambda *_: HttpResponse(200), rotated)
    run(d.deliver(record()))
    assert len(t.requests[0][2]["webhook-signature"].split()) == 2


def test_custom_headers_are_sent_but_cannot_override_the_signature():
    s = sub(headers={"X-Env": "prod"})
    d, t = deliverer(lambda *_: HttpResponse(200), s)
    run(d.deliver(record()))
    assert t.requests[0][2]["X-Env"] == "prod"


def test_a_500_is_forwarded_to_the_tier_of_its_delay_with_its_history():
    d, _ = deliverer(lambda *_: HttpResponse(500, excerpt=b"boom"))
    decision = run(d.deliver(record()))
    assert isinstance(decision, Retry) and decision.tier == 1 and decision.skipped is None
    assert decision.record.attempt == 1 and decision.record.due_at == NOW + 5.0
    (entry,) = decision.record.attempts
    assert entry["status"] == 500 and entry["attempt"] == 1 and entry["result"] == "retry:server_error"


def test_a_retry_after_pushes_the_record_to_a_later_tier():
    d, _ = deliverer(lambda *_: HttpResponse(503, retry_after="1000"))
    decision = run(d.deliver(record()))
    assert isinstance(decision, Retry) and decision.tier == 2 and decision.record.due_at == NOW + 1000.0


def test_after_the_last_attempt_it_is_dead_with_every_attempt():
    d, _ = deliverer(lambda *_: HttpResponse(500))
    history = tuple({"attempt": n, "status": 500} for n in (1, 2, 3))
    decision = run(d.deliver(record(attempt=3, attempts=history)))
    assert isinstance(decision, DeadLettered) and decision.reason.startswith("retries_exhausted after 4 attempts")
    assert [a["attempt"] for a in decision.record.attempts] == [1, 2, 3, 4]


def test_a_400_is_dead_after_one_attempt():
    d, _ = deliverer(lambda *_: HttpResponse(400))
    decision = run(d.deliver(record()))
    assert isinstance(decision, DeadLettered) and decision.reason == "client_error (HTTP 400)"
    assert decision.record.attempt == 1


def test_a_redirect_is_dead_and_not_followed():
    d, t = deliverer(lambda *_: HttpResponse(301))
    decision = run(d.deliver(record()))
    assert isinstance(decision, DeadLettered) and decision.reason == "redirect (HTTP 301)" and len(t.requests) == 1


def test_410_gone_asks_to_disable_the_endpoint():
    d, _ = deliverer(lambda *_: HttpResponse(410))
    decision = run(d.deliver(record()))
    assert isinstance(decision, DeadLettered) and decision.disable_endpoint


def test_a_transport_failure_is_retried_and_described_without_the_url():
    def refuse(url, *_):
        raise EndpointUnreachable(f"cannot connect to {url}")

    d, _ = deliverer(refuse)
    decision = run(d.deliver(record()))
    assert isinstance(decision, Retry) and decision.report.outcome.reason is RetryReason.CONNECTION_ERROR
    assert "token=abc" not in decision.report.error and "<url>" in decision.report.error


def test_a_refused_address_is_a_connection_failure():
    def unsafe(*_):
        raise UnsafeURLError(Reason.LOOPBACK, "url: 127.0.0.1 is a loopback address")

    d, _ = deliverer(unsafe)
    decision = run(d.deliver(record()))
    assert isinstance(decision, Retry) and decision.report.error.startswith("refused address")


def test_a_bug_is_not_blamed_on_the_endpoint():
    def bug(*_):
        raise KeyError("oops")

    d, _ = deliverer(bug)
    with pytest.raises(KeyError):
        run(d.deliver(record()))
    assert d.breakers["sub_1"].window_counts == (0, 0)


def test_an_unknown_subscription_is_looked_up_again_once_then_dropped():
    d, t = deliverer(lambda *_: HttpResponse(200))
    first = run(d.deliver(record("sub_new")))
    assert isinstance(first, Retry) and first.skipped == "subscription_unknown" and first.report is None
    assert first.record.attempt == 0 and first.record.due_at == NOW + 5.0 * 1.1  # the wait, plus jitter
    assert run(d.deliver(first.record)) == Dropped("subscription_deleted")
    assert t.requests == []


def test_a_subscription_that_appears_meanwhile_is_delivered_to():
    d, t = deliverer(lambda *_: HttpResponse(200))
    first = run(d.deliver(record("sub_late")))
    d.table.subs["sub_late"] = sub("sub_late")
    assert isinstance(run(d.deliver(first.record)), Delivered)


def test_a_disabled_subscription_is_dropped_without_a_request():
    d, t = deliverer(lambda *_: HttpResponse(200), sub("sub_off", status=Status.DISABLED))
    assert run(d.deliver(record("sub_off"))) == Dropped("subscription_disabled")
    assert t.requests == []


def test_a_record_with_an_unreadable_time_is_dead_without_an_attempt():
    d, t = deliverer(lambda *_: HttpResponse(200))
    decision = run(d.deliver(record(occurred_at="yesterday")))
    assert isinstance(decision, DeadLettered) and decision.reason.startswith("malformed") and t.requests == []


def test_an_open_breaker_skips_the_attempt_without_counting_it():
    now = [NOW]
    d, t = deliverer(lambda *_: HttpResponse(500), breaker=BreakerConfig(min_requests=3, window=1.0, pause=30.0), clock=lambda: now[0])
    for step in (0.0, 0.5, 1.0):  # failures over a whole window
        now[0] = NOW + step
        run(d.deliver(record()))
    assert len(t.requests) == 3
    decision = run(d.deliver(record(attempt=1)))
    assert isinstance(decision, Retry) and decision.skipped == "breaker_open" and decision.report is None
    assert decision.record.attempt == 1 and decision.record.attempts == ()  # not counted
    assert decision.record.due_at == NOW + 1.0 + 30.0 * 1.1 and decision.tier == 1  # reopen, plus jitter
    assert len(t.requests) == 3


def test_a_stalled_endpoint_holds_at_most_its_backlog():
    async def scenario():
        release = asyncio.Event()

        async def hang(*_):
            await release.wait()
            return HttpResponse(200)

        clock = [NOW]
        d, t = deliverer(hang, limits=Limits(endpoint_concurrency=2, endpoint_backlog=4, stall_seconds=1.0), clock=lambda: clock[0])
        tasks = [asyncio.create_task(d.deliver(record())) for _ in range(4)]
        await asyncio.sleep(0.01)
        assert len(t.requests) == 2  # two in flight, two waiting for a slot
        clock[0] += 5.0  # nothing finished for 5 s: stalled
        skipped = await d.deliver(record())
        release.set()
        done = await asyncio.gather(*tasks)
        return skipped, done

    skipped, done = run(scenario())
    assert isinstance(skipped, Retry) and skipped.skipped == "endpoint_busy" and skipped.report is None
    assert all(isinstance(x, Delivered) for x in done)


def test_a_busy_but_progressing_endpoint_is_not_deferred():
    async def scenario():
        d, t = deliverer(lambda *_: HttpResponse(200), limits=Limits(endpoint_concurrency=1, endpoint_backlog=1))
        return await asyncio.gather(*(d.deliver(record()) for _ in range(20)))

    assert all(isinstance(x, Delivered) for x in run(scenario()))


def test_no_valid_secret_is_dead_without_an_attempt():
    expired = sub(secrets=(Secret.parse(SECRET, expires_at=datetime.fromtimestamp(NOW - 1, UTC)),))
    d, t = deliverer(lambda *_: HttpResponse(200), expired)
    decision = run(d.deliver(record()))
    assert isinstance(decision, DeadLettered) and decision.reason.startswith("no_valid_secret") and t.requests == []


def test_reports_and_decisions_never_hold_a_secret():
    d, _ = deliverer(lambda *_: HttpResponse(500))
    decision = run(d.deliver(record()))
    text = repr(decision) + orjson.dumps(dataclasses.asdict(decision.record)).decode()
    assert SECRET not in text and SECRET[6:] not in text


def test_the_throttle_floor_never_exceeds_the_longest_delay():
    from hookstream.delivery.attempt import default_schedule

    assert default_schedule(Settings(retry_schedule=(0.2, 0.4))).throttle_floor == 0.4
    assert default_schedule(Settings()).throttle_floor == 60.0


def test_endpoint_slots_are_fifo_bounded_and_survive_cancellation():
    from hookstream.delivery.attempt import _Slots

    async def scenario():
        slots = _Slots(2)
        running, order = 0, []
        peak = 0

        async def job(n, hold):
            nonlocal running, peak
            async with slots:
                running += 1
                peak = max(peak, running)
                order.append(n)
                await asyncio.sleep(hold)
                running -= 1

        tasks = [asyncio.create_task(job(n, 0.01)) for n in range(6)]
        await asyncio.sleep(0)
        tasks[3].cancel()  # a waiter cancelled: its turn passes on
        await asyncio.gather(*tasks, return_exceptions=True)
        assert slots.free == 2 and not slots.waiters
        return peak, order

    peak, order = run(scenario())
    assert peak == 2 and order == [0, 1, 2, 4, 5]


def test_a_url_the_client_prints_in_its_own_form_is_masked_too():
    # pyreqwest prints the URL it parsed (normalised: host lowercased, default port dropped),
    # which is not the string it was given: masking must not rely on finding ours
    def refuse(url, *_):
        raise EndpointUnreachable(
            "error sending request for url (https://user:PLANTED-PW@hooks.example.com/sub_1?token=PLANTED-TOKEN&x=1)"
        )

    d, _ = deliverer(refuse)
    decision = run(d.deliver(record()))
    error = decision.report.error
    assert "PLANTED" not in error and "token=" not in error
    assert "https://***@hooks.example.com/sub_1?***" in error
    entry = orjson.dumps(decision.record.attempts)
    assert b"PLANTED" not in entry


def test_a_subscription_whose_secrets_did_not_open_is_dead_lettered_naming_the_key_id():
    unreadable = dataclasses.replace(
        sub(), secrets=(), sealed_error="subscription sub_1: its secrets or headers cannot be opened: sealed under key id 'k-old'"
    )
    d, t = deliverer(lambda *_: HttpResponse(200), unreadable)
    decision = run(d.deliver(record()))
    assert isinstance(decision, DeadLettered) and decision.code == "no_valid_secret"
    assert "'k-old'" in decision.reason and t.requests == []
    # the worker goes on: the next subscription's record is delivered
    d2, _ = deliverer(lambda *_: HttpResponse(204), unreadable, sub("sub_2"))
    assert isinstance(run(d2.deliver(record("sub_2"))), Delivered)


# ---------------------------------------------------------------------------- bounded memory
def test_a_hundred_thousand_endpoints_leave_state_only_for_the_recent_ones():
    """Gates, secret caches and breakers of idle endpoints are forgotten (and the worker told),
    so a long-lived worker's memory follows its recent endpoints."""
    n = 100_000
    now = [NOW]
    template, base = sub("sub_0"), record("sub_0")

    class EveryId:  # every id is a subscription, made when asked for (100,000 made up front is slow)
        def get(self, sub_id):
            return dataclasses.replace(template, id=sub_id)

    forgotten: list[str] = []
    d = Deliverer(
        SETTINGS, EveryId(), MockTransport(lambda *_: HttpResponse(204)),
        schedule=RetrySchedule(delays=SETTINGS.retry_schedule, random=lambda: 0.5), clock=lambda: now[0],
        on_forget=forgotten.append,
    )

    async def scenario() -> int:
        largest = 0
        for i in range(n):
            now[0] = NOW + i / 1000  # 1,000 new endpoints a second
            assert isinstance(await d.deliver(dataclasses.replace(base, subscription_id=f"sub_{i}")), Delivered)
            largest = max(largest, len(d._gates), len(d._secrets), len(d._refusals), len(d.breakers))
        return largest

    largest = run(scenario())
    window = d.breakers.config.window
    # a window of endpoints (30 s at 1,000/s) plus one sweep interval's worth, not 100,000
    assert largest <= (window + d.sweep_every) * 1000 + 1
    assert len(forgotten) >= n - largest
    assert len(set(forgotten)) == len(forgotten)


def test_an_endpoint_with_records_in_flight_keeps_its_state():
    async def scenario():
        release = asyncio.Event()

        async def handler(*_):
            await release.wait()
            return HttpResponse(500)

        now = [NOW]
        d, _ = deliverer(handler, sub("sub_slow"), sub("sub_other"), clock=lambda: now[0])
        slow = asyncio.create_task(d.deliver(record("sub_slow")))
        await asyncio.sleep(0)
        now[0] = NOW + 3600.0  # long after any window: only the record in flight keeps it
        other = asyncio.create_task(d.deliver(record("sub_other")))
        await asyncio.sleep(0)
        assert "sub_slow" in d._gates and "sub_slow" in d.breakers
        release.set()
        await asyncio.gather(slow, other)
        return d

    d = run(scenario())
    assert d.breakers["sub_slow"].window_counts == (1, 1)  # its result landed on the breaker kept


def test_an_open_breaker_is_not_forgotten_while_it_waits():
    now = [NOW]
    config = BreakerConfig(min_requests=2, window=1.0, pause=30.0)
    d, t = deliverer(lambda *_: HttpResponse(503), sub("sub_down"), sub("sub_up"), breaker=config, clock=lambda: now[0])
    for step in (0.0, 1.0):
        now[0] = NOW + step
        run(d.deliver(record("sub_down")))
    assert d.breakers["sub_down"].state is BreakerState.OPEN
    now[0] = NOW + 25.0  # idle for far longer than its window, but open: kept
    run(d.deliver(record("sub_up")))
    decision = run(d.deliver(record("sub_down")))
    assert isinstance(decision, Retry) and decision.skipped == "breaker_open"
    assert len([r for r in t.requests if "sub_down" in r[0]]) == 2


def test_a_deleted_subscription_is_forgotten_and_the_worker_told():
    forgotten: list[str] = []
    d, _ = deliverer(lambda *_: HttpResponse(204))
    d._on_forget = forgotten.append
    run(d.deliver(record()))
    assert "sub_1" in d.breakers
    del d.table.subs["sub_1"]
    assert run(d.deliver(record(due_at=NOW))) == Dropped("subscription_deleted")
    assert "sub_1" not in d.breakers and "sub_1" not in d._gates and "sub_1" not in d._secrets
    assert forgotten == ["sub_1"]


# ---------------------------------------------------------------------------- records never sent (issue #12)
def test_another_tenants_subscription_is_dead_lettered_never_posted():
    d, t = deliverer(lambda *_: HttpResponse(200))
    decision = run(d.deliver(record(tenant_id="intruder")))
    assert isinstance(decision, DeadLettered) and decision.code == "tenant_mismatch" and decision.report is None
    assert "acme" not in decision.reason  # the other tenant is not named
    assert t.requests == []


def test_a_disabled_subscription_of_another_tenant_is_still_refused_as_a_mismatch():
    d, t = deliverer(lambda *_: HttpResponse(200), sub(status=Status.DISABLED))
    assert run(d.deliver(record(tenant_id="intruder"))).code == "tenant_mismatch"
    assert t.requests == []


@pytest.mark.parametrize(
    ("url", "settings", "why"),
    [
        ("http://hooks.example.com/in", SETTINGS, "http is not allowed"),
        ("https://10.0.0.7/in", SETTINGS, "private"),
        ("https://[::1]/in", SETTINGS, "loopback"),
        ("https://localhost/in", SETTINGS, "loopback"),
        ("https://hooks.example.com:0/in", SETTINGS, "port"),
        ("ftp://hooks.example.com/in", SETTINGS, "scheme"),
    ],
)
def test_a_url_the_policy_refuses_is_dead_lettered_never_posted(url, settings, why):
    s = dataclasses.replace(sub(), url=url)
    d, t = deliverer(lambda *_: HttpResponse(200), s)
    decision = run(d.deliver(record()))
    assert isinstance(decision, DeadLettered) and decision.code == "url_refused", decision
    assert decision.reason.startswith("url_refused: ") and why in decision.reason
    assert t.requests == []


def test_a_host_name_is_left_to_the_transport_and_an_allowed_network_passes():
    import ipaddress

    from hookstream.delivery.attempt import endpoint_refusal

    # a name that resolves nowhere: the transport resolves and pins at connect time, not this check
    s = dataclasses.replace(sub(), url="https://hooks.never-resolved.invalid/in")
    d, t = deliverer(lambda *_: HttpResponse(200), s)
    assert isinstance(run(d.deliver(record())), Delivered) and len(t.requests) == 1
    local = dataclasses.replace(sub(), url="http://127.0.0.1:8000/in")
    http_ok = SETTINGS.model_copy(update=dict(allow_http=True))
    assert endpoint_refusal(local, http_ok)[0] == "url_refused"
    opened = http_ok.model_copy(update=dict(allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),)))
    assert endpoint_refusal(local, opened) is None


def test_the_url_verdict_is_cached_per_subscription_version():
    import hookstream.delivery.attempt as attempt

    calls = []
    real = attempt.check_url

    def counting(url, settings, **kw):
        calls.append(url)
        return real(url, settings, **kw)

    s = sub()
    d, t = deliverer(lambda *_: HttpResponse(200), s)
    attempt.check_url = counting
    try:
        for _ in range(3):
            run(d.deliver(record()))
        assert len(calls) == 1
        d.table.subs["sub_1"] = dataclasses.replace(s, url="http://hooks.example.com/in", version=2)
        assert run(d.deliver(record())).code == "url_refused"
        assert len(calls) == 2
    finally:
        attempt.check_url = real
    assert len(t.requests) == 3


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({"X-Bad": "a\r\nInjected: 1"}, "value of header X-Bad"),
        ({"X-Bad": "a\nb"}, "value of header X-Bad"),
        ({"X-Bad": "nul\x00"}, "value of header X-Bad"),
        ({"X-Bad": "caf\u00e9"}, "value of header X-Bad"),
        ({"X-Bad": "del\x7f"}, "value of header X-Bad"),
        ({"X-Bad": "x" * 9000}, "value of header X-Bad"),
        ({"Bad Name": "v"}, "not an RFC 9110 token"),
        ({"X:Colon": "v"}, "not an RFC 9110 token"),
        ({"": "v"}, "not an RFC 9110 token"),
        ({"X-\u00e9": "v"}, "not an RFC 9110 token"),
        ({"Host": "evil.example"}, "set by the delivery worker"),
        ({"Content-Length": "1"}, "set by the delivery worker"),
        ({"transfer-encoding": "chunked"}, "set by the delivery worker"),
        ({"Webhook-Signature": "v1,forged"}, "set by the delivery worker"),
        ({"webhook-custom": "x"}, "set by the delivery worker"),
        ({"User-Agent": "x"}, "set by the delivery worker"),
        ({"X-A": "1", "x-a": "2"}, "given twice"),
    ],
)
def test_a_header_the_client_would_refuse_is_dead_lettered_never_posted(headers, why):
    s = sub(headers=headers)
    d, t = deliverer(lambda *_: HttpResponse(200), s)
    decision = run(d.deliver(record()))
    assert isinstance(decision, DeadLettered) and decision.code == "invalid_header", decision
    assert why in decision.reason
    for value in headers.values():
        if len(value) > 2:
            assert value not in decision.reason  # a header value may be a credential
    assert t.requests == []


def test_ordinary_custom_headers_pass_the_check():
    from hookstream.delivery.attempt import header_problem

    assert header_problem({"Authorization": "Bearer abc.def", "X-Tab": "a\tb", "X-Sym": "!#$%&'*+-.^_`|~ ok"}) is None
    assert header_problem({}) is None


def test_the_history_keeps_the_first_and_last_attempts_with_a_count_of_the_rest():
    from hookstream.delivery.attempt import HISTORY_KEEP_LAST, bounded_history

    history: tuple = ()
    for n in range(1, 1001):
        entry = {"attempt": n, "at": NOW + n, "status": None, "error": "E" * 300, "duration": 15.0, "result": "retry:timeout"}
        history = bounded_history(history, entry)
        assert len(history) <= HISTORY_KEEP_LAST + 2
    assert history[0]["attempt"] == 1
    assert history[1] == {"omitted": 1000 - 1 - HISTORY_KEEP_LAST}
    assert [h["attempt"] for h in history[2:]] == list(range(1001 - HISTORY_KEEP_LAST, 1001))
    short = bounded_history(({"attempt": 1},), {"attempt": 2})
    assert short == ({"attempt": 1}, {"attempt": 2})


def test_a_record_after_1000_failed_attempts_stays_small():
    schedule = RetrySchedule(delays=(1.0,) * 1000, random=lambda: 0.5)
    transport = MockTransport(lambda *_: (_ for _ in ()).throw(EndpointUnreachable("reset " + "x" * 5000)))
    d = Deliverer(SETTINGS.model_copy(update=dict(retry_schedule=(1.0,) * 1000)), Table(sub()), transport, schedule=schedule,
                  breakers=EndpointBreakers(BreakerConfig(min_requests=10**6)), clock=lambda: NOW)
    rec = record()
    sizes = []
    for _ in range(1000):
        decision = run(d.deliver(rec))
        assert isinstance(decision, (Retry, DeadLettered)), decision
        rec = dataclasses.replace(decision.record, due_at=None)
        sizes.append(len(orjson.dumps(rec)))
    assert rec.attempt == 1000
    assert max(sizes) < len(orjson.dumps(record())) + 8 * 1024
    assert all(len(a.get("error") or "") <= 300 for a in rec.attempts)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://stra\u00dfe.example/in", "ambiguous"),  # saved before canonical URLs: IDNA 2003 reads strasse
        ("https://\U0001f4a9.example/in", "not a valid internationalised domain name"),
        ("https://[::ffff:8.8.8.8]/in", "ipv4-mapped"),
    ],
)
def test_a_saved_url_the_idn_and_address_rules_now_refuse_is_dead_lettered(url, why):
    d, t = deliverer(lambda *_: HttpResponse(200), dataclasses.replace(sub(), url=url))
    decision = run(d.deliver(record()))
    assert isinstance(decision, DeadLettered) and decision.code == "url_refused", decision
    assert why in decision.reason and t.requests == []


def test_the_worker_refuses_a_port_outside_the_allowed_ports():
    from hookstream.delivery.attempt import endpoint_refusal

    only_443 = SETTINGS.model_copy(update=dict(allowed_ports=((443, 443),)))
    code, reason = endpoint_refusal(dataclasses.replace(sub(), url="https://hooks.example.com:8443/in"), only_443)
    assert code == "url_refused" and "HOOKSTREAM_ALLOWED_PORTS=443" in reason
    assert endpoint_refusal(dataclasses.replace(sub(), url="https://hooks.example.com/in"), only_443) is None


def test_after_the_pause_a_retried_record_probes_and_a_first_attempt_waits():
    now = [NOW]
    d, t = deliverer(lambda *_: HttpResponse(500), breaker=BreakerConfig(min_requests=2, window=1.0, pause=30.0), clock=lambda: now[0])
    for step in (0.0, 1.0):
        now[0] = NOW + step
        run(d.deliver(record()))
    assert d.breakers["sub_1"].state is BreakerState.OPEN
    now[0] = NOW + 31.0  # the pause is over
    fresh = run(d.deliver(record()))
    assert isinstance(fresh, Retry) and fresh.skipped == "breaker_open"
    assert fresh.record.due_at >= NOW + 31.0 + 30.0 * 0.25  # back after the wait, not in a tight loop
    assert len(t.requests) == 2
    t.handler = lambda *_: HttpResponse(200)  # it accepts a retry
    probe = run(d.deliver(record(attempt=1)))
    assert isinstance(probe, Delivered) and d.breakers["sub_1"].state is BreakerState.CLOSED
