"""The keyring: sealing, opening, key ids, rotation, tampering, and the key file's modes."""

import base64
import os
import stat
import threading

import pytest

from hookstream.core.crypto import (
    Keyring,
    SealedValueError,
    UnknownKeyError,
    key_id_of,
    load_keyring,
    new_key_entry,
    prepend_key,
)
from hookstream.core.errors import ConfigError
from hookstream.core.settings import Settings

CLEAR = "whsec_PLANTEDclearVALUEforTHEtest0123456789"


def ring(*ids: str) -> Keyring:
    return Keyring.parse(",".join(new_key_entry(i) for i in ids))


def test_seal_then_open_gives_the_value_back_and_the_sealed_text_names_its_key():
    keyring = ring("k2", "k1")
    sealed = keyring.seal(CLEAR, "ctx")
    assert sealed.startswith("hs1:k2:") and key_id_of(sealed) == "k2"
    assert CLEAR not in sealed and keyring.open(sealed, "ctx") == CLEAR
    assert keyring.seal(CLEAR, "ctx") != sealed  # a fresh nonce every time


def test_an_older_key_of_the_ring_still_opens_what_it_sealed():
    k1 = new_key_entry("k1")
    sealed = Keyring.parse(k1).seal(CLEAR, "ctx")
    rotated = Keyring.parse(new_key_entry("k2") + "," + k1)
    assert rotated.newest == "k2" and rotated.open(sealed, "ctx") == CLEAR
    resealed = rotated.reseal(sealed, "ctx")
    assert key_id_of(resealed) == "k2" and rotated.open(resealed, "ctx") == CLEAR
    assert rotated.reseal(resealed, "ctx") == resealed  # already under the newest: unchanged
    with pytest.raises(UnknownKeyError):
        Keyring.parse(k1).open(resealed, "ctx")  # the old key alone no longer opens it


def test_an_unknown_key_id_is_an_error_naming_it_and_never_the_value():
    sealed = ring("gone").seal(CLEAR, "ctx")
    with pytest.raises(UnknownKeyError) as caught:
        ring("k1").open(sealed, "ctx")
    assert caught.value.key_id == "gone" and "'gone'" in str(caught.value) and "k1" in str(caught.value)
    assert CLEAR not in str(caught.value)


def test_a_tampered_value_or_another_context_does_not_open():
    keyring = ring("k1")
    sealed = keyring.seal(CLEAR, "subscription/sub_1/secret")
    body = sealed.rsplit(":", 1)[1]
    flipped = body[:10] + ("A" if body[10] != "A" else "B") + body[11:]
    for bad in (f"hs1:k1:{flipped}", sealed[:-4] + "AAAA"):
        with pytest.raises(SealedValueError, match="does not open"):
            keyring.open(bad, "subscription/sub_1/secret")
    with pytest.raises(SealedValueError, match="does not open"):
        keyring.open(sealed, "subscription/sub_2/secret")
    with pytest.raises(SealedValueError, match="not a sealed value"):
        keyring.open(CLEAR, "ctx")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "no key given"),
        ("justakey", "not 'key-id:base64-key'"),
        ("k1:!!!notbase64", "not valid base64"),
        (f"k1:{base64.b64encode(b'x' * 16).decode()}", "16 bytes, not 32"),
        ("bad id!:" + base64.b64encode(b"x" * 32).decode(), "key id"),
    ],
)
def test_a_malformed_keyring_names_the_problem_and_never_the_key(text, needle):
    with pytest.raises(ConfigError) as caught:
        Keyring.parse(text)
    assert needle in str(caught.value) and "HOOKSTREAM_SECRET_KEY" in str(caught.value)
    if ":" in text:
        assert text.split(":", 1)[1] not in str(caught.value)


def test_the_same_key_id_twice_is_refused():
    with pytest.raises(ConfigError, match="twice"):
        Keyring.parse(new_key_entry("k1") + "," + new_key_entry("k1"))


def test_the_environment_key_wins_and_settings_never_show_it():
    entry = new_key_entry("envkey")
    settings = Settings.from_env({"HOOKSTREAM_SECRET_KEY": entry, "HOOKSTREAM_STATE_DIR": "/nonexistent"})
    assert load_keyring(settings).ids == ("envkey",)
    assert entry.split(":")[1] not in repr(settings) and entry.split(":")[1] not in repr(load_keyring(settings))


def test_without_a_key_a_key_file_is_made_0600_in_a_0700_state_dir_and_reused(tmp_path):
    settings = Settings.from_env({"HOOKSTREAM_STATE_DIR": str(tmp_path / "a" / "state")})
    old_umask = os.umask(0o022)
    try:
        first = load_keyring(settings)
    finally:
        os.umask(old_umask)
    key_file = tmp_path / "a" / "state" / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "a" / "state").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o700
    assert load_keyring(settings).ids == first.ids
    sealed = first.seal(CLEAR, "ctx")
    assert load_keyring(settings).open(sealed, "ctx") == CLEAR


def test_processes_making_the_key_file_at_once_end_up_with_one_key(tmp_path):
    settings = Settings.from_env({"HOOKSTREAM_STATE_DIR": str(tmp_path / "state")})
    got: list[tuple[str, ...]] = []
    threads = [threading.Thread(target=lambda: got.append(load_keyring(settings).ids)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(got) == 8 and len(set(got)) == 1
    assert [p.name for p in (tmp_path / "state").iterdir()] == ["secret.key"]  # no temp files left


def test_a_key_file_named_by_the_environment_is_read(tmp_path):
    path = tmp_path / "compose-secret"
    path.write_text(new_key_entry("fromfile") + "\n")
    settings = Settings.from_env({"HOOKSTREAM_SECRET_KEY_FILE": str(path), "HOOKSTREAM_STATE_DIR": str(tmp_path / "s")})
    assert load_keyring(settings).ids == ("fromfile",)
    assert not (tmp_path / "s").exists()  # no key file made when one is named
    missing = Settings.from_env({"HOOKSTREAM_SECRET_KEY_FILE": str(tmp_path / "nope")})
    with pytest.raises(ConfigError, match="HOOKSTREAM_SECRET_KEY_FILE: cannot read"):
        load_keyring(missing)


def test_prepending_a_key_makes_it_the_newest_and_keeps_the_file_private(tmp_path):
    settings = Settings.from_env({"HOOKSTREAM_STATE_DIR": str(tmp_path / "state")})
    old = load_keyring(settings)
    prepend_key(tmp_path / "state" / "secret.key", new_key_entry("k-new"))
    now = load_keyring(settings)
    assert now.ids == ("k-new", *old.ids)
    assert stat.S_IMODE((tmp_path / "state" / "secret.key").stat().st_mode) == 0o600


def test_a_url_safe_base64_key_is_read_like_a_standard_one():
    raw = bytes(range(200, 232))  # encodes with + and / in standard base64
    standard = Keyring.parse(f"k1:{base64.b64encode(raw).decode()}")
    urlsafe = Keyring.parse(f"k1:{base64.urlsafe_b64encode(raw).decode()}")
    assert urlsafe.open(standard.seal(CLEAR, "ctx"), "ctx") == CLEAR
