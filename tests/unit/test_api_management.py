"""The management routes (/v1/endpoints, /v1/messages, /v1/dlq) in process, through
httpx.ASGITransport and hookstream.client; Kafka replaced by fakes (tests/integration/test_api_live.py
runs them against the real broker and workers)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import pytest

from hookstream.client import AsyncHookstream, HookstreamAPIError
from hookstream.core.db import make_engine, migrate
from hookstream.core.settings import Settings
from hookstream.delivery import dead_letters as dl
from hookstream.delivery.attempt_log import AttemptRow
from hookstream.schemas import Event
from hookstream.shell.services import DeadLetterService, EndpointService, MessageService, Services
from hookstream.subscriptions import SubscriptionStore
from hookstream.shell.api.app import create_app
from hookstream.shell.api.keys import ApiKeyStore

URL = "https://hooks.example.com/in"


class Kafka:
    """What the services would have sent to the broker."""

    def __init__(self) -> None:
        self.requeued, self.recovered, self.replayed, self.dead = [], [], [], []

    def requeue(self, _settings, record):
        self.requeued.append(record)

    def recover(self, _settings, sub, *, since, until, dry_run):
        from hookstream.streams.recovery import RecoveryReport

        self.recovered.append((sub.id, since, until, dry_run))
        return RecoveryReport(scanned=1, queued=1)

    def read(self, _settings, since=None):
        return iter(self.dead)

    def replay(self, _settings, entries, *, dry_run, force):
        self.replayed.append(([d.id for d in entries], dry_run, force))
        return dl.ReplayReport(replayed=[d.id for d in entries])

    def find_event(self, _settings, message):
        return Event(message.event_id, message.event_type, message.tenant_id, datetime.now(UTC), 1, {})


@pytest.fixture
def kafka():
    return Kafka()


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'api.db'}", state_dir=tmp_path / "state")


@pytest.fixture
def services(settings, kafka):
    store = SubscriptionStore.open(settings, resolver=lambda host, port: ["93.184.215.14"])
    svc = Services(
        settings=settings, store=store,
        endpoints=EndpointService(settings, store, publish=lambda: None, requeue=kafka.requeue, recover_fn=kafka.recover),
        messages=MessageService(settings, store, find_event=kafka.find_event, requeue=kafka.requeue),
        dlq=DeadLetterService(settings, read=kafka.read, replay=kafka.replay),
    )
    yield svc
    svc.close()


@pytest.fixture
async def api(settings, services):
    app, keys = make_app(settings, services, {"acme": ("acme", False), "beta": ("beta", False), "admin": (None, True)})
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    clients = {
        "acme": AsyncHookstream("http://api", keys["acme"], transport=transport),
        "beta": AsyncHookstream("http://api", keys["beta"], transport=transport),
        "admin": AsyncHookstream("http://api", keys["admin"], tenant="acme", transport=transport),
        "raw": httpx.AsyncClient(base_url="http://api", transport=transport),
        "keys": keys,
        "app": app,
    }
    yield clients
    for name in ("acme", "beta", "admin"):
        await clients[name].aclose()
    await clients["raw"].aclose()


def make_app(settings, services, wanted: dict[str, tuple[str | None, bool]]):
    """The app on the services' database, with a key per name in ``wanted`` (name -> (tenant, admin))."""
    store = ApiKeyStore(services.store.engine)
    keys = {name: store.create(tenant_id=tenant, admin=admin, name=name)[1] for name, (tenant, admin) in wanted.items()}
    return create_app(settings, engine=services.store.engine, key_store=store, services=services), keys


def log_attempt(settings, delivery, sub, tenant, status="succeeded", n=1, code=200):
    engine = make_engine(settings.database_url)
    migrate(engine)
    with engine.begin() as conn:
        conn.execute(AttemptRow.__table__.insert().values(
            delivery_id=delivery, event_id=f"ev-{delivery}", event_type="invoice.sent", tenant_id=tenant, subscription_id=sub,
            attempt=n, status=status, http_status=code, duration_ms=12.5, error=None if code < 300 else f"HTTP {code}",
            response_excerpt="ok", attempted_at=datetime.now(UTC)))
    engine.dispose()


