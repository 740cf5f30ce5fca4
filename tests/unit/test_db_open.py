"""``open_database``: the one place that creates the engine and migrates (SQLite here; the
PostgreSQL paths, row-level security included, run through it in tests/integration)."""

import json
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from hookstream.core.crypto import KEY_FILE_NAME, new_key_entry
from hookstream.core.db import _alembic_config, make_engine, open_database
from hookstream.core.errors import ConfigError
from hookstream.core.settings import Settings

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def _tables(engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def test_it_opens_the_settings_database_at_the_newest_schema(tmp_path):
    settings = Settings(state_dir=tmp_path)
    engine = open_database(settings)
    try:
        assert str(engine.url) == settings.database_url
        assert {"alembic_version", "subscriptions", "outbox", "delivery_attempts"} <= _tables(engine)
    finally:
        engine.dispose()
    again = open_database(settings, all_tenants=True)  # safe on every start
    try:
        with again.connect() as conn:
            heads = {row[0] for row in conn.execute(sa.text("select version_num from alembic_version"))}
        from alembic.script import ScriptDirectory

        assert set(ScriptDirectory.from_config(_alembic_config(again)).get_heads()) <= heads
    finally:
        again.dispose()


def test_a_database_past_sealing_makes_no_key_file(tmp_path):
    # the keyring is loaded only when a migration needs it: `deliveries list` on a store that is
    # up to date never creates <state dir>/secret.key as a side effect
    open_database(Settings(state_dir=tmp_path)).dispose()
    assert not (tmp_path / KEY_FILE_NAME).exists()


def test_the_sealing_migration_uses_the_settings_keyring_not_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("HOOKSTREAM_SECRET_KEY", new_key_entry("k-env"))  # must not be the one used
    settings = Settings(state_dir=tmp_path, secret_key=new_key_entry("k-settings"))
    engine = make_engine(settings.database_url)
    from alembic import command

    command.upgrade(_alembic_config(engine), "0003_subscriptions")  # the schema before sealing
    t = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "insert into subscriptions (id, tenant_id, url, events, status, description, headers, secrets, created_at, updated_at, version, published_version) "
                "values ('sub_old', 'acme', 'https://hooks.example.com/in', '[\"*\"]', 'active', '', '{}', :secrets, :t, :t, 1, 1)"
            ),
            {"secrets": json.dumps([{"secret": SECRET, "expires_at": None}]), "t": t},
        )
    engine.dispose()
    engine = open_database(settings)
    try:
        with engine.connect() as conn:
            stored = conn.execute(sa.text("select secrets from subscriptions")).scalar_one()
    finally:
        engine.dispose()
    assert SECRET not in str(stored) and "hs1:k-settings:" in str(stored)


def test_a_bad_database_url_is_one_line_naming_the_variable(tmp_path):
    with pytest.raises(ConfigError) as err:
        open_database(Settings(state_dir=tmp_path, database_url="not a url"))
    assert str(err.value).startswith("HOOKSTREAM_DATABASE_URL:") and "\n" not in str(err.value)
