"""A subscription's custom headers: the one set of rules, applied when saving and at delivery.

The store refuses a header these rules refuse (``validate_headers``: one line naming the header),
and the delivery worker checks the same rules again before a request (``header_problem``: a
subscription read from the topic may come from an older version or another writer), so a header
is never accepted at save time and then refused at every delivery.

What is refused, and why:

- a name that is not an RFC 9110 token, or longer than ``MAX_HEADER_NAME``;
- a name the delivery worker sets itself (``webhook-*``, ``content-type``, ``user-agent`` ...) or
  that is hop-by-hop: a custom header must not replace the signature or the framing;
- a name given twice (differing only in case);
- a value that is not visible ASCII, space or tab, or longer than ``MAX_HEADER_VALUE``: the HTTP
  client refuses control characters (CR/LF included) and non-ASCII text, and obs-text bytes are
  read differently by different receivers;
- more than ``MAX_HEADERS`` headers.

Messages name the header, never its value: a custom header often carries a credential.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from hookstream.core.errors import ValidationError

MAX_HEADERS = 20
MAX_HEADER_NAME = 64
MAX_HEADER_VALUE = 1024

# RFC 9110 section 5.6.2: token = 1*tchar
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e]*")
# Set by the delivery worker on every request, or hop-by-hop; and every name starting with
# ``webhook-`` (the Standard Webhooks headers, today's and any later one).
WORKER_HEADERS = frozenset({
    "host", "content-length", "transfer-encoding", "content-type", "user-agent", "connection", "keep-alive",
    "upgrade", "te", "trailer", "expect", "proxy-authorization", "proxy-connection",
})
WORKER_PREFIX = "webhook-"


def header_problem(headers: Any) -> str | None:
    """What is wrong with a subscription's custom headers, or None (checked at delivery)."""
    if not isinstance(headers, Mapping):
        return "the headers are not a mapping of names to values"
    if len(headers) > MAX_HEADERS:
        return f"at most {MAX_HEADERS} custom headers, got {len(headers)}"
    seen: set[str] = set()
    for name, value in headers.items():
        if type(name) is not str or len(name) > MAX_HEADER_NAME or not _TOKEN.fullmatch(name):
            return f"header name {str(name)[:MAX_HEADER_NAME]!r} is not an RFC 9110 token of at most {MAX_HEADER_NAME} characters"
        lower = name.lower()
        if lower in WORKER_HEADERS or lower.startswith(WORKER_PREFIX):
            return f"header {name} is set by the delivery worker itself"
        if lower in seen:
            return f"header {name} is given twice"
        seen.add(lower)
        if type(value) is not str or len(value) > MAX_HEADER_VALUE or not _FIELD_VALUE.fullmatch(value):
            return (f"the value of header {name} is not at most {MAX_HEADER_VALUE} visible ASCII characters "
                    "(control characters, CR/LF and non-ASCII are refused)")
    return None


def validate_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` as a plain dict; ``ValidationError`` (``headers: …``) when the rules refuse one."""
    problem = header_problem(headers)
    if problem is not None:
        raise ValidationError(f"headers: {problem}")
    return dict(headers)
