"""Set-aside records always fit the producer's message size, whatever the event's key and value:
an event must never be able to make its own set-aside record unsendable (that stopped the stream
worker at it on every start)."""

import base64
import hashlib
import os

import orjson

from hookstream.streams.fanout import EXCERPT_BYTES, INVALID_KEY_MAX, INVALID_VALUE_MAX, REASON_MAX, RECORD_BYTES_MAX, invalid_key, invalid_record


def test_a_key_within_the_bound_is_kept_as_the_kafka_key():
    key = os.urandom(INVALID_KEY_MAX)
    assert invalid_key(key) == key
    assert invalid_key(b"inv_1") == b"inv_1" and invalid_key(None) is None


def test_a_key_over_the_bound_travels_as_its_digest_the_same_for_the_same_key():
    key = b"k" * 300_000
    kafka_key = invalid_key(key)
    assert kafka_key == b"sha256:" + hashlib.sha256(key).hexdigest().encode()
    assert invalid_key(bytes(key)) == kafka_key and invalid_key(key + b"!") != kafka_key


def test_the_reviewers_event_300_kb_key_512_kib_value_fits():
    key, value = b"k" * 300_000, b"x" * (512 * 1024)  # 824 kB: a producer with default settings writes it
    record = invalid_record(value, "not JSON", topic="events.invoice", partition=0, offset=5, key=key, code="not_json")
    assert len(invalid_key(key)) + len(record) <= RECORD_BYTES_MAX
    assert base64.b64decode(orjson.loads(record)["key_excerpt_b64"]) == key[:EXCERPT_BYTES]


def test_the_worst_set_aside_record_fits_under_the_producers_limit():
    key, value = os.urandom(INVALID_KEY_MAX), os.urandom(INVALID_VALUE_MAX)  # the largest carried whole
    reason = "\x00" * 50_000  # every character escaped as \u0000 in JSON: six bytes each
    record = invalid_record(value, reason, topic="t" * 249, partition=2**31 - 1, offset=2**63 - 1, key=key, code="internal_error")
    assert len(invalid_key(key)) + len(record) <= RECORD_BYTES_MAX < 1_000_000
    assert len(orjson.loads(record)["reason"]) == REASON_MAX
