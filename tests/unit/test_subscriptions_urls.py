"""SSRF: every hostile URL is refused with the rule it breaks; ordinary public endpoints pass."""

from __future__ import annotations

import ipaddress
import socket

import hypothesis
import pytest
from hypothesis import strategies as st

from hookstream.core.errors import ValidationError
from hookstream.core.settings import Settings
from hookstream.subscriptions.urls import (
    Reason,
    UnsafeURLError,
    check_address,
    check_client_agrees,
    check_url,
    client_host,
    parse_url,
)
from tests.idn_cases import IDN_CASES, PRIVATE_ANSWERS, FirstPublicThenPrivate

PUBLIC_V4 = "93.184.215.14"

FAKE_DNS: dict[str, list[str] | Exception] = {
    "hooks.example.com": [PUBLIC_V4],
    "dual.example.com": [PUBLIC_V4, "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
    "rebind.example.com": ["10.0.0.5"],
    "mixed.example.com": [PUBLIC_V4, "127.0.0.1"],
    "metadata.example.com": ["::ffff:169.254.169.254"],
    "nowhere.example.com": socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
    "empty.example.com": [],
}


def fake_resolver(host: str, port: int) -> list[str]:
    answer = FAKE_DNS[host]
    if isinstance(answer, Exception):
        raise answer
    return answer


S = Settings()
R = Reason

HOSTILE = [
    # schemes and syntax
    ("ftp://example.com/", R.SCHEME, None),
    ("file:///etc/passwd", R.SCHEME, None),
    ("gopher://example.com:70/", R.SCHEME, None),
    ("javascript:alert(1)", R.SCHEME, None),
    ("hooks.example.com/webhook", R.SCHEME, None),
    ("http://hooks.example.com/", R.HTTP_NOT_ALLOWED, None),
    ("https://user:pass@hooks.example.com/", R.USERINFO, None),
    ("https://user@hooks.example.com/", R.USERINFO, None),
    ("https://hooks.example.com@127.0.0.1/", R.USERINFO, None),
    ("https://hooks.example.com/#frag", R.FRAGMENT, None),
    ("https://hooks.example.com#@127.0.0.1/", R.FRAGMENT, None),
    ("https://", R.EMPTY_HOST, None),
    ("https:///path", R.EMPTY_HOST, None),
    ("https://:443/path", R.EMPTY_HOST, None),
    ("", R.EMPTY_HOST, None),
    ("https://hooks.example.com:0/", R.PORT, None),
    ("https://hooks.example.com:65536/", R.PORT, None),
    ("https://hooks.example.com:https/", R.PORT, None),
    ("https://hooks .example.com/", R.MALFORMED, None),
    ("https://hooks.example.com/\n", R.MALFORMED, None),
    ("https://hooks.example.com\\@127.0.0.1/", R.MALFORMED, None),
    ("https://%31%32%37.0.0.1/", R.MALFORMED, None),
    ("https://1.2.3.4.5/", R.MALFORMED, None),
    ("https://256.1.1.1/", R.MALFORMED, None),
    ("https://08.0.0.1/", R.MALFORMED, None),
    ("https://[fe80::1%25eth0]/", R.MALFORMED, None),
    ("https://[127.0.0.1]/", R.MALFORMED, None),
    ("https://" + "a" * 2100 + ".com/", R.MALFORMED, None),
    # refused IPv4 ranges
    ("https://0.0.0.0/", R.UNSPECIFIED, None),
    ("https://0.1.2.3/", R.UNSPECIFIED, None),
    ("https://10.0.0.1/", R.PRIVATE, None),
    ("https://172.16.0.1/", R.PRIVATE, None),
    ("https://172.31.255.254/", R.PRIVATE, None),
    ("https://192.168.1.1/", R.PRIVATE, None),
    ("https://100.64.0.1/", R.CARRIER_GRADE_NAT, None),
    ("https://100.127.255.254/", R.CARRIER_GRADE_NAT, None),
    ("https://127.0.0.1/", R.LOOPBACK, None),
    ("https://127.255.255.254:8443/x", R.LOOPBACK, None),
    ("https://169.254.169.254/latest/meta-data/", R.LINK_LOCAL, None),
    ("https://192.0.0.170/", R.IETF_PROTOCOL, None),
    ("https://192.0.2.10/", R.DOCUMENTATION, None),
    ("https://198.51.100.7/", R.DOCUMENTATION, None),
    ("https://203.0.113.9/", R.DOCUMENTATION, None),
    ("https://198.18.0.1/", R.BENCHMARKING, None),
    ("https://198.19.255.254/", R.BENCHMARKING, None),
    ("https://224.0.0.1/", R.MULTICAST, None),
    ("https://239.255.255.250/", R.MULTICAST, None),
    ("https://240.0.0.1/", R.RESERVED, None),
    ("https://255.255.255.255/", R.BROADCAST, None),
    # other encodings of IPv4 hosts, read the way clients read them
    ("https://2130706433/", R.LOOPBACK, None),
    ("https://0177.0.0.1/", R.LOOPBACK, None),
    ("https://0x7f.1/", R.LOOPBACK, None),
    ("https://127.1/", R.LOOPBACK, None),
    ("https://0x7f000001/", R.LOOPBACK, None),
    ("https://017700000001/", R.LOOPBACK, None),
    ("https://0x7F.0.0.0x1/", R.LOOPBACK, None),
    ("https://127.0.0.1./", R.LOOPBACK, None),
    ("https://\uff11\uff12\uff17.\uff10.\uff10.\uff11/", R.LOOPBACK, None),  # fullwidth digits
    ("https://0/", R.UNSPECIFIED, None),
    ("https://10.1/", R.PRIVATE, None),
    ("https://3232235777/", R.PRIVATE, None),  # 192.168.1.1
    ("https://0xa9.0xfe.0xa9.0xfe/", R.LINK_LOCAL, None),
    # refused IPv6 ranges
    ("https://[::1]/", R.LOOPBACK, None),
    ("https://[0:0:0:0:0:0:0:1]:8443/", R.LOOPBACK, None),
    ("https://[::]/", R.UNSPECIFIED, None),
    ("https://[fe80::1]/", R.LINK_LOCAL, None),
    ("https://[febf:ffff::1]/", R.LINK_LOCAL, None),
    ("https://[fc00::1]/", R.PRIVATE, None),
    ("https://[fd12:3456:789a::1]/", R.PRIVATE, None),
    ("https://[fec0::1]/", R.PRIVATE, None),
    ("https://[ff02::1]/", R.MULTICAST, None),
    ("https://[ff0e::1]/", R.MULTICAST, None),
    ("https://[2001:db8::1]/", R.DOCUMENTATION, None),
    ("https://[100::1]/", R.RESERVED, None),
    ("https://[64:ff9b:1::a]/", R.PRIVATE, None),
    # refused IPv4 addresses inside IPv6 encodings
    ("https://[::ffff:127.0.0.1]/", R.LOOPBACK, "ipv4-mapped"),
    ("https://[::ffff:7f00:1]/", R.LOOPBACK, "ipv4-mapped"),
    ("https://[::ffff:169.254.169.254]/", R.LINK_LOCAL, "ipv4-mapped"),
    ("https://[::ffff:10.0.0.1]/", R.PRIVATE, "ipv4-mapped"),
    ("https://[::127.0.0.1]/", R.LOOPBACK, "ipv4-compatible"),
    ("https://[::10.0.0.1]/", R.PRIVATE, "ipv4-compatible"),
    ("https://[2002:7f00:1::]/", R.LOOPBACK, "6to4"),
    ("https://[2002:a9fe:a9fe::1]/", R.LINK_LOCAL, "6to4"),
    ("https://[64:ff9b::127.0.0.1]/", R.LOOPBACK, "nat64"),
    ("https://[64:ff9b::a9fe:a9fe]/", R.LINK_LOCAL, "nat64"),
    ("https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", R.LOOPBACK, "teredo"),  # client 127.0.0.1
    ("https://[2001:0:a00:1::f7f7:f7f7]/", R.PRIVATE, "teredo"),  # server 10.0.0.1
    # names
    ("https://localhost/", R.LOOPBACK, None),
    ("https://LOCALHOST:8443/", R.LOOPBACK, None),
    ("https://api.localhost/", R.LOOPBACK, None),
    ("https://\u24dbocalhost/", R.LOOPBACK, None),  # circled l, IDNA-maps to localhost
    ("https://rebind.example.com/", R.PRIVATE, None),
    ("https://mixed.example.com/", R.LOOPBACK, None),
    ("https://metadata.example.com/", R.LINK_LOCAL, "ipv4-mapped"),
    ("https://nowhere.example.com/", R.UNRESOLVABLE, None),
    ("https://empty.example.com/", R.UNRESOLVABLE, None),
    ("https://bad_-.example-.com/", R.MALFORMED, None),
]


@pytest.mark.parametrize(("url", "reason", "form"), HOSTILE, ids=[u[:60] for u, _, _ in HOSTILE])
def test_hostile_url_is_refused_with_its_reason(url, reason, form):
    with pytest.raises(UnsafeURLError) as caught:
        check_url(url, S, resolver=fake_resolver)
    err = caught.value
    assert (err.reason, err.form) == (reason, form), str(err)
    assert isinstance(err, ValidationError)
    assert str(err).startswith("url: ") and "\n" not in str(err)


def test_refusal_message_names_the_address_family_and_the_way_out():
    with pytest.raises(UnsafeURLError) as caught:
        check_url("https://[::ffff:169.254.169.254]/", S)
    msg = str(caught.value)
    assert "ipv4-mapped form of 169.254.169.254" in msg
    assert "link-local" in msg and "HOOKSTREAM_ALLOWED_NETWORKS" in msg


def test_refusal_of_a_name_says_what_it_resolved_to():
    with pytest.raises(UnsafeURLError) as caught:
        check_url("https://rebind.example.com/", S, resolver=fake_resolver)
    assert "'rebind.example.com' resolves to 10.0.0.5, a private address (10.0.0.0/8)" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        (f"https://{PUBLIC_V4}/hooks", None),
        ("https://hooks.example.com/webhooks/in?source=hookstream", None),
        ("https://HOOKS.example.com:8443/x", "https://hooks.example.com:8443/x"),
        ("https://dual.example.com/", None),
        ("https://[2606:4700:4700::1111]/", None),
        ("https://[0:0:0:0:0:0:808:808]/", "https://[::808:808]/"),  # compatible form of a public address
        ("https://[2002:808:808::1]/", None),  # 6to4 of a public address
        ("https://[64:ff9b::808:808]/", None),  # NAT64 of a public address
        ("https://hooks.example.com:443", "https://hooks.example.com/"),
        ("https://hooks.example.com./in", "https://hooks.example.com/in"),
        ("https://hooks.example.com/caf\u00e9?q=\u00fc", "https://hooks.example.com/caf%C3%A9?q=%C3%BC"),
    ],
)
def test_public_https_endpoint_is_accepted_in_its_canonical_form(url, canonical):
    checked = check_url(url, S, resolver=fake_resolver)
    assert checked.url == (canonical or url)
    assert checked.addresses


