"""The fault suite, short form (``make test``): the same runner as ``hookstream chaos``.

Each test starts the real pipeline (workers, outbox relay, five receiver processes over three
tenants), publishes at a steady rate, injects its faults mid-load and fails when any (endpoint,
event) pair was neither delivered with a valid signature nor dead-lettered, when anything else
arrived, or when a duplicate came with another ``webhook-id`` (``hookstream.shell.chaos.judge``).
The figures (time to flowing again, duplicates, totals) are printed at the end of the session.

The single-broker scenarios share one pipeline on a broker of the test's own (it is killed), one
after the other, so the suite pays for one start-up and one settling; the SIGKILLed delivery
workers' partitions stall for the consumer session timeout (10 s), so that scenario goes last.
"""

from __future__ import annotations


import pytest

from hookstream.shell.chaos import RunContext, run_scenarios
from tests.conftest import start_own_broker

pytestmark = [pytest.mark.faults, pytest.mark.timeout(600)]

SINGLE_BROKER = ["broker-restart", "rolling-restart", "receiver-outage", "worker-kill"]


@pytest.fixture
def own_broker(tmp_path):
    """A broker of this test's own (it is SIGKILLed), stopped at the end."""
    broker = start_own_broker({"HOOKSTREAM_STATE_DIR": str(tmp_path / "kafka")})
    try:
        yield broker
    finally:
        broker.stop()


def _check(result) -> None:
    assert result.ok, (f"{result.line()}\n" + "\n".join(result.problems) + "\ntimeline:\n" + "\n".join(result.timeline)
                       + f"\nlogs: {result.logs}")
    assert len(result.faults) >= 1 and result.delivered > 0 and result.dead_lettered > 0, result.line()


def test_single_broker_faults_lose_nothing(own_broker, tmp_path, chaos_report):
    """One broker SIGKILLed and restarted; a rolling restart and a scale-out and back of the delivery
    workers; a receiver away 10 s; SIGKILL of the stream worker, the relay and each delivery worker."""
    ctx = RunContext(own_broker.settings.kafka_bootstrap, 1, broker=own_broker)
    result = run_scenarios(SINGLE_BROKER, "short", ctx, tmp_path / "run")
    chaos_report(result)
    _check(result)


@pytest.mark.cluster
def test_three_broker_leader_and_controller_kills_lose_nothing(kafka_cluster, tmp_path, chaos_report):
    """On the session's three-node cluster (topics replicated three times): SIGKILL the leader of
    ``deliveries``, then of an event topic, then the active controller, each brought back."""
    kafka_cluster.start()  # every node up, whatever an earlier test did
    ctx = RunContext(kafka_cluster.bootstrap, 3, cluster=kafka_cluster)
    result = run_scenarios(["cluster-leaders"], "short", ctx, tmp_path / "run")
    chaos_report(result)
    _check(result)
