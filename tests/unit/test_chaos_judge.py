"""The fault suite's checks (``hookstream.shell.chaos.judge``) on made-up runs: each way a run can
lose, invent or mislabel a delivery is reported, and what at-least-once allows is not."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from hookstream.core.settings import Settings
from hookstream.core.wire import delivery_id
from hookstream.shell.chaos import ENDPOINTS, SIZES, Pipeline, ScenarioResult, judge


@pytest.fixture
def pipe(tmp_path, monkeypatch):
    """A run with three events (one per tenant), nothing started; requests and dead letters are
    filled in by each test."""
    monkeypatch.setattr(Settings, "from_env", classmethod(lambda cls, env=None, **kw: Settings(kafka_bootstrap="127.0.0.1:1")))
    p = Pipeline("unit", SIZES["short"], tmp_path / "run", "127.0.0.1:1")
    for n, r in enumerate(p.receivers.values()):
        r.sub_id = f"sub_{n}"
    events = {f"ent{t}": (SimpleNamespace(id=f"ev{t}", tenant_id=tenant), 1000.0 + t, "publisher")
              for t, tenant in enumerate(("acme", "globex", "initech"))}
    p.load = SimpleNamespace(published=events, failed={})
    p.retries_never_made = lambda ids: set()  # the attempt log: none here
    return p


def _deliver_everything(pipe) -> dict[str, str]:
    """Every pair: a 204 at the healthy and flaky endpoints, a dead letter at the dead one."""
    dlq = {}
    for r in pipe.receivers.values():
        for entity, (event, sent, _via) in pipe.load.published.items():
            if event.tenant_id != r.spec.tenant:
                continue
            d = delivery_id(event.id, r.sub_id)
            if r.spec.fail_rate == 1.0:
                r.requests.append((sent + 0.1, d, entity, 500))
                dlq[d] = r.sub_id
            else:
                r.requests.append((sent + 0.1, d, entity, 204))
    return dlq


def _judge(pipe, dlq) -> ScenarioResult:
    result = ScenarioResult("unit", "short", 1)
    judge(pipe, result, pipe.expected(), dlq)
    return result


def test_a_run_where_every_pair_arrived_or_was_dead_lettered_passes(pipe):
    result = _judge(pipe, _deliver_everything(pipe))
    assert result.ok, result.problems
    assert (result.events, result.pairs, result.delivered, result.dead_lettered, result.duplicates) == (3, 5, 4, 1, 0)


def test_a_redelivery_with_the_same_webhook_id_is_a_duplicate_not_a_problem(pipe):
    dlq = _deliver_everything(pipe)
    r = pipe.receivers["acme-ok"]
    r.requests.append(r.requests[0])
    result = _judge(pipe, dlq)
    assert result.ok, result.problems
    assert result.duplicates == 1


def test_a_pair_neither_delivered_nor_dead_lettered_is_reported(pipe):
    dlq = _deliver_everything(pipe)
    pipe.receivers["globex-ok"].requests.clear()  # a receiver that dropped the request
    result = _judge(pipe, dlq)
    assert not result.ok
    assert any("globex-ok: 1 of 1 pairs neither delivered nor dead-lettered" in p for p in result.problems), result.problems
    assert (result.missing, result.stuck_retries) == (1, 0)


def test_a_delivery_under_another_webhook_id_is_reported(pipe):
    dlq = _deliver_everything(pipe)
    r = pipe.receivers["acme-ok"]
    t, _d, entity, _status = r.requests[0]
    r.requests.append((t + 1, "msg_" + "0" * 32, entity, 204))  # the same event again, under a new id
    result = _judge(pipe, dlq)
    assert any("a webhook-id not its pair's" in p for p in result.problems), result.problems


def test_a_request_for_an_event_never_published_is_reported(pipe):
    dlq = _deliver_everything(pipe)
    pipe.receivers["acme-ok"].requests.append((1.0, "msg_" + "1" * 32, "ent-unknown", 204))
    result = _judge(pipe, dlq)
    assert any("a pair never published" in p for p in result.problems), result.problems


def test_a_refused_signature_is_reported(pipe):
    dlq = _deliver_everything(pipe)
    r = pipe.receivers["acme-flaky"]
    t, d, entity, _status = r.requests[0]
    r.requests.insert(0, (t - 0.05, d, entity, 401))
    result = _judge(pipe, dlq)
    assert any("refused (401)" in p for p in result.problems), result.problems


def test_dead_letters_at_an_endpoint_that_never_refuses_are_reported(pipe):
    dlq = _deliver_everything(pipe)
    r = pipe.receivers["globex-ok"]
    dlq[r.requests[0][1]] = r.sub_id
    result = _judge(pipe, dlq)
    assert any("globex-ok (always 204): 1 pairs dead-lettered" in p for p in result.problems), result.problems


def test_the_always_failing_endpoint_must_have_every_pair_dead_lettered(pipe):
    dlq = _deliver_everything(pipe)
    dead = pipe.receivers["globex-dead"]
    dlq.pop(dead.requests[0][1])
    result = _judge(pipe, dlq)
    assert any("globex-dead (always failing): 1 of 1 pairs not dead-lettered" in p for p in result.problems), result.problems


def test_every_endpoint_kind_is_in_the_suite():
    assert {e.fail_rate for e in ENDPOINTS} == {0.0, 0.2, 1.0}
    assert len({e.tenant for e in ENDPOINTS}) >= 3


@pytest.mark.parametrize("argv, message", [
    (["chaos", "nope"], "error: scenario nope is not one of broker-restart, worker-kill"),
    (["chaos", "--size", "huge"], "error: --size: 'huge' is not one of short, long"),
])
def test_the_command_refuses_an_unknown_scenario_or_size_in_one_line(argv, message, capsys):
    from hookstream.shell.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1, err
