"""The relational store: SQLAlchemy 2 engine, declarative base, Alembic migrations.

SQLite (a file under the state dir) is the embedded default; PostgreSQL works too
(``HOOKSTREAM_DATABASE_URL=postgresql+psycopg://user@host/db``). Every table is declared on
``Base`` in the module that owns it and created only by Alembic migrations
(``hookstream/migrations``); ``migrate()`` brings a database to the newest schema and is safe
to call on every start.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import DeclarativeBase, sessionmaker

from hookstream.errors import ConfigError
from hookstream.fsperm import private_file
from hookstream.redact import mask_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class Base(DeclarativeBase):
    pass


def make_engine(url: str, **kw) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        # masked: a database URL can carry its password
        raise ConfigError(f"HOOKSTREAM_DATABASE_URL: {mask_url(url)!r} is not a database URL") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            # the file holds the subscriptions: 0600 in a 0700 dir (SQLite gives its -wal and
            # -shm files the database file's mode)
            private_file(Path(parsed.database))
        engine = create_engine(url, connect_args={"timeout": 30}, **kw)
        event.listen(engine, "connect", _sqlite_pragmas)
        # SQLite's driver opens transactions lazily and never for SELECT; begin explicitly so
        # a read-then-write transaction holds its lock from the start (no lost updates).
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        return engine
    try:
        return create_engine(url, pool_pre_ping=True, **kw)
    except ModuleNotFoundError as exc:
        raise ConfigError(f"HOOKSTREAM_DATABASE_URL needs the {exc.name} driver: pip install 'hookstream[postgres]'") from None


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    dbapi_conn.isolation_level = None  # let the "begin" listener above issue BEGIN IMMEDIATE
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)


def _alembic_config(engine: Engine, keyring=None):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection_engine"] = engine
    # 0007 seals clear secrets with it; without one it loads the environment's keyring
    cfg.attributes["keyring"] = keyring
    return cfg


def migrate(engine: Engine, *, keyring=None) -> None:
    """Upgrade the database to every migration head (idempotent). ``keyring``
    (``hookstream.crypto.Keyring``) seals what earlier versions stored in clear."""
    from alembic import command

    command.upgrade(_alembic_config(engine, keyring), "heads")
