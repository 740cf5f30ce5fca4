"""`hookstream dev up --demo`: the whole pipeline as real processes, the 12 demo events delivered,
and everything it started gone after Ctrl-C or `dev down`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.conftest import _free_ports
from tests.integration.test_streams_worker import free_port


def _env(hs_env):
    return dict(hs_env)


def _port_block(size: int) -> int:
    """A port p with p .. p+size-1 free (the delivery workers' consecutive metrics ports)."""
    return _free_ports(size)


def _ports(delivery_workers: int = 1):
    return ["--delivery-workers", str(delivery_workers),
            "--streams-metrics-port", str(free_port()), "--delivery-metrics-port", str(_port_block(delivery_workers)),
            "--receiver-port", str(free_port()), "--api-port", str(free_port())]


def _valid_lines(log: Path) -> set[str]:
    if not log.exists():
        return set()
    return {m.group(1) for m in re.finditer(r"(msg_[0-9a-f]+)\s+\S+\s+tenant=demo\s+valid 2\d\d", log.read_text())}


def _pids_alive(pids) -> list[int]:
    alive = []
    for pid in pids:
        try:
            os.kill(pid, 0)
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            if stat != "Z":
                alive.append(pid)
        except (ProcessLookupError, FileNotFoundError):
            pass
    return alive


def hs(env, *args, timeout=120):
    return subprocess.run([sys.executable, "-m", "hookstream", *args], env=env, capture_output=True, text=True, timeout=timeout)


def test_detached_demo_delivers_all_12_events_and_down_stops_everything(hs_env):
    env = _env(hs_env)
    up = hs(env, "dev", "up", "--demo", "--detach", *_ports(delivery_workers=2), timeout=180)
    assert up.returncode == 0, up.stdout + up.stderr
    status = hs(env, "dev", "status", "--json")
    assert status.returncode == 0, status.stdout
    doc = json.loads(status.stdout)
    assert doc["bootstrap"] == env["HOOKSTREAM_KAFKA_BOOTSTRAP"]
    names = [p["name"] for p in doc["processes"]]
    assert names == ["receiver", "streams-1", "delivery-1", "delivery-2", "api"]
    assert all(p["alive"] for p in doc["processes"])
    assert all(p["metrics_url"] for p in doc["processes"] if p["name"] not in ("receiver", "api"))
    # two delivery workers, each its own process on the next metrics port, both answering, both scraped
    d1, d2 = [p for p in doc["processes"] if p["name"].startswith("delivery-")]
    assert d2["port"] == d1["port"] + 1 and d1["pid"] != d2["pid"]
    for p in (d1, d2):
        with urllib.request.urlopen(p["metrics_url"], timeout=10) as r:
            assert b"webhook_inflight_requests" in r.read()
    prometheus = json.loads(Path(doc["prometheus_config"]).read_text())  # JSON is YAML
    delivery_job = next(j for j in prometheus["scrape_configs"] if j["job_name"] == "hookstream-delivery")
    assert delivery_job["static_configs"][0]["targets"] == [f"127.0.0.1:{d1['port']}", f"127.0.0.1:{d2['port']}"]
    # the API answers, and the demo's key (printed once) sees the demo tenant's endpoint
    (api_url,) = [p["url"] for p in doc["processes"] if p["name"] == "api"]
    assert f"API at {api_url}" in up.stdout
    (key,) = re.findall(r"API key for tenant 'demo' \(shown only now\): (hsk_\S+)", up.stdout)
    with urllib.request.urlopen(api_url + "healthz", timeout=10) as r:
        assert r.status == 200
    request = urllib.request.Request(api_url + "v1/endpoints", headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=10) as r:
        endpoints = json.loads(r.read())["data"]
    assert [e["tenant_id"] for e in endpoints] == ["demo"] and endpoints[0]["url"].endswith("/webhooks")
    pids = [p["pid"] for p in doc["processes"]]
    receiver_log = Path(env["HOOKSTREAM_STATE_DIR"]) / "dev" / "receiver.log"
    try:
        deadline = time.monotonic() + 60
        while len(_valid_lines(receiver_log)) < 12 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert len(_valid_lines(receiver_log)) == 12, receiver_log.read_text()[-3000:]
    finally:
        down = hs(env, "dev", "down")
    assert down.returncode == 0 and "delivery-1" in down.stdout and "delivery-2" in down.stdout
    assert _pids_alive(pids) == []
    assert hs(env, "dev", "status").returncode == 1


def test_foreground_streams_outcomes_and_ctrl_c_stops_within_30s(hs_env, tmp_path):
    env = _env(hs_env)
    out = open(tmp_path / "up.out", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "hookstream", "dev", "up", "--demo", *_ports(delivery_workers=1)],
                            env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            text = Path(out.name).read_text()
            if len(re.findall(r"^\S+ succeeded\s+2\d\d ", text, re.M)) >= 12:
                break
            assert proc.poll() is None, text
            time.sleep(0.5)
        text = Path(out.name).read_text()
        assert len(re.findall(r"^\S+ succeeded\s+2\d\d ", text, re.M)) >= 12, text
        status = json.loads(hs(env, "dev", "status", "--json").stdout)
        pids = [p["pid"] for p in status["processes"]]
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
        assert time.monotonic() - started < 30
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _pids_alive(pids) == []
