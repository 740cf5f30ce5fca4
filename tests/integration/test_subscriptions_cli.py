"""``hookstream subscriptions ...`` end to end: real broker, SQLite store, the CLI's own error handling."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest

from hookstream.shell.cli import main
from hookstream.shell.cli import subscriptions as subscriptions_cli
from hookstream.subscriptions.view import load_table
from tests.integration.subscriptions_helpers import dead_bootstrap, ensure_subscriptions_topic, read_records

pytestmark = pytest.mark.kafka

URL = "https://93.184.215.14/hooks"
GIVEN_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def hs(hs_env, settings, monkeypatch, capsys, caplog):
    """Run ``hookstream <args>`` in this process; returns (exit code, stdout, stderr)."""
    for name in [n for n in os.environ if n.startswith("HOOKSTREAM_")]:
        monkeypatch.delenv(name)
    for name, value in hs_env.items():
        if name.startswith("HOOKSTREAM_"):
            monkeypatch.setenv(name, value)
    ensure_subscriptions_topic(settings)
    caplog.set_level(logging.DEBUG)

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def add(hs, tenant="acme", *extra) -> tuple[str, str]:
    code, out, err = hs("subscriptions", "add", "--tenant", tenant, "--url", URL, "--events", "payment.*,invoice.created", "--json", *extra)
    assert code == 0, err
    doc = json.loads(out)
    return doc["subscription"]["id"], doc["secret"]


def test_add_prints_the_id_and_the_secret_once_and_publishes(hs, settings):
    code, out, err = hs("subscriptions", "add", "--tenant", "acme", "--url", URL, "--events", "payment.*")
    assert code == 0 and err == ""
    lines = out.splitlines()
    sub_id = lines[0].split()[1]
    secret = lines[1].removeprefix("secret: ")
    assert sub_id.startswith("sub_") and secret.startswith("whsec_") and len(secret) == 50
    assert [k for k, _ in read_records(settings)] == [sub_id.encode()]


def test_secrets_never_appear_in_list_show_or_logs(hs, caplog):
    sub_id, first = add(hs, "acme", "--secret", GIVEN_SECRET)
    code, out, _ = hs("subscriptions", "rotate-secret", sub_id)
    second = out.splitlines()[1].removeprefix("secret: ")
    assert code == 0 and second.startswith("whsec_") and second != first
    outputs = [
        hs("subscriptions", "list"), hs("subscriptions", "list", "--json"), hs("subscriptions", "list", "--tenant", "acme"),
        hs("subscriptions", "show", sub_id), hs("subscriptions", "show", sub_id, "--json"),
        hs("subscriptions", "update", sub_id, "--description", "x", "--json"), hs("subscriptions", "disable", sub_id, "--json"),
    ]
    shown = "".join(out + err for _, out, err in outputs)
    assert "whsec_MfKQ…" in shown and second[:10] + "…" in shown
    for secret in (first, second):
        assert secret not in shown
        assert secret not in caplog.text


def test_rotate_secret_json_gives_the_new_secret_once(hs):
    sub_id, first = add(hs)
    code, out, _ = hs("subscriptions", "rotate-secret", sub_id, "--grace", "1h", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["secret"].startswith("whsec_") and doc["secret"] != first
    assert [s["secret"] for s in doc["subscription"]["secrets"]] == [doc["secret"][:10] + "…", first[:10] + "…"]
    assert doc["subscription"]["secrets"][1]["expires_at"] is not None


def test_every_command_speaks_json(hs):
    sub_id, _ = add(hs)
    runs = {
        "list": hs("subscriptions", "list", "--json"),
        "show": hs("subscriptions", "show", sub_id, "--json"),
        "update": hs("subscriptions", "update", sub_id, "--events", "*", "--json"),
        "disable": hs("subscriptions", "disable", sub_id, "--json"),
        "enable": hs("subscriptions", "enable", sub_id, "--json"),
        "rotate-secret": hs("subscriptions", "rotate-secret", sub_id, "--json"),
        "sync": hs("subscriptions", "sync", "--json"),
        "rm": hs("subscriptions", "rm", sub_id, "--json"),
    }
    docs = {}
    for name, (code, out, err) in runs.items():
        assert code == 0, (name, err)
        docs[name] = json.loads(out)
    assert docs["list"][0]["id"] == sub_id and docs["show"]["events"] == ["payment.*", "invoice.created"]
    assert docs["update"]["subscription"]["events"] == ["*"] and docs["update"]["published"] is True
    assert docs["disable"]["subscription"]["status"] == "disabled" and docs["enable"]["subscription"]["status"] == "active"
    assert docs["sync"]["published"] == [sub_id]
    assert docs["rm"] == {"deleted": sub_id, "tenant_id": "acme", "published": True}
    assert hs("subscriptions", "list", "--json")[1].strip() == "[]"


def test_listing_by_tenant_never_shows_another_tenants_subscriptions(hs):
    acme, _ = add(hs, "acme")
    globex, _ = add(hs, "globex")
    code, out, _ = hs("subscriptions", "list", "--tenant", "acme", "--json")
    assert [s["id"] for s in json.loads(out)] == [acme]
    code, out, _ = hs("subscriptions", "list", "--tenant", "acme")
    assert acme in out and globex not in out
    code, _, err = hs("subscriptions", "show", globex, "--tenant", "acme")
    assert code == 3 and err == f"error: no subscription '{globex}' for tenant acme\n"


def test_every_command_by_id_with_another_tenant_exits_3_and_changes_nothing(hs):
    globex, _ = add(hs, "globex")
    before = json.loads(hs("subscriptions", "show", globex, "--tenant", "globex", "--json")[1])
    for args in (["show"], ["update", "--description", "x"], ["disable"], ["enable"], ["rm"], ["rotate-secret"]):
        code, out, err = hs("subscriptions", args[0], globex, *args[1:], "--tenant", "acme")
        assert (code, out, err) == (3, "", f"error: no subscription '{globex}' for tenant acme\n"), args
    assert json.loads(hs("subscriptions", "show", globex, "--tenant", "globex", "--json")[1]) == before


def test_commands_without_a_tenant_say_they_span_every_tenant(hs):
    acme, _ = add(hs, "acme")
    globex, _ = add(hs, "globex")
    code, out, err = hs("subscriptions", "list")
    assert code == 0 and out.splitlines()[0] == "all tenants (no --tenant given)" and acme in out and globex in out
    code, out, err = hs("subscriptions", "list", "--json")
    assert err == "all tenants (no --tenant given)\n" and {s["id"] for s in json.loads(out)} == {acme, globex}
    code, out, err = hs("subscriptions", "list", "--tenant", "acme")
    assert code == 0 and "all tenants" not in out + err and globex not in out
    code, out, err = hs("subscriptions", "show", globex)
    assert code == 0 and err == "looked up across all tenants (no --tenant given)\n" and "globex" in out
    # an operator's change by id alone acts as the owning tenant
    code, out, _ = hs("subscriptions", "disable", globex, "--json")
    assert code == 0 and json.loads(out)["subscription"]["tenant_id"] == "globex"


@pytest.mark.parametrize(
    ("args", "exit_code", "message"),
    [
        (["--url", "https://127.0.0.1/", "--events", "*"], 2, "error: url: 127.0.0.1 is a loopback address"),
        (["--url", "http://93.184.215.14/", "--events", "*"], 2, "error: url: http is not allowed"),
        (["--url", "https://u:p@93.184.215.14/", "--events", "*"], 2, "error: url: credentials"),
        (["--url", "https://2130706433/", "--events", "*"], 2, "error: url: 127.0.0.1 is a loopback address"),
        (["--url", URL, "--events", "payment.refunded"], 2, "error: events: 'payment.refunded' is not an event filter"),
        (["--url", URL, "--events", "*", "--secret", "whsec_dG9vc2hvcnQ="], 2, "error: secret: "),
        (["--url", URL, "--events", "*", "--header", "Webhook-Id: x"], 2, "error: headers: header Webhook-Id is set by the delivery worker itself"),
        (["--url", URL, "--events", "*", "--header", "no-colon"], 2, "error: header: expected 'Name: value'"),
        (["--url", URL, "--events", "*", "--header", "User-Agent: mine"], 2, "error: headers: header User-Agent is set by the delivery worker itself"),
        (["--url", URL, "--events", "*", "--header", "X-Name: Jos\u00e9"], 2, "error: headers: the value of header X-Name is not at most"),
    ],
)
def test_refused_input_exits_non_zero_with_one_line_naming_the_rule(hs, args, exit_code, message):
    code, out, err = hs("subscriptions", "add", "--tenant", "acme", *args)
    assert code == exit_code
    assert err.startswith(message) and err.count("\n") == 1 and "Traceback" not in err
    assert "whsec_dG9vc2hvcnQ=" not in err
    assert hs("subscriptions", "list", "--json")[1].strip() == "[]"


def test_unknown_id_exits_3_for_every_command_by_id(hs):
    for command in ("show", "disable", "enable", "rm", "rotate-secret"):
        code, _, err = hs("subscriptions", command, "sub_missing")
        assert (code, err) == (3, "error: no subscription 'sub_missing'\n"), command


def test_change_saved_while_kafka_is_down_is_reported_and_published_by_sync(hs, settings, monkeypatch):
    monkeypatch.setattr(subscriptions_cli, "PUBLISH_TIMEOUT", 2.0)
    monkeypatch.setenv("HOOKSTREAM_KAFKA_BOOTSTRAP", dead_bootstrap())
    code, out, err = hs("subscriptions", "add", "--tenant", "acme", "--url", URL, "--events", "*", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["published"] is False and doc["secret"].startswith("whsec_")
    assert err.startswith("warning: saved, but not published to Kafka yet (cannot reach Kafka at ")
    assert "`hookstream subscriptions sync`" in err and err.count("\n") == 1
    assert json.loads(hs("subscriptions", "show", doc["subscription"]["id"], "--json")[1])["published"] is False
    assert "not yet published to Kafka" in hs("subscriptions", "list")[1]

    monkeypatch.setenv("HOOKSTREAM_KAFKA_BOOTSTRAP", settings.kafka_bootstrap)
    code, out, _ = hs("subscriptions", "sync", "--json")
    assert code == 0 and json.loads(out)["published"] == [doc["subscription"]["id"]]
    assert doc["subscription"]["id"] in load_table(settings)


def test_the_installed_command_prints_one_error_line_and_no_traceback(hs_env):
    cmd = [sys.executable, "-c", "from hookstream.shell.cli import run; run()", "subscriptions", "add", "--tenant", "acme",
           "--url", "https://[::ffff:169.254.169.254]/", "--events", "*"]
    proc = subprocess.run(cmd, env=hs_env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: url: ::ffff:a9fe:a9fe is the ipv4-mapped form of 169.254.169.254, a link-local address")
    assert proc.stderr.count("\n") == 1 and proc.stdout == ""
