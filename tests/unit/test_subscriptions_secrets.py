"""Signing secrets: format, validation without echoing, and masking everywhere."""

import base64
from datetime import UTC, datetime, timedelta

import pytest

from hookstream.core.errors import ValidationError
from hookstream.subscriptions.secrets import SigningSecret, generate_secret, mask, validate_secret


def test_generated_secret_is_whsec_and_base64_of_32_random_bytes():
    a, b = generate_secret(), generate_secret()
    assert a.startswith("whsec_") and a != b
    assert len(base64.b64decode(a[6:], validate=True)) == 32
    assert validate_secret(a) == a


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        ("sk_" + base64.b64encode(b"x" * 32).decode(), "does not start with whsec_"),
        ("whsec_not base64!!", "not valid base64"),
        ("whsec_" + base64.b64encode(b"x" * 16).decode(), "decodes to 16 bytes"),
        ("whsec_" + base64.b64encode(b"x" * 65).decode(), "decodes to 65 bytes"),
    ],
)
def test_invalid_secret_is_refused_without_echoing_it(secret, why):
    with pytest.raises(ValidationError) as caught:
        validate_secret(secret)
    assert why in str(caught.value)
    assert secret not in str(caught.value)


def test_mask_keeps_the_prefix_and_four_characters_only():
    secret = generate_secret()
    assert mask(secret) == secret[:10] + "…"
    assert mask("garbage") == "whsec_****"


def test_signing_secret_repr_and_str_are_masked():
    secret = generate_secret()
    s = SigningSecret(secret, None)
    assert secret not in repr(s) and secret not in str(s) and secret not in repr([s])
    assert s.masked in repr(s)


def test_signing_secret_key_is_the_decoded_bytes_and_expires():
    raw = bytes(range(32))
    now = datetime(2026, 1, 1, tzinfo=UTC)
    s = SigningSecret("whsec_" + base64.b64encode(raw).decode(), now + timedelta(hours=1))
    assert s.key == raw
    assert s.valid_at(now) and not s.valid_at(now + timedelta(hours=1))
