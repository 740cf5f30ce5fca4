"""Alembic environment: runs migrations on the engine ``hookstream.db.migrate`` hands over."""

from alembic import context

from hookstream.core.db import Base, bind_all_tenants, make_engine

config = context.config
engine = config.attributes.get("connection_engine")
if engine is None:  # plain `alembic -x url=...` use
    engine = make_engine(context.get_x_argument(as_dictionary=True)["url"])

with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        # a migration that reads or rewrites tenants' rows must see all of them (row-level security)
        bind_all_tenants(connection)
        context.run_migrations()
