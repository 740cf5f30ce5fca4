"""Internationalised host names and a rebinding DNS: shared by the save-time check's tests
(tests/unit/test_subscriptions_urls.py) and the connect-time pin's (tests/unit/test_delivery_transport.py).

Names end in ``.invalid`` (RFC 6761): nothing but the fakes can resolve them, so a request that
reaches a test server went through the pin, never through the client's own DNS.
"""

from __future__ import annotations

from hookstream.subscriptions.urls import Reason

# (host as given, its canonical ASCII form or the Reason it is refused for). Shared with
# tests/unit/test_delivery_transport.py, which checks the connect-time pin against the same cases.
IDN_CASES: list[tuple[str, str | Reason]] = [
    ("b\u00fccher.invalid", "xn--bcher-kva.invalid"),
    ("B\u00dcCHER.Invalid", "xn--bcher-kva.invalid"),  # uppercase
    ("b\u00fccher.invalid.", "xn--bcher-kva.invalid"),  # trailing dot
    ("b\u00fccher\uff0einvalid", "xn--bcher-kva.invalid"),  # full-width full stop U+FF0E
    ("b\u00fccher\u3002invalid", "xn--bcher-kva.invalid"),  # ideographic full stop U+3002
    ("b\u00fccher\uff61invalid", "xn--bcher-kva.invalid"),  # halfwidth ideographic full stop U+FF61
    ("xn--bcher-kva.invalid", "xn--bcher-kva.invalid"),  # punycode given directly
    ("XN--BCHER-KVA.INVALID", "xn--bcher-kva.invalid"),
    ("xn--strae-oqa.invalid", "xn--strae-oqa.invalid"),  # straße, given unambiguously as ASCII
    ("\u03a3\u039f\u03a6\u039f\u03a3.invalid", "xn--0xaakcn.invalid"),  # ΣΟΦΟΣ: both standards agree
    ("\u0440\u0430\u0443\u0440\u0430l.invalid", "xn--l-7sba6dbr.invalid"),  # mixed Cyrillic + Latin: stored as punycode
    ("\u0627\u0644\u0639\u0631\u0628\u064a\u0629.invalid", "xn--mgbcd4a2b0d2b.invalid"),  # right-to-left label
    ("stra\u00dfe.invalid", Reason.IDNA_AMBIGUOUS),  # ß: strasse under IDNA 2003
    ("\u03c3\u03bf\u03c6\u03bf\u03c2.invalid", Reason.IDNA_AMBIGUOUS),  # final sigma ς
    ("\u0646\u0627\u0645\u0647\u200c\u0627\u06cc.invalid", Reason.IDNA_AMBIGUOUS),  # ZWNJ where IDNA 2008 allows it
    ("a\u200db.invalid", Reason.MALFORMED),  # ZWJ out of context
    ("a\u200cb.invalid", Reason.MALFORMED),  # ZWNJ out of context
    ("xn--zz.invalid", Reason.MALFORMED),  # not punycode
    ("xn--.invalid", Reason.MALFORMED),
    ("xn--a.invalid", Reason.MALFORMED),  # decodes to a control character
    ("\U0001f4a9.invalid", Reason.MALFORMED),  # emoji: not IDNA 2008
    ("xn--ls8h.invalid", Reason.MALFORMED),  # the same emoji as punycode
    ("a\u0627.invalid", Reason.MALFORMED),  # bidi: right-to-left character in a left-to-right label
    ("1a.\u0627\u0644\u0639\u0631\u0628\u064a\u0629", Reason.MALFORMED),  # bidi rule across the name
    ("b\u00fccher..invalid", Reason.MALFORMED),  # empty label
    ("a..\u0627\u0644\u0639\u0631\u0628\u064a\u0629", Reason.MALFORMED),  # empty label in a right-to-left name
]


class FirstPublicThenPrivate:
    """A rebinding DNS: the first lookup of a name answers a public address, later ones ``private``."""

    def __init__(self, public: str, private: str) -> None:
        self.public, self.private = public, private
        self.lookups: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        return [self.public if self.lookups.count(host) == 1 else self.private]


PRIVATE_ANSWERS = [("169.254.169.254", Reason.LINK_LOCAL), ("10.0.0.1", Reason.PRIVATE), ("::ffff:0:a00:1", Reason.RESERVED)]
