"""A subscription's secrets and header values, sealed (``hookstream.crypto``) where they rest.

The database columns and the topic's records hold the same shapes as before, with each value
sealed: ``secrets`` is ``[{"secret": "hs1:…", "expires_at": …}]`` and ``headers`` is
``{"Name": "hs1:…"}``. Header names and expiry times stay readable (listings show them); each
value is bound to its subscription id and field, so it opens nowhere else.

``open_fields`` never raises for a value it cannot open: it returns no secrets and no headers
plus the reason (the key id it lacks), so a listing still lists and a worker dead-letters that
subscription's records with the reason instead of crashing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from hookstream.core.crypto import Keyring, SealedValueError, is_sealed
from hookstream.core.secrets import InvalidSecretError, Secret
from hookstream.core.time import format_time, parse_time


def _secret_context(sub_id: str) -> str:
    return f"subscription/{sub_id}/secret"


def _header_context(sub_id: str, name: str) -> str:
    return f"subscription/{sub_id}/header/{name.lower()}"


def _time(dt: datetime | None) -> str | None:
    return format_time(dt) if dt else None


def seal_secrets(secrets: Sequence[Secret], keyring: Keyring, sub_id: str) -> list[dict[str, Any]]:
    return [{"secret": keyring.seal(s.reveal(), _secret_context(sub_id)), "expires_at": _time(s.expires_at)} for s in secrets]


def seal_headers(headers: Mapping[str, str], keyring: Keyring, sub_id: str) -> dict[str, str]:
    return {name: keyring.seal(value, _header_context(sub_id, name)) for name, value in headers.items()}


def open_secret_items(items: Sequence[Mapping[str, Any]], keyring: Keyring, sub_id: str) -> list[dict[str, Any]]:
    """The items with each secret opened to its text, not parsed (``SealedValueError`` when one
    does not open): for writing them back in clear (migration 0007's downgrade)."""
    return [dict(item, secret=keyring.open(_sealed(item["secret"]), _secret_context(sub_id))) for item in items]


def open_secrets(items: Sequence[Mapping[str, Any]], keyring: Keyring, sub_id: str) -> tuple[Secret, ...]:
    """The secrets, opened and parsed: ``SealedValueError`` when one does not open,
    ``InvalidSecretError`` when one opens to something that is not a signing secret."""
    return parse_secrets(open_secret_items(items, keyring, sub_id), sub_id)


def parse_secrets(items: Sequence[Mapping[str, Any]], sub_id: str) -> tuple[Secret, ...]:
    """``[{"secret": "whsec_…", "expires_at": …}]`` in clear -> ``Secret``s. Every expiry is read
    first (an unreadable time is the record's fault, raised as it is); then the first secret that
    does not parse raises ``InvalidSecretError`` naming its position and the subscription."""
    expiries = [parse_time(i["expires_at"]) if i.get("expires_at") else None for i in items]
    out = []
    for n, (item, expires_at) in enumerate(zip(items, expiries, strict=True), 1):
        try:
            out.append(Secret.parse(item["secret"], expires_at=expires_at))
        except InvalidSecretError as exc:
            raise InvalidSecretError(f"subscription {sub_id}: secret {n} cannot sign: {str(exc).removeprefix('secret: ')}") from None
    return tuple(out)


def open_headers(items: Mapping[str, str], keyring: Keyring, sub_id: str) -> dict[str, str]:
    return {name: keyring.open(_sealed(value), _header_context(sub_id, name)) for name, value in items.items()}


def open_fields(
    secrets: Sequence[Mapping[str, Any]], headers: Mapping[str, str], keyring: Keyring, sub_id: str
) -> tuple[tuple[Secret, ...], dict[str, str], str | None]:
    """(secrets, headers, None), or ((), {}, why) when a value does not open or a secret opens to
    something that cannot sign."""
    try:
        return open_secrets(secrets, keyring, sub_id), open_headers(headers, keyring, sub_id), None
    except SealedValueError as exc:
        return (), {}, f"subscription {sub_id}: its secrets or headers cannot be opened: {exc}"
    except InvalidSecretError as exc:
        return (), {}, str(exc)


def reseal(secrets: list[dict[str, Any]], headers: Mapping[str, str], keyring: Keyring, sub_id: str):
    """Both fields under the keyring's newest key (``SealedValueError`` when one does not open)."""
    return (
        [dict(item, secret=keyring.reseal(_sealed(item["secret"]), _secret_context(sub_id))) for item in secrets],
        {name: keyring.reseal(_sealed(value), _header_context(sub_id, name)) for name, value in headers.items()},
    )


def seal_clear(secrets: list[dict[str, Any]], headers: Mapping[str, str], keyring: Keyring, sub_id: str):
    """Fields written by a version before sealing (clear values) sealed; sealed ones left as they are."""
    return (
        [
            dict(item, secret=item["secret"] if is_sealed(item["secret"]) else keyring.seal(item["secret"], _secret_context(sub_id)))
            for item in secrets
        ],
        {
            name: value if is_sealed(value) else keyring.seal(value, _header_context(sub_id, name))
            for name, value in headers.items()
        },
    )


def drop_expired(items: Sequence[Mapping[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """The sealed secrets still valid at ``now`` (expiry times are in clear: nothing to open)."""
    return [dict(i) for i in items if not i.get("expires_at") or now < parse_time(i["expires_at"])]


def _sealed(value: Any) -> str:
    if not is_sealed(value):
        raise SealedValueError("a secret or header value is stored in clear (run `hookstream secrets rotate-key`)")
    return value