def test_checked_url_reports_host_port_and_addresses():
    checked = check_url("https://HOOKS.example.com:8443/x", S, resolver=fake_resolver)
    assert (checked.scheme, checked.host, checked.port) == ("https", "hooks.example.com", 8443)
    assert checked.addresses == (ipaddress.ip_address(PUBLIC_V4),)


def test_http_is_accepted_only_when_allowed():
    allowed = Settings(allow_http=True)
    assert check_url("http://hooks.example.com/", allowed, resolver=fake_resolver).port == 80
    with pytest.raises(UnsafeURLError) as caught:
        check_url("http://hooks.example.com/", S, resolver=fake_resolver)
    assert "HOOKSTREAM_ALLOW_HTTP" in str(caught.value)


def test_allow_http_does_not_lift_the_address_rules():
    with pytest.raises(UnsafeURLError) as caught:
        check_url("http://127.0.0.1:8080/", Settings(allow_http=True))
    assert caught.value.reason == Reason.LOOPBACK


def test_allowed_networks_override_the_refusal():
    local = Settings(
        allow_http=True,
        allowed_networks=(ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"), ipaddress.ip_network("10.1.0.0/16")),
    )
    assert check_url("http://127.0.0.1:8080/hook", local).port == 8080
    assert check_url("http://localhost:8080/hook", local).host == "localhost"
    assert check_url("https://[::ffff:127.0.0.1]/", local)
    assert check_url("https://0x7f.1/", local)
    with pytest.raises(UnsafeURLError) as caught:
        check_url("https://10.2.0.1/", local)  # outside the allowed 10.1/16
    assert caught.value.reason == Reason.PRIVATE


def test_localhost_needs_both_loopback_families_allowed():
    only_v4 = Settings(allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),))
    with pytest.raises(UnsafeURLError) as caught:
        check_url("https://localhost/", only_v4)
    assert caught.value.address == ipaddress.ip_address("::1")


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", Reason.LOOPBACK),
        ("10.9.8.7", Reason.PRIVATE),
        ("169.254.169.254", Reason.LINK_LOCAL),
        ("::ffff:192.168.0.1", Reason.PRIVATE),
        ("fd00::1", Reason.PRIVATE),
        (ipaddress.ip_address("100.64.1.1"), Reason.CARRIER_GRADE_NAT),
        ("not-an-ip", Reason.MALFORMED),
    ],
)
def test_check_address_refuses_what_a_rebinding_dns_could_point_at(address, reason):
    with pytest.raises(UnsafeURLError) as caught:
        check_address(address, S)
    assert caught.value.reason == reason


