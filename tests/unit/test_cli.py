"""The CLI's contract for errors: one line naming the problem, non-zero exit, no traceback."""

import subprocess
import sys


def run(*args, env_extra=None):
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKSTREAM_")}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "hookstream", *args], capture_output=True, text=True, env=env, timeout=60)


def test_bad_setting_is_one_line_without_traceback():
    r = run("kafka", "status", env_extra={"HOOKSTREAM_KAFKA_BOOTSTRAP": "nonsense"})
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "error: HOOKSTREAM_KAFKA_BOOTSTRAP: 'nonsense' is not host:port (e.g. 127.0.0.1:9092)"
    ]


def test_unknown_command_is_a_usage_error():
    r = run("no-such-command")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert "No such command" in r.stderr


def test_status_exits_1_when_nothing_answers(tmp_path):
    r = run("kafka", "status", env_extra={"HOOKSTREAM_KAFKA_BOOTSTRAP": "127.0.0.1:1", "HOOKSTREAM_STATE_DIR": str(tmp_path)})
    assert r.returncode == 1
    assert "not running" in r.stdout
