"""The subscription store on SQLite and PostgreSQL: CRUD, tenant scoping, secrets, versions."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st
from sqlalchemy import inspect
from sqlalchemy import update as sa_update

from hookstream.core.db import bind_tenant
from hookstream.core.errors import NotFoundError, ValidationError
from hookstream.core.settings import Settings
from hookstream.subscriptions.models import Status, SubscriptionRow
from hookstream.subscriptions.store import SubscriptionStore
from hookstream.subscriptions.urls import Reason, UnsafeURLError
from tests.postgres import as_application_role

PUBLIC = "93.184.215.14"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw) -> None:
        self.now += timedelta(**kw)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(database_url, tmp_path, clock) -> SubscriptionStore:
    if database_url.startswith("postgresql"):
        # as the application connects: an ordinary role, so row-level security applies throughout
        database_url = as_application_role(database_url)
    settings = Settings(database_url=database_url, state_dir=tmp_path)
    return SubscriptionStore.open(settings, resolver=lambda host, port: [PUBLIC], clock=clock)


def test_migration_creates_the_subscriptions_table(store):
    columns = {c["name"] for c in inspect(store.engine).get_columns("subscriptions")}
    assert {"id", "tenant_id", "url", "events", "status", "secrets", "headers", "version", "published_version"} <= columns


def test_add_then_get_returns_every_field(store, clock):
    sub, secret = store.add(
        "acme", "https://hooks.acme.example/in", ["payment.*", "invoice.created"],
        description="billing", headers={"X-Env": "prod"},
    )
    assert sub.id.startswith("sub_") and secret.startswith("whsec_")
    got = store.get(sub.id, tenant_id="acme")
    assert got == sub
    assert (got.tenant_id, got.url, got.events, got.status) == ("acme", "https://hooks.acme.example/in", ("payment.*", "invoice.created"), Status.ACTIVE)
    assert got.description == "billing" and dict(got.headers) == {"X-Env": "prod"}
    assert [s.reveal() for s in got.secrets] == [secret] and got.secrets[0].expires_at is None
    assert got.created_at == got.updated_at == clock.now
    assert got.version == 1 and got.unpublished


def test_add_with_a_given_secret_keeps_it_and_refuses_a_bad_one(store):
    _, secret = store.add("acme", "https://hooks.acme.example/", ["*"], secret=SECRET)
    assert secret == SECRET
    with pytest.raises(ValidationError, match="secret: "):
        store.add("acme", "https://hooks.acme.example/", ["*"], secret="whsec_short")


@pytest.mark.parametrize(
    ("kwargs", "rule"),
    [
        (dict(tenant_id="", url="https://h.example/", events=["*"]), "tenant: "),
        (dict(tenant_id="a b", url="https://h.example/", events=["*"]), "tenant: "),
        (dict(tenant_id="acme", url="https://h.example/", events=["refund.*"]), "events: "),
        (dict(tenant_id="acme", url="https://h.example/", events=[]), "events: "),
        (dict(tenant_id="acme", url="https://h.example/", events=["*"], headers={"Webhook-Signature": "x"}), "headers: "),
        (dict(tenant_id="acme", url="https://h.example/", events=["*"], headers={"X-A": "a\r\nX-B: b"}), "headers: "),
        (dict(tenant_id="acme", url="https://h.example/", events=["*"], description="x" * 501), "description: "),
    ],
)
def test_invalid_input_is_refused_naming_the_rule_and_nothing_is_saved(store, kwargs, rule):
    with pytest.raises(ValidationError) as caught:
        store.add(**kwargs)
    assert str(caught.value).startswith(rule)
    assert store.list_all_tenants() == []


def test_unsafe_url_is_refused_on_add_and_update(store):
    with pytest.raises(UnsafeURLError) as caught:
        store.add("acme", "https://169.254.169.254/", ["*"])
    assert caught.value.reason == Reason.LINK_LOCAL
    sub, _ = store.add("acme", "https://hooks.acme.example/", ["*"])
    with pytest.raises(UnsafeURLError):
        store.update(sub.id, tenant_id="acme", url="https://[::1]/")
    assert store.get(sub.id, tenant_id="acme").url == "https://hooks.acme.example/"


def test_the_url_is_saved_in_its_canonical_ascii_form_on_add_and_update(store):
    sub, _ = store.add("acme", "https://B\u00dcCHER.acme.example./in", ["*"])
    assert store.get(sub.id, tenant_id="acme").url == "https://xn--bcher-kva.acme.example/in"
    store.update(sub.id, tenant_id="acme", url="https://hooks\u3002acme\uff0eexample:443/caf\u00e9")
    assert store.get(sub.id, tenant_id="acme").url == "https://hooks.acme.example/caf%C3%A9"
    with pytest.raises(UnsafeURLError) as caught:
        store.update(sub.id, tenant_id="acme", url="https://stra\u00dfe.acme.example/")
    assert caught.value.reason == Reason.IDNA_AMBIGUOUS
    assert store.get(sub.id, tenant_id="acme").url == "https://hooks.acme.example/caf%C3%A9"


def test_a_unicode_url_saved_before_canonical_urls_is_read_in_ascii(store):
    sub, _ = store.add("acme", "https://hooks.acme.example/", ["*"])
    for saved, read in [
        ("https://b\u00fccher.acme.example/in", "https://xn--bcher-kva.acme.example/in"),
        ("https://stra\u00dfe.acme.example/", "https://stra\u00dfe.acme.example/"),  # left for delivery to refuse
    ]:
        with store.engine.begin() as conn:  # as an older release saved it
            bind_tenant(conn, "acme")  # row-level security on PostgreSQL
            conn.execute(sa_update(SubscriptionRow).where(SubscriptionRow.id == sub.id).values(url=saved))
        assert store.get(sub.id, tenant_id="acme").url == read
        assert [s.url for s in store.list(tenant_id="acme")] == [read]


def test_update_changes_only_what_is_given_and_bumps_the_version(store, clock):
    sub, _ = store.add("acme", "https://hooks.acme.example/", ["payment.*"], description="d", headers={"X-A": "1"})
    clock.advance(minutes=1)
    updated = store.update(sub.id, tenant_id="acme", url="https://new.acme.example/", events=["invoice.*"])
    assert (updated.url, updated.events, updated.description, dict(updated.headers)) == (
        "https://new.acme.example/", ("invoice.*",), "d", {"X-A": "1"},
    )
    assert updated.version == 2 and updated.updated_at == clock.now and updated.created_at == sub.created_at
    assert store.update(sub.id, tenant_id="acme", headers={}).headers == {}
    with pytest.raises(ValidationError, match="nothing to change"):
        store.update(sub.id, tenant_id="acme")


def test_disable_and_enable_toggle_the_status(store):
    sub, _ = store.add("acme", "https://hooks.acme.example/", ["*"])
    assert store.disable(sub.id, tenant_id="acme").status == Status.DISABLED
    assert store.get(sub.id, tenant_id="acme").status == Status.DISABLED
    enabled = store.enable(sub.id, tenant_id="acme")
    assert enabled.status == Status.ACTIVE and enabled.version == 3


def test_delete_hides_the_subscription_and_wipes_its_secrets(store):
    sub, _ = store.add("acme", "https://hooks.acme.example/", ["*"])
    deleted = store.delete(sub.id, tenant_id="acme")
    assert deleted.id == sub.id
    assert store.list(tenant_id="acme") == []
    with pytest.raises(NotFoundError):
        store.get(sub.id, tenant_id="acme")
    with pytest.raises(NotFoundError):
        store.delete(sub.id, tenant_id="acme")
    assert store.unpublished_count() == 1  # the tombstone is still to be published


def test_unknown_id_is_not_found(store):
    for op in (store.get, store.disable, store.enable, store.delete, store.rotate_secret):
        with pytest.raises(NotFoundError, match="sub_nope"):
            op("sub_nope", tenant_id="acme")
    with pytest.raises(NotFoundError, match="sub_nope"):
        store.get_any_tenant("sub_nope")


def test_tenant_listing_never_shows_another_tenants_subscriptions(store, clock):
    a1, _ = store.add("acme", "https://a.example/1", ["*"])
    clock.advance(seconds=1)
    g1, _ = store.add("globex", "https://g.example/1", ["*"])
    clock.advance(seconds=1)
    a2, _ = store.add("acme", "https://a.example/2", ["*"])
    assert [s.id for s in store.list(tenant_id="acme")] == [a1.id, a2.id]
    assert [s.id for s in store.list(tenant_id="globex")] == [g1.id]
    assert store.list(tenant_id="initech") == []
    assert [s.id for s in store.list_all_tenants()] == [a1.id, a2.id, g1.id]  # by tenant


def test_commands_by_id_with_another_tenant_find_nothing_and_change_nothing(store):
    sub, _ = store.add("acme", "https://a.example/1", ["*"])
    with pytest.raises(NotFoundError, match="for tenant globex"):
        store.get(sub.id, tenant_id="globex")
    for op in (store.disable, store.delete, store.rotate_secret):
        with pytest.raises(NotFoundError):
            op(sub.id, tenant_id="globex")
    with pytest.raises(NotFoundError):
        store.update(sub.id, tenant_id="globex", description="x")
    assert store.get(sub.id, tenant_id="acme") == sub


def test_rotate_secret_keeps_the_old_one_for_the_grace_window(store, clock):
    sub, first = store.add("acme", "https://a.example/1", ["*"])
    rotated, second = store.rotate_secret(sub.id, tenant_id="acme")
    assert second != first
    assert [s.reveal() for s in rotated.secrets] == [second, first]
    assert rotated.secrets[0].expires_at is None
    assert rotated.secrets[1].expires_at == clock.now + timedelta(hours=24)
    assert [s.reveal() for s in rotated.signing_secrets(clock.now)] == [second, first]
    clock.advance(hours=25)
    assert [s.reveal() for s in rotated.signing_secrets(clock.now)] == [second]
    # the next change drops the expired secret from the row as well
    assert [s.reveal() for s in store.disable(sub.id, tenant_id="acme").secrets] == [second]


def test_rotate_secret_with_zero_grace_drops_the_old_one(store):
    sub, _ = store.add("acme", "https://a.example/1", ["*"])
    rotated, new = store.rotate_secret(sub.id, tenant_id="acme", grace_seconds=0, secret=SECRET)
    assert new == SECRET and [s.reveal() for s in rotated.secrets] == [SECRET]


def test_rotating_twice_never_extends_an_older_secrets_window(store, clock):
    sub, first = store.add("acme", "https://a.example/1", ["*"])
    store.rotate_secret(sub.id, tenant_id="acme", grace_seconds=3600)
    clock.advance(minutes=10)
    rotated, third = store.rotate_secret(sub.id, tenant_id="acme", grace_seconds=7200)
    expiry = {s.reveal(): s.expires_at for s in rotated.secrets}
    assert expiry[third] is None
    assert expiry[first] == clock.now - timedelta(minutes=10) + timedelta(hours=1)


def test_logs_name_the_change_but_never_the_secret(store, caplog):
    caplog.set_level(logging.DEBUG)
    sub, first = store.add("acme", "https://a.example/1", ["*"], secret=SECRET)
    _, second = store.rotate_secret(sub.id, tenant_id="acme")
    store.delete(sub.id, tenant_id="acme")
    text = caplog.text + "".join(repr(r.args) for r in caplog.records)
    assert sub.id in caplog.text and "whsec_MfKQ…" in caplog.text
    assert first not in text and second not in text


def test_reprs_mask_the_secrets(store):
    sub, secret = store.add("acme", "https://a.example/1", ["*"])
    assert secret not in repr(sub) and secret not in str(store.list(tenant_id="acme"))


# ------------------------------------------------------------------ tenancy


def tenant_facing(store: SubscriptionStore, sub_id: str) -> dict:
    """Every tenant-facing method, called with ``**kw`` as its tenant."""
    return {
        "get": lambda **kw: store.get(sub_id, **kw),
        "list": lambda **kw: store.list(**kw),
        "update": lambda **kw: store.update(sub_id, description="changed", **kw),
        "disable": lambda **kw: store.disable(sub_id, **kw),
        "enable": lambda **kw: store.enable(sub_id, **kw),
        "delete": lambda **kw: store.delete(sub_id, **kw),
        "rotate_secret": lambda **kw: store.rotate_secret(sub_id, **kw),
    }


def test_every_tenant_facing_method_requires_a_tenant(store):
    sub, _ = store.add("acme", "https://a.example/1", ["*"])
    for name, call in tenant_facing(store, sub.id).items():
        with pytest.raises(TypeError, match="tenant_id"):
            call()
        with pytest.raises(ValidationError, match="^tenant: None is not a tenant id"):
            call(tenant_id=None)
        with pytest.raises(ValidationError, match="^tenant: "):
            call(tenant_id="")
    with pytest.raises(ValidationError, match="^tenant: "):
        store.add(None, "https://a.example/2", ["*"])
    assert store.list_all_tenants() == [sub]  # nothing was changed or added on the way


def test_cross_tenant_reads_are_separate_operations(store):
    a, _ = store.add("acme", "https://a.example/1", ["*"])
    g, _ = store.add("globex", "https://g.example/1", ["*"])
    assert store.get_any_tenant(g.id) == g
    assert {s.id for s in store.list_all_tenants()} == {a.id, g.id}
    assert store.unpublished_count() == 2


TENANTS = ("acme", "globex")
OPERATIONS = ("add", "list", "get", "update", "disable", "enable", "delete", "rotate_secret")


@examples(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.sampled_from(OPERATIONS), st.sampled_from(TENANTS), st.integers(0, 20)), min_size=1, max_size=8))
def test_no_tenant_facing_operation_reads_or_changes_another_tenants_rows(store, steps):
    """Two tenants, any sequence of operations: a tenant sees exactly its own subscriptions, and
    naming another tenant's id finds nothing and changes nothing. (The store outlives examples:
    rows of earlier examples are just more rows of one tenant or the other.)"""
    for op, tenant, pick in steps:
        everyone = {s.id: s for s in store.list_all_tenants()}
        if op == "add":
            sub, _ = store.add(tenant, f"https://{tenant}.example/{pick}", ["*"])
            assert sub.tenant_id == tenant
            continue
        if op == "list":
            assert [s for s in store.list(tenant_id=tenant)] == [s for s in everyone.values() if s.tenant_id == tenant]
            continue
        if not everyone:
            continue
        target = list(everyone.values())[pick % len(everyone)]
        call = tenant_facing(store, target.id)[op]
        if target.tenant_id == tenant:
            result = call(tenant_id=tenant)
            assert (result[0] if isinstance(result, tuple) else result).tenant_id == tenant
            continue
        with pytest.raises(NotFoundError, match=f"for tenant {tenant}"):
            call(tenant_id=tenant)
        assert store.get_any_tenant(target.id) == target  # unchanged, version and all
        assert store.get_any_tenant(target.id).version == target.version


@pytest.mark.parametrize(
    ("headers", "named"),
    [
        ({"X-Name": "Jos\u00e9"}, "X-Name"),
        ({"X-Raw": "\x9bPLANTED"}, "X-Raw"),
        ({"User-Agent": "PLANTED-agent"}, "User-Agent"),
        ({"Webhook-Foo": "PLANTED"}, "Webhook-Foo"),
    ],
)
def test_a_header_the_delivery_worker_would_refuse_is_refused_on_add_and_update(store, headers, named):
    # issue 12: these were saved, then every delivery was dead-lettered as invalid_header
    with pytest.raises(ValidationError) as caught:
        store.add("acme", f"https://{PUBLIC}/", ["*"], headers=headers)
    assert str(caught.value).startswith("headers: ") and named in str(caught.value)
    assert "PLANTED" not in str(caught.value) and "Jos\u00e9" not in str(caught.value)
    assert store.list_all_tenants() == []
    sub, _ = store.add("acme", f"https://{PUBLIC}/", ["*"], headers={"X-Env": "prod"})
    with pytest.raises(ValidationError, match=named):
        store.update(sub.id, tenant_id="acme", headers=headers)
    kept = store.get(sub.id, tenant_id="acme")
    assert dict(kept.headers) == {"X-Env": "prod"} and kept.version == sub.version
