"""Subscriptions: where each tenant's webhooks go, with their secrets and publish bookkeeping.

Revision ID: 0003_subscriptions
Revises: 0001_base
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_subscriptions"
down_revision = "0001_base"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(128), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("secrets", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("published_version", sa.BigInteger(), nullable=False, server_default="0"),
        sa.CheckConstraint("status in ('active', 'disabled', 'deleted')", name="ck_subscriptions_status"),
    )
    op.create_index("ix_subscriptions_tenant_id", "subscriptions", ["tenant_id"])


def downgrade() -> None:
    op.drop_index("ix_subscriptions_tenant_id", table_name="subscriptions")
    op.drop_table("subscriptions")
