"""The whole pipeline under traffic, watched by a real Prometheus: every dashboard panel has data.

Real broker, the stream and delivery workers as processes, real HTTP receivers (one healthy, one
failing with 500, one refusing with 400), a shortened retry schedule so retries and dead letters
happen within the test, junk on an event topic, and Debian's Prometheus scraping both workers.
"""

from __future__ import annotations

import http.server
import threading
import time

import pytest

from hookstream.subscriptions.store import SubscriptionStore
from hookstream.subscriptions.topic import publish_pending
from hookstream.core.settings import Settings
from hookstream.core.topics import ensure_topics
from hookstream.producers import Publisher
from hookstream.schemas import EVENT_TYPES, Event, example
from tests.integration.pipeline import produce, worker
from tests.integration.prometheus_live import PrometheusUnavailable, panels_without_data, running_prometheus
from tests.integration.test_streams_worker import free_port


class _Receiver(http.server.BaseHTTPRequestHandler):
    answers = {"/ok": 204, "/fail": 500, "/bad": 400}

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(self.answers.get(self.path, 404))
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_every_dashboard_panel_has_data_under_live_traffic(loopback_env, receiver, tmp_path):
    env = dict(loopback_env, HOOKSTREAM_RETRY_SCHEDULE="300ms,600ms")
    settings = Settings.from_env(env)
    ensure_topics(settings)
    store = SubscriptionStore.open(settings)
    store.add("acme", f"{receiver}/ok", ["*"])
    store.add("globex", f"{receiver}/ok", ["*"])
    store.add("acme", f"{receiver}/fail", ["payment.*"])
    store.add("acme", f"{receiver}/bad", ["invoice.*"])
    publish_pending(settings)

    sp, dp = free_port(), free_port()
    stop = threading.Event()

    def traffic():
        with Publisher(settings) as publisher:
            i = 0
            while not stop.is_set():
                t = EVENT_TYPES[i % len(EVENT_TYPES)]
                publisher.send(Event.new(t, ("acme", "globex")[i % 2], example(t)))
                if i % 50 == 0:
                    publisher.flush()
                i += 1
                time.sleep(0.02)

    try:
        with worker(env, ["streams", "worker", "--metrics-port", str(sp)], tmp_path / "streams.log") as sw, \
             worker(env, ["delivery", "worker", "--metrics-port", str(dp)], tmp_path / "delivery.log") as dw, \
             running_prometheus({"hookstream-streams": [f"127.0.0.1:{sp}"], "hookstream-delivery": [f"127.0.0.1:{dp}"]}) as prom:
            feeder = threading.Thread(target=traffic, daemon=True)
            feeder.start()
            produce(settings, "events.payment", [(b"junk", b"not json")])
            deadline = time.monotonic() + 120
            empty = None
            while time.monotonic() < deadline:
                time.sleep(3)
                assert sw.alive, sw.log()[-3000:]
                assert dw.alive, dw.log()[-3000:]
                empty = panels_without_data(prom.url)
                if not empty:
                    break
            assert not empty, f"panels without data: {[p.title for p in empty]}"
    except PrometheusUnavailable as exc:
        pytest.skip(str(exc))
    finally:
        stop.set()
