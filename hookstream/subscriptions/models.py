"""A subscription: the table row the store keeps, and the ``Subscription`` value everyone else sees.

``SubscriptionRow`` is the database's view (including the bookkeeping for publishing:
``version`` counts changes, ``published_version`` is the newest version the compacted topic is
known to hold). ``Subscription`` is the immutable value the store returns and the topic carries;
its secrets mask themselves in ``repr``, and ``to_public()`` is the masked form for listings.
The row holds secrets and header values sealed (``sealed.py``); ``from_row`` opens them with the
store's keyring, so a ``Subscription`` holds them in clear, in memory only.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, DateTime, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hookstream.core.crypto import Keyring
from hookstream.core.db import Base
from hookstream.core.redact import mask_headers, mask_url
from hookstream.core.secrets import Secret
from hookstream.core.time import format_time, utc
from hookstream.subscriptions import sealed
from hookstream.subscriptions.urls import canonical_url


class Status(enum.StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"
    # Only in the database, between a delete and the tombstone reaching the topic.
    DELETED = "deleted"


class SubscriptionRow(Base):
    __tablename__ = "subscriptions"
    __table_args__ = (CheckConstraint("status in ('active', 'disabled', 'deleted')", name="ck_subscriptions_status"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(128), index=True)
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text, default="")
    headers: Mapped[dict] = mapped_column(JSON)  # {"Name": "hs1:<key id>:<sealed value>"}
    secrets: Mapped[list] = mapped_column(JSON)  # [{"secret": "hs1:<key id>:<sealed whsec_...>", "expires_at": "...Z" | null}]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(BigInteger)
    published_version: Mapped[int] = mapped_column(BigInteger, default=0)

    def __repr__(self) -> str:  # never the secrets
        return f"SubscriptionRow(id={self.id!r}, tenant_id={self.tenant_id!r}, status={self.status!r}, version={self.version})"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Subscription:
    id: str
    tenant_id: str
    url: str
    events: tuple[str, ...]
    status: Status
    secrets: tuple[Secret, ...]  # newest first; older ones carry expires_at while rotated out
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    description: str = ""
    created_at: datetime
    updated_at: datetime
    version: int
    # The store's knowledge only (not on the topic): a change not yet on the compacted topic.
    unpublished: bool = dataclasses.field(default=False, compare=False)
    # Set when the secrets or headers could not be opened (a key id the keyring lacks, an
    # altered value): then ``secrets`` and ``headers`` are empty and nothing may be signed.
    sealed_error: str | None = None

    def __post_init__(self) -> None:
        # Tables hand the same value to many threads: keep it immutable all the way down.
        object.__setattr__(self, "headers", MappingProxyType(dict(self.headers)))
        if not self.url.isascii():
            # Saved before URLs were stored canonical: read as the ASCII form delivery connects to
            # (listings show no homographs). One that no longer passes stays as saved, and the
            # delivery worker refuses it, naming the rule.
            object.__setattr__(self, "url", canonical_url(self.url))

    @property
    def active(self) -> bool:
        return self.status == Status.ACTIVE

    def signing_secrets(self, now: datetime | None = None) -> tuple[Secret, ...]:
        """The secrets to sign a delivery with at ``now``: the current one and any in its grace window."""
        now = now or datetime.now(UTC)
        return tuple(s for s in self.secrets if s.valid_at(now))

    def to_public(self) -> dict[str, Any]:
        """For listings, ``show`` and logs: every field, secrets masked."""
        return {
            "id": self.id,
            "tenant_id": self.tenant_id,
            "url": mask_url(self.url),
            "events": list(self.events),
            "status": str(self.status),
            "description": self.description,
            "headers": mask_headers(self.headers),
            "secrets": [
                {"secret": s.masked, "expires_at": format_time(s.expires_at) if s.expires_at else None} for s in self.secrets
            ],
            "created_at": format_time(self.created_at),
            "updated_at": format_time(self.updated_at),
            "version": self.version,
            "published": not self.unpublished,
        } | ({"sealed_error": self.sealed_error} if self.sealed_error else {})

    @classmethod
    def from_row(cls, row: SubscriptionRow, keyring: Keyring) -> "Subscription":
        secrets, headers, error = sealed.open_fields(row.secrets or [], row.headers or {}, keyring, row.id)
        return cls(
            id=row.id,
            tenant_id=row.tenant_id,
            url=row.url,
            events=tuple(row.events),
            status=Status(row.status),
            secrets=secrets,
            headers=headers,
            description=row.description or "",
            created_at=utc(row.created_at),
            updated_at=utc(row.updated_at),
            version=row.version,
            unpublished=row.published_version < row.version,
            sealed_error=error,
        )
