"""Outbox rows the relay can never publish (too large, refused by the broker for good,
unparseable) are set aside with their reason instead of blocking the rows behind them.

Revision ID: 0006_outbox_set_aside
Revises: 0002_outbox
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_outbox_set_aside"
down_revision = "0002_outbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("set_aside_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("set_aside_reason", sa.Text(), nullable=True))
    # the relay's pending rows: neither sent nor set aside
    op.drop_index("ix_outbox_pending", table_name="outbox")
    op.create_index(
        "ix_outbox_pending", "outbox", ["seq"],
        postgresql_where=sa.text("sent_at IS NULL AND set_aside_at IS NULL"),
        sqlite_where=sa.text("sent_at IS NULL AND set_aside_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_pending", table_name="outbox")
    op.create_index(
        "ix_outbox_pending", "outbox", ["seq"],
        postgresql_where=sa.text("sent_at IS NULL"), sqlite_where=sa.text("sent_at IS NULL"),
    )
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("set_aside_reason")
        batch.drop_column("set_aside_at")
