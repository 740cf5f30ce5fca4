"""API keys: made, listed, revoked (``hookstream api-keys``) and checked (the API), in one place.

A key is ``hsk_`` + 32 random bytes (URL-safe base64, 43 characters), shown once when made. The
store keeps its SHA-256 hash and its first 12 characters (``prefix``: to find the row and to show
which key is which); the key itself is never stored or logged. Checking a key finds the rows with
its prefix and compares hashes with ``hmac.compare_digest`` (constant time).

A key is either a tenant's (acts for that tenant only) or an admin key (acts for any tenant, and
is the only kind allowed admin operations). A revoked key stays listed, marked revoked.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy import Engine

from hookstream.core.db import Base
from hookstream.core.errors import NotFoundError, ValidationError
from hookstream.core.settings import Settings

KEY_PREFIX = "hsk_"
SHOWN_CHARS = 12  # "hsk_" + 8: what `list` shows and the store looks a key up by
_KEY = re.compile(r"hsk_[A-Za-z0-9_-]{43}")
_KEY_ID = re.compile(r"key_[0-9a-f]{16}")
MAX_NAME = 200

api_keys = sa.Table(
    "api_keys",
    Base.metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("prefix", sa.String(16), nullable=False, index=True),
    sa.Column("key_hash", sa.String(64), nullable=False),
    sa.Column("tenant_id", sa.String(128), nullable=True),
    sa.Column("admin", sa.Boolean, nullable=False),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("(admin AND tenant_id IS NULL) OR (NOT admin AND tenant_id IS NOT NULL)", name="ck_api_keys_scope"),
)


@dataclasses.dataclass(frozen=True)
class ApiKey:
    """A key as listed: never the key itself."""

    id: str
    prefix: str
    tenant_id: str | None
    admin: bool
    name: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def to_public(self) -> dict:
        return {"id": self.id, "prefix": self.prefix, "tenant_id": self.tenant_id, "admin": self.admin, "name": self.name,
                "created_at": _iso(self.created_at), "revoked_at": _iso(self.revoked_at) if self.revoked_at else None}


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:  # SQLite hands naive datetimes back
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def hash_key(plain: str) -> str:
    return hashlib.sha256(plain.encode()).hexdigest()


def looks_like_key(plain: str) -> bool:
    return bool(_KEY.fullmatch(plain))


class ApiKeyStore:
    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] | None = None) -> None:
        self.engine = engine
        self._now = clock or (lambda: datetime.now(timezone.utc))

    @classmethod
    def open(cls, settings: Settings) -> "ApiKeyStore":
        from hookstream.core.db import open_database  # migrates, as every store does

        return cls(open_database(settings))

    def create(self, *, tenant_id: str | None = None, admin: bool = False, name: str = "") -> tuple[ApiKey, str]:
        """A new key: (what is stored, the key in clear: shown once, then only its hash exists)."""
        if admin == (tenant_id is not None):
            raise ValidationError("an API key is either a tenant's (--tenant T) or an admin key (--admin), not both or neither")
        if tenant_id is not None:
            from hookstream.subscriptions.store import validate_tenant

            validate_tenant(tenant_id)
        if len(name) > MAX_NAME or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
            raise ValidationError(f"name: at most {MAX_NAME} characters, no control characters")
        plain = KEY_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey("key_" + secrets.token_hex(8), plain[:SHOWN_CHARS], tenant_id, admin, name, self._now(), None)
        with self.engine.begin() as conn:
            conn.execute(api_keys.insert().values(
                id=key.id, prefix=key.prefix, key_hash=hash_key(plain), tenant_id=tenant_id, admin=admin, name=name,
                created_at=key.created_at, revoked_at=None))
        return key, plain

    def list(self, *, tenant_id: str | None = None, include_revoked: bool = True) -> list[ApiKey]:
        query = sa.select(api_keys).order_by(api_keys.c.created_at.desc(), api_keys.c.id)
        if tenant_id is not None:
            query = query.where(api_keys.c.tenant_id == tenant_id)
        if not include_revoked:
            query = query.where(api_keys.c.revoked_at.is_(None))
        with self.engine.connect() as conn:
            return [_key(row) for row in conn.execute(query)]

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key by its id (``key_...``); revoking a revoked key changes nothing."""
        if not _KEY_ID.fullmatch(key_id):
            raise NotFoundError(f"no API key {key_id[:40]!r} (ids look like key_0123456789abcdef; see `hookstream api-keys list`)")
        with self.engine.begin() as conn:
            conn.execute(api_keys.update().where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None)).values(revoked_at=self._now()))
            row = conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id)).first()
        if row is None:
            raise NotFoundError(f"no API key {key_id!r} (see `hookstream api-keys list`)")
        return _key(row)

    def authenticate(self, plain: str) -> ApiKey | None:
        """The live key ``plain`` is, or None (malformed, unknown or revoked)."""
        if not looks_like_key(plain):
            return None
        digest = hash_key(plain)
        with self.engine.connect() as conn:
            rows = list(conn.execute(sa.select(api_keys).where(api_keys.c.prefix == plain[:SHOWN_CHARS])))
        found = None
        for row in rows:  # every candidate compared, in constant time each
            if hmac.compare_digest(row.key_hash, digest) and row.revoked_at is None:
                found = row
        return _key(found) if found is not None else None


def _key(row) -> ApiKey:
    return ApiKey(row.id, row.prefix, row.tenant_id, bool(row.admin), row.name or "", row.created_at, row.revoked_at)


REVOCATION_SECONDS = 1.0  # the longest a revoked key is still accepted (docs/api.md)


class KeyCache:
    """What ``authenticate`` answered for a key hash, for ``ttl`` seconds, so a busy key costs one
    database read per second, not one per request. A revoked key is refused everywhere within
    ``ttl``. Bounded: when full, it starts afresh (a miss only costs a read), but only for a real
    key: unknown keys are not remembered then, so made-up keys cannot flush the real ones."""

    def __init__(self, ttl: float = REVOCATION_SECONDS, size: int = 10_000, clock: Callable[[], float] | None = None) -> None:
        import time

        self.ttl = ttl
        self.size = size
        self._clock = clock or time.monotonic
        self._entries: dict[str, tuple[ApiKey | None, float]] = {}

    def get(self, digest: str) -> tuple[bool, ApiKey | None]:
        """(found, key): found is False when the store must be asked."""
        entry = self._entries.get(digest)
        if entry is None or entry[1] < self._clock():
            return False, None
        return True, entry[0]

    def put(self, digest: str, key: ApiKey | None) -> None:
        if len(self._entries) >= self.size:
            if key is None:  # an unknown key (anyone can make them up) never flushes the known ones
                return
            self._entries.clear()
        self._entries[digest] = (key, self._clock() + self.ttl)
