"""The Subscription value: masked public form, immutable headers, UTC times."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from hookstream.core.time import format_time, parse_time
from hookstream.subscriptions.models import Status, Subscription
from hookstream.core.secrets import Secret

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def make_sub(**kw) -> Subscription:
    fields = dict(
        id="sub_1", tenant_id="acme", url="https://hooks.example.com/", events=("*",), status=Status.ACTIVE,
        secrets=(Secret.generate(), Secret.generate().expiring(T0 + timedelta(hours=1))),
        headers={"X-Env": "prod"}, created_at=T0, updated_at=T0, version=2,
    )
    fields.update(kw)
    return Subscription(**fields)


def test_public_form_masks_every_secret_and_keeps_the_rest():
    sub = make_sub()
    public = sub.to_public()
    assert [s["secret"] for s in public["secrets"]] == [s.masked for s in sub.secrets]
    assert public["secrets"][1]["expires_at"] == "2026-11-28T13:00:00.000000Z"
    assert all(s.reveal() not in str(public) and s.reveal() not in repr(sub) for s in sub.secrets)
    assert (public["id"], public["status"], public["version"], public["published"]) == ("sub_1", "active", 2, True)


def test_headers_cannot_be_changed_through_a_shared_value():
    sub = make_sub()
    with pytest.raises(TypeError):
        sub.headers["X-Env"] = "dev"
    assert sub == make_sub(secrets=sub.secrets)


def test_times_are_written_in_utc_with_a_z_and_read_back_equal():
    local = datetime(2026, 11, 28, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    assert format_time(local) == "2026-11-28T12:00:00.000000Z"
    assert parse_time(format_time(local)) == T0 and parse_time("2026-11-28T12:00:00").tzinfo == UTC


def test_public_form_shows_header_names_only_and_masks_url_tokens():
    sub = make_sub(url="https://hooks.example.com/in?token=PLANTED-URL", headers={"Authorization": "Bearer PLANTED-HEADER"})
    public = sub.to_public()
    assert public["headers"] == {"Authorization": "***"}
    assert public["url"] == "https://hooks.example.com/in?***"
    assert "PLANTED" not in str(public)


def test_public_form_says_why_secrets_are_missing_when_they_did_not_open():
    public = make_sub(secrets=(), headers={}, sealed_error="sealed under key id 'k0'").to_public()
    assert public["secrets"] == [] and public["sealed_error"] == "sealed under key id 'k0'"


def test_a_unicode_host_saved_before_canonical_urls_is_read_in_ascii():
    assert make_sub(url="https://B\u00fccher.example/in").url == "https://xn--bcher-kva.example/in"
    # a homograph shows as what it is
    assert make_sub(url="https://\u0440\u0430\u0443\u0440\u0430l.com/").url == "https://xn--l-7sba6dbr.com/"


def test_a_saved_url_that_no_longer_passes_is_kept_as_saved_for_delivery_to_refuse():
    assert make_sub(url="https://stra\u00dfe.example/").url == "https://stra\u00dfe.example/"
    assert make_sub(url="https://HOOKS.example.com:443").url == "https://HOOKS.example.com:443"  # ASCII: read as saved
