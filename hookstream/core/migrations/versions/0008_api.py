"""The HTTP API's tables: API keys, and the idempotency records of ingested events.

``api_keys`` holds only a SHA-256 hash of each key (and a short prefix to find it and show it);
it is read before any tenant is known (it says which tenant a request acts for), so it has no
row-level security. ``api_idempotency`` remembers, per tenant, what an ``Idempotency-Key`` (or a
client's event id) was answered with, for at least 24 hours; on PostgreSQL it has the same
row-level security as the other tenant tables (``0006_tenant_rls``).

Revision ID: 0008_api
Revises: 0001_base
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_api"
down_revision = "0001_base"
branch_labels = None
depends_on = None

_RULE = (
    "tenant_id = current_setting('hookstream.tenant', true)"
    " OR current_setting('hookstream.all_tenants', true) = 'on'"
)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("tenant_id", sa.String(128), nullable=True),
        sa.Column("admin", sa.Boolean, nullable=False),
        sa.Column("name", sa.String(200), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("(admin AND tenant_id IS NULL) OR (NOT admin AND tenant_id IS NOT NULL)", name="ck_api_keys_scope"),
    )
    op.create_index("ix_api_keys_prefix", "api_keys", ["prefix"])
    op.create_table(
        "api_idempotency",
        sa.Column("tenant_id", sa.String(128), primary_key=True),
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),  # SHA-256 of the request
        sa.Column("state", sa.String(10), nullable=False),  # pending (being published), done, failed
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("occurred_at", sa.String(40), nullable=False),  # so a retry publishes the same event
        sa.Column("response", sa.JSON, nullable=True),  # what the client was answered, once done
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_api_idempotency_created_at", "api_idempotency", ["created_at"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE api_idempotency ENABLE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE api_idempotency FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON api_idempotency USING ({_RULE}) WITH CHECK ({_RULE})")


def downgrade() -> None:
    op.drop_index("ix_api_idempotency_created_at", "api_idempotency")
    op.drop_table("api_idempotency")
    op.drop_index("ix_api_keys_prefix", "api_keys")
    op.drop_table("api_keys")
