"""Bad answers never escape an attempt: PyreqwestTransport + Deliverer against tests/hostile_endpoint.py.

Every misbehaviour is bytes on a loopback socket (no broker). For each: the transport raises
only hookstream's own ``TransportFailure``s (or answers), and ``Deliverer.deliver`` turns it
into a decision with the expected reason, and never raises.
"""

from __future__ import annotations

import math
import socket
from datetime import UTC, datetime

import pyreqwest.exceptions as reqwest_errors
import pytest

from hookstream.delivery.attempt import Delivered, Deliverer, Retry
from hookstream.delivery.errors import (
    EndpointProtocolError,
    EndpointTimeout,
    EndpointTLSError,
    EndpointUnreachable,
    TransportFailure,
    TransportUsageError,
)
from hookstream.delivery.outcome import RetryLater, RetryReason, Success, classify_response
from hookstream.delivery.schedule import RetrySchedule
from hookstream.delivery.transport import PyreqwestTransport, translate_error
from hookstream.core.wire import DeliveryRecord, delivery_id
from hookstream.core.settings import Settings
from hookstream.subscriptions.models import Status, Subscription
from hookstream.core.secrets import Secret
from tests.hostile_endpoint import ANSWERS, EXPECTED, TLS_MODES, HostileEndpoint

LOCAL = Settings.from_env({
    "HOOKSTREAM_ALLOW_HTTP": "1", "HOOKSTREAM_ALLOWED_NETWORKS": "127.0.0.0/8",
    "HOOKSTREAM_REQUEST_TIMEOUT": "3s", "HOOKSTREAM_RETRY_SCHEDULE": "1s,2s",
})
# https only, as in production: the TLS modes must not need HOOKSTREAM_ALLOW_HTTP
HTTPS_ONLY = Settings.from_env({"HOOKSTREAM_ALLOWED_NETWORKS": "127.0.0.0/8", "HOOKSTREAM_REQUEST_TIMEOUT": "3s"})

SECRET = Secret.generate().reveal()


def test_every_mode_of_the_hostile_endpoint_has_an_expectation():
    assert set(EXPECTED) == set(ANSWERS) | set(TLS_MODES)


@pytest.fixture(scope="module")
def endpoint():
    with HostileEndpoint() as ep:
        yield ep


def url_for(endpoint: HostileEndpoint, mode: str) -> str:
    if mode in TLS_MODES:
        if mode not in endpoint.tls_ports:
            pytest.skip("the self-signed mode needs the openssl CLI")
        return endpoint.tls_url(mode)
    return endpoint.url(mode)


class Table:
    def __init__(self, *subs: Subscription) -> None:
        self.subs = {s.id: s for s in subs}

    def get(self, sub_id):
        return self.subs.get(sub_id)


def subscription(url: str) -> Subscription:
    t = datetime(2026, 11, 28, tzinfo=UTC)
    return Subscription(
        id="sub_h", tenant_id="acme", url=url, events=("*",), status=Status.ACTIVE,
        secrets=(Secret.parse(SECRET),), headers={}, created_at=t, updated_at=t, version=1,
    )


def record() -> DeliveryRecord:
    occurred = "2026-11-28T12:00:00.000000Z"
    envelope = {"id": "ev1", "type": "invoice.sent", "tenant_id": "acme", "occurred_at": occurred, "data": {"n": 1}}
    return DeliveryRecord(
        delivery_id=delivery_id("ev1", "sub_h"), subscription_id="sub_h", tenant_id="acme", event_id="ev1",
        event_type="invoice.sent", occurred_at=occurred, event=envelope,
    )


@pytest.mark.parametrize("mode", list(EXPECTED))
async def test_the_transport_answers_or_raises_only_hookstreams_errors(endpoint, mode):
    url = url_for(endpoint, mode)
    transport = PyreqwestTransport(HTTPS_ONLY if mode in TLS_MODES else LOCAL)
    kind, status, retry_after = EXPECTED[mode]
    kind = kind if kind == "success" else RetryReason(kind)
    try:
        response = await transport.post(url, b"{}", {"content-type": "application/json"})
    except TransportFailure as exc:
        assert status is None, f"{mode}: expected a status, got {exc!r}"
        assert isinstance(exc.__cause__, reqwest_errors.PyreqwestError)  # raised `from` the client's
        assert url not in str(exc) and "\n" not in str(exc) and len(str(exc)) <= 300
        outcome = classify_response(exc)
    else:
        assert response.status == status
        outcome = classify_response(response.status, headers=response.headers, now=0.0)
    finally:
        await transport.close()
    if kind == "success":
        assert outcome == Success(status)
    else:
        assert isinstance(outcome, RetryLater) and outcome.reason is kind and outcome.status == status
        assert outcome.retry_after == retry_after


