"""The bench's pure parts: percentiles, latency windows, and the receiver's request parsing."""

from __future__ import annotations

import datetime as dt
import importlib.util
import time
from pathlib import Path

import pytest

from hookstream.delivery.envelope import payload
from hookstream.delivery.signing import Secret, build_headers
from hookstream.shell.bench import _windows, latency_ms, percentile

RECEIVER = Path(__file__).resolve().parents[2] / "bench" / "receiver.py"


@pytest.fixture(scope="module")
def receiver():
    spec = importlib.util.spec_from_file_location("bench_receiver", RECEIVER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([7.0], 99) == 7.0


def test_percentile_of_nothing_is_nan():
    assert percentile([], 50) != percentile([], 50)


def test_latency_ms_reports_milliseconds_and_count():
    out = latency_ms([0.010, 0.020, 0.030, 0.040])
    assert out == {"p50": 20.0, "p95": 40.0, "p99": 40.0, "max": 40.0, "count": 4}


def test_windows_group_by_publish_time():
    samples = [("/e/a", 100.0, 100.010, None), ("/e/a", 101.0, 101.020, None), ("/e/a", 106.0, 106.5, None)]
    assert _windows(samples, 5.0) == [[0.0, 2, 10.0, 20.0], [5.0, 1, 500.0, 500.0]]


class _Transport:
    def __init__(self):
        self.out = bytearray()
        self.closed = False

    def write(self, data):
        self.out += data

    def close(self):
        self.closed = True


def _request(path: str, body: bytes, headers: dict[str, str]) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-length: {len(body)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode() + b"\r\n" + body


def _connection(receiver, state):
    proto = receiver.Receiver(state)
    proto.connection_made(_Transport())
    return proto


def test_receiver_answers_204_records_latency_and_verifies(receiver):
    secret = Secret.generate()
    state = receiver.State(verify_every=1)
    state.secrets["/e/a"] = secret.reveal()
    published = dt.datetime.now(dt.timezone.utc)
    body = payload("payment.received", published, {"payment_id": "p1"})
    raw = _request("/e/a", body, build_headers("msg_1", int(time.time()), body, secret))
    proto = _connection(receiver, state)
    proto.data_received(raw[:10])  # split across reads, then two requests in one read
    proto.data_received(raw[10:] + raw)
    assert proto.transport.out == receiver.RESPONSE_204 * 2
    assert state.requests == 2 and state.duplicates == 1
    assert state.sig_checked == 2 and state.sig_failures == 0
    (index, pub, ack, msg_id), _ = state.samples
    assert state.path_names[index] == "/e/a" and msg_id == "msg_1"
    assert pub == pytest.approx(published.timestamp(), abs=1e-6) and ack >= pub


def test_receiver_counts_a_bad_signature(receiver):
    state = receiver.State(verify_every=1)
    state.secrets["/e/a"] = Secret.generate().reveal()
    body = payload("payment.received", dt.datetime.now(dt.timezone.utc), {})
    _connection(receiver, state).data_received(_request("/e/a", body, build_headers("msg_2", int(time.time()), body, Secret.generate())))
    assert state.sig_failures == 1 and state.sig_errors == {"NoMatchingSignatureError": 1}


def test_receiver_never_answers_the_hung_path(receiver):
    state = receiver.State(verify_every=100)
    proto = _connection(receiver, state)
    proto.data_received(_request("/hang/x", b"{}", {}) + _request("/e/a", b"{}", {}))
    assert proto.transport.out == b"" and state.hung == 1 and state.requests == 0


def test_the_report_prints_as_a_plain_table_off_a_terminal(monkeypatch, capsys):
    import hookstream.shell.bench as bench
    from hookstream.shell.cli import main

    report = {
        "date": "2026-11-29T12:00:00+00:00",
        "machine": {"nproc": 2, "cpu": "test cpu", "python": "3.11", "loadavg_start": [0.5], "loadavg_end": [1.25]},
        "throughput": {"deliveries_per_s": 5340, "events": 20000, "complete": True},
        "baseline": {"skipped": "skipped (--no-baseline)"},
        "signatures": {"checked": 200, "failures": 0},
        "cpu_s_per_1000_deliveries": {"streams": 0.1, "delivery": 0.2},
    }

    def fake_run(cfg, progress=None):
        progress("throughput", 20000, 20000)
        return report

    monkeypatch.setattr(bench, "run", fake_run)
    assert main(["bench", "--quick", "--no-baseline"]) == 0
    out, err = capsys.readouterr()
    assert err == "throughput 20,000/20,000\n"
    assert out.splitlines() == [
        "hookstream bench, 2026-11-29T12:00:00+00:00: 2 cores (test cpu), Python 3.11, load average 0.50 -> 1.25",
        "",
        "SCENARIO                         FIGURE  TARGET",
        "throughput, deliveries/s          5,340  >= 5,000",
        "  (events, complete)         20,000 yes",
        "baseline                        skipped  skipped (--no-baseline)",
        "signatures checked / failed     200 / 0  0 failed",
        "",
        "CPU seconds per 1,000 deliveries (throughput scenario): streams 0.1, delivery 0.2",
    ]


def test_brokers_reach_the_config_and_workers_past_the_partitions_are_warned_about(monkeypatch, capsys):
    import hookstream.shell.bench as bench
    from hookstream.shell.cli import main

    seen = []

    def fake_run(cfg, progress=None):
        seen.append(cfg)
        return {"config": {"brokers": cfg.brokers}}

    monkeypatch.setattr(bench, "run", fake_run)
    assert main(["bench", "--json", "--brokers", "3", "--stream-workers", "7", "--delivery-workers", "2"]) == 0
    out, err = capsys.readouterr()
    (cfg,) = seen
    assert (cfg.brokers, cfg.stream_workers, cfg.delivery_workers) == (3, 7, 2)
    assert err.splitlines() == ["warning: 7 stream workers but 6 partitions per event topic: 1 will idle"]


def test_a_cluster_bench_gives_the_workers_every_broker_in_the_bootstrap_list(tmp_path):
    from hookstream.shell.bench import BenchConfig, HookstreamStack

    stack = HookstreamStack(BenchConfig(port=21000, brokers=3, state_dir=tmp_path), None)
    assert stack.env["HOOKSTREAM_KAFKA_BOOTSTRAP"] == "127.0.0.1:21000,127.0.0.1:21001,127.0.0.1:21002"
    assert HookstreamStack(BenchConfig(port=21000, state_dir=tmp_path), None).env["HOOKSTREAM_KAFKA_BOOTSTRAP"] == "127.0.0.1:21000"
