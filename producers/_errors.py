"""Errors of ``producers`` (invalid events raise ``schemas.InvalidEventError`` before anything is sent).

    hookstream.errors.BrokerError
    └── DeliveryError     the broker did not take an event: .event_ids, .code (librdkafka's error name)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from confluent_kafka import KafkaError

from hookstream.errors import BrokerError

_HINTS = {
    "UNKNOWN_TOPIC_OR_PART": "the topic does not exist; create the topics with `hookstream topics ensure`",
    "_UNKNOWN_TOPIC": "the topic does not exist; create the topics with `hookstream topics ensure`",
    "_MSG_TIMED_OUT": "no acknowledgement within the delivery timeout; is the broker at {bootstrap} up?",
    "_ALL_BROKERS_DOWN": "no broker answers at {bootstrap}",
    "MSG_SIZE_TOO_LARGE": "the event is larger than the broker accepts",
    "_MSG_SIZE_TOO_LARGE": "the event is larger than the producer accepts",
}


class DeliveryError(BrokerError):
    """One or more events were not acknowledged by the broker. They were not (or not surely) written."""

    def __init__(self, message: str, *, event_ids: Sequence[str] = (), code: str | None = None) -> None:
        super().__init__(message)
        self.event_ids = tuple(event_ids)
        self.code = code

    @classmethod
    def from_kafka(cls, event_id: str, topic: str, error: KafkaError, bootstrap: str) -> "DeliveryError":
        name = error.name()
        why = _HINTS.get(name, "").format(bootstrap=bootstrap) or error.str()
        return cls(f"event {event_id} was not delivered to {topic}: {why} ({name})", event_ids=[event_id], code=name)

    @classmethod
    def combine(cls, errors: Iterable["DeliveryError"]) -> "DeliveryError":
        errors = list(errors)
        if len(errors) == 1:
            return errors[0]
        ids = [i for e in errors for i in e.event_ids]
        return cls(f"{len(ids)} events were not delivered; the first: {errors[0]}", event_ids=ids, code=errors[0].code)
