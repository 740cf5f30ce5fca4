"""Schemathesis over the management routes (/v1/endpoints, /v1/messages, /v1/dlq), in process:
positive and negative data from the OpenAPI document; no 5xx, and every answer (status code,
content type, body) conforms to the document. Kafka is replaced by fakes, the database is real
SQLite with some endpoints and messages in it."""

from __future__ import annotations

import pytest
import schemathesis
import schemathesis.specs.openapi.checks as oa
from schemathesis import checks
from hypothesis import HealthCheck, given, settings as hsettings
from schemathesis.generation import GenerationMode

from hookstream.core.settings import Settings
from hookstream.shell.services import DeadLetterService, EndpointService, MessageService, Services
from hookstream.subscriptions import SubscriptionStore
from tests.unit.test_api_management import Kafka, dead, log_attempt, make_app

MANAGEMENT = r"^/v1/(endpoints|messages|dlq)"
# No 5xx, every answer as documented, schema-violating requests refused. Not positive data
# acceptance: whether a well-formed URL is a public address, an iterator one of ours or a time a
# real moment is beyond JSON Schema, and those answers (422 naming the field) are tested in
# test_api_management.py.
CHECKS = [
    checks.not_a_server_error, oa.status_code_conformance, oa.content_type_conformance, oa.response_schema_conformance,
    oa.response_headers_conformance, oa.negative_data_rejection,
]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("schemathesis")
    settings = Settings(database_url=f"sqlite:///{tmp / 'api.db'}", state_dir=tmp / "state")
    kafka = Kafka()
    kafka.dead = [dead(1, "acme"), dead(2, "beta")]
    store = SubscriptionStore.open(settings, resolver=lambda host, port: ["93.184.215.14"])
    services = Services(
        settings=settings, store=store,
        endpoints=EndpointService(settings, store, publish=lambda: None, requeue=kafka.requeue, recover_fn=kafka.recover),
        messages=MessageService(settings, store, find_event=kafka.find_event, requeue=kafka.requeue),
        dlq=DeadLetterService(settings, read=kafka.read, replay=kafka.replay),
    )
    sub, _ = store.add("acme", "https://hooks.example.com/in", ["*"])
    log_attempt(settings, "msg_1", sub.id, "acme", "failed", 1, 500)
    log_attempt(settings, "msg_1", sub.id, "acme", "succeeded", 2, 200)
    app, keys = make_app(settings, services, {"acme": ("acme", False), "admin": (None, True)})
    yield app, keys
    services.close()


def _schema(app):
    return schemathesis.openapi.from_asgi("/openapi.json", app).include(path_regex=MANAGEMENT)


def _labels() -> list[str]:
    """The management operations, from a throwaway app (nothing opened: the app is lazy)."""
    from hookstream.shell.api.app import create_app

    return [r.ok().label for r in _schema(create_app(Settings())).get_all_operations()]


LABELS = _labels()


def test_every_management_route_is_exercised():
    assert len(LABELS) == 18, LABELS


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
@pytest.mark.parametrize("label", LABELS)
def test_management_routes_conform_and_never_fail(world, label, mode):
    app, keys = world
    (operation,) = [r.ok() for r in _schema(app).get_all_operations() if r.ok().label == label]
    admin = operation.path.startswith("/v1/dlq") or operation.path.endswith("/secret")
    headers = {"Authorization": f"Bearer {keys['admin' if admin else 'acme']}"}
    if admin:
        headers["Hookstream-Tenant"] = "acme"

    @given(operation.as_strategy(generation_mode=mode))
    @hsettings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
    def run(case):
        # the tenant header is the skeleton's (tested there): here it names the key's tenant or is absent
        if case.headers:
            case.headers = {k: v for k, v in case.headers.items() if k.lower() != "hookstream-tenant"}
        case.call_and_validate(headers=headers, checks=CHECKS)

    run()
