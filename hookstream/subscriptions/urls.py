"""Endpoint URL safety (SSRF): a webhook sender connects wherever its users tell it to.

``check_url`` is applied when a subscription's URL is saved: the syntax rules (https only unless
``HOOKSTREAM_ALLOW_HTTP=1``; no userinfo, fragment, odd characters or other schemes; the port
within ``HOOKSTREAM_ALLOWED_PORTS``) and then every address the host resolves to must pass
``check_address``. Its ``url`` is the canonical form to store (``parse_url``). Saving is not
enough, since DNS can answer differently later (rebinding), so the delivery worker applies
``check_address`` to the address it actually connects to.

Refused addresses (Svix's list and the IANA special-purpose registries): IPv4 0/8, 10/8,
100.64/10, 127/8, 169.254/16, 172.16/12, 192.0.0/24, 192.0.2/24, 192.88.99/24, 192.168/16,
198.18/15, 198.51.100/24, 203.0.113/24, 224/4, 240/4 and broadcast; IPv6 ::, ::1, fe80::/10,
fec0::/10, fc00::/7, ff00::/8, 2001:db8::/32, 3fff::/20, 100::/64, 100:0:0:1::/64,
64:ff9b:1::/48, 5f00::/16, 2001:2::/48, ::ffff:0:0/96 (IPv4-mapped) and ::ffff:0:0:0/96
(IPv4-translated) whole, and the IPv4-compatible, 6to4, NAT64 and Teredo forms of refused IPv4
addresses; anything else Python's
``ipaddress`` does not call global (the rest of 2001::/23). Networks listed in
``HOOKSTREAM_ALLOWED_NETWORKS`` are allowed whatever the list says (local setups, tests).

Hosts are read the way clients read them: ``2130706433``, ``0177.0.0.1``, ``0x7f.1`` and
``127.1`` are all 127.0.0.1 (``inet_aton`` rules, as getaddrinfo and browsers apply them), a
host whose last label is a number must be such an address, and ``localhost``/``*.localhost``
are loopback without asking DNS (RFC 6761; curl does the same).

Internationalised names: the delivery client (pyreqwest, Rust's ``url`` crate, like browsers)
maps a host with UTS-46, non-transitional, and looks up the ASCII result. Python's own ``idna``
codec (used by ``str.encode("idna")`` and by ``getaddrinfo`` given a str) is IDNA 2003 and maps
some names to *another* domain (``straße`` -> ``strasse``, not ``xn--strae-oqa``). So hosts are
canonicalised with the ``idna`` package (UTS-46 + IDNA 2008), names the two standards read
differently are refused (``Reason.IDNA_AMBIGUOUS``), and ``check_client_agrees`` parses the URL
with the client's own parser and refuses it unless the client lands on the very host checked.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import re
import socket
import unicodedata
from collections.abc import Callable, Iterable
from urllib.parse import quote, urlsplit

import idna

from hookstream.core.errors import ValidationError
from hookstream.core.settings import Settings, format_port_ranges

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
    IDNA_AMBIGUOUS = "idna_ambiguous"  # IDNA 2003 and IDNA 2008 clients read the name as different domains
    CLIENT_DISAGREES = "client_disagrees"  # the HTTP client would connect to another host than the one checked
    PORT = "port"
    PORT_NOT_ALLOWED = "port_not_allowed"
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
    (_N("192.88.99.0/24"), Reason.RESERVED),  # deprecated 6to4 relay anycast (RFC 7526)
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
    (_N("3fff::/20"), Reason.DOCUMENTATION),  # RFC 9637
    (_N("100::/64"), Reason.RESERVED),  # discard-only
    (_N("100:0:0:1::/64"), Reason.RESERVED),  # dummy prefix (RFC 9780)
    (_N("64:ff9b:1::/48"), Reason.PRIVATE),  # local-use NAT64 (RFC 8215)
    (_N("5f00::/16"), Reason.RESERVED),  # SRv6 SIDs (RFC 9602)
    (_N("2001:2::/48"), Reason.BENCHMARKING),
)
_MAPPED = _N("::ffff:0:0/96")
# IPv4-translated (SIIT, RFC 2765): ::ffff:0:a.b.c.d is not the mapped form and Python's ipaddress
# calls it global, but a translator carries it to a.b.c.d. Nothing public uses it: refused whole.
_TRANSLATED = _N("::ffff:0:0:0/96")
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
    if addr in _TRANSLATED:
        v4 = ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
        raise _refuse(Reason.RESERVED, str(addr), _TRANSLATED, addr, "ipv4-translated", v4)
    for net, reason in _REFUSED_V6:
        if addr in net:
            raise _refuse(reason, str(addr), net, addr, None)
    embedded = _embedded_v4(addr)
    if embedded:
        for form, v4 in embedded:
            _check_v4(v4, settings, shown=str(addr), form=form, outer=addr)
        v4 = embedded[0][1]
        if addr in _MAPPED and not _allowed(v4, settings):
            # IANA: not globally reachable. A socket given it connects to v4 over IPv4, so even a
            # public one is refused: the endpoint can use v4 itself.
            raise _refuse(Reason.RESERVED, str(addr), _MAPPED, addr, "ipv4-mapped", v4)
        return  # an encoding of acceptable IPv4 addresses is as good as they are
    if not addr.is_global:
        raise _refuse(Reason.RESERVED, str(addr), "not globally routable", addr, None)


# ---------------------------------------------------------------------------- ports
def check_port(port: int, settings: Settings) -> None:
    """Raise ``UnsafeURLError`` unless ``HOOKSTREAM_ALLOWED_PORTS`` (empty: any port) allows ``port``."""
    ranges = settings.allowed_ports
    if ranges and not any(low <= port <= high for low, high in ranges):
        raise UnsafeURLError(
            Reason.PORT_NOT_ALLOWED, f"url: port {port} is not allowed (HOOKSTREAM_ALLOWED_PORTS={format_port_ranges(ranges)})"
        )


# ---------------------------------------------------------------------------- URLs
@dataclasses.dataclass(frozen=True)
class ParsedURL:
    """A URL that passed the syntax rules, in its canonical form (what is stored and delivered to)."""

    url: str  # canonical: ASCII host, lower case, no trailing dot, no default port, non-ASCII path percent-encoded
    scheme: str
    host: str  # ASCII (UTS-46) form, lower case, no brackets, no trailing dot
    port: int
    literal: IPAddress | None  # the address when the host is one


@dataclasses.dataclass(frozen=True)
class CheckedURL:
    url: str  # the canonical form (``ParsedURL.url``): store this, not what was given
    scheme: str
    host: str  # ASCII (IDNA) form, lower case, no brackets
    port: int
    addresses: tuple[IPAddress, ...]


_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_DNS_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")  # \s is str.isspace() for str patterns


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, as a client would look it up (getaddrinfo)."""
    # ASCII only: given a str, getaddrinfo would apply Python's IDNA 2003 codec, not UTS-46
    infos = socket.getaddrinfo(host.encode("ascii"), port, type=socket.SOCK_STREAM)
    return sorted({info[4][0] for info in infos})


