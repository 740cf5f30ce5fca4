"""``dev up``'s worker counts and metrics ports, checked before anything starts, and the
Prometheus config it writes for the workers it started."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from hookstream.core.errors import ValidationError
from hookstream.core.settings import Settings
from hookstream.shell.devstack import ALERTS, DevStack, StackProcess, StackState, idle_workers, plan_metrics_ports


def test_each_kind_takes_consecutive_ports_from_its_first():
    assert plan_metrics_ports(9464, 2, 9466, 3) == ([9464, 9465], [9466, 9467, 9468])


@pytest.mark.parametrize("streams, delivery, option", [(0, 1, "--stream-workers"), (1, 0, "--delivery-workers"), (1, -2, "--delivery-workers")])
def test_a_count_below_one_is_refused(streams, delivery, option):
    with pytest.raises(ValidationError, match=f"^{option} must be at least 1"):
        plan_metrics_ports(9464, streams, 9465, delivery)


def test_overlapping_ranges_are_refused_naming_both():
    with pytest.raises(ValidationError) as err:
        plan_metrics_ports(9464, 2, 9465, 2)
    assert str(err.value).startswith("the stream workers' metrics ports 9464-9465 overlap the delivery workers' 9465-9466")


def test_a_range_past_65535_is_refused():
    with pytest.raises(ValidationError, match="65534-65536, outside 1-65535"):
        plan_metrics_ports(9464, 1, 65534, 3)


def test_the_api_port_may_not_be_a_metrics_port():
    with pytest.raises(ValidationError, match="the API's port 9466 is one of the workers' metrics ports"):
        plan_metrics_ports(9464, 1, 9465, 2, api_port=9466)


def test_workers_past_the_partition_counts_are_warned_about_once_each(tmp_path):
    settings = Settings.from_env({"HOOKSTREAM_STATE_DIR": str(tmp_path)})
    assert idle_workers(settings, stream_workers=6, delivery_workers=12) == []
    assert idle_workers(settings, stream_workers=7, delivery_workers=14) == [
        "warning: 7 stream workers but 6 partitions per event topic: 1 will idle",
        "warning: 14 delivery workers but 12 partitions of deliveries: 2 will idle",
    ]


def test_the_prometheus_config_has_one_target_per_worker(tmp_path):
    settings = Settings.from_env({"HOOKSTREAM_STATE_DIR": str(tmp_path)})
    stack = DevStack(settings, env={})
    procs = [StackProcess("receiver", 1, ["x"], "r.log", port=8765), StackProcess("streams-1", 2, ["x"], "s.log", metrics_port=9464),
             StackProcess("delivery-1", 3, ["x"], "d1.log", metrics_port=9465), StackProcess("delivery-2", 4, ["x"], "d2.log", metrics_port=9466),
             StackProcess("api", 5, ["x"], "a.log", port=8080)]
    doc = yaml.safe_load(stack.write_prometheus_config(StackState("127.0.0.1:9092", False, procs)).read_text())
    jobs = {job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]] for job in doc["scrape_configs"]}
    assert jobs == {"hookstream-streams": ["127.0.0.1:9464"], "hookstream-delivery": ["127.0.0.1:9465", "127.0.0.1:9466"]}
    assert doc["rule_files"] == [str(ALERTS)] and ALERTS.is_file()


def _dev_up(tmp_path, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKSTREAM_")}
    env.update(HOOKSTREAM_STATE_DIR=str(tmp_path), HOOKSTREAM_KAFKA_BOOTSTRAP="127.0.0.1:1")
    return subprocess.run([sys.executable, "-m", "hookstream", "dev", "up", "--detach", *args],
                          capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.parametrize("args, line", [
    (["--delivery-workers", "0"], "error: --delivery-workers must be at least 1, not 0"),
    (["--stream-workers", "2", "--delivery-metrics-port", "9465"],
     "error: the stream workers' metrics ports 9464-9465 overlap the delivery workers' 9465-9466; "
     "move one with --streams-metrics-port or --delivery-metrics-port"),
])
def test_dev_up_refuses_bad_counts_and_ports_in_one_line_before_starting_anything(tmp_path, args, line):
    r = _dev_up(tmp_path, "--delivery-workers", "2", *args)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [line]
    assert not (tmp_path / "dev").exists() and not list(tmp_path.glob("kafka-*"))
