"""The service layer as the CLI uses it: ``ANY_TENANT`` (operators without --tenant), a given
secret on rotation, delete's result, the unpublished callback, the dead-letter replay in two
steps and the attempt log's listing checks. The tenant-scoped behaviour the API relies on is in
test_api_services.py."""

from __future__ import annotations

import pytest

from hookstream.core.errors import BrokerError, NotFoundError, ValidationError
from hookstream.core.settings import Settings
from hookstream.delivery import dead_letters as dl
from hookstream.shell.services import ANY_TENANT, ConflictError, DeadLetterService, EndpointService, MessageService
from hookstream.shell.services.dlq import make_filter
from hookstream.shell.services.endpoints import DisabledError
from hookstream.streams.recovery import RecoveryReport
from hookstream.subscriptions import SubscriptionStore
from tests.unit.test_api_services import PUBLIC, URL, dead

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'ops.db'}", state_dir=tmp_path / "state")


@pytest.fixture
def store(settings):
    s = SubscriptionStore.open(settings, resolver=lambda host, port: [PUBLIC])
    yield s
    s.engine.dispose()


@pytest.fixture
def warnings():
    return []


@pytest.fixture
def endpoints(settings, store, warnings) -> EndpointService:
    recovered = []

    def recover(_settings, sub, *, since, until, dry_run):
        recovered.append(sub.id)
        return RecoveryReport(scanned=1, queued=1)

    return EndpointService(settings, store, publish=lambda: None, recover_fn=recover, on_unpublished=warnings.append)


def test_any_tenant_finds_the_owner_and_acts_as_it(endpoints):
    sub = endpoints.create(tenant_id="acme", url=URL, events=["*"]).endpoint
    assert endpoints.get(sub.id, tenant_id=ANY_TENANT).tenant_id == "acme"
    assert endpoints.disable(sub.id, tenant_id=ANY_TENANT).endpoint.status == "disabled"
    assert endpoints.enable(sub.id, tenant_id=ANY_TENANT).endpoint.status == "active"
    assert endpoints.update(sub.id, tenant_id=ANY_TENANT, description="moved").endpoint.description == "moved"
    assert endpoints.recover(sub.id, tenant_id=ANY_TENANT, since=0.0).queued == 1
    deleted = endpoints.delete(sub.id, tenant_id=ANY_TENANT)
    assert deleted.endpoint.id == sub.id and deleted.endpoint.tenant_id == "acme" and deleted.published
    with pytest.raises(NotFoundError):
        endpoints.get(sub.id, tenant_id=ANY_TENANT)


def test_a_named_tenant_still_scopes_every_call(endpoints):
    sub = endpoints.create(tenant_id="acme", url=URL, events=["*"]).endpoint
    for call in (lambda: endpoints.get(sub.id, tenant_id="beta"), lambda: endpoints.disable(sub.id, tenant_id="beta"),
                 lambda: endpoints.delete(sub.id, tenant_id="beta"), lambda: endpoints.rotate_secret(sub.id, tenant_id="beta")):
        with pytest.raises(NotFoundError):
            call()
    assert endpoints.get(sub.id, tenant_id="acme").active


def test_every_lists_one_tenant_or_all(endpoints):
    a = endpoints.create(tenant_id="acme", url=URL, events=["*"]).endpoint
    b = endpoints.create(tenant_id="beta", url=URL, events=["*"]).endpoint
    assert [s.id for s in endpoints.every(tenant_id="acme")] == [a.id]
    assert {s.id for s in endpoints.every(tenant_id=ANY_TENANT)} == {a.id, b.id}


def test_rotate_secret_takes_a_given_secret_and_returns_it_once(endpoints):
    sub = endpoints.create(tenant_id="acme", url=URL, events=["*"]).endpoint
    rotated = endpoints.rotate_secret(sub.id, tenant_id=ANY_TENANT, secret=SECRET, grace_seconds=60)
    assert rotated.secret == SECRET and endpoints.secret(sub.id, tenant_id="acme") == SECRET
    assert SECRET not in str(rotated.endpoint.to_public())


def test_an_unpublished_change_goes_to_the_callers_callback(settings, store, warnings):
    def down():
        raise BrokerError("cannot reach Kafka")

    service = EndpointService(settings, store, publish=down, on_unpublished=warnings.append)
    made = service.create(tenant_id="acme", url=URL, events=["*"])
    assert not made.published and [str(w) for w in warnings] == ["cannot reach Kafka"]


def test_recovering_a_disabled_endpoint_is_a_conflict_that_the_cli_exits_2_for(endpoints):
    sub = endpoints.create(tenant_id="acme", url=URL, events=["*"]).endpoint
    endpoints.disable(sub.id, tenant_id="acme")
    with pytest.raises(ConflictError, match="disabled") as caught:
        endpoints.recover(sub.id, tenant_id=ANY_TENANT, since=0.0)
    assert isinstance(caught.value, DisabledError) and caught.value.exit_code == 2


def test_dlq_filter_names_the_flag_the_caller_used():
    with pytest.raises(ValidationError, match="^--since"):
        make_filter(tenant_id=None, since="yesterday", flag="--")
    assert make_filter(tenant_id=None).all_tenants and not make_filter(tenant_id="acme").all_tenants


def test_dlq_replay_entries_replays_what_was_matched_and_passes_progress(settings):
    entries = [dead(0, 1, "acme", 100.0), dead(0, 2, "beta", 200.0)]
    seen = []

    def replay(_settings, chosen, *, dry_run, force, progress=None):
        seen.append(([d.id for d in chosen], dry_run, force, progress))
        if progress:
            progress(len(chosen))
        return dl.ReplayReport(replayed=[d.id for d in chosen])

    service = DeadLetterService(settings, read=lambda _s, since=None: iter(entries), replay=replay)
    matched = service.matching(make_filter(tenant_id=None))
    ticks = []
    report = service.replay_entries(matched, force=True, progress=ticks.append)
    assert report.replayed == ["0-1", "0-2"] and ticks == [2] and seen[0][:3] == (["0-1", "0-2"], False, True)
    assert service.replay_entries([]).replayed == [] and len(seen) == 1


@pytest.mark.parametrize(("kw", "message"), [
    ({"status": "lost"}, "^--status: 'lost' is not one of succeeded, failed, dead"),
    ({"limit": 0}, "^--limit must be from 1 to 10000"),
    ({"limit": 10_001}, "^--limit must be from 1 to 10000"),
])
def test_deliveries_refuse_bad_filters_naming_the_flag(settings, store, kw, message):
    with pytest.raises(ValidationError, match=message):
        MessageService(settings, None, engine=store.engine).deliveries(tenant_id=ANY_TENANT, flag="--", **kw)


def test_delivery_attempts_of_nothing_is_not_found_naming_the_tenant(settings, store):
    service = MessageService(settings, None, engine=store.engine)
    with pytest.raises(NotFoundError, match="no attempts recorded for delivery 'msg_x' for tenant acme"):
        service.delivery_attempts("msg_x", tenant_id="acme")
    with pytest.raises(NotFoundError, match=r"no attempts recorded for delivery 'msg_x'$"):
        service.delivery_attempts("msg_x", tenant_id=ANY_TENANT)
    assert service.deliveries(tenant_id="acme") == [] and service.deliveries(tenant_id=ANY_TENANT) == []
