"""hookstream.core.time: RFC 3339 in UTC with a Z, durations, and what --since/--until take."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookstream.core.errors import ConfigError, ValidationError
from hookstream.core.time import format_time, format_unix, parse_duration, parse_since, parse_time, utc

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
# every instant UTC can hold, in any offset a real zone uses
moments = st.datetimes(
    min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))])
)


def test_format_time_is_rfc3339_utc_with_z_and_microseconds():
    assert format_time(datetime(2026, 11, 28, 14, 3, 11, 250000, tzinfo=UTC)) == "2026-11-28T14:03:11.250000Z"
    assert format_time(datetime(2026, 11, 28, 15, 3, 11, tzinfo=timezone(timedelta(hours=1)))) == "2026-11-28T14:03:11.000000Z"


def test_a_naive_time_is_taken_as_utc():
    assert format_time(datetime(2026, 11, 28, 14, 3, 11)) == "2026-11-28T14:03:11.000000Z"
    assert utc(datetime(2026, 1, 1)) == datetime(2026, 1, 1, tzinfo=UTC)


def test_timespec_auto_drops_zero_microseconds_and_seconds_cuts_them():
    assert format_time(NOW, timespec="auto") == "2026-11-28T12:00:00Z"
    assert format_time(NOW.replace(microsecond=5), timespec="auto") == "2026-11-28T12:00:00.000005Z"
    assert format_unix(NOW.timestamp() + 0.9, timespec="seconds") == "2026-11-28T12:00:00Z"


@given(moments)
def test_format_then_parse_round_trips_to_the_same_instant_in_utc(moment):
    text = format_time(moment)
    assert text.endswith("Z") and "+" not in text
    back = parse_time(text)
    assert back == moment and back.tzinfo is UTC


@given(moments)
def test_formatted_times_sort_as_text_in_time_order(moment):
    later = moment + timedelta(microseconds=1)
    assert format_time(moment) < format_time(later)


@given(st.floats(min_value=0, max_value=1e11, allow_nan=False))
def test_format_unix_is_format_time_of_that_instant(seconds):
    assert format_unix(seconds) == format_time(datetime.fromtimestamp(seconds, UTC))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-28T10:00:00Z", datetime(2026, 11, 28, 10, tzinfo=UTC)),
        ("2026-11-28T11:00:00+01:00", datetime(2026, 11, 28, 10, tzinfo=UTC)),
        ("2026-11-28T10:00:00.250000Z", datetime(2026, 11, 28, 10, 0, 0, 250000, tzinfo=UTC)),
        ("2026-11-28T10:00:00", datetime(2026, 11, 28, 10, tzinfo=UTC)),
    ],
)
def test_parse_time_reads_rfc3339_into_aware_utc(text, expected):
    assert parse_time(text) == expected and parse_time(text).tzinfo is UTC


def test_parse_time_leaves_unreadable_and_out_of_range_times_to_the_caller():
    with pytest.raises(ValueError):
        parse_time("yesterday")
    with pytest.raises(OverflowError):
        parse_time("0001-01-01T00:00:00+01:00")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h", 3600), ("2h", 7200), ("1d", 86400), ("250ms", 0.25), ("15", 15), (" 1.5 h ", 5400)],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text, name="X") == seconds


@pytest.mark.parametrize("text", ["", "5x", "-5s", "1e3s", "five", "5 m s"])
def test_a_bad_duration_names_the_setting(text):
    with pytest.raises(ConfigError, match=f"^X: {text!r} is not a duration"):
        parse_duration(text, name="X")
    with pytest.raises(ValidationError, match="^--timeout: "):
        parse_duration(text, name="--timeout", error=ValidationError)


@given(st.integers(min_value=0, max_value=700_000), st.sampled_from(["s", "m", "h", "d"]))  # 700,000 days: still after year 1
def test_parse_since_takes_a_span_back_from_now(n, unit):
    span = parse_duration(f"{n}{unit}", name="X")
    assert parse_since(f"{n}{unit}", name="--since", now=NOW) == (NOW - timedelta(seconds=span)).timestamp()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-28T08:00:00Z", datetime(2026, 11, 28, 8, tzinfo=UTC)),
        (" 2026-11-28T09:00:00+01:00 ", datetime(2026, 11, 28, 8, tzinfo=UTC)),
        ("2026-11-28", datetime(2026, 11, 28, tzinfo=UTC)),
    ],
)
def test_parse_since_takes_an_rfc3339_time_or_a_date(text, expected):
    assert parse_since(text, name="--since", now=NOW) == expected.timestamp()


@pytest.mark.parametrize("text", ["2", "yesterday", "2h ago", "0001-01-01T00:00:00+01:00", ""])
def test_parse_since_refuses_anything_else_in_one_line_naming_the_option(text):
    with pytest.raises(ValidationError, match=r"^--until: .* is not a time \(use RFC 3339"):
        parse_since(text, name="--until", now=NOW)


@pytest.mark.parametrize("text", ["99999999999d", "9" * 400 + "h"])
def test_parse_since_refuses_a_span_before_year_one(text):
    with pytest.raises(ValidationError, match="reaches back before year 1"):
        parse_since(text, name="--since", now=NOW)
