"""Custom headers: one set of rules, the same when a subscription is saved and at delivery (issue 12).

A header the store accepted and the delivery worker then refused dead-lettered every delivery of
that subscription as ``invalid_header`` without the tenant being told at save time."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hookstream.delivery import attempt
import hookstream.subscriptions.store
from hookstream.core.errors import ValidationError
from hookstream.subscriptions.headers import MAX_HEADER_VALUE, MAX_HEADERS, header_problem, validate_headers


@pytest.mark.parametrize(
    ("headers", "named"),
    [
        ({"X-Name": "Jos\u00e9"}, "X-Name"),  # non-ASCII: the HTTP client refuses it
        ({"X-Raw": "\x9bSECRET-PART"}, "X-Raw"),  # a C1 control character
        ({"X-Nul": "a\x00b"}, "X-Nul"),
        ({"X-Crlf": "a\r\nInjected: 1"}, "X-Crlf"),
        ({"X-Del": "a\x7f"}, "X-Del"),
        ({"X-Long": "v" * (MAX_HEADER_VALUE + 1)}, "X-Long"),
        ({"User-Agent": "mine"}, "User-Agent"),  # the worker sets it
        ({"Webhook-Id": "x"}, "Webhook-Id"),
        ({"webhook-version": "2"}, "webhook-version"),  # any webhook-* header, not only today's three
        ({"Content-Type": "text/plain"}, "Content-Type"),
        ({"Host": "evil.example"}, "Host"),
        ({"X-A": "1", "x-a": "2"}, "x-a"),
        ({"Bad Name": "v"}, "Bad Name"),
        ({"X-" + "n" * 70: "v"}, "X-nnn"),
    ],
)
def test_a_header_delivery_would_refuse_is_refused_at_save_naming_it_never_its_value(headers, named):
    with pytest.raises(ValidationError) as caught:
        validate_headers(headers)
    message = str(caught.value)
    assert message.startswith("headers: ") and named in message and "\n" not in message
    for value in headers.values():
        if len(value) > 1:
            assert value not in message
    assert "SECRET-PART" not in message
    assert header_problem(headers) == message.removeprefix("headers: ")  # the same verdict at delivery


def test_more_headers_than_allowed_are_refused():
    headers = {f"X-H{i}": "v" for i in range(MAX_HEADERS + 1)}
    with pytest.raises(ValidationError, match=f"at most {MAX_HEADERS}"):
        validate_headers(headers)
    assert header_problem(headers) is not None


def test_ordinary_headers_pass_both_and_are_kept_as_given():
    headers = {"Authorization": "Bearer abc.def", "X-Tab": "a\tb", "X-Sym": "!#$%&'*+-.^_`|~ ok", "X-Empty": ""}
    assert validate_headers(headers) == headers and header_problem(headers) is None


_names = st.sampled_from(["X-Env", "Authorization", "User-Agent", "Webhook-Foo", "webhook-id", "Host", "X Bad", "x-env"]) | st.text(max_size=8)
_values = st.text(max_size=12) | st.sampled_from(["Jos\u00e9", "\x9b", "ok value", "a\tb", "v" * 2000])


@settings(max_examples=300, deadline=None)
@given(headers=st.dictionaries(_names, _values, max_size=4))
def test_the_store_accepts_exactly_what_the_delivery_worker_sends(headers):
    # the names both modules use, so a second set of rules creeping back into either fails here
    try:
        hookstream.subscriptions.store.validate_headers(headers)
        saved = True
    except ValidationError:
        saved = False
    assert saved == (attempt.header_problem(headers) is None)
