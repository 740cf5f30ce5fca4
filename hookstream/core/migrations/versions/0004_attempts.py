"""Delivery attempts: one row per HTTP attempt the delivery workers make (the attempt log).

Revision ID: 0004_attempts
Revises: 0001_base
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_attempts"
down_revision = "0001_base"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delivery_attempts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("delivery_id", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(128), nullable=False),
        sa.Column("tenant_id", sa.String(128), nullable=False),
        sa.Column("subscription_id", sa.String(64), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("response_excerpt", sa.Text(), nullable=True),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status in ('succeeded', 'failed', 'dead')", name="ck_delivery_attempts_status"),
    )
    op.create_index("ix_delivery_attempts_delivery_id", "delivery_attempts", ["delivery_id"])
    op.create_index("ix_delivery_attempts_tenant_id", "delivery_attempts", ["tenant_id"])
    op.create_index("ix_delivery_attempts_subscription_id", "delivery_attempts", ["subscription_id"])


def downgrade() -> None:
    op.drop_index("ix_delivery_attempts_subscription_id", table_name="delivery_attempts")
    op.drop_index("ix_delivery_attempts_tenant_id", table_name="delivery_attempts")
    op.drop_index("ix_delivery_attempts_delivery_id", table_name="delivery_attempts")
    op.drop_table("delivery_attempts")
