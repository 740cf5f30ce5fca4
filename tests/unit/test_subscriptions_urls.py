"""SSRF: every hostile URL is refused with the rule it breaks; ordinary public endpoints pass."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from hookstream.errors import ValidationError
from hookstream.settings import Settings
from hookstream.subscriptions.urls import Reason, UnsafeURLError, check_address, check_url

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
    "url",
    [
        f"https://{PUBLIC_V4}/hooks",
        "https://hooks.example.com/webhooks/in?source=hookstream",
        "https://HOOKS.example.com:8443/x",
        "https://dual.example.com/",
        "https://[2606:4700:4700::1111]/",
        "https://[::ffff:8.8.8.8]/",  # mapped form of a public address
        "https://[2002:808:808::1]/",  # 6to4 of a public address
        "https://[64:ff9b::808:808]/",  # NAT64 of a public address
    ],
)
def test_public_https_endpoint_is_accepted(url):
    checked = check_url(url, S, resolver=fake_resolver)
    assert checked.url == url
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
