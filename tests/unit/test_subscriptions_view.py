"""SubscriptionTable: highest version wins, tombstones delete, tenants stay apart."""

from datetime import UTC, datetime, timedelta

import pytest

from hookstream.core.crypto import Keyring, new_key_entry
from hookstream.subscriptions.models import Status, Subscription
from hookstream.core.secrets import Secret
from hookstream.core.wire import WireFormatError
from hookstream.subscriptions.topic import encode
from hookstream.subscriptions.view import SubscriptionTable

KEYRING = Keyring.parse(new_key_entry("t1"))
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def make_sub(sub_id="sub_1", tenant="acme", version=1, **kw) -> Subscription:
    fields = dict(
        id=sub_id, tenant_id=tenant, url=f"https://hooks.example.com/{sub_id}", events=("payment.*",),
        status=Status.ACTIVE, secrets=(Secret.generate(),), created_at=T0 + timedelta(seconds=version),
        updated_at=T0 + timedelta(seconds=version), version=version,
    )
    fields.update(kw)
    return Subscription(**fields)


def apply(table: SubscriptionTable, sub: Subscription) -> bool:
    return table.apply(*encode(sub, KEYRING))


def test_newer_version_replaces_and_older_one_is_ignored():
    table = SubscriptionTable(KEYRING)
    v1, v2 = make_sub(version=1), make_sub(version=2, url="https://hooks.example.com/new")
    assert apply(table, v1) and apply(table, v2)
    assert not apply(table, v1)  # a late publish of an older state
    assert table.get("sub_1") == v2


def test_same_version_again_is_idempotent():
    table = SubscriptionTable(KEYRING)
    sub = make_sub(version=3)
    assert apply(table, sub)
    assert not apply(table, sub)
    assert len(table) == 1


def test_tombstone_deletes_and_an_older_state_cannot_resurrect_it():
    table = SubscriptionTable(KEYRING)
    apply(table, make_sub(version=1))
    apply(table, make_sub(version=2))
    assert table.apply(b"sub_1", None)
    assert table.get("sub_1") is None and "sub_1" not in table
    assert not apply(table, make_sub(version=2))
    assert table.for_tenant("acme") == []


def test_tombstone_for_an_unknown_id_changes_nothing():
    table = SubscriptionTable(KEYRING)
    assert not table.apply(b"sub_unknown", None)


def test_for_tenant_returns_active_and_disabled_of_that_tenant_only():
    table = SubscriptionTable(KEYRING)
    a1 = make_sub("sub_a1", "acme", 1)
    a2 = make_sub("sub_a2", "acme", 2, status=Status.DISABLED)
    b1 = make_sub("sub_b1", "globex", 1)
    for sub in (a1, a2, b1):
        apply(table, sub)
    assert table.for_tenant("acme") == [a1, a2]
    assert table.for_tenant("globex") == [b1]
    assert table.for_tenant("initech") == []


def test_matching_returns_active_subscriptions_whose_filters_match():
    table = SubscriptionTable(KEYRING)
    pay = make_sub("sub_pay", events=("payment.*",))
    inv = make_sub("sub_inv", events=("invoice.created",))
    off = make_sub("sub_off", events=("*",), status=Status.DISABLED)
    other = make_sub("sub_other", tenant="globex", events=("*",))
    for sub in (pay, inv, off, other):
        apply(table, sub)
    assert [s.id for s in table.matching("acme", "payment.failed")] == ["sub_pay"]
    assert [s.id for s in table.matching("acme", "invoice.created")] == ["sub_inv"]
    assert table.matching("acme", "customer.created") == []


def test_unreadable_record_raises_and_leaves_the_table_alone():
    table = SubscriptionTable(KEYRING)
    apply(table, make_sub())
    with pytest.raises(WireFormatError):
        table.apply(b"sub_1", b"{not json")
    with pytest.raises(WireFormatError):
        table.apply(b"\xff", None)
    assert len(table) == 1


