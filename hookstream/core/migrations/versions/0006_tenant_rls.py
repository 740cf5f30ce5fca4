"""Tenant isolation on PostgreSQL: row-level security on the tables holding tenants' rows.

A row is visible (and may be written) only when its ``tenant_id`` is the transaction's
``hookstream.tenant`` setting, or when the transaction has ``hookstream.all_tenants = on`` (the
explicitly named cross-tenant operations: ``hookstream.db.bind_tenant``/``bind_all_tenants``).
A transaction that set neither sees no row. FORCE makes the policy apply to the tables' owner
too (the application runs these migrations, so it usually is the owner); superusers still
bypass it, so the application must not connect as one.

``outbox`` is left out: services write it inside their own transactions, and only the relay,
which works for every tenant, reads it. ``dlq_replays`` has no tenant column. SQLite has no
row-level security: this migration does nothing there.

Revision ID: 0006_tenant_rls
Revises: 0003_subscriptions, 0004_attempts (the tables it protects)
Create Date: 2026-11-29
"""

from alembic import op

revision = "0006_tenant_rls"
down_revision = ("0003_subscriptions", "0004_attempts")
branch_labels = None
depends_on = None

TABLES = ("subscriptions", "delivery_attempts")
POLICY = "tenant_isolation"
# current_setting(..., true) is NULL when the setting was never made: the comparison is then
# not true, so the row stays hidden (fail closed).
RULE = (
    "tenant_id = current_setting('hookstream.tenant', true)"
    " OR current_setting('hookstream.all_tenants', true) = 'on'"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY {POLICY} ON {table} USING ({RULE}) WITH CHECK ({RULE})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"DROP POLICY IF EXISTS {POLICY} ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
