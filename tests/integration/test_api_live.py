"""A real ``hookstream api`` process (uvicorn, a free port) on the real broker: keys made with the
CLI, events ingested over HTTP and read back from their topic, hostile requests answered 4xx,
and Schemathesis (positive and negative data from the OpenAPI document) finding no 5xx and no
response that breaks the document."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import orjson
import pytest

from hookstream.core.settings import Settings
from hookstream.schemas import example, parse_event
from tests.integration.consume import TopicReader

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.kafka

START_TIMEOUT = 60.0


class LiveApi:
    def __init__(self, url: str, env: dict[str, str], settings: Settings, process: subprocess.Popen) -> None:
        self.url = url
        self.env = env
        self.settings = settings
        self.process = process
        self.acme = self.create_key("--tenant", "acme")
        self.globex = self.create_key("--tenant", "globex")
        self.admin = self.create_key("--admin")

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "hookstream", *args], env=self.env, capture_output=True, text=True, timeout=60)

    def create_key(self, *args: str) -> str:
        done = self.cli("api-keys", "create", *args, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)["key"]

    @staticmethod
    def auth(key: str, **headers: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}", **headers}


def _read_listening_line(process: subprocess.Popen) -> str:
    """The URL from the 'listening on http://...' line on stderr (bounded wait); stderr is then
    drained by a thread, so the server never blocks on a full pipe."""
    lines: queue.Queue = queue.Queue()

    def drain() -> None:
        for line in process.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=drain, daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT
    seen = []
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        if line is None:
            raise AssertionError(f"hookstream api exited {process.wait(10)}: {''.join(seen)}")
        seen.append(line)
        if line.startswith("listening on "):
            return line.split()[-1]
    raise AssertionError(f"hookstream api did not listen within {START_TIMEOUT:g}s: {''.join(seen)}")


@pytest.fixture(scope="module")
def live(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory):
    # no limit on failed authentications: Schemathesis's auth checks send bad keys from this one
    # address hundreds of times and expect 401 each time (the limit: tests/unit/test_api_auth.py)
    with serve_api(kafka_bootstrap, tmp_path_factory.mktemp("api-live"), HOOKSTREAM_API_AUTH_FAILURE_LIMIT="0") as api:
        yield api


@contextlib.contextmanager
def serve_api(kafka_bootstrap: str, tmp: Path, **variables: str) -> Iterator[LiveApi]:
    """A ``hookstream api`` process on a free port, its own database and topics; ``variables``
    (HOOKSTREAM_*) set on top. Stopped (SIGTERM, then SIGKILL) on the way out."""
    from hookstream.core.topics import ensure_topics

    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKSTREAM_")}
    env.update(
        HOOKSTREAM_KAFKA_BOOTSTRAP=kafka_bootstrap,
        HOOKSTREAM_TOPIC_PREFIX=f"t{uuid.uuid4().hex[:10]}.",
        HOOKSTREAM_STATE_DIR=str(tmp / "state"),
        HOOKSTREAM_DATABASE_URL=f"sqlite:///{tmp / 'hookstream.db'}",
        HOOKSTREAM_API_PORT="0",
        HOOKSTREAM_MAX_EVENT_BYTES="4096",
        **variables,
    )
    settings = Settings.from_env(env)
    ensure_topics(settings)
    process = subprocess.Popen([sys.executable, "-m", "hookstream", "api"], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
    try:
        url = _read_listening_line(process)
        yield LiveApi(url, env, settings, process)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def client(live):
    with httpx.Client(base_url=live.url, timeout=30.0) as client:
        yield client


def payment(**fields) -> dict:
    return {"type": "payment.received", "data": {**example("payment.received"), "payment_id": f"pay_{uuid.uuid4().hex[:12]}"}, **fields}


def test_health_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "broker": "ok"}


def test_an_ingested_event_is_on_its_topic_once_acknowledged(live, client):
    sent = payment(correlation_id="live-1")
    response = client.post("/v1/events", json=sent, headers=live.auth(live.acme))
    assert response.status_code == 202, response.text
    event_id = response.json()["id"]
    with TopicReader(live.settings, ["events.payment"]) as reader:
        messages = reader.read_until(lambda ms: any(parse_event(m.value()).id == event_id for m in ms), timeout=30)
    [message] = [m for m in messages if parse_event(m.value()).id == event_id]
    event = parse_event(message.value())
    assert (event.tenant_id, event.correlation_id, event.data) == ("acme", "live-1", sent["data"])
    assert message.key() == sent["data"]["payment_id"].encode()


def test_a_batch_and_an_idempotent_retry_reach_the_topic_once_each(live, client):
    events = [payment() for _ in range(5)]
    headers = live.auth(live.acme, **{"Idempotency-Key": f"batch-{uuid.uuid4().hex}"})
    first = client.post("/v1/events/batch", json={"events": events}, headers=headers)
    again = client.post("/v1/events/batch", json={"events": events}, headers=headers)
    assert first.status_code == again.status_code == 202, first.text
    ids = [r["event"]["id"] for r in first.json()["results"]]
    assert [r["event"]["id"] for r in again.json()["results"]] == ids
    with TopicReader(live.settings, ["events.payment"]) as reader:
        messages = reader.read_until(lambda ms: set(ids) <= {parse_event(m.value()).id for m in ms}, timeout=30, idle=5)
    found = [parse_event(m.value()).id for m in messages if parse_event(m.value()).id in ids]
    assert sorted(found) == sorted(ids)  # each once


def test_without_or_with_a_bad_or_revoked_key_is_401(live, client):
    key = live.create_key("--tenant", "acme")
    assert client.post("/v1/events", json=payment(), headers=live.auth(key)).status_code == 202
    key_id = next(k["id"] for k in json.loads(live.cli("api-keys", "list", "--json").stdout)["api_keys"] if k["prefix"] == key[:12])
    assert live.cli("api-keys", "revoke", key_id).returncode == 0
    for headers in ({}, live.auth("hsk_" + "x" * 43), live.auth("nope"), {"Authorization": live.acme}):
        response = client.post("/v1/events", json=payment(), headers=headers)
        assert response.status_code == 401 and response.headers["content-type"] == "application/problem+json"
    # revoked by another process: refused once the API's cached check (1 s: keys.REVOCATION_SECONDS,
    # pinned on a fake clock in tests/unit/test_api_auth.py) runs out; a generous bound here
    deadline = time.monotonic() + 15
    while client.post("/v1/events", json=payment(), headers=live.auth(key)).status_code != 401:
        assert time.monotonic() < deadline, "a revoked key still works after 15 s"
        time.sleep(0.2)


def test_another_tenants_key_cannot_publish_for_this_tenant(live, client):
    as_field = client.post("/v1/events", json=payment(tenant_id="acme"), headers=live.auth(live.globex))
    as_header = client.post("/v1/events", json=payment(), headers=live.auth(live.globex, **{"Hookstream-Tenant": "acme"}))
    assert (as_field.status_code, as_field.json()["code"]) == (403, "tenant_mismatch")
    assert (as_header.status_code, as_header.json()["code"]) == (403, "tenant_mismatch")


@pytest.mark.parametrize("content, headers, status", [
    (b'{"type": "payment.received", "data": ', {"content-type": "application/json"}, 400),
    (b"\x00\x01\x02", {"content-type": "application/json"}, 400),
    ("{}".encode("utf-16"), {"content-type": "application/json"}, 400),
    (b'{"type": "payment.received"}', {"content-type": "text/plain"}, 415),
    (b"{}", {"content-type": "application/json; charset=iso-8859-1"}, 415),
    (b"{}", {"content-type": "application/json", "content-encoding": "br"}, 415),
    (b'{"type": "payment.received", "data": {"amount": 1e999}}', {"content-type": "application/json"}, 400),
    (orjson.dumps({"type": "payment.received", "data": {"x": "y" * 20_000}}), {"content-type": "application/json"}, 413),
    (b"[" * 100_000, {"content-type": "application/json"}, 413),
    (b'{"type": "payment.received", "data": {}, "tenant_id": "acme", "id": "\\u0000"}', {"content-type": "application/json"}, 422),
])
def test_hostile_bodies_are_problem_4xx_never_5xx(live, client, content, headers, status):
    response = client.post("/v1/events", content=content, headers=live.auth(live.acme, **headers))
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"


def test_a_body_over_the_app_limit_is_refused_by_its_content_length_before_it_is_read(live):
    import socket
    from urllib.parse import urlsplit

    from hookstream.shell.api.app import MAX_BODY_BYTES

    url = urlsplit(live.url)
    head = (f"POST /v1/events/batch HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {live.acme}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {MAX_BODY_BYTES + 1}\r\n\r\n").encode()
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(head + b"[" * 1024)  # the rest never comes: the answer must not wait for it
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.split()[1] == b"413", answer
    assert b"application/problem+json" in rest


# ----------------------------------------------------------------------------- schemathesis
# Driven through its Python API rather than its pytest plugin (whose lazy fixtures do not run on
# pytest 9 yet): every operation, positive then negative data, hypothesis-bounded.
EXAMPLES = 40


def _valid_on_the_wire(label: str, url: str) -> bool:
    """Every query parameter of the request as sent is declared for the operation (in the committed
    document, which a test keeps equal to the served one) and valid against its schema."""
    import jsonschema

    method, path = label.split(" ", 1)
    document = json.loads((ROOT / "docs" / "openapi.json").read_text())
    declared = {p["name"]: p["schema"] for p in document["paths"][path][method.lower()].get("parameters", [])
                if p["in"] == "query"}
    for name, raw in parse_qsl(urlsplit(url).query, keep_blank_values=True):
        if name not in declared:
            return False
        schema = declared[name]
        types = {schema.get("type")} | {alt.get("type") for alt in schema.get("anyOf", [])}
        value: object = raw
        if "integer" in types and raw.lstrip("-").isdigit():
            value = int(raw)
        if not jsonschema.Draft202012Validator(schema).is_valid(value):
            return False
    return True


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_schemathesis_finds_no_5xx_and_no_answer_outside_the_document(live, mode):
    import hypothesis
    import schemathesis
    from schemathesis import GenerationMode
    from schemathesis.checks import positive_data_acceptance
    from schemathesis.core.failures import AcceptedNegativeData, FailureGroup

    from schemathesis.config import SchemathesisConfig

    # 413 is how the API refuses a body over its size limit: a rejection like 400 or 422 (an
    # invalid event that happens to be large is refused for its size first)
    rejections = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
    config = SchemathesisConfig.from_dict({"checks": {"negative_data_rejection": {"expected-statuses": rejections}}})
    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json", config=config)
    headers = live.auth(live.admin, **{"Hookstream-Tenant": "acme"})
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} >= {"POST /v1/events", "POST /v1/events/batch", "GET /v1/event-types", "GET /readyz"}
    for operation in operations:
        strategy = operation.as_strategy(generation_mode=GenerationMode(mode))

        @hypothesis.settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                             suppress_health_check=list(hypothesis.HealthCheck))
        @hypothesis.given(case=strategy)
        def check(case) -> None:
            # not the framing headers: a generated "content-length: verify" is refused by uvicorn's
            # HTTP parser (400 text/plain) before any route runs
            case_headers = {k: v for k, v in (case.headers or {}).items()
                            if k.lower() not in ("authorization", "content-length", "transfer-encoding", "host", "connection")}
            # every check but positive_data_acceptance: the schema cannot say that tenant_id must
            # be the key's tenant, or that 0001-01-01T00:00:00+01:00 is before year 1 in UTC
            sent = {**headers, **case_headers}
            response = case.call(headers=sent)
            try:
                case.validate_response(response, headers=sent, excluded_checks=[positive_data_acceptance])
            except FailureGroup as group:
                # a "negative" case whose violations never reach the wire: the harness always sends
                # the key (a dropped Authorization comes back), and an extra query parameter with
                # an empty value is not serialized. What was sent was valid, so 2xx is right.
                accepted = all(isinstance(f, AcceptedNegativeData) for f in group.exceptions)
                if not (mode == "negative" and accepted and not operation.body
                        and _valid_on_the_wire(operation.label, response.request.url)):
                    raise

        try:
            check()
        except hypothesis.errors.Unsatisfiable:  # nothing to make invalid (no parameters, no body)
            assert mode == "negative" and not operation.body and operation.label not in ("POST /v1/events", "POST /v1/events/batch"), operation.label
