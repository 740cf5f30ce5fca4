"""Errors of ``producers`` (invalid events raise ``schemas.InvalidEventError`` before anything is sent).

    hookstream.errors.BrokerError
    └── PublishError     the broker did not take an event: .event_ids, .code (librdkafka's error name)
        └── EventTooLargeError   (also a ValidationError) the serialised event is over
                                 ``Settings.max_event_bytes``: refused before anything is produced
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from confluent_kafka import KafkaError

from hookstream.core.errors import BrokerError, ValidationError

_HINTS = {
    "UNKNOWN_TOPIC_OR_PART": "the topic does not exist; create the topics with `hookstream topics ensure`",
    "_UNKNOWN_TOPIC": "the topic does not exist; create the topics with `hookstream topics ensure`",
    "_MSG_TIMED_OUT": "no acknowledgement within the delivery timeout; is the broker at {bootstrap} up?",
    "_ALL_BROKERS_DOWN": "no broker answers at {bootstrap}",
    "MSG_SIZE_TOO_LARGE": "the event is larger than the broker accepts",
    "_MSG_SIZE_TOO_LARGE": "the event is larger than the producer accepts",
}

# Publish errors that concern the record itself, so sending it again can never succeed (the
# outbox relay sets such a row aside); every other error (timeouts, a missing topic, brokers
# down) is about the broker and passes.
PERMANENT_CODES = frozenset({
    "MSG_SIZE_TOO_LARGE", "_MSG_SIZE_TOO_LARGE", "RECORD_LIST_TOO_LARGE", "INVALID_RECORD", "CORRUPT_MESSAGE",
    "EVENT_TOO_LARGE",
})


class PublishError(BrokerError):
    """One or more events were not acknowledged by the broker. They were not (or not surely) written."""

    def __init__(self, message: str, *, event_ids: Sequence[str] = (), code: str | None = None) -> None:
        super().__init__(message)
        self.event_ids = tuple(event_ids)
        self.code = code

    @classmethod
    def from_kafka(cls, event_id: str, topic: str, error: KafkaError, bootstrap: str) -> "PublishError":
        name = error.name()
        why = _HINTS.get(name, "").format(bootstrap=bootstrap) or error.str()
        return cls(f"event {event_id} was not delivered to {topic}: {why} ({name})", event_ids=[event_id], code=name)

    @classmethod
    def combine(cls, errors: Iterable["PublishError"]) -> "PublishError":
        errors = list(errors)
        if len(errors) == 1:
            return errors[0]
        ids = [i for e in errors for i in e.event_ids]
        return cls(f"{len(ids)} events were not delivered; the first: {errors[0]}", event_ids=ids, code=errors[0].code)


class EventTooLargeError(PublishError, ValidationError):
    """The serialised event is larger than ``HOOKSTREAM_MAX_EVENT_BYTES`` allows; nothing was sent.

    A ``PublishError`` (callers that catch delivery failures catch it too, ``code`` is
    ``EVENT_TOO_LARGE``) and a ``ValidationError`` (the CLI exits 2: the input is at fault).
    """

    def __init__(self, event_id: str, event_type: str | None, size: int, limit: int) -> None:
        what = f"event {event_id} ({event_type})" if event_type else f"event {event_id}"
        super().__init__(
            f"{what} is {size} bytes serialised, over the limit of {limit} bytes "
            f"(HOOKSTREAM_MAX_EVENT_BYTES); nothing was sent. Send a reference to large content instead",
            event_ids=[event_id], code="EVENT_TOO_LARGE",
        )
        self.size = size
        self.limit = limit


def check_size(event_id: str, event_type: str | None, value: bytes, limit: int) -> None:
    """Raise ``EventTooLargeError`` when ``value`` (the serialised envelope) is over ``limit`` bytes."""
    if len(value) > limit:
        raise EventTooLargeError(event_id, event_type, len(value), limit)
