"""The relational store: SQLAlchemy 2 engine, declarative base, Alembic migrations.

SQLite (a file under the state dir) is the embedded default; PostgreSQL works too
(``HOOKSTREAM_DATABASE_URL=postgresql+psycopg://user@host/db``). Every table is declared on
``Base`` in the module that owns it and created only by Alembic migrations
(``hookstream/core/migrations``); ``migrate()`` brings a database to the newest schema and is safe
to call on every start. ``open_database(settings)`` (engine + migrate) is how every command and
stage opens the store; ``make_engine`` alone is for the migrations' env.py and read-only views.

Tenancy on PostgreSQL: the tables holding tenants' rows have row-level security (migration
``0006_tenant_rls``), so a transaction sees only the rows of the tenant it is bound to
(``bind_tenant``), or every tenant's when an explicitly named cross-tenant operation binds it to
all (``bind_all_tenants``); a transaction bound to neither sees nothing. Both set a
transaction-local setting, so a pooled connection never carries a binding into the next
transaction. Superusers bypass row-level security altogether: the application must connect as an
ordinary role. SQLite has no such policies; there the queries' own tenant filters are the guard.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from hookstream.core.errors import ConfigError
from hookstream.core.fsperm import private_file
from hookstream.core.redact import mask_url
from hookstream.core.settings import Settings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# The settings the row-level security policies read (see the module docstring).
TENANT_SETTING = "hookstream.tenant"
ALL_TENANTS_SETTING = "hookstream.all_tenants"


class Base(DeclarativeBase):
    pass


def make_engine(url: str, *, all_tenants: bool = False, **kw) -> Engine:
    """An engine on ``url``. ``all_tenants=True`` is for processes that work for every tenant by
    design (the delivery worker's attempt log): each of its PostgreSQL sessions starts bound to
    all tenants, as if every transaction called ``bind_all_tenants``."""
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
    if all_tenants:
        # a server-side session default, not a SET on connect (a SET is undone by a rollback)
        options = kw.setdefault("connect_args", {}).get("options", "")
        kw["connect_args"]["options"] = f"{options} -c {ALL_TENANTS_SETTING}=on".strip()
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


def bind_tenant(db: Session | Connection, tenant_id: str) -> None:
    """Row-level security: the rest of this transaction sees only ``tenant_id``'s rows."""
    _set_local(db, TENANT_SETTING, tenant_id)


def bind_all_tenants(db: Session | Connection) -> None:
    """Row-level security: the rest of this transaction sees every tenant's rows. Only for the
    named cross-tenant operations (ops commands, the subscriptions topic sync)."""
    _set_local(db, ALL_TENANTS_SETTING, "on")


def _set_local(db: Session | Connection, name: str, value: str) -> None:
    dialect = db.get_bind().dialect if isinstance(db, Session) else db.dialect
    if dialect.name == "postgresql":
        # set_config(..., true) is SET LOCAL with a bound value: gone when the transaction ends
        db.execute(text("SELECT set_config(:name, :value, true)"), {"name": name, "value": value})


def session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)


def _alembic_config(engine: Engine, keyring=None, settings=None):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection_engine"] = engine
    # 0007 seals clear secrets with it; without one it loads the keyring of ``settings`` (only
    # then, so a database already past 0007 never makes a key file), else of the environment
    cfg.attributes["keyring"] = keyring
    cfg.attributes["settings"] = settings
    return cfg


def migrate(engine: Engine, *, keyring=None, settings=None) -> None:
    """Upgrade the database to every migration head (idempotent). ``keyring``
    (``hookstream.crypto.Keyring``) seals what earlier versions stored in clear; without one,
    the keyring ``settings`` name is loaded if a migration needs it."""
    from alembic import command

    command.upgrade(_alembic_config(engine, keyring, settings), "heads")


def open_database(settings: Settings, *, all_tenants: bool = False, keyring=None) -> Engine:
    """The one way a command or stage opens the store: an engine on ``settings.database_url``,
    migrated to the newest schema (safe on every start). ``all_tenants``: see ``make_engine``;
    ``keyring`` seals what earlier versions stored in clear (default: the settings' keyring,
    loaded only if a migration needs it)."""
    engine = make_engine(settings.database_url, all_tenants=all_tenants)
    try:
        migrate(engine, keyring=keyring, settings=settings)
    except BaseException:
        engine.dispose()
        raise
    return engine
