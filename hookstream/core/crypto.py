"""Sealing secrets at rest: AES-256-GCM (``cryptography``) under a keyring of named keys.

A sealed value is text, so it fits the JSON columns and the topic's JSON as the clear value did::

    hs1:<key id>:<base64url(12-byte nonce + ciphertext + 16-byte tag)>

The key id says which key opens it, so keys can be rotated: the keyring holds several keys,
newest first; ``seal`` always uses the newest, ``open`` whichever the value names. A value is
bound to a context (the subscription id and the field) as GCM's associated data, so a sealed
secret copied onto another subscription does not open there.

Where the keys come from (``load_keyring``): ``HOOKSTREAM_SECRET_KEY`` (``kid:base64key`` entries,
comma-separated, newest first), else the file ``HOOKSTREAM_SECRET_KEY_FILE`` names (same format;
a compose/Kubernetes secret), else ``<state dir>/secret.key``, made with mode 0600 on first use.
No message here ever holds a key or a clear value.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets as _random
from collections.abc import Iterable
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hookstream.core.errors import ConfigError, HookstreamError
from hookstream.core.fsperm import private_dir

PREFIX = "hs1"
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12
KEY_FILE_NAME = "secret.key"
_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
_SEALED = re.compile(r"^hs1:([A-Za-z0-9_.-]{1,32}):([A-Za-z0-9_-]+={0,2})$")


class SealedValueError(HookstreamError):
    """A sealed value that cannot be opened: unknown key id, tampered, or not a sealed value."""


class UnknownKeyError(SealedValueError):
    def __init__(self, key_id: str, known: Iterable[str]) -> None:
        self.key_id = key_id
        super().__init__(
            f"sealed under key id {key_id!r}, which the keyring does not hold (it holds {', '.join(known) or 'none'}); "
            "add that key to HOOKSTREAM_SECRET_KEY after the newest one"
        )


def is_sealed(text: object) -> bool:
    return isinstance(text, str) and text.startswith(PREFIX + ":")


def key_id_of(text: str) -> str | None:
    match = _SEALED.match(text) if isinstance(text, str) else None
    return match.group(1) if match else None


def new_key_entry(key_id: str | None = None) -> str:
    """A fresh ``kid:base64key`` entry (the id defaults to ``k`` + a few random hex digits)."""
    key_id = key_id or "k" + _random.token_hex(4)
    _check_key_id(key_id, "key id")
    return f"{key_id}:{base64.b64encode(_random.token_bytes(KEY_BYTES)).decode('ascii')}"


class Keyring:
    """Named AES-256-GCM keys, newest first. ``repr`` names the ids only."""

    def __init__(self, keys: Iterable[tuple[str, bytes]]) -> None:
        self._keys: dict[str, AESGCM] = {}
        for key_id, key in keys:
            if key_id in self._keys:
                raise ConfigError(f"secret keys: key id {key_id!r} is given twice")
            self._keys[key_id] = AESGCM(key)
        if not self._keys:
            raise ConfigError("secret keys: no key given")
        self.newest = next(iter(self._keys))

    @classmethod
    def parse(cls, text: str, *, source: str = "HOOKSTREAM_SECRET_KEY") -> "Keyring":
        """``kid1:base64key,kid2:base64key`` (newest first; newlines also separate entries)."""
        entries = [e.strip() for e in re.split(r"[,\n]", text) if e.strip() and not e.strip().startswith("#")]
        keys = []
        for n, entry in enumerate(entries, 1):
            key_id, sep, encoded = entry.partition(":")
            if not sep:
                raise ConfigError(f"{source}: entry {n} is not 'key-id:base64-key' (expected e.g. k2:{'A' * 43}=)")
            _check_key_id(key_id.strip(), source)
            try:
                # standard or URL-safe base64 alike
                key = base64.b64decode(encoded.strip().replace("-", "+").replace("_", "/"), validate=True)
            except (binascii.Error, ValueError):
                raise ConfigError(f"{source}: the key of {key_id.strip()!r} is not valid base64") from None
            if len(key) != KEY_BYTES:
                raise ConfigError(f"{source}: the key of {key_id.strip()!r} decodes to {len(key)} bytes, not {KEY_BYTES}")
            keys.append((key_id.strip(), key))
        if not keys:
            raise ConfigError(f"{source}: no key given (expected 'key-id:base64-key', e.g. from `hookstream secrets new-key`)")
        return cls(keys)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def seal(self, clear: str, context: str) -> str:
        nonce = _random.token_bytes(NONCE_BYTES)
        box = self._keys[self.newest].encrypt(nonce, clear.encode("utf-8"), context.encode("utf-8"))
        return f"{PREFIX}:{self.newest}:{base64.urlsafe_b64encode(nonce + box).decode('ascii')}"

    def open(self, sealed: str, context: str) -> str:
        match = _SEALED.match(sealed) if isinstance(sealed, str) else None
        if match is None:
            raise SealedValueError("not a sealed value (expected hs1:<key id>:<data>)")
        key_id = match.group(1)
        cipher = self._keys.get(key_id)
        if cipher is None:
            raise UnknownKeyError(key_id, self._keys)
        try:
            raw = base64.urlsafe_b64decode(match.group(2))
            return cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode("utf-8")).decode("utf-8")
        except (InvalidTag, binascii.Error, ValueError):
            raise SealedValueError(f"a value sealed under key id {key_id!r} does not open: altered, or sealed for another record") from None

    def reseal(self, sealed: str, context: str) -> str:
        """``sealed`` under the newest key (unchanged when it already is)."""
        if key_id_of(sealed) == self.newest:
            return sealed
        return self.seal(self.open(sealed, context), context)

    def __repr__(self) -> str:
        return f"Keyring(ids={list(self._keys)!r})"


def _check_key_id(key_id: str, source: str) -> None:
    if not _KEY_ID.match(key_id):
        raise ConfigError(f"{source}: key id {key_id[:40]!r} must be 1-32 letters, digits, '.', '_' or '-'")


def key_file_path(settings) -> Path:
    return settings.secret_key_file or settings.state_dir / KEY_FILE_NAME


def load_keyring(settings) -> Keyring:
    """The keyring the settings name (see the module docstring); creates the state dir's key file if needed."""
    if settings.secret_key:
        return Keyring.parse(settings.secret_key)
    if settings.secret_key_file is not None:
        try:
            text = Path(settings.secret_key_file).read_text("utf-8")
        except OSError as exc:
            raise ConfigError(f"HOOKSTREAM_SECRET_KEY_FILE: cannot read {settings.secret_key_file}: {exc.strerror}") from None
        return Keyring.parse(text, source=f"HOOKSTREAM_SECRET_KEY_FILE ({settings.secret_key_file})")
    path = settings.state_dir / KEY_FILE_NAME
    return Keyring.parse(_read_or_create(path), source=str(path))


def _read_or_create(path: Path) -> str:
    try:
        return path.read_text("utf-8")
    except FileNotFoundError:
        pass
    private_dir(path.parent)
    # Written aside, then linked into place: a concurrent first use by another process either
    # wins (we read its key) or loses (it reads ours); never a half-written file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{_random.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(new_key_entry() + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_text("utf-8")


def prepend_key(path: Path, entry: str) -> None:
    """Put ``entry`` first in the key file (the newest key), keeping the others; stays 0600."""
    old = path.read_text("utf-8") if path.exists() else ""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{_random.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(entry + "\n" + old)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
