"""The attempt log holds any valid event id, and sets aside rows the database refuses.

``delivery_attempts.event_id`` was 64 characters; the event envelope allows 128 (``schemas``'
``EVENT_ID``), so a valid event with a long id could not be logged. The other columns already fit
what records carry: tenant ids 128 (= the schema), subscription ids 64 (= ``subscriptions.id``),
delivery ids 64 (``msg_`` + 32 hex), event types 128 (the longest known name is 21), errors and
excerpts are ``Text``. SQLite ignores ``VARCHAR`` lengths, so only other databases are altered.

``delivery_attempts_rejected``: a row the database refused for good (too long, bad encoding, a
NUL byte on PostgreSQL, a constraint), kept as JSON text (ASCII, every odd character escaped, so
it is always storable) with the database's reason; see ``delivery.attempt_log``.

Revision ID: 0007_attempt_log_rejects
Revises: 0004_attempts
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_attempt_log_rejects"
down_revision = "0004_attempts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("delivery_attempts", "event_id", type_=sa.String(128), existing_type=sa.String(64), existing_nullable=False)
    op.create_table(
        "delivery_attempts_rejected",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("rejected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("row", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("delivery_attempts_rejected")
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("delivery_attempts", "event_id", type_=sa.String(64), existing_type=sa.String(128), existing_nullable=False)
