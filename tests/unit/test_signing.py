"""hookstream.delivery.signing: Standard Webhooks signing and verification, cross-checked with the reference library."""

from __future__ import annotations

import base64
import datetime as dt
import importlib.metadata
import time

import pytest
import standardwebhooks

from hookstream.delivery import signing
from hookstream.delivery.errors import (
    InvalidSecretError,
    InvalidTimestampError,
    MissingHeaderError,
    NoMatchingSignatureError,
    NoValidSecretError,
    SigningError,
    TimestampTooNewError,
    TimestampTooOldError,
    WebhookVerificationError,
)
from hookstream.delivery.signing import Secret, build_headers, sign, verify
from hookstream.core.errors import HookstreamError, ValidationError

# The test vector the Standard Webhooks libraries share.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TS = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

NOW = 1_800_000_000
BODY = b'{"type":"invoice.paid","timestamp":"2027-01-15T08:00:00Z","data":{"id":"in_1"}}'


def _whsec(nbytes: int, fill: bytes = b"k") -> str:
    return "whsec_" + base64.b64encode(fill * nbytes).decode()


def _signed(secrets, *, msg_id: str = "msg_1", ts: int = NOW, body: bytes = BODY) -> dict[str, str]:
    return build_headers(msg_id, ts, body, secrets)


# --- Secret -------------------------------------------------------------------------------------


def test_public_names_are_exported() -> None:
    assert set(signing.__all__) == {"DEFAULT_TOLERANCE_SECONDS", "Secret", "build_headers", "sign", "user_agent", "verify"}
    for name in signing.__all__:
        assert hasattr(signing, name)


def test_secret_parses_whsec_base64_with_or_without_padding() -> None:
    padded = "whsec_" + base64.b64encode(b"x" * 32).decode()
    assert padded.endswith("=")
    assert Secret.parse(padded) == Secret.parse(padded.rstrip("="))
    assert Secret.parse(padded) == Secret(b"x" * 32)


def test_secret_parse_ignores_surrounding_whitespace_from_copy_paste() -> None:
    assert Secret.parse(f"  {VECTOR_SECRET}\n") == Secret.parse(VECTOR_SECRET)


@pytest.mark.parametrize("nbytes", [24, 64])
def test_secret_accepts_24_to_64_bytes_of_key(nbytes: int) -> None:
    assert Secret.parse(_whsec(nbytes)).reveal() == _whsec(nbytes)


@pytest.mark.parametrize("nbytes", [0, 1, 23, 65, 128])
def test_secret_with_key_outside_24_to_64_bytes_is_refused(nbytes: int) -> None:
    with pytest.raises(InvalidSecretError, match="24-64 bytes"):
        Secret.parse(_whsec(nbytes))


def test_secret_without_whsec_prefix_is_refused() -> None:
    with pytest.raises(InvalidSecretError, match="whsec_"):
        Secret.parse(VECTOR_SECRET.removeprefix("whsec_"))


@pytest.mark.parametrize("body", ["not*base64!", "MfKQ9r8GKYqr-wjUPD8ILPZIo2LaLaSw", "MfKQ9r8GKYqr TwjUPD8ILPZIo2LaLaSw", "a"])
def test_secret_that_is_not_standard_base64_is_refused(body: str) -> None:
    with pytest.raises(InvalidSecretError, match="base64"):
        Secret.parse("whsec_" + body)


def test_secret_that_is_not_a_string_is_refused() -> None:
    with pytest.raises(InvalidSecretError):
        Secret.parse(b"whsec_abc")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad",
    [
        "whsec_c2VjcmV0LXRvby1zaG9ydCEhIQ==",  # 19 bytes
        "whsec_sup3r$ecret-value-that-is-not-base64!!",
        "sup3rsecretvaluewithoutprefix0123456789",
        "whsec_" + base64.b64encode(b"s" * 80).decode(),
    ],
)
def test_bad_secret_error_never_shows_the_secret(bad: str) -> None:
    with pytest.raises(InvalidSecretError) as info:
        Secret.parse(bad)
    shown = f"{info.value} {info.value!r} {info.value.__cause__!r} {info.value.__context__!r}"
    fragment = bad.removeprefix("whsec_")[:12]
    assert fragment not in shown
    # No decoder exception rides along in the traceback either.
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__


def test_secret_repr_and_str_are_redacted() -> None:
    secret = Secret.parse(VECTOR_SECRET, expires_at=5.0)
    key_b64 = VECTOR_SECRET.removeprefix("whsec_")
    for shown in (repr(secret), str(secret), f"{secret}", repr([secret])):
        assert key_b64 not in shown and "redacted" in shown