def check_url(url: str, settings: Settings, *, resolver: Resolver | None = None) -> CheckedURL:
    """Raise ``UnsafeURLError`` (a ``ValidationError``) naming the rule ``url`` breaks.

    The host is resolved (``resolver`` defaults to getaddrinfo) and every address it resolves to
    must pass ``check_address``; a host that does not resolve is refused too. The result's ``url``
    is the canonical form, the one to store.
    """
    parsed = parse_url(url)
    if parsed.scheme == "http" and not settings.allow_http:
        raise UnsafeURLError(Reason.HTTP_NOT_ALLOWED, "url: http is not allowed, use https (HOOKSTREAM_ALLOW_HTTP=1 allows http)")
    check_port(parsed.port, settings)
    scheme, host, port = parsed.scheme, parsed.host, parsed.port
    if parsed.literal is not None:
        return CheckedURL(parsed.url, scheme, host, port, (check_address(parsed.literal, settings),))
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
    return CheckedURL(parsed.url, scheme, host, port, tuple(addresses))


def _why(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__


def canonical_url(url: str) -> str:
    """``url`` in its canonical form, or as it is when it no longer passes the syntax rules."""
    try:
        return parse_url(url).url
    except UnsafeURLError:
        return url


def parse_url(url: str) -> ParsedURL:
    """The syntax rules (no settings, no DNS) and the canonical form of ``url``.

    The canonical host is what the HTTP client connects to, and ``client_host`` confirms it with
    the client's own parser: a URL on which the two disagree is refused.
    """
    def bad(reason: Reason, why: str) -> UnsafeURLError:
        return UnsafeURLError(reason, f"url: {why}")

    if not isinstance(url, str) or not url:
        raise bad(Reason.EMPTY_HOST, "a URL is required")
    if len(url) > MAX_URL_LENGTH:
        raise bad(Reason.MALFORMED, f"longer than {MAX_URL_LENGTH} characters")
    if _SPACE_OR_CONTROL.search(url):
        raise bad(Reason.MALFORMED, "contains whitespace or control characters")
    if "\\" in url:
        raise bad(Reason.MALFORMED, "contains a backslash (clients disagree on what it means)")
    try:
        parts = urlsplit(url)
    except ValueError:
        # not urlsplit's message: it can quote the netloc, credentials included
        raise bad(Reason.MALFORMED, "cannot be parsed (a malformed [IPv6] host, or a host with characters "
                                    "that normalise to /, ?, #, @ or :)") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        shown = f"scheme {parts.scheme!r}" if parts.scheme else "no scheme"
        raise bad(Reason.SCHEME, f"{shown} is not allowed; use https://")
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
    default_port = 443 if scheme == "https" else 80
    port = port or default_port
    host, literal = _parse_host(parts.hostname, bracketed=parts.netloc.startswith("["))
    netloc = f"[{host}]" if literal is not None and literal.version == 6 else host
    if port != default_port:
        netloc += f":{port}"
    # non-ASCII in the path and query percent-encoded (UTF-8), as the client would send them
    path = _NON_ASCII.sub(lambda m: quote(m.group()), parts.path) or "/"
    query = "?" + _NON_ASCII.sub(lambda m: quote(m.group()), parts.query) if parts.query else ""
    parsed = ParsedURL(f"{scheme}://{netloc}{path}{query}", scheme, host, port, literal)
    check_client_agrees(parsed.url, parsed)
    return parsed


def _parse_host(host: str, *, bracketed: bool) -> tuple[str, IPAddress | None]:
    """(canonical host, the address when it is one) of a URL's host, as clients read it."""
    if bracketed:
        try:
            addr = ipaddress.IPv6Address(host)
        except ValueError:
            raise UnsafeURLError(Reason.MALFORMED, f"url: [{host}] is not an IPv6 address") from None
        if addr.scope_id:
            raise UnsafeURLError(Reason.MALFORMED, f"url: {addr} carries a zone id; refused", address=addr)
        return str(addr), addr
    if "%" in host:
        raise UnsafeURLError(Reason.MALFORMED, "url: percent-encoding is not allowed in the host")
    ascii_host = canonical_domain(host)
    labels = ascii_host.split(".")
    if _NUMERIC_LABEL.match(labels[-1]):
        # Clients read such a host as an IPv4 address in inet_aton form (decimal, octal, hex, short).
        try:
            addr4 = ipaddress.IPv4Address(socket.inet_aton(ascii_host))
        except OSError:
            raise UnsafeURLError(Reason.MALFORMED, f"url: host {host!r} looks like an IPv4 address but is not one") from None
        return str(addr4), addr4
    if len(ascii_host) > 253 or not all(_DNS_LABEL.match(label) for label in labels):
        raise UnsafeURLError(Reason.MALFORMED, f"url: host {host!r} is not a valid domain name")
    return ascii_host, None


def canonical_domain(host: str) -> str:
    """The ASCII form of a domain name as WHATWG URL parsers and the delivery client (Rust's ``url``)
    map it: UTS-46, non-transitional; lower case, without the trailing dot.

    Stricter than those parsers: labels must be valid IDNA 2008 (no emoji or symbols), the bidi rule
    holds across the name, and a name IDNA 2003 maps to another domain (``ß``, final ``ς``, ZWJ,
    ZWNJ: Python's ``idna`` codec, older clients) is refused as ambiguous.
    """
    if host.isascii() and "xn--" not in host.lower():
        return host.lower().removesuffix(".")  # plain names (nearly all) need no IDNA work

    def bad(reason: Reason, why: str) -> UnsafeURLError:
        return UnsafeURLError(reason, f"url: host {host!r} {why}")

    try:
        labels = idna.uts46_remap(host, std3_rules=False, transitional=False).removesuffix(".").split(".")
        if "" in labels:
            raise bad(Reason.MALFORMED, "is not a valid domain name (an empty label)")
        ascii_labels = [
            label if label.isascii() and not label.startswith("xn--") else idna.alabel(label).decode("ascii")
            for label in labels
        ]
        unicode_labels = [idna.ulabel(label) if label.startswith("xn--") else label for label in ascii_labels]
        if any(unicodedata.bidirectional(c) in ("R", "AL", "AN") for label in unicode_labels for c in label):
            for label in unicode_labels:  # RFC 5893: in a name with a right-to-left label, every label
                idna.check_bidi(label, check_ltr=True)
    except ValueError as exc:  # idna.IDNAError is a UnicodeError, a ValueError
        raise bad(Reason.MALFORMED, f"is not a valid internationalised domain name ({exc})") from None
    canonical = ".".join(ascii_labels)
    legacy = _idna2003(host)
    if legacy is not None and legacy != canonical:
        raise bad(
            Reason.IDNA_AMBIGUOUS,
            f"is {canonical} under IDNA 2008 (browsers, the delivery client) but {legacy} under IDNA 2003; "
            "refused as ambiguous: give the ASCII (xn--) form of the domain you mean",
        )
    return canonical


def _idna2003(host: str) -> str | None:
    if host.isascii():
        return host.lower().removesuffix(".")
    try:
        return host.encode("idna").decode("ascii").lower().removesuffix(".")
    except UnicodeError:
        return None  # not a name under IDNA 2003 at all: no other domain it could mean


def client_host(url: str) -> tuple[str, int]:
    """(host, port) the HTTP client (pyreqwest: Rust's ``url`` crate) will connect to for ``url``.

    The host exactly as the client looks it up (a trailing dot kept, IPv6 without brackets).
    """
    from pyreqwest.http import Url  # the client's own parser

    try:
        parsed = Url(url)
    except ValueError as exc:
        raise UnsafeURLError(Reason.CLIENT_DISAGREES, f"url: the HTTP client cannot parse it ({exc})") from None
    host = parsed.host_str or ""
    return (host[1:-1] if host.startswith("[") else host), parsed.port_or_known_default or 0


def check_client_agrees(url: str, parsed: ParsedURL) -> tuple[str, int]:
    """Raise unless the client would connect ``url`` to ``parsed``'s host and port; return its (host, port)."""
    host, port = client_host(url)
    if parsed.literal is not None:
        try:
            same = ipaddress.ip_address(host) == parsed.literal
        except ValueError:
            same = False
    else:
        same = host.removesuffix(".") == parsed.host
    if not same or port != parsed.port:
        raise UnsafeURLError(
            Reason.CLIENT_DISAGREES,
            f"url: the HTTP client would connect to {host}:{port}, not to the checked {parsed.host}:{parsed.port}; refused",
        )
    return host, port