def test_check_address_returns_the_parsed_public_address():
    assert check_address(PUBLIC_V4, S) == ipaddress.ip_address(PUBLIC_V4)
    assert check_address("2606:4700:4700::1111", S).version == 6


def test_check_address_honours_allowed_networks():
    local = Settings(allowed_networks=(ipaddress.ip_network("192.168.0.0/16"),))
    assert check_address("192.168.7.7", local) == ipaddress.ip_address("192.168.7.7")


# ---------------------------------------------------------------------------- internationalised names
@pytest.mark.parametrize(("private", "private_reason"), PRIVATE_ANSWERS)
@pytest.mark.parametrize(("host", "expected"), IDN_CASES, ids=[ascii(h)[1:-1] for h, _ in IDN_CASES])
def test_an_internationalised_host_is_stored_in_ascii_and_its_addresses_checked(host, expected, private, private_reason):
    dns = FirstPublicThenPrivate(PUBLIC_V4, private)
    if isinstance(expected, Reason):
        with pytest.raises(UnsafeURLError) as caught:
            check_url(f"https://{host}/in", S, resolver=dns)
        assert caught.value.reason == expected, str(caught.value)
        assert str(caught.value).startswith("url: ") and "\n" not in str(caught.value)
        assert dns.lookups == []  # refused before any DNS lookup
        return
    checked = check_url(f"https://{host}/in", S, resolver=dns)
    assert (checked.host, checked.url) == (expected, f"https://{expected}/in")
    assert checked.url.isascii()
    with pytest.raises(UnsafeURLError) as caught:  # the same name, rebound
        check_url(f"https://{host}/in", S, resolver=dns)
    assert caught.value.reason == private_reason
    assert dns.lookups == [expected, expected]  # only ever the ASCII name the client will use