def test_secret_reveal_round_trips_through_parse() -> None:
    secret = Secret.generate()
    assert Secret.parse(secret.reveal()) == secret
    assert len(base64.b64decode(secret.reveal().removeprefix("whsec_"))) == 32


def test_generated_secrets_differ() -> None:
    assert Secret.generate() != Secret.generate()


def test_bad_secret_error_is_a_user_facing_validation_error() -> None:
    assert issubclass(InvalidSecretError, ValidationError)
    assert issubclass(InvalidSecretError, SigningError)
    assert InvalidSecretError("x").exit_code == 2


def test_every_verification_error_is_a_hookstream_error() -> None:
    for cls in (MissingHeaderError, InvalidTimestampError, TimestampTooOldError, TimestampTooNewError, NoMatchingSignatureError):
        assert issubclass(cls, WebhookVerificationError)
        assert issubclass(cls, HookstreamError)


# --- sign / build_headers -------------------------------------------------------------------------


def test_sign_matches_the_standard_webhooks_test_vector() -> None:
    assert sign(VECTOR_ID, VECTOR_TS, VECTOR_BODY, VECTOR_SECRET) == VECTOR_SIGNATURE


def test_sign_emits_one_v1_entry_per_secret_for_rotation() -> None:
    old, new = Secret(b"o" * 32), Secret(b"n" * 32)
    entries = sign("msg_1", NOW, BODY, [old, new]).split(" ")
    assert entries == [sign("msg_1", NOW, BODY, old), sign("msg_1", NOW, BODY, new)]
    assert all(e.startswith("v1,") for e in entries)


def test_sign_drops_a_secret_once_its_grace_window_has_ended() -> None:
    old = Secret(b"o" * 32, expires_at=NOW)
    new = Secret(b"n" * 32)
    assert sign("msg_1", NOW - 1, BODY, [old, new]).count("v1,") == 2
    assert sign("msg_1", NOW, BODY, [old, new]) == sign("msg_1", NOW, BODY, new)


def test_sign_with_only_expired_secrets_raises_no_valid_secret() -> None:
    with pytest.raises(NoValidSecretError):
        sign("msg_1", NOW, BODY, [Secret(b"o" * 32, expires_at=NOW - 10)])


def test_sign_with_no_secrets_raises_no_valid_secret() -> None:
    with pytest.raises(NoValidSecretError):
        sign("msg_1", NOW, BODY, [])


def test_sign_signature_depends_on_id_timestamp_and_body() -> None:
    base = sign("msg_1", NOW, BODY, VECTOR_SECRET)
    assert sign("msg_2", NOW, BODY, VECTOR_SECRET) != base
    assert sign("msg_1", NOW + 1, BODY, VECTOR_SECRET) != base
    assert sign("msg_1", NOW, BODY + b" ", VECTOR_SECRET) != base


@pytest.mark.parametrize("msg_id", ["", "msg\r\nx-injected: 1", "msg 1", "m" * 256, "msg_é"])
def test_sign_refuses_an_id_unsafe_for_a_header(msg_id: str) -> None:
    with pytest.raises(ValidationError, match="webhook-id"):
        sign(msg_id, NOW, BODY, VECTOR_SECRET)


@pytest.mark.parametrize("ts", [-1, 1.5, True, "1800000000"])
def test_sign_refuses_a_timestamp_that_is_not_integer_seconds(ts) -> None:
    with pytest.raises(ValidationError, match="webhook-timestamp"):
        sign("msg_1", ts, BODY, VECTOR_SECRET)


def test_sign_refuses_a_str_body_because_the_exact_bytes_are_signed() -> None:
    with pytest.raises(TypeError, match="bytes"):
        sign("msg_1", NOW, BODY.decode(), VECTOR_SECRET)  # type: ignore[arg-type]


def test_build_headers_sends_every_standard_header() -> None:
    headers = build_headers("msg_1", NOW, BODY, VECTOR_SECRET)
    assert headers == {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(NOW),
        "webhook-signature": sign("msg_1", NOW, BODY, VECTOR_SECRET),
        "content-type": "application/json",
        "user-agent": f"hookstream/{importlib.metadata.version('hookstream')}",
    }


def test_user_agent_names_hookstream_and_its_version() -> None:
    assert signing.user_agent() == f"hookstream/{importlib.metadata.version('hookstream')}"


# --- cross-checks with the reference library -------------------------------------------------------


def test_our_signature_verifies_with_standardwebhooks() -> None:
    now = int(time.time())  # the reference verifier reads the wall clock itself
    headers = _signed(VECTOR_SECRET, ts=now)
    assert standardwebhooks.Webhook(VECTOR_SECRET).verify(BODY, headers) == {
        "type": "invoice.paid",
        "timestamp": "2027-01-15T08:00:00Z",
        "data": {"id": "in_1"},
    }


