"""The delivery metrics dashboards query: exact names, labels and buckets."""

from prometheus_client import REGISTRY, generate_latest

from hookstream.delivery import metrics as m


def _families():
    return {f.name: f for f in REGISTRY.collect()}


def test_names_labels_and_buckets_are_exactly_the_contract():
    m.ATTEMPT_RESULTS.labels("invoice.sent", "acme", "succeeded").inc()
    m.DURATION.labels("invoice.sent", "acme").observe(0.3)
    m.RETRIES.labels("invoice.sent", "acme", "timeout").inc()
    m.HTTP_STATUS.labels("invoice.sent", "200").inc()
    text = generate_latest().decode()
    assert 'webhook_deliveries_total{event="invoice.sent",status="succeeded",tenant_id="acme"}' in text
    assert 'webhook_retries_total{event="invoice.sent",reason="timeout",tenant_id="acme"}' in text
    assert 'webhook_delivery_http_status_total{event="invoice.sent",status_code="200"}' in text
    buckets = [line.split('le="')[1].split('"')[0] for line in text.splitlines()
               if line.startswith("webhook_delivery_duration_seconds_bucket") and 'tenant_id="acme"' in line]
    assert buckets == ["0.1", "0.5", "1.0", "2.0", "5.0", "10.0", "+Inf"]
    assert m.ATTEMPT_RESULTS._labelnames == ("event", "tenant_id", "status")
    assert m.DURATION._labelnames == ("event", "tenant_id")
    assert m.RETRIES._labelnames == ("event", "tenant_id", "reason")
    assert m.HTTP_STATUS._labelnames == ("event", "status_code")


def test_retry_reasons_are_the_labels_dashboards_expect():
    from hookstream.delivery.outcome import RetryReason

    assert {str(r) for r in RetryReason} == {
        "timeout", "server_error", "connection_error", "rate_limited", "tls_error", "protocol_error"
    }


def test_every_series_matches_the_monitoring_contract():
    """tests/monitoring.METRICS is what ops/ (dashboard, alerts) may query: the worker exports
    every delivery series there, with exactly its labels, and no other webhook_* series."""
    from tests.monitoring import METRICS

    m.ATTEMPT_RESULTS.labels("e", "t", "dead").inc()
    m.DURATION.labels("e", "t").observe(1.0)
    m.RETRIES.labels("e", "t", "timeout").inc()
    m.HTTP_STATUS.labels("e", "500").inc()
    m.DEAD_LETTERS.labels("e", "t", "client_error").inc()
    m.IN_FLIGHT.set(0)
    m.BREAKER_STATE.labels("sub_1").set(0)
    exported = {}
    for family in REGISTRY.collect():
        for sample in family.samples:
            if sample.name.startswith("webhook_") and not sample.name.endswith("_created"):
                exported[sample.name] = tuple(sorted(sample.labels))
    wanted = {name: tuple(sorted(labels)) for name, labels in METRICS.items() if name.startswith("webhook_")}
    assert exported == wanted
