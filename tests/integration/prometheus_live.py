"""A real Prometheus (Debian's ``prometheus`` binary) for tests, and the dashboard's queries run on it.

    with running_prometheus({"hookstream-delivery": ["127.0.0.1:9465"]}) as prom:
        prom.wait_for_scrapes(3)
        assert panels_without_data(prom.url) == []

``running_prometheus`` writes a scrape config for the given targets (1 s interval by default)
into a temporary dir, starts Prometheus on a free loopback port with its data there, waits until
``/-/ready`` answers, and stops it (and removes the dir) on exit. ``panels_without_data`` sends
every query of ops/grafana/dashboards/hookstream.json through ``/api/v1/query``, with Grafana's
variables replaced, and returns those that came back empty: a metric the worker does not export,
a label it does not set, or a histogram with no observations in the window.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.monitoring import PROMETHEUS_PACKAGE, PanelQuery, find_tool, load_dashboard, panel_queries, to_promql


class PrometheusUnavailable(RuntimeError):
    """The prometheus binary is not installed (tests skip on it, naming the package)."""


@dataclasses.dataclass
class PrometheusServer:
    url: str  # http://127.0.0.1:<port>
    workdir: Path  # config, data (data/) and log (prometheus.log)
    jobs: dict[str, list[str]]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return query(self.url, expr)

    def wait_for_scrapes(self, count: int = 3, *, timeout: float = 30.0) -> None:
        """Until every target has been scraped successfully ``count`` times (``rate`` needs 2).

        Prometheus 2.x hands discovered targets to the scrape loop after about 5 s, so the
        first scrape comes some 6 s after start whatever the interval.
        """
        targets = sum(len(t) for t in self.jobs.values())
        expr = f"count(sum_over_time(up[10m]) >= {count})"  # up is 1 per successful scrape
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if result and int(float(result[0]["value"][1])) >= targets:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"targets not scraped {count} times within {timeout}s: {self.query('up')}; log: {self.log()}")
            time.sleep(0.2)

    def log(self) -> str:
        path = self.workdir / "prometheus.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def query(url: str, expr: str, *, timeout: float = 10.0) -> list[dict[str, Any]]:
    """An instant query's result vector (``[{"metric": {...}, "value": [t, "v"]}, ...]``)."""
    r = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=timeout)
    body = r.json()
    if r.status_code != 200 or body.get("status") != "success":
        raise AssertionError(f"query {expr!r} failed: {r.status_code} {body.get('error', r.text[:500])}")
    result = body["data"]
    if result["resultType"] == "scalar":
        return [{"metric": {}, "value": result["result"]}]
    return result["result"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape_config(jobs: Mapping[str, Sequence[str]], *, scrape_interval: str, rule_files: Sequence[str] = ()) -> dict:
    return {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval, "scrape_timeout": scrape_interval},
        "rule_files": list(rule_files),
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": list(targets)}]} for job, targets in jobs.items()],
    }


@contextlib.contextmanager
def running_prometheus(
    jobs: Mapping[str, Sequence[str]],
    *,
    scrape_interval: str = "1s",
    rule_files: Sequence[Path] = (),
    timeout: float = 30.0,
) -> Iterator[PrometheusServer]:
    """Prometheus scraping ``jobs`` (job name -> ``host:port`` targets) until the block ends.

    ``rule_files`` (e.g. ops/prometheus/alerts.yml) are copied next to the config and loaded.
    """
    binary = find_tool("prometheus")
    if binary is None:
        raise PrometheusUnavailable(f"prometheus is not installed ({PROMETHEUS_PACKAGE})")
    workdir = Path(tempfile.mkdtemp(prefix="hookstream-prometheus-"))
    try:
        names = []
        for path in rule_files:
            shutil.copy(path, workdir / path.name)
            names.append(path.name)
        config = workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump(scrape_config(jobs, scrape_interval=scrape_interval, rule_files=names)))
        port = _free_port()
        server = PrometheusServer(f"http://127.0.0.1:{port}", workdir, {k: list(v) for k, v in jobs.items()})
        with open(workdir / "prometheus.log", "ab") as log:
            proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--storage.tsdb.retention.time=1h",
                    "--log.level=warn",
                ],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=workdir,
            )
        try:
            _wait_ready(server, proc, timeout)
            yield server
        finally:
            _stop(proc)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_ready(server: PrometheusServer, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"prometheus exited with {proc.returncode}: {server.log()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.url}/-/ready", timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"prometheus not ready within {timeout}s: {server.log()}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _has_data(result: list[dict[str, Any]], *, nan_is_data: bool) -> bool:
    values = [float(sample["value"][1]) for sample in result]
    return bool(values) and (nan_is_data or any(not math.isnan(v) for v in values))


def panels_without_data(
    url: str,
    dashboard: dict[str, Any] | None = None,
    *,
    variables: Mapping[str, str] | None = None,
    rate_interval: str = "1m",
    nan_is_data: bool = False,
) -> list[PanelQuery]:
    """The dashboard's queries that return nothing on the Prometheus at ``url``.

    ``variables`` fills the dashboard's own variables (``tenant_id`` defaults to ``.*``, All).
    A result of only NaN (``histogram_quantile`` over a window without observations) counts as
    no data unless ``nan_is_data``.
    """
    empty = []
    for panel in panel_queries(dashboard or load_dashboard()):
        expr = to_promql(panel.expr, rate_interval=rate_interval, variables=dict(variables or {}))
        if not _has_data(query(url, expr), nan_is_data=nan_is_data):
            empty.append(panel)
    return empty


def variable_values(url: str, dashboard: dict[str, Any] | None = None) -> dict[str, list[str]]:
    """What each ``label_values(metric, label)`` variable of the dashboard would offer."""
    out = {}
    for var in (dashboard or load_dashboard())["templating"]["list"]:
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        inner = query.removeprefix("label_values(").removesuffix(")")
        metric, _, label = (part.strip() for part in inner.rpartition(","))
        r = httpx.get(f"{url}/api/v1/label/{label}/values", params={"match[]": metric}, timeout=10)
        out[var["name"]] = r.json()["data"]
    return out
