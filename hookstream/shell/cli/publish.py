"""``hookstream publish`` and ``hookstream outbox relay|status``."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

import orjson
import typer

from hookstream.shell.cli._output import JsonOption, emit_json, printable
from hookstream.core.db import open_database
from hookstream.core.errors import ValidationError
from hookstream.core.settings import parse_duration
from hookstream.producers._outbox import OutboxRelay, outbox_status
from hookstream.producers._publisher import Publisher
from hookstream.producers._errors import check_size
from hookstream.schemas import Event, encode_event, validate_event
from hookstream.shell.cli._context import settings_of

outbox_app = typer.Typer(help="The transactional outbox: relay pending events to Kafka.", no_args_is_help=True)


def _read_data(data: str) -> dict:
    if data.startswith("@"):
        source = data[1:]
        try:
            raw = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
        except OSError as exc:
            raise ValidationError(f"--data: cannot read {source}: {exc.strerror}") from None
    else:
        raw = data.encode()
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"--data is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValidationError("--data must be a JSON object (the event's data)")
    return value


# librdkafka's message.timeout.ms: more than linger.ms (5), at most 2**31-1 ms (0 would mean forever)
_MIN_TIMEOUT, _MAX_TIMEOUT = 0.1, (2**31 - 1) / 1000


def _check_timeout(timeout: float) -> None:
    if not (_MIN_TIMEOUT <= timeout <= _MAX_TIMEOUT):  # NaN fails every comparison
        raise ValidationError(f"--timeout: {timeout!r} is not a number of seconds from {_MIN_TIMEOUT:g} to {_MAX_TIMEOUT:g}")


def publish_command(
    ctx: typer.Context,
    tenant: str = typer.Option(..., "--tenant", help="The tenant the event belongs to."),
    event_type: str = typer.Option(..., "--type", help="The event type, e.g. payment.received (see `hookstream schemas list`)."),
    data: str = typer.Option(..., "--data", help="The event's data: a JSON object, @file.json, or @- for stdin."),
    correlation_id: str = typer.Option(None, "--correlation-id", help="Ties the event to a request or process."),
    timeout: float = typer.Option(30.0, "--timeout", help="Seconds to wait for the broker's acknowledgement."),
    as_json: bool = JsonOption,
) -> None:
    """Validate and publish one event; prints its id once the broker has it."""
    _check_timeout(timeout)
    settings = settings_of(ctx)
    event = Event.new(event_type, tenant, _read_data(data), correlation_id=correlation_id)
    validate_event(event)  # before connecting: bad input fails fast
    check_size(event.id, event.type, encode_event(event), settings.max_event_bytes)  # so does an event too large
    # librdkafka's own lines (connection refused, ...) would bury the one-line error: critical only
    with Publisher(settings, delivery_timeout=timeout, log_level=2) as publisher:
        delivery = publisher.publish(event, timeout=timeout + 5)
    if as_json:
        emit_json({"id": event.id, "type": event.type, "topic": delivery.topic, "partition": delivery.partition, "offset": delivery.offset})
    else:
        typer.echo(event.id)


@outbox_app.command("relay")
def outbox_relay(
    ctx: typer.Context,
    once: bool = typer.Option(False, "--once", help="Publish every pending event, then exit."),
    poll_interval: str = typer.Option("1s", "--poll-interval", help="Wait between looks when nothing is pending (250ms, 1s, ...)."),
    batch_size: int = typer.Option(500, "--batch-size", min=1, max=10_000, help="Events per batch."),
) -> None:
    """Publish the outbox's pending events in order and mark them sent. Stops cleanly on SIGTERM/SIGINT."""
    settings = settings_of(ctx)
    interval = parse_duration(poll_interval, name="--poll-interval")
    if not 0.01 <= interval <= 86_400:  # 0 would spin; a wait too long for the clock raises (OverflowError)
        raise ValidationError(f"--poll-interval: {poll_interval!r} is not from 10ms to 1d")
    engine = open_database(settings)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with Publisher(settings, delivery_timeout=60.0) as publisher:
        relay = OutboxRelay(engine, publisher, batch_size=batch_size, ack_timeout=90.0, on_set_aside=lambda row: typer.echo(
            f"set aside outbox row {row.seq} (event {printable(row.event_id)}), it will not be published: {printable(row.reason)}",
            err=True))  # the row's event id and reason come from services' data: printable()
        if once:
            total = relay.drain(stop)
        else:
            typer.echo(f"relaying the outbox of {engine.url.render_as_string(hide_password=True)} to {settings.kafka_bootstrap}")
            total = relay.run(stop, poll_interval=interval, on_error=lambda exc: typer.echo(f"error: {printable(exc)}", err=True))
    typer.echo(f"published {total} events")


@outbox_app.command("status")
def outbox_status_command(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """Pending, sent and set-aside events (never to be published: see the outbox's set_aside_reason); exit 0."""
    settings = settings_of(ctx)
    engine = open_database(settings)
    st = outbox_status(engine)
    if as_json:
        emit_json({"pending": st.pending, "sent": st.sent, "failing": st.failing, "set_aside": st.set_aside,
                   "oldest_pending": st.oldest_pending})
        return
    oldest = f", oldest from {st.oldest_pending.isoformat()}" if st.oldest_pending else ""
    typer.echo(f"{st.pending} pending ({st.failing} failing){oldest}; {st.sent} sent; {st.set_aside} set aside")
