"""The idempotency store: replay, conflicts, takeover after a failure or a dead process, 24 h."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from hookstream.core.db import make_engine, migrate
from hookstream.shell.api.idempotency import PENDING_TIMEOUT, TTL, IdempotencyStore, Request

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path, clock) -> IdempotencyStore:
    engine = make_engine(f"sqlite:///{tmp_path / 'i.db'}")
    migrate(engine)
    return IdempotencyStore(engine, clock=clock)


def req(key: str = "k", fingerprint: str = "f1", event_id: str = "e1") -> Request:
    return Request(key, fingerprint, event_id, "2026-11-29T12:00:00.000000Z")


def test_a_new_key_is_claimed_and_once_done_replayed(store):
    [claim] = store.claim("acme", [req()])
    assert (claim.kind, claim.event_id) == ("new", "e1")
    store.finish("acme", {"k": {"id": "e1"}})
    [again] = store.claim("acme", [req(event_id="e2")])
    assert (again.kind, again.event_id, again.response) == ("replay", "e1", {"id": "e1"})


def test_keys_belong_to_one_tenant(store):
    store.claim("acme", [req()])
    assert store.claim("globex", [req()])[0].kind == "new"


def test_another_request_under_the_key_is_a_mismatch_and_a_pending_one_in_flight(store):
    store.claim("acme", [req()])
    assert store.claim("acme", [req()])[0].kind == "in_flight"
    assert store.claim("acme", [req(fingerprint="f2")])[0].kind == "mismatch"


def test_after_a_failure_the_retry_takes_over_with_the_first_event_id(store):
    store.claim("acme", [req(event_id="e1")])
    store.finish("acme", {}, failed=["k"])
    [retry] = store.claim("acme", [req(event_id="e9")])
    assert (retry.kind, retry.event_id) == ("new", "e1")


def test_a_pending_claim_of_a_dead_process_is_taken_over_after_the_timeout(store, clock):
    store.claim("acme", [req(event_id="e1")])
    clock.now = T0 + PENDING_TIMEOUT - timedelta(seconds=1)
    assert store.claim("acme", [req(event_id="e2")])[0].kind == "in_flight"
    clock.now = T0 + PENDING_TIMEOUT + timedelta(seconds=1)
    [takeover] = store.claim("acme", [req(event_id="e2")])
    assert (takeover.kind, takeover.event_id) == ("new", "e1")


def test_a_key_is_remembered_for_24_hours_then_forgotten_and_pruned(store, clock):
    store.claim("acme", [req()])
    store.finish("acme", {"k": {"id": "e1"}})
    clock.now = T0 + TTL - timedelta(minutes=1)
    assert store.claim("acme", [req(fingerprint="other")])[0].kind == "mismatch"
    assert store.prune() == 0
    clock.now = T0 + TTL + timedelta(minutes=1)
    assert store.prune() == 1
    assert store.claim("acme", [req(fingerprint="other", event_id="e5")])[0].kind == "new"


def test_many_keys_are_claimed_in_one_call_in_order(store):
    store.claim("acme", [req("a"), req("b")])
    store.finish("acme", {"a": {"id": "e1"}}, failed=["b"])
    claims = store.claim("acme", [req("a"), req("b"), req("c")] + [req(f"x{i}") for i in range(900)])
    assert [c.kind for c in claims[:3]] == ["replay", "new", "new"]
    assert len(claims) == 903 and all(c.kind == "new" for c in claims[3:])
