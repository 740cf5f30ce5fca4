"""What each part imports: the delivery hot path one HTTP client (pyreqwest), the CLI no
dev-only server, and `hookstream receive` without its extra a one-line error naming it."""

from __future__ import annotations

import json
import subprocess
import sys

WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def _modules_after(statement: str) -> set[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return set(json.loads(r.stdout.splitlines()[-1]))


def test_the_delivery_worker_imports_pyreqwest_and_no_other_http_client():
    loaded = _modules_after("import hookstream.delivery.worker")
    assert "pyreqwest" in loaded
    assert loaded.isdisjoint({"aiohttp", "httpx", "httpcore", "requests", "urllib3"}), loaded


def test_the_cli_starts_without_importing_aiohttp():
    assert "aiohttp" not in _modules_after("import hookstream.shell.cli")


def test_receive_without_aiohttp_is_one_line_naming_the_extra():
    # None in sys.modules makes `import aiohttp` raise ImportError, as when it is not installed
    code = ("import sys; sys.modules['aiohttp'] = None\n"
            "from hookstream.shell.cli import main\n"
            f"sys.exit(main(['receive', '--port', '0', '--secret', '{WHSEC}']))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == "error: hookstream receive needs aiohttp, which is not installed: pip install 'hookstream[receiver]'\n"
