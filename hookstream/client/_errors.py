"""The client's errors.

    HookstreamAPIError         the API answered with a problem (application/problem+json)
    └── (status, code, detail, field) say which; ``retry_after`` is set on 429
    httpx.HTTPError            the request did not get an answer (httpx's own, unchanged)
"""

from __future__ import annotations

from typing import Any


class HookstreamAPIError(Exception):
    def __init__(self, status: int, code: str, detail: str, field: str | None = None, *,
                 retry_after: float | None = None, body: Any = None) -> None:
        super().__init__(f"{status} {code}: {detail}" + (f" (field {field})" if field else ""))
        self.status = status
        self.code = code
        self.detail = detail
        self.field = field
        self.retry_after = retry_after
        self.body = body
