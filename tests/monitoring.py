"""What the monitoring tests share: the metrics the workers export, the Grafana dashboard's
queries, and a small PromQL reader.

``METRICS`` is the contract between the workers and ``ops/``: every series name a worker
exposes (as Prometheus stores it: prometheus_client adds ``_total`` to a counter's name, and a
histogram becomes ``_bucket``/``_sum``/``_count``) with its labels. The dashboard and the alert
rules may only use these names; ``tests/integration/test_prometheus_live.py`` shows that a
prometheus_client process exposing exactly these names answers every dashboard query.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS_DIR = ROOT / "ops" / "prometheus"
GRAFANA_DIR = ROOT / "ops" / "grafana"
DASHBOARD = GRAFANA_DIR / "dashboards" / "hookstream.json"

PROMETHEUS_PACKAGE = "Debian package 'prometheus'; `make test` installs it as root"

# Labels Prometheus attaches to every scraped series.
TARGET_LABELS = ("job", "instance")

DURATION_BUCKETS = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0)

METRICS: dict[str, tuple[str, ...]] = {
    # delivery worker (issue 7)
    "webhook_deliveries_total": ("event", "tenant_id", "status"),  # status: succeeded, failed, dead
    "webhook_delivery_duration_seconds_bucket": ("event", "tenant_id", "le"),
    "webhook_delivery_duration_seconds_sum": ("event", "tenant_id"),
    "webhook_delivery_duration_seconds_count": ("event", "tenant_id"),
    "webhook_retries_total": ("event", "tenant_id", "reason"),  # timeout, server_error, connection_error, rate_limited, tls_error, protocol_error
    "webhook_delivery_http_status_total": ("event", "status_code"),  # Counter("webhook_delivery_http_status")
    "webhook_dead_letters_total": ("event", "tenant_id", "reason"),
    "webhook_inflight_requests": (),
    "webhook_circuit_state": ("subscription_id",),  # 0 closed, 1 open, 2 half-open
    # every worker (hookstream/metrics.py)
    "hookstream_consumer_lag": ("group", "topic", "partition"),
    # stream worker (streams/app.py)
    "hookstream_stream_events_total": ("event",),
    "hookstream_stream_deliveries_emitted_total": ("event",),
    "hookstream_stream_invalid_events_total": ("reason",),
    # Prometheus' own, per scrape target
    "up": (),
}


def find_tool(name: str) -> str | None:
    """``promtool`` or ``prometheus`` on PATH (Debian puts both in /usr/bin)."""
    return shutil.which(name)


# --------------------------------------------------------------------------- the dashboard


@dataclasses.dataclass(frozen=True)
class PanelQuery:
    panel_id: int
    title: str
    ref_id: str
    expr: str  # as written in the dashboard, Grafana variables included

    @property
    def name(self) -> str:
        return f"{self.title} [{self.ref_id}]"


def load_dashboard(path: Path = DASHBOARD) -> dict[str, Any]:
    return json.loads(path.read_text())


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel that is not a row, including those inside collapsed rows."""
    out = []
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            out += panel.get("panels", [])
        else:
            out.append(panel)
    return out


def panel_queries(dashboard: dict[str, Any]) -> list[PanelQuery]:
    return [
        PanelQuery(panel["id"], panel["title"], target["refId"], target["expr"])
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


# Grafana's built-in interval variables, as the dashboard's queries use them, and what to put in
# their place to run a query outside Grafana. Any other variable is the dashboard's own.
def to_promql(expr: str, *, rate_interval: str = "1m", range_: str = "1h", variables: dict[str, str] | None = None) -> str:
    """The expression Grafana would send, with its variables replaced (``$tenant_id`` -> ``.*``)."""
    values = {"__rate_interval": rate_interval, "__interval": rate_interval, "__range": range_, "tenant_id": ".*"}
    values.update(variables or {})

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return values.get(name, match.group(0))  # unknown ones stay, and fail the syntax check

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", replace, expr)


# --------------------------------------------------------------------------- a PromQL reader

# Enough of PromQL's lexer to say which series names and label names an expression uses, for
# checking them against METRICS (promtool 2.42 has no AST output). The syntax itself is
# promtool's job: see test_grafana_dashboard.py.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_SELECTOR = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)?\s*\{([^}]*)\}")
_MATCHER = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')\s*,?")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_TOKEN = re.compile(r"\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?:ms|[smhdwy])?|[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
             "offset", "inf", "nan", "Inf", "NaN"}


@dataclasses.dataclass
class ExprNames:
    metrics: set[str]
    # (metric or "" for a selector without a name, label) for every label matcher
    matchers: list[tuple[str, str, str, str]]  # (metric, label, op, value)
    grouping_labels: set[str]


def names_in(expr: str) -> ExprNames:
    """The series names, label matchers and grouping labels of a PromQL expression."""
    strings: list[str] = []

    def keep(match: re.Match[str]) -> str:
        strings.append(match.group(0))
        return f'"\x00{len(strings) - 1}\x00"'

    text = _STRING.sub(keep, expr)
    matchers: list[tuple[str, str, str, str]] = []
    metrics: set[str] = set()

    def selector(match: re.Match[str]) -> str:
        metric = match.group(1) or ""
        if metric in _KEYWORDS:  # `by {` cannot happen, but `or {` could
            metric = ""
        body = match.group(2)
        for label, op, value in _MATCHER.findall(body):
            index = re.fullmatch(r'"\x00(\d+)\x00"', value)
            raw = strings[int(index.group(1))] if index else value
            matchers.append((metric, label, op, raw[1:-1]))
        if metric:
            metrics.add(metric)
        return " " + metric + " "

    text = _SELECTOR.sub(selector, text)
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    grouping: set[str] = set()
    for _keyword, labels in _GROUPING.findall(text):
        grouping |= {label.strip() for label in labels.split(",") if label.strip()}
    text = _GROUPING.sub(" ", text)
    for token in _TOKEN.finditer(text):
        word = token.group(0)
        if word[0].isdigit() or word in _KEYWORDS:
            continue
        if text[token.end():].lstrip().startswith("("):  # a function or an aggregation
            continue
        metrics.add(word)
    return ExprNames(metrics, matchers, grouping)