@pytest.mark.parametrize("mode", list(EXPECTED))
async def test_the_deliverer_turns_every_answer_into_a_decision(endpoint, mode):
    url = url_for(endpoint, mode)
    settings = HTTPS_ONLY if mode in TLS_MODES else LOCAL
    transport = PyreqwestTransport(settings)
    schedule = RetrySchedule(delays=(1.0, 2.0), random=lambda: 0.5)
    deliverer = Deliverer(settings, Table(subscription(url)), transport, schedule=schedule)
    hits_before = endpoint.hits.get(mode, 0)
    try:
        decision = await deliverer.deliver(record())
    finally:
        await transport.close()
    kind, status, _ = EXPECTED[mode]
    kind = kind if kind == "success" else RetryReason(kind)
    # the request reached the endpoint once; to an untrusted certificate nothing was sent at all
    assert endpoint.hits.get(mode, 0) == hits_before + (mode != "tls_self_signed")
    report = decision.report
    assert report is not None and report.status == status
    if kind == "success":
        assert isinstance(decision, Delivered) and report.error is None
        return
    assert isinstance(decision, Retry) and report.outcome.reason is kind
    assert report.history_entry()["result"] == f"retry:{kind}"
    assert math.isfinite(decision.record.due_at)  # even an infinite Retry-After is capped
    if status is None:  # what broke is named, without the URL
        assert report.error and report.error.startswith("Endpoint") and url not in report.error


async def test_no_compression_is_asked_for(endpoint):
    transport = PyreqwestTransport(LOCAL)
    assert (await transport.post(endpoint.url("ok"), b"{}", {})).status == 200
    await transport.close()
    head = endpoint.heads["ok"].lower()
    assert head.startswith(b"post /ok ") and b"accept-encoding" not in head


async def test_a_refused_https_connection_is_unreachable_not_tls():
    with socket.socket() as sock:  # a port nobody listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        transport = PyreqwestTransport(HTTPS_ONLY)
        with pytest.raises(EndpointUnreachable):
            await transport.post(f"https://127.0.0.1:{sock.getsockname()[1]}/", b"{}", {})
        await transport.close()


async def test_a_name_that_does_not_resolve_is_unreachable():
    async def no_such_host(host, port):
        raise OSError(-2, "Name or service not known")

    transport = PyreqwestTransport(LOCAL, resolver=no_such_host)
    with pytest.raises(EndpointUnreachable, match="does not resolve"):
        await transport.post("http://nowhere.invalid/", b"{}", {})
    await transport.close()


CAUSES = {"causes": [{"message": "error sending request for url (http://h.example/x?token=abc)"}, {"message": "root cause"}]}


@pytest.mark.parametrize(
    ("exc", "url", "expected"),
    [
        (reqwest_errors.ConnectTimeoutError("connect timeout", CAUSES), "http://h.example/x?token=abc", EndpointTimeout),
        (reqwest_errors.ReadTimeoutError("read timeout", CAUSES), "http://h.example/x?token=abc", EndpointTimeout),
        (reqwest_errors.PoolTimeoutError("pool timeout", CAUSES), "http://h.example/x?token=abc", EndpointTimeout),
        (reqwest_errors.ConnectError("connection error", CAUSES), "http://h.example/x?token=abc", EndpointUnreachable),
        (reqwest_errors.ReadError("read error", CAUSES), "http://h.example/x?token=abc", EndpointUnreachable),
        (reqwest_errors.WriteError("write error", CAUSES), "http://h.example/x?token=abc", EndpointUnreachable),
        (reqwest_errors.ConnectError("connection error", {"causes": [{"message": "invalid peer certificate: Expired"}]}),
         "https://h.example/", EndpointTLSError),
        # the same words over plain http are no TLS failure
        (reqwest_errors.ConnectError("connection error", {"causes": [{"message": "certificate"}]}), "http://h.example/", EndpointUnreachable),
        (reqwest_errors.DecodeError("error decoding response", CAUSES), "http://h.example/x?token=abc", EndpointProtocolError),
        (reqwest_errors.BodyDecodeError("error decoding body", CAUSES), "http://h.example/x?token=abc", EndpointProtocolError),
        (reqwest_errors.RequestPanicError("panic", {"causes": None}), "http://h.example/", EndpointProtocolError),
        (reqwest_errors.StatusError("status", {"causes": None, "status": 500}), "http://h.example/", EndpointProtocolError),
        (reqwest_errors.BuilderError("bad request", {"causes": None}), "http://h.example/", TransportUsageError),
        (reqwest_errors.ClientClosedError("client closed", {"causes": None}), "http://h.example/", TransportUsageError),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else None,
)
def test_every_pyreqwest_error_maps_to_one_of_ours(exc, url, expected):
    mapped = translate_error(exc, url)
    assert type(mapped) is expected
    assert "token=abc" not in str(mapped)
    if exc.details.get("causes") == CAUSES["causes"]:
        assert str(mapped) == f"{exc.message}: root cause"
