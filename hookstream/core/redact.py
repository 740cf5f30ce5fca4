"""Masking what may carry a credential before it is printed, logged or recorded.

Endpoint URLs often carry a token (``?token=…``, ``https://user:pass@host/``); custom header
values are often ``Authorization`` credentials. Output shows the scheme, host and path of a
URL, and the names of headers, never the rest. ``redact_urls`` masks every URL in a text,
including a URL the HTTP client printed in its own (normalised) form, which need not be the
string we gave it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

MASK = "***"

# scheme://[userinfo@]host[:port][/path][?query][#fragment]; stops at whitespace and quotes
_URL = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^\s/?#\"'<>]*)([^\s?#\"'<>]*)(\?[^\s#\"<>]*)?(#[^\s\"<>]*)?")


def _mask_match(m: re.Match) -> str:
    scheme, authority, path, query, fragment = m.groups()
    userinfo, at, host = authority.rpartition("@")
    # sentence punctuation after a URL (``(url): refused``) is kept; one such character of a
    # query is all that can show
    tail = ""
    last = fragment or query
    if last:
        stripped = last.rstrip(").,;:")
        tail = last[len(stripped):]
    return (
        scheme
        + (MASK + "@" if at else "")
        + host
        + path
        + ("?" + MASK if query else "")
        + ("#" + MASK if fragment else "")
        + tail
    )


def mask_url(url: str) -> str:
    """``https://***@host/path?***``: user-info, query and fragment masked; the rest kept."""
    return _URL.sub(_mask_match, url) if isinstance(url, str) else MASK


def redact_urls(text: str) -> str:
    """``text`` with every URL in it masked as ``mask_url`` does."""
    return _URL.sub(_mask_match, text) if "://" in text else text


def mask_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Header names with every value ``***``."""
    return {name: MASK for name in headers}
