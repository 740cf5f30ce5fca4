"""POST /v1/events and /v1/events/batch, GET /v1/event-types, in-process with a fake publisher
(the real broker: tests/integration/test_api_live.py)."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from hookstream.producers import PublishError
from hookstream.schemas import EVENT_TYPES, Event, encode_event, example, new_event_id, parse_event
from tests.unit.api_helpers import Api, assert_problem


class FakePublisher:
    """Records what is published; ``fail`` makes the broker refuse (PublishError)."""

    def __init__(self) -> None:
        self.published: list[Event] = []
        self.fail = False

    async def publish_many(self, events, *, timeout: float = 30.0, encoded=None):
        for i, event in enumerate(events):
            # what is sent: the bytes the API encoded (which must be the valid event), else the event
            assert encoded is None or parse_event(encoded[i]) == event
            encode_event(event)  # validates, as the real one does
        await asyncio.sleep(0)
        failing = [e for e in events if self.fail is True or (self.fail and e.id in self.fail)]
        self.published.extend(e for e in events if e not in failing)
        if failing:
            raise PublishError.combine(
                PublishError(f"event {e.id} was not delivered to t: no broker at 10.9.9.9:9092", event_ids=[e.id], code="_MSG_TIMED_OUT")
                for e in failing)

    async def close(self, timeout: float = 30.0) -> None:
        pass


@pytest.fixture
def publisher() -> FakePublisher:
    return FakePublisher()


@pytest.fixture
def api(tmp_path, publisher) -> Api:
    return Api(tmp_path, publisher=publisher)


def payment(**fields) -> dict:
    return {"type": "payment.received", "data": example("payment.received"), **fields}


async def test_an_event_without_id_and_time_is_filled_in_published_and_answered_202(api, publisher):
    async with api.client() as client:
        response = await client.post("/v1/events", json=payment(), headers=api.auth(api.acme))
    assert response.status_code == 202, response.text
    body = response.json()
    [event] = publisher.published
    assert body == {"id": event.id, "type": "payment.received", "tenant_id": "acme",
                    "occurred_at": body["occurred_at"], "schema_version": 1}
    assert event.tenant_id == "acme" and event.data == example("payment.received")
    assert "Idempotent-Replayed" not in response.headers


async def test_a_complete_envelope_is_published_as_given(api, publisher):
    given = payment(id=new_event_id(), tenant_id="acme", occurred_at="2026-11-28T08:00:00Z", schema_version=1, correlation_id="c-1")
    async with api.client() as client:
        response = await client.post("/v1/events", json=given, headers=api.auth(api.acme))
    assert response.status_code == 202
    [event] = publisher.published
    assert (event.id, event.correlation_id, response.json()["occurred_at"]) == (given["id"], "c-1", "2026-11-28T08:00:00.000000Z")


async def test_another_tenants_id_in_the_event_is_403_and_nothing_is_sent(api, publisher):
    async with api.client() as client:
        response = await client.post("/v1/events", json=payment(tenant_id="globex"), headers=api.auth(api.acme))
        admin = await client.post("/v1/events", json=payment(tenant_id="globex"), headers=api.auth(api.admin, **{"Hookstream-Tenant": "acme"}))
    assert_problem(response, 403, "tenant_mismatch", "tenant_id")
    assert_problem(admin, 403, "tenant_mismatch", "tenant_id")
    assert publisher.published == []


async def test_an_admin_key_publishes_for_the_tenant_it_names(api, publisher):
    async with api.client() as client:
        response = await client.post("/v1/events", json=payment(), headers=api.auth(api.admin, **{"Hookstream-Tenant": "globex"}))
    assert response.status_code == 202 and publisher.published[0].tenant_id == "globex"


@pytest.mark.parametrize("body, field", [
    ({"type": "payment.received", "data": {**example("payment.received"), "amount": 12.5}}, "data.amount"),
    ({"type": "payment.nope", "data": {}}, "type"),
    ({"data": {}}, "type"),
    (payment(id="has space"), "id"),
    (payment(occurred_at="yesterday"), "occurred_at"),
    (payment(tenant_id=7), "tenant_id"),
    (payment(schema_version=99), "schema_version"),
])
async def test_an_invalid_event_is_422_naming_the_field_and_nothing_is_sent(api, publisher, body, field):
    async with api.client() as client:
        response = await client.post("/v1/events", json=body, headers=api.auth(api.acme))
    assert_problem(response, 422, "invalid_event", field)
    assert publisher.published == []


@pytest.mark.parametrize("content, headers, status, code", [
    (b'{"type": ', {"content-type": "application/json"}, 400, "invalid_json"),
    (b"", {"content-type": "application/json"}, 400, "invalid_json"),
    (b"[1, 2]", {"content-type": "application/json"}, 422, "invalid_event"),
    (b'"payment"', {"content-type": "application/json"}, 422, "invalid_event"),
    (b"\xff\xfe{\x00}\x00", {"content-type": "application/json"}, 400, "invalid_json"),  # UTF-16
    (b'{"type": "payment.received", "data": {"x": "\xe9"}}', {"content-type": "application/json"}, 400, "invalid_json"),  # latin-1
    (b"\xef\xbb\xbf{}", {"content-type": "application/json"}, 400, "invalid_json"),  # a BOM
    (b"[" * 5000 + b"]" * 5000, {"content-type": "application/json"}, 400, "invalid_json"),
    (b"type=payment.received", {"content-type": "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"),
    (b"{}", {}, 415, "unsupported_media_type"),
    (b"{}", {"content-type": "application/json; charset=latin-1"}, 415, "unsupported_media_type"),
    (b"{}", {"content-type": "application/json", "content-encoding": "gzip"}, 415, "unsupported_media_type"),
    (orjson.dumps(payment(data={"nested": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]})), {"content-type": "application/json"}, 422, "invalid_event"),
])
async def test_malformed_bodies_and_odd_encodings_are_4xx_problems(api, publisher, content, headers, status, code):
    async with api.client() as client:
        response = await client.post("/v1/events", content=content, headers=api.auth(api.acme, **headers))
    assert_problem(response, status, code)
    assert publisher.published == []


async def test_an_event_over_the_size_limit_is_413(tmp_path, publisher):
    api = Api(tmp_path, publisher=publisher, settings_kw={"max_event_bytes": 2048})
    from tests.sizes import invoice_of_size

    big = {"type": "invoice.created", "data": invoice_of_size("acme", 3000).data}
    async with api.client() as client:
        response = await client.post("/v1/events", json=big, headers=api.auth(api.acme))
        huge = await client.post("/v1/events", content=b" " * 5000 + orjson.dumps(payment()), headers=api.auth(api.acme, **{"content-type": "application/json"}))
    assert_problem(response, 413, "too_large")
    assert_problem(huge, 413, "too_large")  # the body alone is over twice the limit
    assert publisher.published == []


async def test_the_same_idempotency_key_publishes_once_and_answers_the_same(api, publisher):
    headers = api.auth(api.acme, **{"Idempotency-Key": "order-42"})
    async with api.client() as client:
        first = await client.post("/v1/events", json=payment(), headers=headers)
        again = await client.post("/v1/events", json=payment(), headers=headers)
        other_body = await client.post("/v1/events", json=payment(correlation_id="x"), headers=headers)
        other_tenant = await client.post("/v1/events", json=payment(), headers=api.auth(api.globex, **{"Idempotency-Key": "order-42"}))
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert_problem(other_body, 409, "idempotency_key_reused", "Idempotency-Key")
    assert other_tenant.status_code == 202 and other_tenant.json()["id"] != first.json()["id"]  # keys are per tenant
    assert len(publisher.published) == 2


async def test_two_tenants_using_one_idempotency_key_never_see_each_others_event(api, publisher):
    key = {"Idempotency-Key": "shared-key"}
    acme, globex = api.auth(api.acme, **key), api.auth(api.globex, **key)
    for_globex = api.auth(api.admin, **key, **{"Hookstream-Tenant": "globex"})  # an admin acting for globex: globex's scope
    async with api.client() as client:
        a1 = await client.post("/v1/events", json=payment(), headers=acme)
        g1 = await client.post("/v1/events", json=payment(), headers=globex)  # the same body under the same key
        a2 = await client.post("/v1/events", json=payment(), headers=acme)
        g2 = await client.post("/v1/events", json=payment(), headers=for_globex)
        g3 = await client.post("/v1/events", json=payment(correlation_id="other"), headers=globex)  # reused within globex only
        batch_a = await client.post("/v1/events/batch", json={"events": [payment()]}, headers=acme)
        batch_g = await client.post("/v1/events/batch", json={"events": [payment()]}, headers=globex)
    assert [r.status_code for r in (a1, g1, a2, g2)] == [202] * 4
    assert a1.json()["tenant_id"] == "acme" and g1.json()["tenant_id"] == "globex" and a1.json()["id"] != g1.json()["id"]
    assert a2.json() == a1.json() and g2.json() == g1.json()  # each replays its own tenant's event, never the other's
    assert "idempotent-replayed" not in g1.headers
    assert_problem(g3, 409, "idempotency_key_reused", "Idempotency-Key")
    [ra], [rg] = batch_a.json()["results"], batch_g.json()["results"]
    assert ra["event"]["tenant_id"] == "acme" and rg["event"]["tenant_id"] == "globex" and not ra["replayed"] and not rg["replayed"]
    assert sorted((e.tenant_id, e.id) for e in publisher.published) == sorted(
        [("acme", a1.json()["id"]), ("globex", g1.json()["id"]), ("acme", ra["event"]["id"]), ("globex", rg["event"]["id"])])


async def test_the_idempotency_key_survives_a_restart_of_the_api(tmp_path, publisher):
    api = Api(tmp_path, publisher=publisher)
    async with api.client() as client:
        first = await client.post("/v1/events", json=payment(), headers=api.auth(api.acme, **{"Idempotency-Key": "k1"}))
    from hookstream.shell.api.app import create_app

    restarted = create_app(api.settings, engine=api.engine, publisher=publisher)
    api.app = restarted
    async with api.client() as client:
        again = await client.post("/v1/events", json=payment(), headers=api.auth(api.acme, **{"Idempotency-Key": "k1"}))
    assert again.json() == first.json() and len(publisher.published) == 1


async def test_a_clients_event_id_is_the_idempotency_key_without_the_header(api, publisher):
    event_id = new_event_id()
    async with api.client() as client:
        first = await client.post("/v1/events", json=payment(id=event_id), headers=api.auth(api.acme))
        again = await client.post("/v1/events", json=payment(id=event_id), headers=api.auth(api.acme))
    assert first.json()["id"] == again.json()["id"] == event_id and len(publisher.published) == 1


async def test_a_broker_failure_is_503_and_the_retry_publishes_the_same_event(api, publisher):
    headers = api.auth(api.acme, **{"Idempotency-Key": "retry-me"})
    publisher.fail = True
    async with api.client() as client:
        failed = await client.post("/v1/events", json=payment(), headers=headers)
        publisher.fail = False
        retried = await client.post("/v1/events", json=payment(), headers=headers)
    doc = assert_problem(failed, 503, "broker_unavailable")
    assert failed.headers["retry-after"] == "5" and "10.9.9.9" not in failed.text
    assert retried.status_code == 202
    assert retried.json()["id"] in doc["detail"]  # the same event id as the failed attempt
    assert [e.id for e in publisher.published] == [retried.json()["id"]]


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "caf\u00e9"])
async def test_a_malformed_idempotency_key_is_400(api, key):
    async with api.client() as client:
        response = await client.post("/v1/events", json=payment(), headers={**api.auth(api.acme), "Idempotency-Key": key.encode("utf-8")})
    assert_problem(response, 400, "invalid_idempotency_key", "Idempotency-Key")


async def test_no_key_is_401_before_the_body_is_looked_at(api, publisher):
    async with api.client() as client:
        response = await client.post("/v1/events", content=b"not json", headers={"content-type": "text/plain"})
    assert_problem(response, 401, "unauthorized")


# ----------------------------------------------------------------------------- batch
async def test_a_batch_is_published_with_one_result_per_event(api, publisher):
    events = [payment(), {"type": "customer.created", "data": example("customer.created")}, payment(id=new_event_id())]
    async with api.client() as client:
        response = await client.post("/v1/events/batch", json={"events": events}, headers=api.auth(api.acme))
    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["accepted"], body["failed"]) == (3, 0)
    assert [r["index"] for r in body["results"]] == [0, 1, 2]
    assert [r["event"]["id"] for r in body["results"]] == [e.id for e in publisher.published]
    assert body["results"][2]["event"]["id"] == events[2]["id"]


async def test_one_invalid_event_in_a_batch_refuses_all_naming_each(api, publisher):
    events = [payment(), {"type": "payment.received", "data": {}}, payment(), {"type": "nope", "data": {}}]
    async with api.client() as client:
        response = await client.post("/v1/events/batch", json={"events": events}, headers=api.auth(api.acme))
    doc = assert_problem(response, 422, "invalid_batch")
    assert [(e["index"], e["code"]) for e in doc["errors"]] == [(1, "invalid_event"), (3, "invalid_event")]
    assert doc["errors"][1]["field"] == "events.3.type"
    assert publisher.published == []


@pytest.mark.parametrize("body", [{"events": []}, {"events": [payment()] * 1001}, {"events": "x"}, [payment()]])
async def test_a_batch_must_hold_1_to_1000_events(api, publisher, body):
    async with api.client() as client:
        response = await client.post("/v1/events/batch", json=body, headers=api.auth(api.acme))
    assert_problem(response, 422, "validation_error", "events")
    assert publisher.published == []


async def test_a_batch_retried_with_its_idempotency_key_publishes_nothing_twice(api, publisher):
    headers = api.auth(api.acme, **{"Idempotency-Key": "batch-7"})
    events = [payment(), payment()]
    async with api.client() as client:
        first = await client.post("/v1/events/batch", json={"events": events}, headers=headers)
        again = await client.post("/v1/events/batch", json={"events": events}, headers=headers)
    assert [r["event"]["id"] for r in again.json()["results"]] == [r["event"]["id"] for r in first.json()["results"]]
    assert all(r["replayed"] for r in again.json()["results"]) and len(publisher.published) == 2


async def test_a_batch_the_broker_takes_none_of_is_503(api, publisher):
    publisher.fail = True
    async with api.client() as client:
        response = await client.post("/v1/events/batch", json={"events": [payment(), payment()]}, headers=api.auth(api.acme))
    doc = assert_problem(response, 503, "broker_unavailable")
    assert [r["status"] for r in doc["results"]] == [503, 503]


async def test_a_batch_with_one_event_id_twice_is_422(api, publisher):
    event_id = new_event_id()
    async with api.client() as client:
        response = await client.post("/v1/events/batch", json={"events": [payment(id=event_id), payment(id=event_id)]}, headers=api.auth(api.acme))
    assert_problem(response, 422, "duplicate_event_id", "events.1.id")
    assert publisher.published == []


# ----------------------------------------------------------------------------- event types
async def test_event_types_list_every_type_and_show_its_schema_and_an_example(api):
    async with api.client() as client:
        listed = await client.get("/v1/event-types", headers=api.auth(api.acme))
        one = await client.get("/v1/event-types/invoice.created", headers=api.auth(api.acme))
        missing = await client.get("/v1/event-types/invoice.nope", headers=api.auth(api.acme))
        anonymous = await client.get("/v1/event-types")
    assert [t["type"] for t in listed.json()["data"]] == list(EVENT_TYPES)
    detail = one.json()
    assert detail["json_schema"]["$id"].startswith("urn:hookstream:event:invoice.created")
    assert detail["example"] == example("invoice.created") and detail["entity_field"] == "invoice_id"
    assert_problem(missing, 404, "not_found")
    assert_problem(anonymous, 401, "unauthorized")


async def test_a_batch_says_which_events_the_broker_refused(api, publisher):
    events = [payment(id=new_event_id()) for _ in range(3)]
    publisher.fail = {events[1]["id"]}
    async with api.client() as client:
        response = await client.post("/v1/events/batch", json={"events": events}, headers=api.auth(api.acme))
    body = response.json()
    assert response.status_code == 202 and (body["accepted"], body["failed"]) == (2, 1)
    assert [r["status"] for r in body["results"]] == [202, 503, 202]
    assert body["results"][1]["problem"]["code"] == "broker_unavailable"
    assert [e.id for e in publisher.published] == [events[0]["id"], events[2]["id"]]


async def test_after_a_timeout_no_event_of_the_batch_counts_as_accepted(api):
    class TimingOut(FakePublisher):
        async def publish_many(self, events, *, timeout: float = 30.0, encoded=None):
            raise PublishError("1 event(s) not acknowledged within 30s", event_ids=[events[0].id], code="_TIMED_OUT")

    api.app.state.ctx._publisher = TimingOut()
    async with api.client() as client:
        response = await client.post("/v1/events/batch", json={"events": [payment(), payment()]}, headers=api.auth(api.acme))
    assert_problem(response, 503, "broker_unavailable")