def test_our_rotation_signature_verifies_with_standardwebhooks_for_old_and_new_secret() -> None:
    old, new = Secret.generate(), Secret.generate()
    headers = _signed([old, new], ts=int(time.time()))
    for secret in (old, new):
        standardwebhooks.Webhook(secret.reveal()).verify(BODY, headers, json_parse=False)


def test_standardwebhooks_rejects_our_signature_for_a_tampered_body() -> None:
    headers = _signed(VECTOR_SECRET, ts=int(time.time()))
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(VECTOR_SECRET).verify(BODY.replace(b"in_1", b"in_2"), headers)


def test_standardwebhooks_signature_verifies_with_ours() -> None:
    sent_at = dt.datetime.fromtimestamp(NOW, dt.timezone.utc)
    signature = standardwebhooks.Webhook(VECTOR_SECRET).sign("msg_ref", sent_at, BODY.decode())
    headers = {"webhook-id": "msg_ref", "webhook-timestamp": str(NOW), "webhook-signature": signature}
    verify(BODY, headers, VECTOR_SECRET, now=NOW)


def test_standardwebhooks_signature_fails_ours_with_another_secret() -> None:
    sent_at = dt.datetime.fromtimestamp(NOW, dt.timezone.utc)
    signature = standardwebhooks.Webhook(VECTOR_SECRET).sign("msg_ref", sent_at, BODY.decode())
    headers = {"webhook-id": "msg_ref", "webhook-timestamp": str(NOW), "webhook-signature": signature}
    with pytest.raises(NoMatchingSignatureError):
        verify(BODY, headers, Secret.generate(), now=NOW)


# --- verify ------------------------------------------------------------------------------------------


def test_verify_accepts_our_own_signature() -> None:
    verify(BODY, _signed(VECTOR_SECRET), VECTOR_SECRET, now=NOW)


def test_verify_matches_header_names_in_any_case() -> None:
    headers = {k.title(): v for k, v in _signed(VECTOR_SECRET).items()}
    verify(BODY, headers, VECTOR_SECRET, now=NOW)


def test_verify_accepts_a_str_body() -> None:
    verify(BODY.decode(), _signed(VECTOR_SECRET), VECTOR_SECRET, now=NOW)


def test_verify_accepts_any_of_the_receivers_secrets_during_rotation() -> None:
    old, new = Secret.generate(), Secret.generate()
    headers = _signed(new)
    verify(BODY, headers, [old, new], now=NOW)


