"""Seal the signing secrets and header values that earlier versions stored in clear.

Each clear value is sealed under the newest key of the keyring (``hookstream.crypto``: the one
``hookstream.db.migrate`` is given, else the environment's), and the row is marked not yet
published, so ``hookstream subscriptions sync`` (or any next change, or ``hookstream secrets
rotate-key``) puts the sealed state on the compacted topic in place of the clear one. Rows
already sealed are left alone, so running it on a partly sealed table is harmless. The schema
does not change: sealed values are text in the same JSON columns.

Revision ID: 0007_seal_secrets
Revises: 0003_subscriptions
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import context, op

revision = "0007_seal_secrets"
down_revision = "0003_subscriptions"
branch_labels = None
depends_on = None

_subscriptions = sa.table(
    "subscriptions",
    sa.column("id", sa.String),
    sa.column("secrets", sa.JSON),
    sa.column("headers", sa.JSON),
    sa.column("version", sa.BigInteger),
    sa.column("published_version", sa.BigInteger),
)


def _keyring():
    keyring = context.config.attributes.get("keyring")
    if keyring is None:
        from hookstream.core.crypto import load_keyring
        from hookstream.core.settings import Settings

        settings = context.config.attributes.get("settings")
        keyring = load_keyring(settings if settings is not None else Settings.from_env())
    return keyring


def _rows():
    conn = op.get_bind()
    return conn, list(conn.execute(sa.select(_subscriptions)))


def upgrade() -> None:
    from hookstream.core.crypto import is_sealed
    from hookstream.subscriptions.sealed import seal_clear

    conn, rows = _rows()
    clear = [r for r in rows if any(not is_sealed(i.get("secret")) for i in r.secrets or []) or any(not is_sealed(v) for v in (r.headers or {}).values())]
    if not clear:
        return
    keyring = _keyring()
    for r in clear:
        secrets, headers = seal_clear(list(r.secrets or []), r.headers or {}, keyring, r.id)
        conn.execute(
            _subscriptions.update()
            .where(_subscriptions.c.id == r.id)
            .values(secrets=secrets, headers=headers, published_version=min(r.published_version, r.version - 1))
        )


def downgrade() -> None:
    from hookstream.subscriptions.sealed import open_headers, open_secret_items

    conn, rows = _rows()
    if not rows:
        return
    keyring = _keyring()
    for r in rows:
        secrets = open_secret_items(r.secrets or [], keyring, r.id)
        conn.execute(
            _subscriptions.update().where(_subscriptions.c.id == r.id).values(
                secrets=secrets, headers=open_headers(r.headers or {}, keyring, r.id),
                published_version=min(r.published_version, r.version - 1),
            )
        )
