"""``hookstream bench --quick``, end to end: a fresh broker, the real workers, the receiver.

A smoke test of the benchmark itself: the report has the documented shape, deliveries went
through, and no sampled signature failed to verify. No speed thresholds: figures depend on the
machine and on what else it runs (``make bench`` runs the full form; docs/benchmarks.md).
The Celery baseline runs where ``redis-server`` and the ``bench`` extra are installed.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from hookstream.shell.bench import baseline_available

pytestmark = [pytest.mark.bench, pytest.mark.timeout(420)]


def _free_port_block(size: int = 2) -> int:
    """A port p with p .. p+size-1 free (broker, controller)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + size > 65535:
            continue
        socks = []
        try:
            for p in range(port, port + size):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return port
    raise RuntimeError("no free block of ports")


def test_quick_bench_reports_every_figure(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKSTREAM_")}
    cmd = [sys.executable, "-m", "hookstream", "bench", "--quick", "--json",
           "--port", str(_free_port_block()), "--state-dir", str(tmp_path / "bench")]
    with_baseline = baseline_available() is None
    if not with_baseline:
        cmd.append("--no-baseline")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)

    for key in ("deliveries_per_s", "rate", "latency_ms", "fanout", "isolation", "baseline",
                "ratio_vs_baseline", "cpu_s_per_1000_deliveries", "machine", "signatures"):
        assert key in report, key
    assert report["deliveries_per_s"] > 0
    # the warm-up ran through the whole pipeline before the measured scenarios
    assert report["warmup"]["events"] == 1000 and report["warmup"]["deliveries_per_s"] > 0
    assert report["throughput"]["complete"]
    assert set(report["latency_ms"]) >= {"p50", "p95", "p99"}
    assert report["latency"]["stages"]["matched"] > 0  # the split found the stream worker's records (read_range)
    assert report["fanout"]["deliveries"] > 0 and report["fanout"]["endpoints"] == 50
    iso = report["isolation"]
    assert iso["with_hung"]["hung_requests"] > 0
    assert set(iso["without_hung"]["latency_ms"]) >= {"p50", "p95", "p99"}
    assert {"streams-1", "delivery-1", "kafka", "receiver"} <= set(report["cpu_s_per_1000_deliveries"])
    assert report["signatures"]["checked"] > 0
    assert report["signatures"]["failures"] == 0

    baseline = report["baseline"]
    assert set(baseline) >= {"name", "deliveries_per_s", "latency_ms"}
    if with_baseline:
        assert baseline["deliveries_per_s"] > 0
        assert report["ratio_vs_baseline"] > 0
    else:
        assert baseline["name"] is None and baseline["skipped"]