# ---------------------------------------------------------------------------- endpoints
async def test_endpoint_lifecycle(api, kafka):
    acme = api["acme"]
    made = await acme.endpoints.create(URL, ["payment.*"], description="main", headers={"X-Token": "t0ken"})
    assert made.secret.startswith("whsec_") and made.endpoint.status == "active" and made.endpoint.tenant_id == "acme"
    assert made.endpoint.headers == {"X-Token": "***"} and made.secret not in str(made.endpoint.secrets)
    got = await acme.endpoints.get(made.endpoint.id)
    assert got.id == made.endpoint.id and got.url == URL
    changed = await acme.endpoints.update(made.endpoint.id, events=["invoice.sent"], description="moved")
    assert changed.events == ["invoice.sent"] and changed.description == "moved" and changed.version == 2
    assert (await acme.endpoints.disable(made.endpoint.id)).status == "disabled"
    assert (await acme.endpoints.enable(made.endpoint.id)).status == "active"
    rotated = await acme.endpoints.rotate_secret(made.endpoint.id, grace_seconds=60)
    assert rotated.secret != made.secret and len(rotated.endpoint.secrets) == 2
    message_id = await acme.endpoints.send_test(made.endpoint.id, "payment.received")
    assert re.fullmatch(r"msg_[0-9a-f]{32}", message_id) and kafka.requeued[-1].delivery_id == message_id
    report = await acme.endpoints.recover(made.endpoint.id, "2h", dry_run=True)
    assert report["queued"] == 1 and kafka.recovered[-1][0] == made.endpoint.id and kafka.recovered[-1][3] is True
    stats = await acme.endpoints.stats(made.endpoint.id)
    assert stats["hour"]["attempts"] == 0 and stats["day"]["latency_ms"]["p95"] is None
    await acme.endpoints.delete(made.endpoint.id)
    with pytest.raises(HookstreamAPIError) as err:
        await acme.endpoints.get(made.endpoint.id)
    assert err.value.status == 404


async def test_listing_pages_and_filters(api):
    acme = api["acme"]
    ids = [(await acme.endpoints.create(URL, ["*"])).endpoint.id for _ in range(3)]
    first = await acme.endpoints.list(limit=2)
    rest = await acme.endpoints.list(limit=2, iterator=first.iterator)
    assert [e.id for e in first.data + rest.data] == ids[::-1] and not first.done and rest.done and rest.iterator is None
    await acme.endpoints.disable(ids[0])
    assert [e.id for e in (await acme.endpoints.list(status="disabled")).data] == [ids[0]]


@pytest.mark.parametrize(("params", "field"), [
    ({"limit": "0"}, "limit"), ({"limit": "251"}, "limit"), ({"limit": "x"}, "limit"), ({"iterator": "nope!"}, "iterator"),
    ({"status": "gone"}, "status"),
])
async def test_bad_list_parameters_are_problems_naming_the_field(api, params, field):
    r = await api["raw"].get("/v1/endpoints", params=params, headers={"Authorization": f"Bearer {api['keys']['acme']}"})
    assert 400 <= r.status_code < 500 and r.headers["content-type"].startswith("application/problem+json")
    assert field in (r.json().get("field") or "") + r.json().get("detail", "")


@pytest.mark.parametrize(("body", "field"), [
    ({"url": "https://10.0.0.1/x", "events": ["*"]}, "url"), ({"url": URL, "events": ["nope.*"]}, "event"),
    ({"url": URL, "events": []}, "events"), ({"url": URL, "events": ["*"], "secret": "plain"}, "secret"),
    ({"url": URL, "events": ["*"], "extra": 1}, "extra"),
])
async def test_bad_endpoints_are_refused_with_the_field(api, body, field):
    r = await api["raw"].post("/v1/endpoints", json=body, headers={"Authorization": f"Bearer {api['keys']['acme']}"})
    assert r.status_code in (400, 422), r.text
    problem = r.json()
    assert field in (problem.get("field") or "") + problem.get("detail", ""), problem


async def test_the_secret_is_served_to_admin_keys_only(api):
    made = await api["acme"].endpoints.create(URL, ["*"])
    with pytest.raises(HookstreamAPIError) as err:
        await api["acme"].endpoints.get_secret(made.endpoint.id)
    assert err.value.status in (401, 403)
    assert await api["admin"].endpoints.get_secret(made.endpoint.id) == made.secret


async def test_test_messages_need_a_known_type_and_an_enabled_endpoint(api, kafka):
    made = await api["acme"].endpoints.create(URL, ["*"])
    with pytest.raises(HookstreamAPIError) as err:
        await api["acme"].endpoints.send_test(made.endpoint.id, "payment.nope")
    assert (err.value.status, err.value.code, err.value.field) == (422, "validation_error", "event_type")
    await api["acme"].endpoints.disable(made.endpoint.id)
    with pytest.raises(HookstreamAPIError) as err:
        await api["acme"].endpoints.send_test(made.endpoint.id, "payment.received")
    assert (err.value.status, err.value.code) == (409, "conflict") and not kafka.requeued


