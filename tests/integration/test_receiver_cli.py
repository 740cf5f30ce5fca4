"""``hookstream receive`` as a real process on a free port, driven over HTTP."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from hookstream.delivery.signing import build_headers
from hookstream.core.settings import Settings
from hookstream.core.secrets import Secret
from hookstream.subscriptions.store import SubscriptionStore
from tests.integration.subscriptions_helpers import public_dns

BODY = orjson.dumps({"type": "customer.created", "timestamp": "2026-11-28T16:00:00Z", "data": {"tenant_id": "acme", "id": "cus_1"}})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def receiver(args: list[str], env: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    port = free_port()
    out, err = open(tmp_path / "stdout", "w+"), open(tmp_path / "stderr", "w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "hookstream", "receive", "--port", str(port), *args],
        env=env, stdout=out, stderr=err, text=True, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/hooks"
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, f"receiver exited {proc.returncode}: {(tmp_path / 'stderr').read_text()}"
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            assert time.monotonic() < deadline, "receiver did not listen within 20s"
            time.sleep(0.05)
        yield url, proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        out.close()
        err.close()


def stop(proc: subprocess.Popen, tmp_path: Path) -> tuple[int, list[str], str]:
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(10)
    return code, (tmp_path / "stdout").read_text().splitlines(), (tmp_path / "stderr").read_text()


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKSTREAM_")}
    env["HOOKSTREAM_DATABASE_URL"] = f"sqlite:///{tmp_path / 'store.db'}"
    return env


def test_receive_with_a_secret_accepts_signed_and_refuses_the_rest(env, tmp_path):
    secret = Secret.generate().reveal()
    with receiver(["--secret", secret], env, tmp_path) as (url, proc):
        now = int(time.time())
        ok = httpx.post(url, content=BODY, headers=build_headers("msg_ok", now, BODY, secret))
        tampered = httpx.post(url, content=BODY.replace(b"cus_1", b"cus_2"), headers=build_headers("msg_tampered", now, BODY, secret))
        old = httpx.post(url, content=BODY, headers=build_headers("msg_old", now - 3600, BODY, secret))
        headers = build_headers("msg_nosig", now, BODY, secret)
        del headers["webhook-signature"]
        missing = httpx.post(url, content=BODY, headers=headers)
        code, lines, stderr = stop(proc, tmp_path)

    assert ok.status_code == 204
    assert (tampered.status_code, tampered.json()["reason"]) == (401, "bad_signature")
    assert (old.status_code, old.json()["reason"]) == (401, "timestamp_too_old")
    assert (missing.status_code, missing.json()["reason"]) == (400, "missing_header")
    assert "webhook-signature" in missing.json()["message"]

    assert code == 0
    assert f"listening on http://127.0.0.1:{url.split(':')[2].split('/')[0]}/" in stderr
    assert secret not in stderr + "\n".join(lines)
    assert [line.split("  ")[1:5] for line in lines] == [
        ["msg_ok", "customer.created", "tenant=acme", "valid 204"],
        ["msg_tampered", "customer.created", "tenant=acme", "invalid 401"],
        ["msg_old", "customer.created", "tenant=acme", "invalid 401"],
        ["msg_nosig", "customer.created", "tenant=acme", "invalid 400"],
    ]
    assert lines[1].endswith("bad_signature: no webhook-signature entry matches the body with any valid secret")
    assert re.search(r"timestamp_too_old: webhook-timestamp is 360\ds old, more than the 300s allowed$", lines[2])
    assert lines[3].endswith("missing_header: the webhook-signature header is missing or empty")


def test_receive_prints_what_a_stranger_sent_with_control_characters_escaped(env, tmp_path):
    secret = Secret.generate().reveal()
    body = orjson.dumps({"type": "x\x1b]8;;https://evil.example/\x07CLICK\x1b[31m", "data": {"tenant_id": "t\u009b2J"}})
    with receiver(["--secret", secret], env, tmp_path) as (url, proc):
        answer = httpx.post(url, content=body, headers=build_headers("msg_hostile", int(time.time()), body, secret))
        code, lines, _stderr = stop(proc, tmp_path)
    assert answer.status_code == 204 and code == 0
    (line,) = lines
    assert line.split("  ")[1:5] == ["msg_hostile", "x\\x1b]8;;https://evil.example/\\x07CLICK\\x1b[31m", "tenant=t\\x9b2J",
                                     "valid 204"]


def test_receive_for_a_subscription_follows_a_secret_rotation(env, tmp_path):
    settings = Settings.from_env(env)
    store = SubscriptionStore.open(settings, resolver=public_dns)
    sub, first = store.add("globex", "https://hooks.example.com/in", ["invoice.*"])
    body = orjson.dumps({"type": "invoice.sent", "timestamp": "2026-11-28T16:00:00Z", "data": {"id": "inv_1"}})
    with receiver(["--subscription", sub.id], env, tmp_path) as (url, proc):
        before = httpx.post(url, content=body, headers=build_headers("msg_a", int(time.time()), body, first))
        _sub, second = store.rotate_secret(sub.id, tenant_id="globex", grace_seconds=3600)  # while the receiver runs
        new = httpx.post(url, content=body, headers=build_headers("msg_b", int(time.time()), body, second))
        old_in_grace = httpx.post(url, content=body, headers=build_headers("msg_c", int(time.time()), body, first))
        forged = httpx.post(url, content=body, headers=build_headers("msg_d", int(time.time()), body, Secret.generate().reveal()))
        code, lines, stderr = stop(proc, tmp_path)

    assert [r.status_code for r in (before, new, old_in_grace, forged)] == [204, 204, 204, 401]
    assert code == 0
    assert f"verifying with the secrets of {sub.id}" in stderr
    assert all("invoice.sent  tenant=globex" in line for line in lines)  # tenant from the subscription


def test_receive_for_an_unknown_subscription_says_so_and_exits(env):
    r = subprocess.run(
        [sys.executable, "-m", "hookstream", "receive", "--port", "0", "--subscription", "sub_nope"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert (r.returncode, r.stderr.strip()) == (3, "error: no subscription 'sub_nope'")


def test_receive_on_a_port_in_use_says_so(env):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run(
            [sys.executable, "-m", "hookstream", "receive", "--port", str(port), "--secret", Secret.generate().reveal()],
            env=env, capture_output=True, text=True, timeout=60,
        )
    assert r.returncode == 2
    assert r.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}")
    assert "Traceback" not in r.stderr
