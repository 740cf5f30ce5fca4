"""Endpoint URL safety (SSRF): a webhook sender connects wherever its users tell it to.

``check_url`` is applied when a subscription's URL is saved: the syntax rules (https only unless
``HOOKSTREAM_ALLOW_HTTP=1``; no userinfo, fragment, odd characters or other schemes) and then
every address the host resolves to must pass ``check_address``. Saving is not enough, since DNS
can answer differently later (rebinding), so the delivery worker applies ``check_address`` to the
address it actually connects to.

Refused addresses (Svix's list): IPv4 0/8, 10/8, 100.64/10, 127/8, 169.254/16, 172.16/12,
192.0.0/24, 192.0.2/24, 192.168/16, 198.18/15, 198.51.100/24, 203.0.113/24, 224/4, 240/4 and
broadcast; IPv6 ::, ::1, fe80::/10, fec0::/10, fc00::/7, ff00::/8, 2001:db8::/32, 100::/64,
64:ff9b:1::/48, and the IPv4-mapped, IPv4-compatible, 6to4, NAT64 and Teredo forms of refused
IPv4 addresses; anything else Python's ``ipaddress`` does not call global. Networks listed in
``HOOKSTREAM_ALLOWED_NETWORKS`` are allowed whatever the list says (local setups, tests).

Hosts are read the way clients read them: ``2130706433``, ``0177.0.0.1``, ``0x7f.1`` and
``127.1`` are all 127.0.0.1 (``inet_aton`` rules, as getaddrinfo and browsers apply them), a
host whose last label is a number must be such an address, and ``localhost``/``*.localhost``
are loopback without asking DNS (RFC 6761; curl does the same).
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from hookstream.errors import ValidationError
from hookstream.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Iterable[str]]
MAX_URL_LENGTH = 2048


class Reason(enum.StrEnum):
    """Why a URL or address was refused (``UnsafeURLError.reason``)."""

    SCHEME = "scheme"
    HTTP_NOT_ALLOWED = "http_not_allowed"
    USERINFO = "userinfo"
    FRAGMENT = "fragment"
    EMPTY_HOST = "empty_host"
    MALFORMED = "malformed"
    PORT = "port"
    UNRESOLVABLE = "unresolvable"
    UNSPECIFIED = "unspecified"
    LOOPBACK = "loopback"
    PRIVATE = "private"
    CARRIER_GRADE_NAT = "carrier_grade_nat"
    LINK_LOCAL = "link_local"
    IETF_PROTOCOL = "ietf_protocol"
    DOCUMENTATION = "documentation"
    BENCHMARKING = "benchmarking"
    MULTICAST = "multicast"
    BROADCAST = "broadcast"
    RESERVED = "reserved"


class UnsafeURLError(ValidationError):
    """A URL or address a webhook must not be sent to. ``reason`` says which rule; ``form`` names
    the IPv6 encoding (``ipv4-mapped``, ``6to4``, ...) when a refused IPv4 address hid in one."""

    def __init__(
        self, reason: Reason, message: str, *, address: IPAddress | None = None, form: str | None = None, what: str = ""
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.address = address
        self.form = form
        self.what = what  # "a loopback address (127.0.0.0/8)", for messages built around it


_SSRF_HINT = "refused to prevent SSRF (HOOKSTREAM_ALLOWED_NETWORKS can allow a network)"


_N = ipaddress.ip_network
# Order matters only where networks nest: broadcast before 240/4.
_REFUSED_V4: tuple[tuple[ipaddress.IPv4Network, Reason], ...] = (
    (_N("255.255.255.255/32"), Reason.BROADCAST),
    (_N("0.0.0.0/8"), Reason.UNSPECIFIED),
    (_N("10.0.0.0/8"), Reason.PRIVATE),
    (_N("100.64.0.0/10"), Reason.CARRIER_GRADE_NAT),
    (_N("127.0.0.0/8"), Reason.LOOPBACK),
    (_N("169.254.0.0/16"), Reason.LINK_LOCAL),
    (_N("172.16.0.0/12"), Reason.PRIVATE),
    (_N("192.0.0.0/24"), Reason.IETF_PROTOCOL),
    (_N("192.0.2.0/24"), Reason.DOCUMENTATION),
    (_N("192.168.0.0/16"), Reason.PRIVATE),
    (_N("198.18.0.0/15"), Reason.BENCHMARKING),
    (_N("198.51.100.0/24"), Reason.DOCUMENTATION),
    (_N("203.0.113.0/24"), Reason.DOCUMENTATION),
    (_N("224.0.0.0/4"), Reason.MULTICAST),
    (_N("240.0.0.0/4"), Reason.RESERVED),
)
_REFUSED_V6: tuple[tuple[ipaddress.IPv6Network, Reason], ...] = (
    (_N("::/128"), Reason.UNSPECIFIED),
    (_N("::1/128"), Reason.LOOPBACK),
    (_N("fe80::/10"), Reason.LINK_LOCAL),
    (_N("fec0::/10"), Reason.PRIVATE),  # deprecated site-local
    (_N("fc00::/7"), Reason.PRIVATE),  # unique local
    (_N("ff00::/8"), Reason.MULTICAST),
    (_N("2001:db8::/32"), Reason.DOCUMENTATION),
    (_N("100::/64"), Reason.RESERVED),  # discard-only
    (_N("64:ff9b:1::/48"), Reason.PRIVATE),  # local-use NAT64 (RFC 8215)
)
_MAPPED = _N("::ffff:0:0/96")
_COMPATIBLE = _N("::/96")
_SIX_TO_FOUR = _N("2002::/16")
_NAT64 = _N("64:ff9b::/96")
_TEREDO = _N("2001::/32")


# ---------------------------------------------------------------------------- addresses
def check_address(ip: str | IPAddress, settings: Settings) -> IPAddress:
    """Raise ``UnsafeURLError`` unless a webhook may be sent to ``ip``; return it parsed.

    For the delivery worker: apply it to the peer address of the connection it opened.
    """
    try:
        addr = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    except ValueError:
        raise UnsafeURLError(Reason.MALFORMED, f"url: {ip!r} is not an IP address") from None
    if addr.version == 4:
        _check_v4(addr, settings, shown=str(addr), form=None)
    else:
        _check_v6(addr, settings)
    return addr


def _allowed(addr: IPAddress, settings: Settings) -> bool:
    return any(addr.version == net.version and addr in net for net in settings.allowed_networks)


def _refuse(reason: Reason, shown: str, net: object, addr: IPAddress, form: str | None, embedded: IPAddress | None = None) -> UnsafeURLError:
    what = f"a {reason.value.replace('_', '-')} address ({net})"
    if form:
        what = f"the {form} form of {embedded}, {what}"
    return UnsafeURLError(reason, f"url: {shown} is {what}; {_SSRF_HINT}", address=addr, form=form, what=what)


def _check_v4(addr: ipaddress.IPv4Address, settings: Settings, *, shown: str, form: str | None, outer: IPAddress | None = None) -> None:
    if _allowed(addr, settings) or (outer is not None and _allowed(outer, settings)):
        return
    for net, reason in _REFUSED_V4:
        if addr in net:
            raise _refuse(reason, shown, net, outer or addr, form, addr)
    if not addr.is_global:
        raise _refuse(Reason.RESERVED, shown, "not globally routable", outer or addr, form, addr)


def _embedded_v4(addr: ipaddress.IPv6Address) -> list[tuple[str, ipaddress.IPv4Address]]:
    """The IPv4 addresses an IPv6 address carries, with the name of the encoding."""
    if addr.ipv4_mapped is not None:
        return [("ipv4-mapped", addr.ipv4_mapped)]
    if addr in _COMPATIBLE:
        return [("ipv4-compatible", ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF))]
    if addr in _NAT64:
        return [("nat64", ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF))]
    if addr.sixtofour is not None:
        return [("6to4", addr.sixtofour)]
    if addr.teredo is not None:
        server, client = addr.teredo
        return [("teredo", client), ("teredo", server)]
    return []


def _check_v6(addr: ipaddress.IPv6Address, settings: Settings) -> None:
    if addr.scope_id:
        raise UnsafeURLError(Reason.MALFORMED, f"url: {addr} carries a zone id; refused", address=addr)
    if _allowed(addr, settings):
        return
    for net, reason in _REFUSED_V6:
        if addr in net:
            raise _refuse(reason, str(addr), net, addr, None)
    embedded = _embedded_v4(addr)
    if embedded:
        for form, v4 in embedded:
            _check_v4(v4, settings, shown=str(addr), form=form, outer=addr)
        return  # an encoding of acceptable IPv4 addresses is as good as they are
    if not addr.is_global:
        raise _refuse(Reason.RESERVED, str(addr), "not globally routable", addr, None)


# ---------------------------------------------------------------------------- URLs
@dataclasses.dataclass(frozen=True)
class CheckedURL:
    url: str
    scheme: str
    host: str  # ASCII (IDNA) form, lower case, no brackets
    port: int
    addresses: tuple[IPAddress, ...]


_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_DNS_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, as a client would look it up (getaddrinfo)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({info[4][0] for info in infos})


def check_url(url: str, settings: Settings, *, resolver: Resolver | None = None) -> CheckedURL:
    """Raise ``UnsafeURLError`` (a ``ValidationError``) naming the rule ``url`` breaks.

    The host is resolved (``resolver`` defaults to getaddrinfo) and every address it resolves to
    must pass ``check_address``; a host that does not resolve is refused too.
    """
    scheme, host, port, literal = _parse(url, settings)
    if literal is not None:
        return CheckedURL(url, scheme, host, port, (check_address(literal, settings),))
    if host == "localhost" or host.endswith(".localhost"):
        found: Iterable[str] = ("127.0.0.1", "::1")
    else:
        try:
            found = list((resolver or system_resolver)(host, port))
        except (OSError, UnicodeError) as exc:
            raise UnsafeURLError(Reason.UNRESOLVABLE, f"url: host {host!r} does not resolve ({_why(exc)})") from None
        if not found:
            raise UnsafeURLError(Reason.UNRESOLVABLE, f"url: host {host!r} resolves to no address")
    addresses = []
    for ip in found:
        try:
            addresses.append(check_address(ip, settings))
        except UnsafeURLError as exc:
            if not exc.what:
                raise
            raise UnsafeURLError(
                exc.reason, f"url: host {host!r} resolves to {exc.address}, {exc.what}; {_SSRF_HINT}",
                address=exc.address, form=exc.form, what=exc.what,
            ) from None
    return CheckedURL(url, scheme, host, port, tuple(addresses))


def _why(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__


def _parse(url: str, settings: Settings) -> tuple[str, str, int, IPAddress | None]:
    """Syntax rules; returns (scheme, ASCII host, port, the address when the host is a literal)."""
    def bad(reason: Reason, why: str) -> UnsafeURLError:
        return UnsafeURLError(reason, f"url: {why}")

    if not isinstance(url, str) or not url:
        raise bad(Reason.EMPTY_HOST, "a URL is required")
    if len(url) > MAX_URL_LENGTH:
        raise bad(Reason.MALFORMED, f"longer than {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise bad(Reason.MALFORMED, "contains whitespace or control characters")
    if "\\" in url:
        raise bad(Reason.MALFORMED, "contains a backslash (clients disagree on what it means)")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise bad(Reason.MALFORMED, f"cannot be parsed ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        shown = f"scheme {parts.scheme!r}" if parts.scheme else "no scheme"
        raise bad(Reason.SCHEME, f"{shown} is not allowed; use https://")
    if scheme == "http" and not settings.allow_http:
        raise bad(Reason.HTTP_NOT_ALLOWED, "http is not allowed, use https (HOOKSTREAM_ALLOW_HTTP=1 allows http)")
    if "@" in parts.netloc:
        raise bad(Reason.USERINFO, "credentials (user@ or user:password@) are not allowed in the URL")
    if "#" in url:
        raise bad(Reason.FRAGMENT, "a fragment (#...) is not allowed")
    if not parts.netloc or not parts.hostname:
        raise bad(Reason.EMPTY_HOST, "the host is empty")
    try:
        port = parts.port
    except ValueError:
        raise bad(Reason.PORT, "the port is not a number from 1 to 65535") from None
    if port == 0:
        raise bad(Reason.PORT, "the port is not a number from 1 to 65535")
    port = port or (443 if scheme == "https" else 80)
    host = parts.hostname
    if parts.netloc.rsplit("@", 1)[-1].startswith("["):
        try:
            return scheme, host, port, ipaddress.IPv6Address(host)
        except ValueError:
            raise bad(Reason.MALFORMED, f"[{host}] is not an IPv6 address") from None
    if "%" in host:
        raise bad(Reason.MALFORMED, "percent-encoding is not allowed in the host")
    try:
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise bad(Reason.MALFORMED, "the host is not a valid domain name") from None
    bare = ascii_host[:-1] if ascii_host.endswith(".") else ascii_host
    labels = bare.split(".")
    if labels and _NUMERIC_LABEL.match(labels[-1]):
        # Clients read such a host as an IPv4 address in inet_aton form (decimal, octal, hex, short).
        try:
            return scheme, bare, port, ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError:
            raise bad(Reason.MALFORMED, f"host {host!r} looks like an IPv4 address but is not one") from None
    if len(bare) > 253 or not all(_DNS_LABEL.match(label) for label in labels):
        raise bad(Reason.MALFORMED, f"host {host!r} is not a valid domain name")
    return scheme, bare, port, None
