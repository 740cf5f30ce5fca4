"""ops/grafana: every dashboard query is PromQL that promtool accepts, uses only the metrics and
labels the workers export, honours the tenant filter; the provisioning points where compose mounts.
"""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.monitoring import (
    DASHBOARD,
    GRAFANA_DIR,
    METRICS,
    TARGET_LABELS,
    load_dashboard,
    names_in,
    panel_queries,
    panels,
    to_promql,
)

DASHBOARD_DOC = load_dashboard()
QUERIES = panel_queries(DASHBOARD_DOC)


def check_as_rules(promtool: str, tmp_path: Path, exprs: dict[str, str]) -> subprocess.CompletedProcess:
    """promtool parses expressions only inside rule files: one recording rule per expression."""
    rules = [{"record": f"dashboard:{name}", "expr": expr} for name, expr in exprs.items()]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    return subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)


def test_every_panel_query_is_valid_promql(promtool, tmp_path):
    assert len(QUERIES) >= 20
    exprs = {f"panel{q.panel_id}_{q.ref_id}": to_promql(q.expr) for q in QUERIES}
    leftover = {name: e for name, e in exprs.items() if "$" in e}
    assert not leftover, f"Grafana variables nobody replaces: {leftover}"
    r = check_as_rules(promtool, tmp_path, exprs)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in r.stdout


def test_the_syntax_check_catches_a_broken_query(promtool, tmp_path):
    r = check_as_rules(promtool, tmp_path, {"ok": "sum(up)", "broken": "sum by (le) (rate(webhook_retries_total[5m])"})
    assert r.returncode != 0
    assert "unclosed left parenthesis" in r.stdout + r.stderr


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.name)
def test_every_query_uses_only_exported_metrics_and_their_labels(query):
    found = names_in(query.expr)
    assert found.metrics, "a panel query that reads no metric"
    unknown = found.metrics - set(METRICS)
    assert not unknown, f"not exported by any worker: {unknown}"
    for metric, label, _op, _value in found.matchers:
        assert label in METRICS[metric] + TARGET_LABELS, f"{metric} has no label {label!r}"
    labels = set(TARGET_LABELS).union(*(METRICS[m] for m in found.metrics))
    assert found.grouping_labels <= labels, f"grouped by labels no series has: {found.grouping_labels - labels}"


def test_the_dashboard_shows_every_exported_metric():
    used = set().union(*(names_in(q.expr).metrics for q in QUERIES))
    not_shown = {
        name for name in METRICS
        if name not in used and not name.endswith(("_sum", "_count"))  # the histogram is read through _bucket
    }
    assert not not_shown


def test_latency_panel_has_p50_p95_p99_from_the_histogram():
    (panel,) = [p for p in panels(DASHBOARD_DOC) if p["title"] == "Delivery latency percentiles"]
    exprs = [t["expr"] for t in panel["targets"]]
    assert [e.split(",")[0] for e in exprs] == [f"histogram_quantile({q}" for q in ("0.5", "0.95", "0.99")]
    assert all("webhook_delivery_duration_seconds_bucket" in e and "by (le)" in e for e in exprs)


def test_tenant_variable_lists_tenants_and_allows_all():
    (var,) = [v for v in DASHBOARD_DOC["templating"]["list"] if v["name"] == "tenant_id"]
    assert var["query"]["query"] == "label_values(webhook_deliveries_total, tenant_id)"
    assert var["multi"] and var["includeAll"] and var["allValue"] == ".*"


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.name)
def test_every_series_with_a_tenant_is_filtered_by_the_tenant_variable(query):
    found = names_in(query.expr)
    filtered = {m for m, label, op, value in found.matchers if label == "tenant_id" and op == "=~" and value == "$tenant_id"}
    for metric in found.metrics:
        if "tenant_id" in METRICS[metric]:
            assert metric in filtered, f"{metric} ignores the tenant filter"


def test_every_panel_and_query_uses_the_provisioned_datasource():
    (source,) = yaml.safe_load((GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert source["type"] == "prometheus"
    for panel in panels(DASHBOARD_DOC):
        assert panel["datasource"] == {"type": "prometheus", "uid": source["uid"]}, panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == source["uid"]


def test_panels_have_unique_ids_and_do_not_overlap():
    every = [p for p in DASHBOARD_DOC["panels"]] + [c for p in DASHBOARD_DOC["panels"] for c in p.get("panels", [])]
    ids = [p["id"] for p in every]
    assert len(ids) == len(set(ids))
    boxes = [(p["title"], p["gridPos"]) for p in every]
    for _title, g in boxes:
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24
    for (a, g), (b, h) in itertools.combinations(boxes, 2):
        apart = g["x"] + g["w"] <= h["x"] or h["x"] + h["w"] <= g["x"] or g["y"] + g["h"] <= h["y"] or h["y"] + h["h"] <= g["y"]
        assert apart, f"{a!r} overlaps {b!r}"


def test_dashboard_provider_loads_the_dashboards_folder():
    (provider,) = yaml.safe_load((GRAFANA_DIR / "provisioning" / "dashboards" / "hookstream.yml").read_text())["providers"]
    assert provider["type"] == "file"
    # docker-compose.yml mounts ops/grafana/dashboards there (test_compose.py checks the mount)
    assert provider["options"]["path"] == "/etc/grafana/dashboards/hookstream"
    assert DASHBOARD.parent.name == "dashboards"


# ------------------------------------------------------------------ the PromQL reader itself


def test_reader_finds_metrics_matchers_and_grouping_labels():
    found = names_in(
        'histogram_quantile(0.95, sum by (le, tenant_id) (rate(webhook_delivery_duration_seconds_bucket'
        '{tenant_id=~"$tenant_id", event!="a,b}"}[5m] offset 1h))) / on() group_left sum(up) > bool 1e3'
        ' or absent_metric_name'
    )
    assert found.metrics == {"webhook_delivery_duration_seconds_bucket", "up", "absent_metric_name"}
    assert found.matchers == [
        ("webhook_delivery_duration_seconds_bucket", "tenant_id", "=~", "$tenant_id"),
        ("webhook_delivery_duration_seconds_bucket", "event", "!=", "a,b}"),
    ]
    assert found.grouping_labels == {"le", "tenant_id"}


def test_reader_reports_a_metric_the_workers_do_not_export():
    found = names_in('sum(rate(webhook_delivery_status_total{tenant_id=~"$tenant_id"}[5m]))')
    assert found.metrics - set(METRICS) == {"webhook_delivery_status_total"}
