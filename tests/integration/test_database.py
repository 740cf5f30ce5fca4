"""The store's plumbing on both databases: migrations run, and run again without harm."""

from alembic.script import ScriptDirectory
from sqlalchemy import text

from hookstream.core.db import MIGRATIONS, make_engine, migrate


def test_migrate_twice_records_every_head(database_url):
    engine = make_engine(database_url)
    migrate(engine)
    migrate(engine)
    with engine.connect() as conn:
        recorded = {row[0] for row in conn.execute(text("select version_num from alembic_version"))}
    assert recorded == set(ScriptDirectory(str(MIGRATIONS)).get_heads())
