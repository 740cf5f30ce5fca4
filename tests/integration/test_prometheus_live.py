"""prometheus_live.py against a real Prometheus scraping a prometheus_client endpoint in this process.

The endpoint exposes the metrics the delivery and stream workers will export, declared the way a
worker declares them with prometheus_client, except ``webhook_dead_letters_total``: every
dashboard query must return data but exactly the dead-letter ones, which shows both that the
dashboard reads what prometheus_client exposes (names, ``_total``, ``_bucket``, labels) and
that ``panels_without_data`` reports a missing metric.
"""

from __future__ import annotations

import random
import threading

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from tests.integration.prometheus_live import panels_without_data, running_prometheus, variable_values
from tests.monitoring import DURATION_BUCKETS, PROMETHEUS_PACKAGE, find_tool, load_dashboard, names_in, panel_queries

TENANTS = ("acme", "globex")
EVENTS = ("payment.received", "invoice.sent")


class FakeWorkers:
    """The workers' metrics, kept moving on a thread so rates and quantiles have data."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.deliveries = Counter("webhook_deliveries_total", "", ["event", "tenant_id", "status"], registry=r)
        self.duration = Histogram("webhook_delivery_duration_seconds", "", ["event", "tenant_id"], buckets=DURATION_BUCKETS, registry=r)
        self.retries = Counter("webhook_retries_total", "", ["event", "tenant_id", "reason"], registry=r)
        self.http_status = Counter("webhook_delivery_http_status", "", ["event", "status_code"], registry=r)
        self.inflight = Gauge("webhook_inflight_requests", "", registry=r)
        self.circuit = Gauge("webhook_circuit_state", "", ["subscription_id"], registry=r)
        self.lag = Gauge("hookstream_consumer_lag", "", ["group", "topic", "partition"], registry=r)
        self.events = Counter("hookstream_stream_events_total", "", ["event"], registry=r)
        self.emitted = Counter("hookstream_stream_deliveries_emitted_total", "", ["event"], registry=r)
        self.invalid = Counter("hookstream_stream_invalid_events_total", "", ["reason"], registry=r)
        self.stopped = threading.Event()
        self.circuit.labels("sub_open").set(1)
        self.circuit.labels("sub_closed").set(0)
        self.lag.labels("hookstream-delivery", "deliveries", "0").set(42)
        self.lag.labels("hookstream-streams", "events.payment", "0").set(3)
        self.inflight.set(5)

    def tick(self, rnd: random.Random) -> None:
        for tenant in TENANTS:
            for event in EVENTS:
                self.deliveries.labels(event, tenant, rnd.choice(["succeeded"] * 8 + ["failed", "dead"])).inc()
                self.duration.labels(event, tenant).observe(rnd.expovariate(1 / 0.3))
                self.retries.labels(event, tenant, rnd.choice(["timeout", "server_error", "connection_error", "rate_limited", "tls_error", "protocol_error"])).inc()
                self.http_status.labels(event, rnd.choice(["200", "204", "500", "429"])).inc()
                self.events.labels(event).inc()
                self.emitted.labels(event).inc(2)
        self.invalid.labels("schema").inc()

    def run(self) -> None:
        rnd = random.Random(7)
        while not self.stopped.wait(0.1):
            self.tick(rnd)


@pytest.fixture
def workers():
    fake = FakeWorkers()
    server, _thread = start_http_server(0, addr="127.0.0.1", registry=fake.registry)
    ticker = threading.Thread(target=fake.run, daemon=True)
    ticker.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        fake.stopped.set()
        ticker.join(5)
        server.shutdown()
        server.server_close()


@pytest.fixture
def prometheus(workers):
    if find_tool("prometheus") is None:
        pytest.skip(f"prometheus is not installed ({PROMETHEUS_PACKAGE})")
    with running_prometheus({"hookstream-delivery": [workers]}, scrape_interval="1s") as prom:
        prom.wait_for_scrapes(3)
        yield prom


def test_every_dashboard_query_returns_data_except_for_a_metric_not_exported(prometheus):
    dashboard = load_dashboard()
    empty = {q.name for q in panels_without_data(prometheus.url, dashboard)}
    tenants = variable_values(prometheus.url, dashboard)["tenant_id"]
    one_tenant = {q.name for q in panels_without_data(prometheus.url, dashboard, variables={"tenant_id": "globex"})}
    unknown_tenant = {q.name for q in panels_without_data(prometheus.url, dashboard, variables={"tenant_id": "nobody"})}

    queries = panel_queries(dashboard)
    dead_letter_panels = {q.name for q in queries if "webhook_dead_letters_total" in names_in(q.expr).metrics}
    assert len(dead_letter_panels) == 2
    assert empty == dead_letter_panels
    assert sorted(tenants) == sorted(TENANTS)
    assert one_tenant == dead_letter_panels
    # the tenant filter really filters: panels on tenant-labelled series go empty, the rest do not
    tenant_panels = {q.name for q in queries if 'tenant_id=~"$tenant_id"' in q.expr}
    assert unknown_tenant == tenant_panels | dead_letter_panels
    assert len(tenant_panels) >= 8