@pytest.mark.parametrize("name", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_verify_missing_header_raises_missing_header(name: str) -> None:
    headers = _signed(VECTOR_SECRET)
    del headers[name]
    with pytest.raises(MissingHeaderError, match=name):
        verify(BODY, headers, VECTOR_SECRET, now=NOW)


@pytest.mark.parametrize("name", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_verify_empty_header_raises_missing_header(name: str) -> None:
    headers = _signed(VECTOR_SECRET) | {name: "  "}
    with pytest.raises(MissingHeaderError, match=name):
        verify(BODY, headers, VECTOR_SECRET, now=NOW)


@pytest.mark.parametrize("value", ["abc", "1800000000.5", "-1800000000", "1e9", "0x6B49D200", "１８"])
def test_verify_non_integer_timestamp_raises_invalid_timestamp(value: str) -> None:
    headers = _signed(VECTOR_SECRET) | {"webhook-timestamp": value}
    with pytest.raises(InvalidTimestampError):
        verify(BODY, headers, VECTOR_SECRET, now=NOW)


def test_verify_timestamp_older_than_tolerance_raises_too_old() -> None:
    headers = _signed(VECTOR_SECRET, ts=NOW - 301)
    with pytest.raises(TimestampTooOldError):
        verify(BODY, headers, VECTOR_SECRET, now=NOW)


def test_verify_timestamp_further_ahead_than_tolerance_raises_too_new() -> None:
    headers = _signed(VECTOR_SECRET, ts=NOW + 301)
    with pytest.raises(TimestampTooNewError):
        verify(BODY, headers, VECTOR_SECRET, now=NOW)


@pytest.mark.parametrize("skew", [-300, 300])
def test_verify_timestamp_exactly_at_tolerance_is_accepted(skew: int) -> None:
    verify(BODY, _signed(VECTOR_SECRET, ts=NOW + skew), VECTOR_SECRET, now=NOW)


def test_verify_tolerance_is_configurable() -> None:
    headers = _signed(VECTOR_SECRET, ts=NOW - 60)
    verify(BODY, headers, VECTOR_SECRET, now=NOW, tolerance=60)
    with pytest.raises(TimestampTooOldError):
        verify(BODY, headers, VECTOR_SECRET, now=NOW, tolerance=59)


def test_verify_tampered_body_raises_no_matching_signature() -> None:
    with pytest.raises(NoMatchingSignatureError):
        verify(BODY.replace(b"in_1", b"in_2"), _signed(VECTOR_SECRET), VECTOR_SECRET, now=NOW)


def test_verify_replayed_signature_with_another_id_raises_no_matching_signature() -> None:
    headers = _signed(VECTOR_SECRET) | {"webhook-id": "msg_other"}
    with pytest.raises(NoMatchingSignatureError):
        verify(BODY, headers, VECTOR_SECRET, now=NOW)


def test_verify_signature_moved_to_another_timestamp_raises_no_matching_signature() -> None:
    headers = _signed(VECTOR_SECRET) | {"webhook-timestamp": str(NOW + 1)}
    with pytest.raises(NoMatchingSignatureError):
        verify(BODY, headers, VECTOR_SECRET, now=NOW)


def test_verify_skips_unknown_versions_and_garbage_entries_and_still_finds_v1() -> None:
    good = sign("msg_1", NOW, BODY, VECTOR_SECRET)
    headers = _signed(VECTOR_SECRET) | {"webhook-signature": f"v2,AAAA nocomma v1,@@notbase64@@ v1, {good}"}
    verify(BODY, headers, VECTOR_SECRET, now=NOW)


@pytest.mark.parametrize("header", ["v1a,AAAA", "nocomma", "v1,@@@", "v2," + VECTOR_SIGNATURE.removeprefix("v1,")])
def test_verify_with_no_usable_v1_entry_raises_no_matching_signature(header: str) -> None:
    headers = _signed(VECTOR_SECRET) | {"webhook-signature": header}
    with pytest.raises(NoMatchingSignatureError):
        verify(BODY, headers, VECTOR_SECRET, now=NOW)


def test_verify_compares_signatures_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = signing.hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(signing.hmac, "compare_digest", spy)
    verify(BODY, _signed(VECTOR_SECRET), VECTOR_SECRET, now=NOW)
    assert calls, "signatures must be compared with hmac.compare_digest"


def test_verify_ignores_a_secret_whose_grace_window_has_ended() -> None:
    old = Secret(b"o" * 32, expires_at=NOW - 1)
    headers = _signed(Secret(b"o" * 32))
    with pytest.raises(NoMatchingSignatureError):
        verify(BODY, headers, [old, Secret.generate()], now=NOW)


def test_verification_errors_never_show_the_secret_or_expected_signature() -> None:
    secret = Secret.generate()
    key_b64 = secret.reveal().removeprefix("whsec_")
    expected = sign("msg_1", NOW, BODY, secret).removeprefix("v1,")
    cases = [
        ({"webhook-id": "msg_1"}, MissingHeaderError),
        (_signed(secret) | {"webhook-timestamp": "x"}, InvalidTimestampError),
        (_signed(secret, ts=NOW - 999), TimestampTooOldError),
        (_signed(secret, ts=NOW + 999), TimestampTooNewError),
        (_signed(Secret.generate()), NoMatchingSignatureError),
    ]
    for headers, error in cases:
        with pytest.raises(error) as info:
            verify(BODY, headers, secret, now=NOW)
        shown = f"{info.value} {info.value!r}"
        assert key_b64 not in shown and expected not in shown


def test_delivery_headers_are_build_headers_byte_for_byte():
    from hookstream.delivery.signing import delivery_headers

    old, new = Secret.generate(), Secret.generate()
    rotated = Secret(old._key, expires_at=1_800_000_100.0)
    body = b'{"type":"invoice.paid","timestamp":"2027-01-15T08:00:00Z","data":{"id":"in_1"}}'
    for keys in ([new], [new, rotated], [rotated]):
        for ts in (1_800_000_000, 1_800_000_100, 1_800_000_200):
            try:
                expected = build_headers("msg_abc", ts, body, keys)
            except NoValidSecretError:
                with pytest.raises(NoValidSecretError):
                    delivery_headers("msg_abc", ts, body, keys)
                continue
            got = delivery_headers("msg_abc", ts, body, keys)
            assert got == expected and list(got) == list(expected)
    with pytest.raises(ValidationError):
        delivery_headers("msg with space", 1_800_000_000, body, [new])
    with pytest.raises(ValidationError):
        delivery_headers("msg\r\nx-injected: 1", 1_800_000_000, body, [new])
