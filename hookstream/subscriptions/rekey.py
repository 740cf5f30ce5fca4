"""Key rotation: every sealed value in the store re-sealed under the keyring's newest key.

``reseal_all`` works in one transaction that locks the rows; a row whose values do not open
(a key id the keyring lacks) is left exactly as it is and reported, never lost. Each re-sealed
row is marked not yet published, so ``sync`` (which ``hookstream secrets rotate-key`` runs next)
or any later change replaces its record on the compacted topic with one under the new key.
"""

from __future__ import annotations

import dataclasses
import logging

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from hookstream.core.crypto import Keyring, SealedValueError, key_id_of
from hookstream.core.db import bind_all_tenants
from hookstream.subscriptions import sealed
from hookstream.subscriptions.models import Status, SubscriptionRow

log = logging.getLogger("hookstream.subscriptions")


@dataclasses.dataclass
class ResealReport:
    key_id: str
    resealed: list[str] = dataclasses.field(default_factory=list)  # ids now under key_id
    current: list[str] = dataclasses.field(default_factory=list)  # ids already under key_id
    unreadable: dict[str, str] = dataclasses.field(default_factory=dict)  # id -> why, left as they were

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def _key_ids(row: SubscriptionRow) -> set[str | None]:
    return {key_id_of(i.get("secret")) for i in row.secrets or []} | {key_id_of(v) for v in (row.headers or {}).values()}


def reseal_all(engine: Engine, keyring: Keyring) -> ResealReport:
    report = ResealReport(keyring.newest)
    with Session(engine) as session, session.begin():
        bind_all_tenants(session)  # every tenant's subscriptions (row-level security)
        rows = session.scalars(select(SubscriptionRow).order_by(SubscriptionRow.id).with_for_update())
        for row in rows:
            if row.status == Status.DELETED or _key_ids(row) <= {keyring.newest}:
                report.current.append(row.id)
                continue
            try:
                # clear values (written by an older version during a rolling upgrade) are sealed too
                secrets, headers = sealed.seal_clear(list(row.secrets or []), row.headers or {}, keyring, row.id)
                row.secrets, row.headers = sealed.reseal(secrets, headers, keyring, row.id)
            except SealedValueError as exc:
                report.unreadable[row.id] = str(exc)
                continue
            row.published_version = min(row.published_version, row.version - 1)
            report.resealed.append(row.id)
    log.info("re-sealed %d subscription(s) under key %s; %d already were; %d could not be opened",
             len(report.resealed), keyring.newest, len(report.current), len(report.unreadable))
    return report
