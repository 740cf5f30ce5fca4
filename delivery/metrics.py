"""The delivery worker's Prometheus metrics. Names, labels and buckets are a contract: users'
dashboards already query exactly these, so they change only with a migration note.

- ``webhook_deliveries_total{event,tenant_id,status}`` one per attempt made; ``status`` is
  ``succeeded`` (2xx), ``failed`` (retried later) or ``dead`` (this attempt dead-lettered it).
  ``succeeded + dead`` is the number of deliveries finished.
- ``webhook_delivery_duration_seconds{event,tenant_id}`` attempt duration, buckets
  0.1, 0.5, 1, 2, 5, 10 (and +Inf).
- ``webhook_retries_total{event,tenant_id,reason}`` a retry scheduled after a failed attempt;
  ``reason``: timeout, server_error, connection_error, rate_limited.
- ``webhook_delivery_http_status{event,status_code}`` responses by HTTP status. A monotonic
  count kept under this exact name: a prometheus_client ``Counter`` would publish it as
  ``..._total``, which the dashboards do not query, so it is a gauge that only goes up
  (``rate()`` works on it all the same).

hookstream's own operational metrics (free to evolve):

- ``hookstream_delivery_in_flight_requests`` HTTP requests in flight in this process.
- ``hookstream_delivery_circuit_breaker_state{subscription_id}`` 0 closed, 1 open, 2 half-open.
- ``hookstream_delivery_skipped_total{reason}`` records sent on without an attempt
  (``breaker_open``, ``endpoint_busy``, ``subscription_unknown``).
- ``hookstream_delivery_dropped_total{reason}`` records of deleted or disabled subscriptions.
- ``hookstream_delivery_endpoint_gone_total{tenant_id,subscription_id}`` 410 Gone answers: the
  receiver asks to be disabled (an operator or automation acts on it; see the worker docs).
- ``hookstream_delivery_malformed_total`` records that could not be read, set aside.
- ``hookstream_consumer_lag{group,topic,partition}`` from ``hookstream.metrics.LagMonitor``.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

DURATION_BUCKETS = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0)

DELIVERIES = Counter(
    "webhook_deliveries_total", "Delivery attempts by result.", ["event", "tenant_id", "status"]
)
DURATION = Histogram(
    "webhook_delivery_duration_seconds", "Duration of delivery attempts.", ["event", "tenant_id"],
    buckets=DURATION_BUCKETS,
)
RETRIES = Counter("webhook_retries_total", "Retries scheduled after a failed attempt.", ["event", "tenant_id", "reason"])
HTTP_STATUS = Gauge(
    "webhook_delivery_http_status", "Responses by HTTP status (a monotonic count).", ["event", "status_code"]
)
IN_FLIGHT = Gauge("hookstream_delivery_in_flight_requests", "HTTP requests in flight in this worker.")
BREAKER_STATE = Gauge(
    "hookstream_delivery_circuit_breaker_state", "Circuit breaker per endpoint: 0 closed, 1 open, 2 half-open.",
    ["subscription_id"],
)
SKIPPED = Counter("hookstream_delivery_skipped_total", "Records sent on to a retry tier without an attempt.", ["reason"])
DROPPED = Counter("hookstream_delivery_dropped_total", "Records of deleted or disabled subscriptions.", ["reason"])
GONE = Counter(
    "hookstream_delivery_endpoint_gone_total", "410 Gone answers (the receiver asks to be disabled).",
    ["tenant_id", "subscription_id"],
)
MALFORMED = Counter("hookstream_delivery_malformed_total", "Delivery records that could not be read.")
