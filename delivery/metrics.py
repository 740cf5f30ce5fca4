"""The delivery worker's Prometheus metrics. Names, labels and buckets are a contract: users'
dashboards, ``ops/`` (the Grafana dashboard, the alert rules) and ``tests/monitoring.py``
(``METRICS``, the series as Prometheus stores them) all depend on exactly these.

- ``webhook_deliveries_total{event,tenant_id,status}`` one per attempt made; ``status`` is
  ``succeeded`` (2xx), ``failed`` (retried later) or ``dead`` (this attempt dead-lettered it).
  ``succeeded + dead`` is the number of deliveries finished.
- ``webhook_delivery_duration_seconds{event,tenant_id}`` attempt duration, buckets
  0.1, 0.5, 1, 2, 5, 10 (and +Inf).
- ``webhook_retries_total{event,tenant_id,reason}`` a retry scheduled after a failed attempt;
  ``reason``: timeout, server_error, connection_error, rate_limited, tls_error, protocol_error.
- ``webhook_delivery_http_status{event,status_code}`` responses by HTTP status: a counter, so
  Prometheus stores it as ``webhook_delivery_http_status_total`` (prometheus_client appends
  ``_total`` to every counter), which is what ``ops/`` queries.
- ``webhook_dead_letters_total{event,tenant_id,reason}`` records sent to the dead-letter topic;
  ``reason``: retries_exhausted, client_error, redirect, gone, malformed, no_valid_secret, invalid_secret,
  tenant_mismatch (a record naming another tenant's subscription: never sent), url_refused,
  invalid_header, internal_error (a bug the record triggered), too_large (set aside by
  reference) (``unknown`` event and tenant for a record too malformed to name them).
- ``webhook_inflight_requests`` HTTP requests in flight in this worker process.
- ``webhook_circuit_state{subscription_id}`` circuit breaker per endpoint: 0 closed, 1 open,
  2 half-open. A series per endpoint the worker holds a breaker for: it goes when the breaker
  is forgotten (closed and idle for a window, open and unasked for an hour, or the subscription
  deleted or disabled), so the series follow the recent endpoints, not every one ever seen.
- ``hookstream_consumer_lag{group,topic,partition}`` from ``hookstream.metrics.LagMonitor``.

hookstream's own operational counters (free to evolve, not on the dashboard):

- ``hookstream_delivery_skipped_total{reason}`` records sent on without an attempt
  (``breaker_open``, ``endpoint_busy``, ``subscription_unknown``).
- ``hookstream_delivery_dropped_total{reason}`` records of deleted or disabled subscriptions.
- ``hookstream_delivery_endpoint_gone_total{tenant_id,subscription_id}`` 410 Gone answers: the
  receiver asks to be disabled (an operator or automation acts on it; see ``delivery.worker``).
  Its series goes with the endpoint's breaker, like ``webhook_circuit_state``'s.
- ``hookstream_delivery_malformed_total`` records that could not be read, set aside.
- ``hookstream_attempt_log_rejected_total{reason}`` attempt rows the database refused for good
  (``data``, ``integrity``, ``encoding``), set aside in ``delivery_attempts_rejected``.
- ``hookstream_attempt_log_write_errors_total`` failed tries to write the attempt log while the
  database was unavailable (each retried).
- ``hookstream_attempt_log_outage_seconds`` how long the attempt log has been unwritable (0 when
  it is fine); at ``HOOKSTREAM_ATTEMPT_LOG_MAX_OUTAGE`` the worker stops.
- ``hookstream_delivery_internal_errors_total`` records whose handling raised (a bug), dead-lettered.
- ``hookstream_delivery_worker_failures_total{kind}`` infrastructure errors that stopped the
  worker (``kafka``, ``attempt_log``).
"""

from prometheus_client import Counter, Gauge, Histogram

from hookstream.delivery.outcome import RetryReason

DURATION_BUCKETS = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0)

# One per attempt, by its result (the exposed name keeps "deliveries": dashboards and alerts use it).
ATTEMPT_RESULTS = Counter(
    "webhook_deliveries_total", "Delivery attempts by result.", ["event", "tenant_id", "status"]
)
DURATION = Histogram(
    "webhook_delivery_duration_seconds", "Duration of delivery attempts.", ["event", "tenant_id"],
    buckets=DURATION_BUCKETS,
)
RETRIES = Counter("webhook_retries_total", "Retries scheduled after a failed attempt.", ["event", "tenant_id", "reason"])
HTTP_STATUS = Counter("webhook_delivery_http_status", "Responses by HTTP status.", ["event", "status_code"])
DEAD_LETTERS = Counter(
    "webhook_dead_letters_total", "Records sent to the dead-letter topic.", ["event", "tenant_id", "reason"]
)
IN_FLIGHT = Gauge("webhook_inflight_requests", "HTTP requests in flight in this worker.")
BREAKER_STATE = Gauge(
    "webhook_circuit_state", "Circuit breaker per endpoint: 0 closed, 1 open, 2 half-open.", ["subscription_id"]
)
SKIPPED = Counter("hookstream_delivery_skipped_total", "Records sent on to a retry tier without an attempt.", ["reason"])
DROPPED = Counter("hookstream_delivery_dropped_total", "Records of deleted or disabled subscriptions.", ["reason"])
GONE = Counter(
    "hookstream_delivery_endpoint_gone_total", "410 Gone answers (the receiver asks to be disabled).",
    ["tenant_id", "subscription_id"],
)
MALFORMED = Counter("hookstream_delivery_malformed_total", "Delivery records that could not be read.")
ATTEMPT_LOG_REJECTED = Counter(
    "hookstream_attempt_log_rejected_total", "Attempt rows the database refused, set aside.", ["reason"]
)
ATTEMPT_LOG_WRITE_ERRORS = Counter(
    "hookstream_attempt_log_write_errors_total", "Failed tries to write the attempt log (retried)."
)
ATTEMPT_LOG_OUTAGE = Gauge(
    "hookstream_attempt_log_outage_seconds", "How long the attempt log has been unwritable (0: writable)."
)
INTERNAL_ERRORS = Counter(
    "hookstream_delivery_internal_errors_total", "Records whose handling raised in the worker (dead-lettered as internal_error)."
)
WORKER_FAILURES = Counter(
    "hookstream_delivery_worker_failures_total", "Infrastructure errors that stopped the delivery worker.", ["kind"]
)