def test_signing_secrets_include_the_old_one_only_during_its_grace_window():
    new, old = Secret.generate(), Secret.generate().expiring(T0 + timedelta(hours=24))
    sub = make_sub(secrets=(new, old))
    assert sub.signing_secrets(T0) == (new, old)
    assert sub.signing_secrets(T0 + timedelta(hours=25)) == (new,)


def test_a_subscription_whose_key_is_unknown_is_kept_without_secrets_and_logged(caplog):
    table = SubscriptionTable(KEYRING)
    foreign = Keyring.parse(new_key_entry("elsewhere"))
    with caplog.at_level("ERROR", logger="hookstream.subscriptions"):
        assert table.apply(*encode(make_sub(headers={"Authorization": "Bearer PLANTED"}), foreign))
    sub = table.get("sub_1")
    assert sub.secrets == () and "'elsewhere'" in sub.sealed_error
    assert "'elsewhere'" in caplog.text and "PLANTED" not in caplog.text
    apply(table, make_sub(version=2))  # the next version, under a known key, is read normally
    assert table.get("sub_1").sealed_error is None and table.get("sub_1").secrets


def test_a_key_added_since_the_start_is_picked_up_by_loading_the_keyring_again():
    added = new_key_entry("k-added")
    loads = []

    def reload():
        loads.append(1)
        return Keyring.parse(added)

    table = SubscriptionTable(KEYRING, reload=reload)
    apply(table, make_sub("sub_known"))
    assert loads == []  # nothing reloaded while every value opens
    assert table.apply(*encode(make_sub("sub_new", headers={"Authorization": "Bearer x"}), Keyring.parse(added)))
    assert table.get("sub_new").sealed_error is None and dict(table.get("sub_new").headers) == {"Authorization": "Bearer x"}
    assert loads == [1]
    # a key id found nowhere: loaded again, still unknown, kept without secrets
    table.apply(*encode(make_sub("sub_lost"), Keyring.parse(new_key_entry("k-nowhere"))))
    assert "'k-nowhere'" in table.get("sub_lost").sealed_error and loads == [1, 1]


# ---------------------------------------------------------------------------- the follower's guard (issue 12)
class _Msg:
    """The parts of a consumed confluent_kafka.Message the follower reads."""

    def __init__(self, key, value, offset=41) -> None:
        self._key, self._value, self._offset = key, value, offset

    def key(self):
        return self._key

    def value(self):
        return self._value

    def topic(self):
        return "t.subscriptions"

    def partition(self):
        return 2

    def offset(self):
        return self._offset


def _skipped(reason: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("hookstream_subscriptions_records_skipped_total", {"reason": reason}) or 0.0


def test_the_follower_skips_an_unreadable_record_naming_where_it_is_and_counts_it(caplog):
    from hookstream.subscriptions.view import _apply

    table, before = SubscriptionTable(KEYRING), _skipped("unreadable")
    key, value = encode(make_sub(), KEYRING)
    poisoned = value.replace(b'"created_at":"2026-11-28T12:00:01.000000Z"', b'"created_at":"0001-01-01T00:00:00+01:00"')
    assert poisoned != value
    with caplog.at_level("ERROR", logger="hookstream.subscriptions"):
        _apply(table, _Msg(key, poisoned))
        _apply(table, _Msg(b"sub_1", b"[" * 100_000, offset=42))
        _apply(table, _Msg(key, value, offset=43))  # the next record is applied as usual
    assert table.ids() == ["sub_1"]
    assert _skipped("unreadable") == before + 2
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and "t.subscriptions [2] at offset 41 (key 'sub_1')" in lines[0] and "offset 42" in lines[1]


def test_the_follower_survives_any_exception_from_apply_and_counts_it(caplog):
    from hookstream.subscriptions.view import _apply

    class Broken(SubscriptionTable):
        def apply(self, key, value):
            raise RuntimeError("a bug in apply, with a value that must not be logged: PLANTED")

    before = _skipped("error")
    with caplog.at_level("ERROR", logger="hookstream.subscriptions"):
        _apply(Broken(KEYRING), _Msg(b"sub_9", b"{}"))
    assert _skipped("error") == before + 1
    assert "RuntimeError" in caplog.text and "sub_9" in caplog.text and "PLANTED" not in caplog.text
