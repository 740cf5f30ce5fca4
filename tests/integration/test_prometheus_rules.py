"""ops/prometheus with the real promtool: the configs and rules load, the alert unit tests pass,
and those unit tests have teeth (an alert that never fires, or always fires, fails them)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.monitoring import METRICS, PROMETHEUS_DIR, names_in

ALERTS = PROMETHEUS_DIR / "alerts.yml"
ALERTS_TEST = PROMETHEUS_DIR / "alerts_test.yml"
CONFIGS = [PROMETHEUS_DIR / "prometheus.yml", PROMETHEUS_DIR / "prometheus.compose.yml"]


def run(promtool: str, *args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([promtool, *map(str, args)], capture_output=True, text=True, timeout=60, cwd=cwd)


def alert_rules() -> list[dict]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def test_alert_rules_load(promtool):
    r = run(promtool, "check", "rules", ALERTS)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in r.stdout


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_prometheus_config_loads_with_its_rules(promtool, config):
    r = run(promtool, "check", "config", config)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS: 1 rule files found" in r.stdout


def test_alert_unit_tests_pass(promtool):
    r = run(promtool, "test", "rules", ALERTS_TEST)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


def test_the_issue_asks_for_these_alerts():
    names = {rule["alert"] for rule in alert_rules()}
    assert names == {
        "WebhookDeliveryFailureRatioHigh",
        "WebhookDeliveryLatencyHigh",
        "WebhookDeadLettersGrowing",
        "WebhookEndpointCircuitOpen",
        "HookstreamConsumerLagGrowing",
        "HookstreamWorkerDown",
    }


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_every_alert_waits_has_a_severity_and_explains_itself(rule):
    assert re.fullmatch(r"\d+m", rule["for"]), "a `for:` in minutes keeps one bad scrape from paging"
    assert rule["labels"]["severity"] in {"critical", "warning"}
    assert rule["annotations"]["summary"].strip() and rule["annotations"]["description"].strip()


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_every_alert_uses_only_metrics_the_workers_export(rule):
    found = names_in(rule["expr"])
    assert found.metrics and found.metrics <= set(METRICS), found.metrics - set(METRICS)
    for metric, label, _op, _value in found.matchers:
        assert label in METRICS[metric] + ("job", "instance"), f"{metric} has no label {label}"


def cases_by_alert() -> dict[str, list[bool]]:
    """Per alert, for each evaluation in alerts_test.yml: does it expect the alert to fire?"""
    cases: dict[str, list[bool]] = {}
    for test in yaml.safe_load(ALERTS_TEST.read_text())["tests"]:
        for case in test["alert_rule_test"]:
            cases.setdefault(case["alertname"], []).append(bool(case["exp_alerts"]))
    return cases


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_every_alert_is_tested_firing_and_silent(rule):
    expectations = cases_by_alert().get(rule["alert"], [])
    assert True in expectations, "no case where it fires"
    assert False in expectations, "no case where it stays silent"


def run_tests_against(promtool: str, tmp_path: Path, change: str, expr: str | None) -> subprocess.CompletedProcess:
    """alerts_test.yml against a copy of alerts.yml where alert ``change`` is removed or rewritten."""
    doc = yaml.safe_load(ALERTS.read_text())
    for group in doc["groups"]:
        if expr is None:
            group["rules"] = [r for r in group["rules"] if r["alert"] != change]
        for rule in group["rules"]:
            if rule["alert"] == change:
                rule["expr"] = expr
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
    shutil.copy(ALERTS_TEST, tmp_path / "alerts_test.yml")
    return run(promtool, "test", "rules", "alerts_test.yml", cwd=tmp_path)


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_unit_tests_fail_when_an_alert_never_fires(promtool, tmp_path, rule):
    r = run_tests_against(promtool, tmp_path, rule["alert"], expr=None)
    assert r.returncode != 0
    assert f"alertname: {rule['alert']}," in r.stdout + r.stderr


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_unit_tests_fail_when_an_alert_always_fires(promtool, tmp_path, rule):
    r = run_tests_against(promtool, tmp_path, rule["alert"], expr="vector(1)")
    assert r.returncode != 0
    # caught by a case that expects silence, not only by the firing case's labels
    silent_case = re.compile(rf"alertname: {rule['alert']}, time: \S+, \s*exp:\[\],")
    assert silent_case.search(r.stdout + r.stderr), r.stdout + r.stderr
