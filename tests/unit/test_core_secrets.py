"""hookstream.core.secrets: the one signing-secret type, from generation to the key it signs with.

The format rules (``whsec_`` + standard base64 of 24-64 bytes; padding optional on input, always
present on output), and that no error, ``repr`` or mask ever shows the secret. Signing and
verifying with it: tests/unit/test_signing.py.
"""

import base64
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookstream.core.errors import ValidationError
from hookstream.core.secrets import MAX_BYTES, MIN_BYTES, InvalidSecretError, Secret, mask

keys = st.binary(min_size=MIN_BYTES, max_size=MAX_BYTES)


def test_a_generated_secret_is_whsec_and_padded_base64_of_32_random_bytes():
    a, b = Secret.generate().reveal(), Secret.generate().reveal()
    assert a.startswith("whsec_") and a != b
    assert len(base64.b64decode(a[6:], validate=True)) == 32  # what the reference libraries decode
    assert Secret.parse(a).reveal() == a


@given(keys)
def test_reveal_then_parse_round_trips_and_reveal_is_standard_padded_base64(key):
    secret = Secret(key)
    text = secret.reveal()
    assert Secret.parse(text) == secret
    assert base64.b64decode(text.removeprefix("whsec_"), validate=True) == key  # Python's reference decoder takes it
    assert len(text.removeprefix("whsec_")) % 4 == 0


@given(keys)
def test_the_padding_may_be_left_out_but_what_is_kept_is_padded(key):
    padded = Secret(key).reveal()
    bare = padded.rstrip("=")
    assert Secret.parse(bare) == Secret(key) and Secret.parse(bare).reveal() == padded


@given(keys, st.integers(min_value=1, max_value=3))
def test_wrong_padding_is_refused(key, extra):
    padded = Secret(key).reveal()
    bare = padded.rstrip("=")
    wrong = bare + "=" * ((len(padded) - len(bare) + extra) % 4 or 4)
    if wrong == padded:
        return
    with pytest.raises(InvalidSecretError, match="not valid base64"):
        Secret.parse(wrong)


@given(st.binary(max_size=MIN_BYTES - 1) | st.binary(min_size=MAX_BYTES + 1, max_size=200))
def test_a_key_outside_24_to_64_bytes_is_refused_naming_its_size(key):
    with pytest.raises(InvalidSecretError, match=f"decodes to {len(key)} bytes"):
        Secret.parse("whsec_" + base64.b64encode(key).decode())


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        ("sk_" + base64.b64encode(b"x" * 32).decode(), "does not start with whsec_"),
        ("whsec_not base64!!", "not valid base64"),
        ("whsec_" + base64.b64encode(b"x" * 32).decode().replace("+", "-") + "-_", "not valid base64"),  # URL-safe alphabet
        ("whsec_AA==AAAA" + "A" * 32, "not valid base64"),
        ("whsec_" + base64.b64encode(b"x" * 16).decode(), "decodes to 16 bytes"),
        ("whsec_" + base64.b64encode(b"x" * 65).decode(), "decodes to 65 bytes"),
        (12345, "not a string"),
        (None, "not a string"),
    ],
)
def test_an_invalid_secret_is_refused_without_echoing_it(secret, why):
    with pytest.raises(ValidationError) as caught:  # a user-facing error: one line, exit 2
        Secret.parse(secret)
    assert isinstance(caught.value, InvalidSecretError) and caught.value.exit_code == 2
    assert why in str(caught.value) and str(caught.value).startswith("secret: ")
    if isinstance(secret, str):
        assert secret.removeprefix("whsec_")[:12] not in str(caught.value)
    assert caught.value.__cause__ is None and (caught.value.__context__ is None or caught.value.__suppress_context__)


def test_surrounding_whitespace_is_ignored():
    text = Secret.generate().reveal()
    assert Secret.parse(f" {text}\n") == Secret.parse(text)


def test_mask_keeps_the_prefix_and_four_characters_only():
    secret = Secret.generate()
    assert secret.masked == mask(secret.reveal()) == secret.reveal()[:10] + "…"
    assert mask("garbage") == mask(None) == "whsec_****"


@given(keys)
def test_repr_and_str_never_show_the_key(key):
    secret = Secret(key, expires_at=datetime(2027, 1, 1, tzinfo=UTC))
    text = secret.reveal()
    for shown in (repr(secret), str(secret), repr([secret]), f"{secret}"):
        assert text not in shown and text[10:] not in shown and secret.masked in shown


def test_expiry_is_a_datetime_or_unix_seconds_and_valid_at_takes_either():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    by_datetime = Secret.generate().expiring(now + timedelta(hours=1))
    by_seconds = by_datetime.expiring((now + timedelta(hours=1)).timestamp())
    assert by_datetime == by_seconds and by_seconds.expires_at == now + timedelta(hours=1)
    for s in (by_datetime, by_seconds):
        assert s.valid_at(now) and s.valid_at(now.timestamp())
        assert not s.valid_at(now + timedelta(hours=1)) and not s.valid_at(now.timestamp() + 3600)
    assert Secret.generate().valid_at(datetime.max.replace(tzinfo=UTC))


def test_a_naive_expiry_is_refused():
    with pytest.raises(ValueError, match="aware"):
        Secret.generate().expiring(datetime(2026, 1, 1))


def test_secrets_compare_by_key_and_expiry_and_are_not_hashable():
    key = b"k" * 32
    assert Secret(key) == Secret(key) != Secret(b"j" * 32)
    assert Secret(key) != Secret(key, expires_at=5.0)
    with pytest.raises(TypeError):
        hash(Secret(key))