def test_an_ambiguous_name_is_refused_naming_both_readings():
    with pytest.raises(UnsafeURLError) as caught:
        check_url("https://stra\u00dfe.example/", S, resolver=fake_resolver)
    msg = str(caught.value)
    assert "xn--strae-oqa.example" in msg and "strasse.example" in msg and "IDNA 2003" in msg


@pytest.mark.parametrize("host", [h for h, e in IDN_CASES if not isinstance(e, Reason)] + ["hooks.example.com", "127.0.0.1"])
def test_the_canonical_form_is_the_host_the_http_client_connects_to(host):
    parsed = parse_url(f"https://{host}/")
    assert client_host(parsed.url) == (parsed.host, 443)
    assert parse_url(parsed.url) == parsed  # canonical forms are fixed points


def test_a_url_the_client_reads_differently_is_refused():
    parsed = parse_url("https://hooks.example.com/")
    with pytest.raises(UnsafeURLError) as caught:
        check_client_agrees("https://other.example.com/", parsed)
    assert caught.value.reason == Reason.CLIENT_DISAGREES
    assert "other.example.com" in str(caught.value)


# ---------------------------------------------------------------------------- IANA special-purpose addresses
@pytest.mark.parametrize(
    ("address", "reason", "form"),
    [
        ("::ffff:0:a00:1", Reason.RESERVED, "ipv4-translated"),  # ::ffff:0:10.0.0.1
        ("::ffff:0:808:808", Reason.RESERVED, "ipv4-translated"),  # even of a public address
        ("::ffff:8.8.8.8", Reason.RESERVED, "ipv4-mapped"),  # IANA: not globally reachable, even of a public address
        ("::ffff:169.254.169.254", Reason.LINK_LOCAL, "ipv4-mapped"),  # the embedded address's reason first
        ("192.88.99.1", Reason.RESERVED, None),  # deprecated 6to4 relay anycast
        ("3fff::1", Reason.DOCUMENTATION, None),
        ("3fff:fff:ffff::1", Reason.DOCUMENTATION, None),
        ("5f00::1", Reason.RESERVED, None),  # SRv6 SIDs
        ("64:ff9b:1::a00:1", Reason.PRIVATE, None),  # local-use NAT64
        ("100:0:0:1::1", Reason.RESERVED, None),  # dummy prefix
        ("2001:2::1", Reason.BENCHMARKING, None),
        ("2001:10::1", Reason.RESERVED, None),  # deprecated ORCHID, via is_global
    ],
)
def test_special_purpose_addresses_are_refused(address, reason, form):
    with pytest.raises(UnsafeURLError) as caught:
        check_address(address, S)
    assert (caught.value.reason, caught.value.form) == (reason, form), str(caught.value)


