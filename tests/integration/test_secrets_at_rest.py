"""Secrets at rest and in output (real broker, SQLite and PostgreSQL, the CLI in this process).

Distinctive values are planted (a signing secret, header values, a URL token), then searched
for in the database file's bytes, the subscriptions topic's bytes (read with a consumer), every
CLI output and the logs. Also: the migration that seals rows earlier versions wrote in clear,
key rotation, a key id the keyring lacks, and the files' modes.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from hookstream.shell.cli import main
from hookstream.core.crypto import Keyring, key_id_of, new_key_entry
from hookstream.core.db import _alembic_config, bind_all_tenants, bind_tenant, make_engine, migrate
from hookstream.core.settings import Settings
from hookstream.subscriptions.store import SubscriptionStore
from hookstream.subscriptions.topic import sync
from hookstream.subscriptions.view import load_table
from tests.integration.subscriptions_helpers import ensure_subscriptions_topic, read_records
from tests.postgres import as_application_role

pytestmark = pytest.mark.kafka

URL_TOKEN = "PLANTEDurlTOKEN4c1d"
HEADER_VALUE = "Bearer PLANTEDheaderVALUE9e2f"
API_KEY = "PLANTEDapiKEY77ab"


def planted_secret(tag: bytes) -> str:
    # a valid whsec_ secret whose base64 part is itself distinctive
    return "whsec_" + base64.b64encode(tag.ljust(32, b"Q")).decode()


SECRET_1 = planted_secret(b"PLANTED-first-secret")
SECRET_2 = planted_secret(b"PLANTED-second-secret")
URL = f"https://93.184.215.14/hooks?token={URL_TOKEN}"


@pytest.fixture
def hs(hs_env, settings, monkeypatch, capsys, caplog):
    """Run ``hookstream <args>`` in this process (stdin given as text); returns (code, stdout, stderr)."""
    for name in [n for n in os.environ if n.startswith("HOOKSTREAM_")]:
        monkeypatch.delenv(name)
    for name, value in hs_env.items():
        if name.startswith("HOOKSTREAM_"):
            monkeypatch.setenv(name, value)
    ensure_subscriptions_topic(settings)
    caplog.set_level(logging.DEBUG)

    def run(*args: str, stdin: str = "") -> tuple[int, str, str]:
        capsys.readouterr()
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def db_bytes(settings: Settings) -> bytes:
    path = Path(settings.database_url.removeprefix("sqlite:///"))
    return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))


def topic_bytes(settings: Settings) -> bytes:
    return b"".join((k or b"") + (v or b"") for k, v in read_records(settings))


def test_nothing_secret_rests_or_prints_in_clear(hs, settings, tmp_path, caplog):
    (tmp_path / "secret").write_text(SECRET_1 + "\n")
    (tmp_path / "api-key").write_text(API_KEY)
    (tmp_path / "secret2").write_text(SECRET_2)
    outputs: list[str] = []

    def ok(*args: str, stdin: str = "") -> str:
        code, out, err = hs(*args, stdin=stdin)
        assert code == 0, err
        outputs.append(out + err)
        return out

    added = json.loads(ok("subscriptions", "add", "--tenant", "acme", "--url", URL, "--events", "*", "--json",
                          "--secret", f"@{tmp_path / 'secret'}", "--header", "Authorization: -", stdin=HEADER_VALUE + "\n"))
    sub_id = added["subscription"]["id"]
    assert added["secret"] == SECRET_1  # printed this once, as documented
    assert added["subscription"]["headers"] == {"Authorization": "***"}
    ok("subscriptions", "update", sub_id, "--header", "Authorization: -", "--header", f"X-Api-Key: @{tmp_path / 'api-key'}",
       "--json", stdin=HEADER_VALUE)
    rotated = ok("subscriptions", "rotate-secret", sub_id, "--secret", "-", stdin=SECRET_2)
    assert SECRET_2 in rotated
    listings = [
        ok("subscriptions", "list"), ok("subscriptions", "list", "--json"), ok("subscriptions", "show", sub_id),
        ok("subscriptions", "show", sub_id, "--json"), ok("subscriptions", "sync", "--json"), ok("secrets", "status"),
        ok("secrets", "status", "--json"),
    ]
    assert "Authorization: ***" in listings[2] and "X-Api-Key: ***" in listings[2]
    assert json.loads(listings[1])[0]["url"] == "https://93.184.215.14/hooks?***"

    # the values are really there, sealed: a reader with the keyring opens them
    sub = load_table(settings).get(sub_id)
    assert dict(sub.headers) == {"Authorization": HEADER_VALUE, "X-Api-Key": API_KEY}
    assert [s.reveal() for s in sub.secrets] == [SECRET_2, SECRET_1]

    secret_parts = [SECRET_1, SECRET_2, SECRET_1[6:26], SECRET_2[6:26]]
    at_rest = {"database file": db_bytes(settings), "subscriptions topic": topic_bytes(settings)}
    for where, data in at_rest.items():
        for value in [HEADER_VALUE, API_KEY, *secret_parts]:
            assert value.encode() not in data, (where, value)
    # add and rotate-secret print their own new secret once; nothing else prints a secret
    add_out, rotate_out, rest = outputs[0], outputs[2], "\n".join(outputs[1:2] + outputs[3:])
    for value in [HEADER_VALUE, API_KEY, URL_TOKEN, *secret_parts]:
        assert value not in rest and value not in caplog.text, value
    for value in [HEADER_VALUE, URL_TOKEN, SECRET_2]:
        assert value not in add_out, value
    for value in [HEADER_VALUE, API_KEY, URL_TOKEN, SECRET_1]:
        assert value not in rotate_out, value

    # the state dir and what holds secrets are private
    assert stat.S_IMODE(settings.state_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((settings.state_dir / "secret.key").stat().st_mode) == 0o600
    db_file = Path(settings.database_url.removeprefix("sqlite:///"))
    assert stat.S_IMODE(db_file.stat().st_mode) == 0o600


def test_rotate_key_reseals_everything_and_republishes_under_the_new_key(hs, settings):
    ids = [json.loads(hs("subscriptions", "add", "--tenant", t, "--url", URL, "--events", "*", "--header",
                         f"Authorization: {HEADER_VALUE}", "--json")[1])["subscription"]["id"] for t in ("acme", "globex")]
    old_ids = json.loads(hs("secrets", "status", "--json")[1])["key_ids"]

    code, out, err = hs("secrets", "rotate-key", "--new", "--json")
    assert code == 0, err
    report = json.loads(out)
    new_id = report["key_id"]
    assert new_id not in old_ids and sorted(report["resealed"]) == sorted(ids) and report["published"]
    status = json.loads(hs("secrets", "status", "--json")[1])
    assert status["key_ids"] == [new_id, *old_ids] and status["values_by_key_id"] == {new_id: 4}

    # the topic's newest record of each subscription is under the new key, and opens
    newest = {k.decode(): json.loads(v) for k, v in read_records(settings) if v is not None}
    for sub_id in ids:
        assert {key_id_of(v) for v in newest[sub_id]["headers"].values()} == {new_id}
        assert {key_id_of(s["secret"]) for s in newest[sub_id]["secrets"]} == {new_id}
    # with the old key gone, everything still opens
    key_file = settings.state_dir / "secret.key"
    key_file.write_text(key_file.read_text().splitlines()[0] + "\n")
    table = load_table(settings)
    assert all(dict(table.get(i).headers) == {"Authorization": HEADER_VALUE} for i in ids)
    assert "sealed_error" not in hs("subscriptions", "show", ids[0], "--json")[1]
    # a second run has nothing left to do
    again = json.loads(hs("secrets", "rotate-key", "--json")[1])
    assert again["resealed"] == [] and sorted(again["current"]) == sorted(ids)


def test_a_key_id_the_keyring_lacks_is_a_clear_error_and_nothing_is_lost(hs, settings, monkeypatch):
    sub_id = json.loads(hs("subscriptions", "add", "--tenant", "acme", "--url", URL, "--events", "*", "--header",
                           f"Authorization: {HEADER_VALUE}", "--json")[1])["subscription"]["id"]
    own_key = (settings.state_dir / "secret.key").read_text().split(":")[0]
    monkeypatch.setenv("HOOKSTREAM_SECRET_KEY", new_key_entry("k-other"))

    code, out, err = hs("subscriptions", "show", sub_id)
    assert code == 0 and f"unreadable: subscription {sub_id}" in out and f"'{own_key}'" in out
    code, out, err = hs("secrets", "rotate-key")
    assert code == 1 and err.startswith("error: 1 subscription(s) left as they were") and f"'{own_key}'" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    monkeypatch.delenv("HOOKSTREAM_SECRET_KEY")
    shown = json.loads(hs("subscriptions", "show", sub_id, "--json")[1])
    assert shown["headers"] == {"Authorization": "***"} and "sealed_error" not in shown  # the own key still opens it
    assert dict(load_table(settings).get(sub_id).headers) == {"Authorization": HEADER_VALUE}
    assert json.loads(hs("secrets", "status", "--json")[1])["values_by_key_id"] == {own_key: 2}  # left as they were


def test_the_migration_seals_rows_written_in_clear_and_sync_republishes_them(database_url, tmp_path, settings):
    database_url = as_application_role(database_url) if database_url.startswith("postgresql") else database_url
    entry = new_key_entry("k-mig")
    keyring = Keyring.parse(entry)
    engine = make_engine(database_url)
    from alembic import command

    command.upgrade(_alembic_config(engine), "0003_subscriptions")  # the schema before sealing
    t = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "insert into subscriptions (id, tenant_id, url, events, status, description, headers, secrets, created_at, updated_at, version, published_version) "
                "values ('sub_old', 'acme', :url, '[\"*\"]', 'active', '', :headers, :secrets, :t, :t, 3, 3)"
            ),
            {"url": URL, "headers": json.dumps({"Authorization": HEADER_VALUE}),
             "secrets": json.dumps([{"secret": SECRET_1, "expires_at": None}]), "t": t},
        )
    migrate(engine, keyring=keyring)

    with engine.begin() as conn:
        bind_all_tenants(conn)  # row-level security on PostgreSQL
        raw = " ".join(str(x) for x in conn.execute(sa.text("select headers, secrets from subscriptions")).one())
    assert HEADER_VALUE not in raw and SECRET_1 not in raw and SECRET_1[6:26] not in raw and "hs1:k-mig:" in raw
    if database_url.startswith("sqlite"):
        engine.dispose()
        data = b"".join(p.read_bytes() for p in tmp_path.glob("store.db*"))
        assert HEADER_VALUE.encode() not in data and SECRET_1[6:26].encode() not in data

    s = Settings(database_url=database_url, state_dir=tmp_path, kafka_bootstrap=settings.kafka_bootstrap,
                 topic_prefix=settings.topic_prefix, secret_key=entry)
    store = SubscriptionStore(s, engine)
    sub = store.get("sub_old", tenant_id="acme")
    assert dict(sub.headers) == {"Authorization": HEADER_VALUE} and sub.secrets[0].reveal() == SECRET_1
    assert sub.unpublished and sub.version == 3  # marked for republishing, nothing else changed
    migrate(engine, keyring=keyring)  # again: nothing to do, nothing changes
    assert store.get("sub_old", tenant_id="acme").secrets[0].reveal() == SECRET_1

    ensure_subscriptions_topic(s)
    report = sync(s, engine=engine)  # the republish that replaces the clear record
    assert report.published == ["sub_old"] and not store.get("sub_old", tenant_id="acme").unpublished
    data = topic_bytes(s)
    assert b"sub_old" in data and HEADER_VALUE.encode() not in data and SECRET_1[6:26].encode() not in data


def test_rotate_key_also_seals_values_an_older_version_wrote_in_clear(database_url, tmp_path):
    database_url = as_application_role(database_url) if database_url.startswith("postgresql") else database_url
    from hookstream.subscriptions.rekey import reseal_all

    entry = new_key_entry("k-now")
    s = Settings(database_url=database_url, state_dir=tmp_path, secret_key=entry)
    store = SubscriptionStore.open(s, resolver=lambda host, port: ["93.184.215.14"])
    sub, _ = store.add("acme", URL, ["*"], headers={"X-Env": "prod"})
    # an older process, mid rolling upgrade, writes a header value in clear after the migration
    with store.engine.begin() as conn:
        bind_tenant(conn, "acme")  # row-level security on PostgreSQL
        conn.execute(sa.text("update subscriptions set headers = :h where id = :id"),
                     {"h": json.dumps({"Authorization": HEADER_VALUE}), "id": sub.id})
    assert "stored in clear" in store.get(sub.id, tenant_id="acme").sealed_error  # never used as if it were sealed

    report = reseal_all(store.engine, Keyring.parse(entry))
    assert report.resealed == [sub.id] and report.unreadable == {}
    with store.engine.begin() as conn:
        bind_tenant(conn, "acme")
        raw = str(conn.execute(sa.text("select headers from subscriptions")).scalar_one())
    assert HEADER_VALUE not in raw and "hs1:k-now:" in raw
    got = store.get(sub.id, tenant_id="acme")
    assert got.sealed_error is None and dict(got.headers) == {"Authorization": HEADER_VALUE} and got.unpublished
