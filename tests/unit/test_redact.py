"""Masking URLs and header values in what is printed, logged or recorded."""

import pytest

from hookstream.core.redact import mask_headers, mask_url, redact_urls


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("https://hooks.example.com/in", "https://hooks.example.com/in"),
        ("https://hooks.example.com/in?token=PLANTED", "https://hooks.example.com/in?***"),
        ("https://user:PLANTED@hooks.example.com:8443/in", "https://***@hooks.example.com:8443/in"),
        ("http://127.0.0.1:8000/?a=PLANTED#PLANTED", "http://127.0.0.1:8000/?***#***"),
        ("HTTPS://Hooks.Example.com/p?PLANTED", "HTTPS://Hooks.Example.com/p?***"),
    ],
)
def test_mask_url_keeps_scheme_host_and_path_only(url, masked):
    assert mask_url(url) == masked


def test_every_url_in_a_message_is_masked_and_the_sentence_kept():
    text = "error sending request for url (https://h.example/x?token=PLANTED): connection refused; retry http://a/?b=PLANTED."
    out = redact_urls(text)
    assert "PLANTED" not in out
    assert out == "error sending request for url (https://h.example/x?***): connection refused; retry http://a/?***."


def test_text_without_a_url_is_returned_as_is():
    text = "ConnectTimeout: timed out after 15s"
    assert redact_urls(text) is text


def test_header_values_are_masked_names_kept():
    assert mask_headers({"Authorization": "Bearer PLANTED", "X-Env": "prod"}) == {"Authorization": "***", "X-Env": "***"}
