"""The subscription store: the source of truth, in SQLite or PostgreSQL.

Every change bumps the row's ``version`` in the same transaction as the change itself, so a
change the compacted topic has not seen yet is visible as ``published_version < version`` and
``publish_pending`` (``topic.py``) can always finish the job, however the process died.
A delete marks the row ``deleted`` (its secrets and headers wiped) until its tombstone is published.

Signing secrets and header values are sealed (``sealed.py``) when written and opened when read,
with the keyring of ``hookstream.crypto.load_keyring`` (or the one given): nothing else here
sees a sealed value. URLs are masked in what this module logs.

Tenancy: every tenant-facing read and write takes a tenant (``tenant_id``, keyword, required):
another tenant's subscription is "not found" and never listed. Reading across tenants is its own,
explicitly named operation (``get_any_tenant``, ``list_all_tenants``, ``unpublished_count``),
for operators' commands and the topic sync only. On PostgreSQL each transaction is also bound to
its tenant (or to all, for those operations), so row-level security hides other tenants' rows
even from a query that forgot its filter (``hookstream.db``, migration ``0006_tenant_rls``).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from hookstream.core.crypto import Keyring, SealedValueError, load_keyring
from hookstream.core.db import bind_all_tenants, bind_tenant, open_database, session_factory
from hookstream.core.errors import NotFoundError, ValidationError
from hookstream.core.redact import mask_url
from hookstream.core.secrets import InvalidSecretError, Secret
from hookstream.core.settings import Settings
from hookstream.subscriptions import filters, sealed, urls
from hookstream.subscriptions.headers import validate_headers
from hookstream.subscriptions.models import Status, Subscription, SubscriptionRow

log = logging.getLogger("hookstream.subscriptions")

Clock = Callable[[], datetime]

_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
MAX_DESCRIPTION = 500


def new_id() -> str:
    return "sub_" + uuid.uuid4().hex


def validate_tenant(tenant_id: str) -> str:
    if not isinstance(tenant_id, str) or not _TENANT.match(tenant_id):
        raise ValidationError(
            f"tenant: {tenant_id!r} is not a tenant id (1-128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit)"
        )
    return tenant_id


def validate_description(text: str) -> str:
    if len(text) > MAX_DESCRIPTION:
        raise ValidationError(f"description: at most {MAX_DESCRIPTION} characters, got {len(text)}")
    if any(ord(c) < 0x20 and c not in "\t" for c in text):
        raise ValidationError("description: control characters (including newlines) are not allowed")
    return text


def open_engine(settings: Settings, keyring: Keyring | None = None) -> Engine:
    """An engine on ``HOOKSTREAM_DATABASE_URL``, migrated to the newest schema (the migration
    that seals clear secrets uses ``keyring``, by default the settings')."""
    return open_database(settings, keyring=keyring)


class SubscriptionStore:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        resolver: urls.Resolver | None = None,
        clock: Clock | None = None,
        keyring: Keyring | None = None,
    ) -> None:
        self.settings = settings
        self.keyring = keyring or load_keyring(settings)
        self.engine = engine
        self._sessions = session_factory(engine)
        self._resolver = resolver
        self._clock = clock or (lambda: datetime.now(UTC))

    @classmethod
    def open(cls, settings: Settings, **kw) -> "SubscriptionStore":
        keyring = kw.pop("keyring", None) or load_keyring(settings)
        return cls(settings, open_engine(settings, keyring), keyring=keyring, **kw)

    # ------------------------------------------------------------------ reads
    def get(self, subscription_id: str, *, tenant_id: str) -> Subscription:
        validate_tenant(tenant_id)
        return self._get(subscription_id, tenant_id)

    def list(self, *, tenant_id: str) -> list[Subscription]:
        validate_tenant(tenant_id)
        return self._list(tenant_id)

    # ------------------------------------------------------------------ reads across tenants (ops)
    def get_any_tenant(self, subscription_id: str) -> Subscription:
        """Operators only: the subscription with this id, whichever tenant owns it."""
        return self._get(subscription_id, None)

    def list_all_tenants(self) -> list[Subscription]:
        """Operators only: every tenant's subscriptions, by tenant."""
        return self._list(None)

    def unpublished_count(self) -> int:
        """Operators only: changes of any tenant not yet on the compacted topic."""
        with self._sessions() as session:
            self._bind(session, None)
            query = select(func.count()).where(SubscriptionRow.published_version < SubscriptionRow.version)
            return session.scalar(query) or 0

    # ------------------------------------------------------------------ writes
    def add(
        self,
        tenant_id: str,
        url: str,
        events: Iterable[str],
        *,
        secret: str | None = None,
        description: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> tuple[Subscription, str]:
        """Create a subscription; returns it and its secret (the only time the secret is returned)."""
        validate_tenant(tenant_id)
        url = self._check_url(url)
        events = filters.validate_filters(events)
        signing = Secret.parse(secret) if secret is not None else Secret.generate()
        secret = signing.reveal()  # the canonical form (padded), whatever form it was given in
        now = self._clock()
        sub_id = new_id()
        row = SubscriptionRow(
            id=sub_id,
            tenant_id=tenant_id,
            url=url,
            events=list(events),
            status=Status.ACTIVE.value,
            description=validate_description(description),
            headers=sealed.seal_headers(validate_headers(headers or {}), self.keyring, sub_id),
            secrets=sealed.seal_secrets((signing,), self.keyring, sub_id),
            created_at=now,
            updated_at=now,
            version=1,
            published_version=0,
        )
        with self._sessions.begin() as session:
            self._bind(session, tenant_id)
            session.add(row)
        sub = Subscription.from_row(row, self.keyring)
        log.info(
            "subscription %s created for tenant %s: url=%s events=%s secret=%s",
            sub.id, tenant_id, mask_url(url), ",".join(events), signing.masked,
        )
        return sub, secret

    def update(
        self,
        subscription_id: str,
        *,
        tenant_id: str,
        url: str | None = None,
        events: Iterable[str] | None = None,
        description: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Subscription:
        validate_tenant(tenant_id)
        changes: dict[str, object] = {}
        if url is not None:
            changes["url"] = self._check_url(url)
        if events is not None:
            changes["events"] = list(filters.validate_filters(events))
        if description is not None:
            changes["description"] = validate_description(description)
        if headers is not None:
            changes["headers"] = sealed.seal_headers(validate_headers(headers), self.keyring, subscription_id)
        if not changes:
            raise ValidationError("update: nothing to change (give --url, --events, --description or --header)")

        def apply(row: SubscriptionRow, _now: datetime) -> None:
            for name, value in changes.items():
                setattr(row, name, value)

        sub = self._change(subscription_id, tenant_id, apply)
        log.info("subscription %s updated: %s", sub.id, ", ".join(sorted(changes)))
        return sub

    def disable(self, subscription_id: str, *, tenant_id: str) -> Subscription:
        return self._set_status(subscription_id, tenant_id, Status.DISABLED)

    def enable(self, subscription_id: str, *, tenant_id: str) -> Subscription:
        return self._set_status(subscription_id, tenant_id, Status.ACTIVE)

    def delete(self, subscription_id: str, *, tenant_id: str) -> Subscription:
        """Delete a subscription: marked deleted (secrets wiped) until its tombstone is published."""
        before: list[Subscription] = []

        def apply(row: SubscriptionRow, _now: datetime) -> None:
            before.append(Subscription.from_row(row, self.keyring))
            row.status = Status.DELETED.value
            row.secrets = []
            row.headers = {}

        self._change(subscription_id, tenant_id, apply)
        log.info("subscription %s deleted", subscription_id)
        return before[0]

    def rotate_secret(
        self,
        subscription_id: str,
        *,
        tenant_id: str,
        secret: str | None = None,
        grace_seconds: float | None = None,
    ) -> tuple[Subscription, str]:
        """Issue a new secret; the current ones stay valid for the grace window (default from settings)."""
        validate_tenant(tenant_id)
        new = Secret.parse(secret) if secret is not None else Secret.generate()
        grace = self.settings.secret_grace_seconds if grace_seconds is None else grace_seconds
        if grace < 0:
            raise ValidationError("grace: the grace window cannot be negative")

        def apply(row: SubscriptionRow, now: datetime) -> None:
            until = now + timedelta(seconds=grace)
            kept = []
            for old in self._open_old_secrets(row):
                if old.expiring(None) == new:
                    raise ValidationError("secret: the new secret must differ from the current ones")
                expires = min(old.expires_at, until) if old.expires_at else until
                if expires > now:
                    kept.append(old.expiring(expires))
            row.secrets = sealed.seal_secrets((new, *kept), self.keyring, row.id)

        sub = self._change(subscription_id, tenant_id, apply)
        log.info("subscription %s: secret rotated, new secret %s, %d older secret(s) valid for %gs",
                 sub.id, new.masked, len(sub.secrets) - 1, grace)
        return sub, new.reveal()

    # ------------------------------------------------------------------ helpers
    def _open_old_secrets(self, row: SubscriptionRow) -> tuple[Secret, ...]:
        """The row's secrets in clear; none when they do not open or cannot sign (rotating is then the way out)."""
        try:
            return sealed.open_secrets(row.secrets or [], self.keyring, row.id)
        except (SealedValueError, InvalidSecretError) as exc:
            log.warning("subscription %s: its old secrets are dropped, they cannot be opened: %s", row.id, exc)
            return ()

    def _check_url(self, url: str) -> str:
        """The canonical form of ``url`` (ASCII host; what the delivery client connects to), once it passes."""
        return urls.check_url(url, self.settings, resolver=self._resolver).url

    def _set_status(self, subscription_id: str, tenant_id: str, status: Status) -> Subscription:
        def apply(row: SubscriptionRow, _now: datetime) -> None:
            row.status = status.value

        sub = self._change(subscription_id, tenant_id, apply)
        log.info("subscription %s is now %s", sub.id, status)
        return sub

    def _change(self, subscription_id: str, tenant_id: str, apply: Callable[[SubscriptionRow, datetime], None]) -> Subscription:
        """Read (locked), change, bump the version and drop expired secrets, in one transaction."""
        validate_tenant(tenant_id)  # before anything else: a write always names its tenant
        with self._sessions.begin() as session:
            self._bind(session, tenant_id)
            row = self._row(session, subscription_id, tenant_id, lock=True)
            now = self._clock()
            if row.secrets:
                row.secrets = sealed.drop_expired(row.secrets, now)
            apply(row, now)
            row.updated_at = now
            row.version += 1
            session.flush()
            return Subscription.from_row(row, self.keyring)

    # In the helpers below, tenant_id None means "every tenant": only the named cross-tenant
    # operations above pass None; the public tenant-facing methods validate theirs first.
    @staticmethod
    def _bind(session: Session, tenant_id: str | None) -> None:
        if tenant_id is None:
            bind_all_tenants(session)
        else:
            bind_tenant(session, tenant_id)

    def _get(self, subscription_id: str, tenant_id: str | None) -> Subscription:
        with self._sessions() as session:
            self._bind(session, tenant_id)
            return Subscription.from_row(self._row(session, subscription_id, tenant_id, lock=False), self.keyring)

    def _list(self, tenant_id: str | None) -> list[Subscription]:
        query = select(SubscriptionRow).where(SubscriptionRow.status != Status.DELETED)
        if tenant_id is not None:
            query = query.where(SubscriptionRow.tenant_id == tenant_id)
        query = query.order_by(SubscriptionRow.tenant_id, SubscriptionRow.created_at, SubscriptionRow.id)
        with self._sessions() as session:
            self._bind(session, tenant_id)
            return [Subscription.from_row(row, self.keyring) for row in session.scalars(query)]

    def _row(self, session: Session, subscription_id: str, tenant_id: str | None, *, lock: bool) -> SubscriptionRow:
        query = select(SubscriptionRow).where(SubscriptionRow.id == subscription_id, SubscriptionRow.status != Status.DELETED)
        if tenant_id is not None:
            query = query.where(SubscriptionRow.tenant_id == tenant_id)
        if lock:
            query = query.with_for_update()
        row = session.scalars(query).one_or_none()
        if row is None:
            whose = f" for tenant {tenant_id}" if tenant_id is not None else ""
            raise NotFoundError(f"no subscription {subscription_id!r}{whose}")
        return row
