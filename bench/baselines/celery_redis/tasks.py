"""The Celery app and its one task. Configured from the environment when imported (a worker
imports it by name): ``CELERY_REDIS_BROKER`` (``redis://127.0.0.1:6379/0``) and
``CELERY_REDIS_TIMEOUT`` (seconds per request, default 15).

    PYTHONPATH=<repo>:<repo>/bench/baselines celery -A celery_redis.tasks worker --pool prefork --concurrency $(nproc)
"""

from __future__ import annotations

import datetime as dt
import os
import time

from celery import Celery

from hookstream.delivery.envelope import payload
from hookstream.delivery.signing import build_headers

RETRY_DELAYS = (5, 300, 1800, 7200, 18000, 36000, 36000)  # hookstream's default schedule

app = Celery("celery_redis", broker=os.environ.get("CELERY_REDIS_BROKER", "redis://127.0.0.1:6379/0"))
app.conf.update(
    task_ignore_result=True,  # the design it stands for stored no results
    task_serializer="json",
    accept_content=["json"],
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)

_client = None


def _http():
    """One keep-alive client per worker process, made after the fork."""
    global _client
    if _client is None:
        import httpx

        _client = httpx.Client(timeout=float(os.environ.get("CELERY_REDIS_TIMEOUT", "15")), follow_redirects=False)
    return _client


@app.task(bind=True, name="celery_redis.deliver", max_retries=len(RETRY_DELAYS))
def deliver(self, delivery_id: str, url: str, secret: str, event_type: str, occurred_at: str, data: dict) -> int:
    body = payload(event_type, dt.datetime.fromisoformat(occurred_at), data)
    headers = build_headers(delivery_id, int(time.time()), body, secret)
    try:
        status = _http().post(url, content=body, headers=headers).status_code
    except Exception as exc:  # connection errors and timeouts: retry later
        raise self.retry(exc=exc, countdown=RETRY_DELAYS[min(self.request.retries, len(RETRY_DELAYS) - 1)])
    if status >= 500 or status == 429:
        raise self.retry(countdown=RETRY_DELAYS[min(self.request.retries, len(RETRY_DELAYS) - 1)])
    return status


def enqueue(event: dict, endpoints: list[tuple[str, str, str]]) -> int:
    """One task per endpoint of the event's tenant: ``endpoints`` holds (subscription id, url,
    secret). Returns the number of tasks sent."""
    from hookstream.core.wire import delivery_id

    for sub_id, url, secret in endpoints:
        deliver.apply_async(
            (delivery_id(event["id"], sub_id), url, secret, event["type"], event["occurred_at"], event["data"])
        )
    return len(endpoints)
