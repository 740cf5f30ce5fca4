"""Benchmark (not a test): events published per second by one process to a local broker.

Each event is built (``Event.new``: UUIDv7 id, timestamp), validated against its schema,
serialized and handed to the idempotent ``acks=all`` producer with ``Publisher.send``; the clock
stops when ``flush()`` returns, i.e. when the broker acknowledged every event. The data objects
are made before the clock starts (a service has its data at hand); they cycle through the twelve
types' examples with 1,000 different entity ids, so the keys spread over the partitions.

    HOOKSTREAM_STATE_DIR=/tmp/hs-bench-prod HOOKSTREAM_KAFKA_BOOTSTRAP=127.0.0.1:19392 hookstream kafka start
    HOOKSTREAM_KAFKA_BOOTSTRAP=127.0.0.1:19392 python bench/publish.py --events 300000
    HOOKSTREAM_STATE_DIR=/tmp/hs-bench-prod HOOKSTREAM_KAFKA_BOOTSTRAP=127.0.0.1:19392 hookstream kafka stop
"""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
import pstats
import time

from hookstream.core.settings import Settings
from hookstream.core.topics import EVENT_TOPICS, TopicSpec, ensure_topics
from hookstream.shell.machine import cpu_model
from hookstream.producers import Publisher
from hookstream.schemas import EVENT_TYPES, Event, encode_event, entity_field, example


def make_data(count: int, types: list[str]) -> list[tuple[str, dict]]:
    out = []
    for n in range(count):
        event_type = types[n % len(types)]
        data = example(event_type)
        data[entity_field(event_type)] = f"ent_{n % 1000}"
        out.append((event_type, data))
    return out


def publish(publisher: Publisher, items: list[tuple[str, dict]], tenant: str) -> float:
    start = time.perf_counter()
    send, new = publisher.send, Event.new
    for event_type, data in items:
        send(new(event_type, tenant, data))
    publisher.flush(120)
    return time.perf_counter() - start


def encode_only(items: list[tuple[str, dict]], tenant: str) -> float:
    start = time.perf_counter()
    for event_type, data in items:
        encode_event(Event.new(event_type, tenant, data))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--type", action="append", dest="types", help="only these types (default: all twelve)")
    parser.add_argument("--profile", action="store_true", help="profile one run and print the top functions")
    args = parser.parse_args()

    base = Settings.from_env()
    settings = Settings(**{**base.__dict__, "topic_prefix": f"bench{int(time.time())}."})
    ensure_topics(settings, [TopicSpec(name, 6, {}, "") for name in EVENT_TOPICS.values()])
    types = args.types or list(EVENT_TYPES)
    items = make_data(args.events, types)
    print(f"machine: {os.cpu_count()} cores, {cpu_model()}, Python {platform.python_version()}")
    print(f"broker: {settings.kafka_bootstrap}; {args.events} events of {len(types)} type(s), 1000 entity ids")

    print(f"validate + encode only: {args.events / encode_only(items, 'tenant-bench'):,.0f} events/s")
    with Publisher(settings) as publisher:
        publish(publisher, items[: min(20_000, len(items))], "tenant-bench")  # warm-up: connections, metadata
        rates = []
        for run in range(args.runs):
            if args.profile and run == 0:
                profiler = cProfile.Profile()
                elapsed = profiler.runcall(publish, publisher, items, "tenant-bench")
                pstats.Stats(profiler).sort_stats("tottime").print_stats(12)
            else:
                elapsed = publish(publisher, items, "tenant-bench")
            rates.append(args.events / elapsed)
            print(f"run {run + 1}: {args.events} events acknowledged in {elapsed:.2f} s = {rates[-1]:,.0f} events/s")
    rates.sort()
    print(f"median: {rates[len(rates) // 2]:,.0f} events/s (best {rates[-1]:,.0f})")


if __name__ == "__main__":
    main()