# ---------------------------------------------------------------------------- messages
async def test_messages_attempts_and_resend(api, settings, kafka):
    made = await api["acme"].endpoints.create(URL, ["*"])
    log_attempt(settings, "msg_1", made.endpoint.id, "acme", "failed", 1, 500)
    log_attempt(settings, "msg_1", made.endpoint.id, "acme", "succeeded", 2, 200)
    log_attempt(settings, "msg_2", made.endpoint.id, "acme", "dead", 1, 400)
    page = await api["acme"].messages.list(endpoint_id=made.endpoint.id)
    assert [m.id for m in page.data] == ["msg_2", "msg_1"] and page.done
    assert [m.id for m in (await api["acme"].messages.list(status="failed")).data] == ["msg_2"]
    assert [m.id for m in (await api["acme"].messages.list(since="1h", status="succeeded")).data] == ["msg_1"]
    message = await api["acme"].messages.get("msg_1")
    assert (message.attempts, message.status, message.last_status_code) == (2, "succeeded", 200)
    attempts = await api["acme"].messages.attempts("msg_1")
    assert [(a.attempt, a.status_code, a.reason) for a in attempts] == [(1, 500, "HTTP 500"), (2, 200, None)]
    await api["acme"].messages.resend("msg_2")
    assert kafka.requeued[-1].delivery_id == "msg_2" and kafka.requeued[-1].replay_of == "resend"
    stats = await api["acme"].endpoints.stats(made.endpoint.id)
    assert (stats["hour"]["attempts"], stats["hour"]["succeeded"], stats["hour"]["dead"]) == (3, 1, 1)


# ---------------------------------------------------------------------------- dead letters
def dead(offset: int, tenant: str) -> dl.DeadLetter:
    from hookstream.core.wire import DeliveryRecord

    record = DeliveryRecord(delivery_id=f"msg_{offset}", subscription_id="sub_1", tenant_id=tenant, event_id="e",
                            event_type="invoice.sent", occurred_at="2026-11-28T12:00:00Z", event={})
    return dl.DeadLetter(f"0-{offset}", "client_error: HTTP 400", 1_800_000_000.0 + offset, record, {})


async def test_dead_letters_are_for_admin_keys(api, kafka):
    kafka.dead = [dead(1, "acme"), dead(2, "beta")]
    with pytest.raises(HookstreamAPIError) as err:
        await api["acme"].dlq.list()
    assert err.value.status in (401, 403)
    with pytest.raises(HookstreamAPIError):
        await api["acme"].dlq.replay(dry_run=True)
    assert [d.id for d in (await api["admin"].dlq.list()).data] == ["0-2", "0-1"]
    assert [d.id for d in (await api["admin"].dlq.list(tenant_id="beta")).data] == ["0-2"]
    report = await api["admin"].dlq.replay(tenant_id="acme", dry_run=True)
    assert report["replayed"] == ["0-1"] and report["matched"] == 1 and kafka.replayed == [(["0-1"], True, False)]
    with pytest.raises(HookstreamAPIError) as err:
        await api["admin"].dlq.list(since="yesterday")
    assert (err.value.status, err.value.field) == (422, "since")


# ---------------------------------------------------------------------------- tenancy: every route
def _routes(app) -> set[tuple[str, str]]:
    """Every tenant-scoped management route, from the app's own OpenAPI document."""
    return {(method.upper(), path) for path, ops in app.openapi()["paths"].items()
            if path.startswith(("/v1/endpoints", "/v1/messages")) for method in ops}


# (method, path, json body): every tenant-scoped route that names a resource
BY_ID = [
    ("GET", "/v1/endpoints/{endpoint_id}", None),
    ("PATCH", "/v1/endpoints/{endpoint_id}", {"description": "mine now"}),
    ("DELETE", "/v1/endpoints/{endpoint_id}", None),
    ("POST", "/v1/endpoints/{endpoint_id}/enable", None),
    ("POST", "/v1/endpoints/{endpoint_id}/disable", None),
    ("GET", "/v1/endpoints/{endpoint_id}/secret", None),
    ("POST", "/v1/endpoints/{endpoint_id}/secret/rotate", {}),
    ("POST", "/v1/endpoints/{endpoint_id}/test", {"event_type": "invoice.sent"}),
    ("POST", "/v1/endpoints/{endpoint_id}/recover", {"since": "1h"}),
    ("GET", "/v1/endpoints/{endpoint_id}/stats", None),
    ("GET", "/v1/messages/{message_id}", None),
    ("GET", "/v1/messages/{message_id}/attempts", None),
    ("POST", "/v1/messages/{message_id}/resend", None),
]
LISTS = [("GET", "/v1/endpoints"), ("POST", "/v1/endpoints"), ("GET", "/v1/messages")]