@pytest.mark.parametrize("address", ["192.88.98.255", "192.88.100.1", "3fff:1000::1", "5eff::1", "2620:4f:8000::1"])
def test_neighbours_of_the_special_purpose_ranges_are_public(address):
    assert check_address(address, S) == ipaddress.ip_address(address)


# ---------------------------------------------------------------------------- ports
def test_any_port_is_allowed_by_default():
    assert check_url("https://hooks.example.com:9999/", S, resolver=fake_resolver).port == 9999


def test_allowed_ports_restrict_the_url_at_save_time():
    only = Settings.from_env({"HOOKSTREAM_ALLOWED_PORTS": "443,8000-8999"})
    assert check_url("https://hooks.example.com/", only, resolver=fake_resolver).port == 443
    assert check_url("https://hooks.example.com:8080/", only, resolver=fake_resolver).port == 8080
    for url in ("https://hooks.example.com:9000/", "https://93.184.215.14:22/"):
        with pytest.raises(UnsafeURLError) as caught:
            check_url(url, only, resolver=fake_resolver)
        assert caught.value.reason == Reason.PORT_NOT_ALLOWED
        assert "HOOKSTREAM_ALLOWED_PORTS=443,8000-8999" in str(caught.value)


def test_a_default_port_is_checked_too():
    only = Settings.from_env({"HOOKSTREAM_ALLOWED_PORTS": "8443", "HOOKSTREAM_ALLOW_HTTP": "1"})
    with pytest.raises(UnsafeURLError, match="port 80 is not allowed"):
        check_url("http://hooks.example.com/", only, resolver=fake_resolver)


@pytest.mark.parametrize(
    "url",
    [
        "https://user:s3cret@hooks.example.com/",
        "https://user:s3cret\uff03x@hooks.example.com/",  # urlsplit's own error would quote the netloc
        "https://user:s3cret\uff20hooks.example.com/",  # full-width @
    ],
)
def test_a_refusal_never_quotes_credentials(url):
    with pytest.raises(UnsafeURLError) as caught:
        check_url(url, S, resolver=fake_resolver)
    assert "s3cret" not in str(caught.value)


# Characters that trip IDNA up: deviations (ß ς ZWJ ZWNJ), dots of other scripts, case and
# compatibility mappings, right-to-left letters and digits, combining marks, invisible ones, emoji.
_TRICKY = "abz09-_.\u00fc\u00df\u03c2\u03c3\u03a3\u200d\u200c\u0627\u0644\u05d0\u0430\u0440\uff0e\u3002\uff61\u24db\uff21\u0301\ufb00\u0130\u01c5\u00ad\u0131\u0661\u06f1\u65e5\U0001f600\u2060\ufeff"


@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(
    label=st.text(alphabet=_TRICKY, min_size=1, max_size=12),
    suffix=st.sampled_from([".invalid", ".invalid.", "", ".\u0627\u0644"]),
)
def test_every_host_is_refused_cleanly_or_is_the_host_the_client_connects_to(label, suffix):
    url = f"https://{label}{suffix}/"
    try:
        parsed = parse_url(url)
    except UnsafeURLError as exc:
        assert str(exc).startswith("url: ") and "\n" not in str(exc)
        return
    assert parsed.url.isascii()
    assert client_host(url)[0].removesuffix(".") == parsed.host  # the raw URL, as an old subscription holds it
    assert parse_url(parsed.url) == parsed
