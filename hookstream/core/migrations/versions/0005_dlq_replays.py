"""Dead-letter replays: which dead letters were put back on the deliveries topic, and when.

Revision ID: 0005_dlq_replays
Revises: 0001_base
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_dlq_replays"
down_revision = "0001_base"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dlq_replays",
        sa.Column("entry_id", sa.String(255), primary_key=True),
        sa.Column("delivery_id", sa.String(64), nullable=False),
        sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_dlq_replays_delivery_id", "dlq_replays", ["delivery_id"])


def downgrade() -> None:
    op.drop_index("ix_dlq_replays_delivery_id", "dlq_replays")
    op.drop_table("dlq_replays")