def test_the_tenancy_table_covers_every_route(settings, services):
    app, _keys = make_app(settings, services, {})
    assert _routes(app) == {(m, p) for m, p, _ in BY_ID} | set(LISTS)


@pytest.mark.parametrize(("as_admin", "method", "path", "body"),
                         [(False, *row) for row in BY_ID] + [(True, *row) for row in BY_ID],
                         ids=[f"tenant-{m} {p}" for m, p, _ in BY_ID] + [f"admin-{m} {p}" for m, p, _ in BY_ID])
async def test_another_tenants_resource_is_404(api, settings, kafka, as_admin, method, path, body):
    """Tenant A's key (or an admin key acting for A) on tenant B's endpoint and message: 404,
    the same answer as for an id that never existed, and B's resource is unchanged."""
    theirs = await api["beta"].endpoints.create(URL, ["*"])
    log_attempt(settings, "msg_beta", theirs.endpoint.id, "beta", "dead", 1, 400)
    url = path.format(endpoint_id=theirs.endpoint.id, message_id="msg_beta")
    headers = {"Authorization": f"Bearer {api['keys']['admin' if as_admin else 'acme']}"}
    if as_admin:
        headers["Hookstream-Tenant"] = "acme"
    r = await api["raw"].request(method, url, json=body, headers=headers)
    never = await api["raw"].request(method, path.format(endpoint_id="sub_never", message_id="msg_never"), json=body, headers=headers)
    if path.endswith("/secret") and not as_admin:
        assert r.status_code == never.status_code == 403  # admin keys only, whoever's it is
    else:
        assert r.status_code == 404, r.text
        assert never.status_code == 404
        # word for word the answer for an id that never existed (the id asked for aside)
        mine = r.text.replace(theirs.endpoint.id, "<id>").replace("msg_beta", "<id>")
        assert mine == never.text.replace("sub_never", "<id>").replace("msg_never", "<id>") and "beta" not in mine
    after = await api["beta"].endpoints.get(theirs.endpoint.id)
    assert (after.status, after.version, after.description) == ("active", 1, "")
    assert not kafka.requeued and not kafka.recovered


async def test_lists_show_only_the_callers_tenant(api, settings):
    mine = await api["acme"].endpoints.create(URL, ["*"])
    theirs = await api["beta"].endpoints.create(URL, ["*"])
    log_attempt(settings, "msg_a", mine.endpoint.id, "acme")
    log_attempt(settings, "msg_b", theirs.endpoint.id, "beta")
    assert [e.id for e in (await api["acme"].endpoints.list()).data] == [mine.endpoint.id]
    assert [m.id for m in (await api["acme"].messages.list()).data] == ["msg_a"]
    assert [m.id for m in (await api["acme"].messages.list(endpoint_id=theirs.endpoint.id)).data] == []
    assert [e.id for e in (await api["admin"].endpoints.list()).data] == [mine.endpoint.id]  # acting for acme


@pytest.mark.parametrize("since", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "2026-13-01", "99999999999d"])
async def test_times_that_are_no_moment_are_422_never_500(api, since):
    r = await api["raw"].get("/v1/messages", params={"since": since}, headers={"Authorization": f"Bearer {api['keys']['acme']}"})
    assert r.status_code == 422 and r.json()["field"] == "since", r.text


@pytest.mark.parametrize("path", ["/v1/endpoints", "/v1/messages", "/v1/dlq"])
async def test_an_unknown_query_parameter_is_refused_not_ignored(api, path):
    """A typo (?stauts=failed) would otherwise list everything, silently."""
    key = api["keys"]["admin" if path == "/v1/dlq" else "acme"]
    r = await api["raw"].get(path, params={"stauts": "failed"}, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 422 and r.json()["field"] == "stauts" and "it takes: " in r.json()["detail"], r.text
    ok = await api["raw"].get(path, params={"limit": "5"}, headers={"Authorization": f"Bearer {key}"})
    assert ok.status_code == 200, ok.text
