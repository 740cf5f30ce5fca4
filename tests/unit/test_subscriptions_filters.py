"""Event filters: what a subscription receives, and which filters are accepted."""

import pytest

from hookstream.core.errors import ValidationError
from hookstream.subscriptions.filters import KNOWN_EVENT_TYPES, matches, parse_filters, validate_filters


@pytest.mark.parametrize(
    ("filters", "event_type", "expected"),
    [
        (("*",), "invoice.sent", True),
        (("invoice.sent",), "invoice.sent", True),
        (("invoice.sent",), "invoice.created", False),
        (("payment.*",), "payment.failed", True),
        (("payment.*",), "invoice.created", False),
        (("sales_order.*",), "sales_order.cancelled", True),
        (("payment.*",), "paymentx.received", False),
        (("invoice.created", "payment.*"), "payment.received", True),
        ((), "payment.received", False),
    ],
)
def test_matches_exact_prefix_and_wildcard(filters, event_type, expected):
    assert matches(filters, event_type) is expected


def test_every_known_type_is_a_valid_filter():
    assert validate_filters(KNOWN_EVENT_TYPES) == KNOWN_EVENT_TYPES
    assert len(KNOWN_EVENT_TYPES) == 12


def test_parse_filters_splits_trims_and_deduplicates():
    assert parse_filters(" payment.* , invoice.created,payment.*") == ("payment.*", "invoice.created")


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("payment.refunded", "payment.refunded"),
        ("shipment.*", "shipment.*"),
        ("payment.", "payment."),
        ("payment*", "payment*"),
        ("*.created", "*.created"),
        ("payment.*,", "empty filter"),
        ("", "empty filter"),
    ],
)
def test_bad_filter_is_refused_naming_it(text, named):
    with pytest.raises(ValidationError) as caught:
        parse_filters(text)
    assert str(caught.value).startswith("events: ") and named in str(caught.value)


def test_no_filters_at_all_is_refused():
    with pytest.raises(ValidationError, match="at least one"):
        validate_filters([])