# --------------------------------------------------------------------------- the worker's caches of labelled children
SERIES_TTL = 300.0  # seconds an (event, tenant) series lookup is cached unused


class Series:
    """The labelled metric children of one (event, tenant), looked up once: ``labels()`` is a
    locked dict lookup, and the hot path would otherwise pay it four times per delivery."""

    __slots__ = ("succeeded", "failed", "dead", "duration", "retries")

    def __init__(self, event: str, tenant: str) -> None:
        self.succeeded = ATTEMPT_RESULTS.labels(event, tenant, "succeeded")
        self.failed = ATTEMPT_RESULTS.labels(event, tenant, "failed")
        self.dead = ATTEMPT_RESULTS.labels(event, tenant, "dead")
        self.duration = DURATION.labels(event, tenant)
        self.retries = {str(r): RETRIES.labels(event, tenant, str(r)) for r in RetryReason}


class MetricCaches:
    """The delivery worker's part that keeps the labelled children it uses, and no more than the
    recent ones (a part of ``delivery.worker.Worker``: its methods run on the worker's event loop,
    called per record by ``delivery.handler``, so they are methods of the worker itself, not of
    another object, and cost the hot path no extra call or lookup).

    State it owns: ``_series``/``_series_old`` ((event, tenant) -> ``Series``, two generations),
    ``_statuses``, ``_skip_series``, ``_breaker_shown``, ``_gone_tenant``. It reads
    ``self.deliverer.breakers``."""

    def _init_metric_caches(self, now: float) -> None:
        self._breaker_shown: dict[str, int] = {}
        self._gone_tenant: dict[str, str] = {}  # subscription -> tenant, of the GONE series made
        # (event, tenant) -> its series; entries unused for a whole SERIES_TTL move to _series_old
        # and are dropped one SERIES_TTL later (two generations: no timestamp per delivery)
        self._series: dict[tuple[str, str], Series] = {}
        self._series_old: dict[tuple[str, str], Series] = {}
        self._series_aged_at = now
        self._statuses: dict[tuple[str, int], object] = {}
        self._skip_series: dict[str, object] = {}

    def _skipped(self, reason: str):
        child = self._skip_series.get(reason)
        if child is None:
            child = self._skip_series[reason] = SKIPPED.labels(reason)
        return child

    def _status_series(self, event: str, status: int):
        child = self._statuses.get((event, status))
        if child is None:
            child = self._statuses[(event, status)] = HTTP_STATUS.labels(event, str(status))
        return child

    def _show_breaker(self, endpoint: str) -> None:
        breaker = self.deliverer.breakers.get(endpoint)  # none: no attempt was ever asked for
        if breaker is None:
            return
        state = int(breaker.state)
        if self._breaker_shown.get(endpoint) != state:
            self._breaker_shown[endpoint] = state
            BREAKER_STATE.labels(endpoint).set(state)

    def _forget_series(self, endpoint: str) -> None:
        """The deliverer forgot the endpoint (idle, deleted or disabled): drop its series too, so
        the registry holds the recent endpoints' series, not every one ever seen. The gauge's
        series goes with its breaker (an open one is kept as long as the breaker is)."""
        if self._breaker_shown.pop(endpoint, None) is not None:
            BREAKER_STATE.remove(endpoint)
        tenant = self._gone_tenant.pop(endpoint, None)
        if tenant is not None:
            GONE.remove(tenant, endpoint)

    def _new_series(self, event: str, tenant: str) -> Series:
        key = (event, tenant)
        series = self._series_old.pop(key, None) or Series(event, tenant)
        self._series[key] = series
        return series

    def _age_series(self, now: float) -> None:
        """Drop the (event, tenant) series lookups unused for a whole SERIES_TTL. Only the cache:
        the registry keeps per-tenant counters, so they never restart from zero for a tenant whose
        traffic is sparse (their number is tenants x event types, not endpoints)."""
        if now - self._series_aged_at >= SERIES_TTL:
            self._series_old, self._series = self._series, {}
            self._series_aged_at = now
