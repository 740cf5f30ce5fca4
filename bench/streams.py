"""Benchmark: delivery records fanned out per second by ONE stream worker (a real process).

    python bench/streams.py --events 20000 --fanout 1
    python bench/streams.py --events 5000 --fanout 10

Starts (or reuses) a local broker on --bootstrap, creates the topics under a fresh prefix,
adds --fanout subscriptions for one tenant, publishes --events events up front, then starts
`hookstream streams worker` and watches the deliveries topic's end offsets. The rate is taken
over the steady part: from the first delivery record to the last, so worker start-up and the
group join are not counted (they are reported separately).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid

from confluent_kafka import Consumer, TopicPartition

from hookstream.shell.broker import LocalBroker
from hookstream.core.kafka import make_consumer, make_producer
from hookstream.core.settings import Settings
from hookstream.subscriptions.store import SubscriptionStore
from hookstream.subscriptions.topic import publish_pending
from hookstream.core.topics import DELIVERIES, ensure_topics, event_topic_for
from hookstream.schemas import Event, example


def end_offsets(consumer: Consumer, topic: str) -> int:
    md = consumer.list_topics(topic, timeout=10).topics[topic]
    return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in md.partitions)


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--fanout", type=int, default=1)
    ap.add_argument("--bootstrap", default="127.0.0.1:19492")
    ap.add_argument("--state-dir", default="/tmp/hs-bench-streams")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="hs-bench-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKSTREAM_")}
    env.update(
        HOOKSTREAM_KAFKA_BOOTSTRAP=args.bootstrap, HOOKSTREAM_STATE_DIR=args.state_dir,
        HOOKSTREAM_TOPIC_PREFIX=f"bench{uuid.uuid4().hex[:8]}.", HOOKSTREAM_DATABASE_URL=f"sqlite:///{tmp}/db.sqlite",
        HOOKSTREAM_ALLOW_HTTP="1", HOOKSTREAM_ALLOWED_NETWORKS="127.0.0.0/8",
    )
    settings = Settings.from_env(env)
    LocalBroker(settings).start()
    ensure_topics(settings)
    store = SubscriptionStore.open(settings)
    for i in range(args.fanout):
        store.add("bench", f"http://127.0.0.1:9/{i}", ["*"])
    publish_pending(settings)

    producer = make_producer(settings, **{"linger.ms": 20, "client.id": "bench-streams"})
    for _ in range(args.events):
        ev = Event.new("payment.received", "bench", example("payment.received"))
        producer.produce(settings.topic(event_topic_for(ev.type)), key=ev.data["payment_id"].encode(), value=ev.to_bytes())
        producer.poll(0)
    producer.flush(60)

    want = args.events * args.fanout
    topic = settings.topic(DELIVERIES)
    watcher = make_consumer(settings, "bench-watch", **{"client.id": "bench-streams", "log_level": 0})
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "hookstream", "streams", "worker"], env=env,
                            stdout=subprocess.DEVNULL, stderr=open(f"{tmp}/worker.log", "wb"))
    first_at = first_count = None
    try:
        while True:
            n = end_offsets(watcher, topic)
            now = time.monotonic()
            if n and first_at is None:
                first_at, first_count = now, n
            if n >= want:
                done_at = now
                break
            if now - started > 600 or proc.poll() is not None:
                raise SystemExit(f"stuck at {n}/{want}; worker log: {tmp}/worker.log")
            time.sleep(0.1)
        cpu = cpu_seconds(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)
        watcher.close()
    steady = (want - first_count) / (done_at - first_at) if done_at > first_at else float("nan")
    print(json.dumps({
        "events": args.events, "fanout": args.fanout, "delivery_records": want,
        "records_per_s": round(steady), "startup_s": round(first_at - started, 2),
        "worker_cpu_s": round(cpu, 2), "cpu_us_per_record": round(cpu / want * 1e6, 1),
    }))


if __name__ == "__main__":
    main()
