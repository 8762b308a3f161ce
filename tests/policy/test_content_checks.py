"""Content checks: sensitive data and misleading subjects, true and false positives, and the
tenant's action within the operator's floor."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.directory import settings
from gateway.directory.records import Principal, Tenant
from gateway.errors import InvalidValue
from gateway.policy import sensitive
from gateway.policy.check import PolicyContext, Transaction
from gateway.policy.message import Message
from gateway.policy.misleading_subject import MisleadingSubject
from gateway.policy.readable import html_text
from gateway.policy.sensitive_data import SensitiveData
from gateway.policy.verdict import Action
from gateway.protocol import replies
from tests.support.config import load

PRINCIPAL = Principal(1, "campaign", 1, "password")
FIXTURES = sorted((Path(__file__).parents[1] / "fixtures" / "html").glob("*.html"))


def config(**env: str):
    return load(**env)


def tx(body: str, subject: str = "Quarterly note", html: bool = False,
       headers: str = "", tenant_settings: dict | None = None) -> Transaction:
    kind = "html" if html else "plain"
    raw = (f"From: a@acme.example\r\nTo: b@example.org\r\nSubject: {subject}\r\n{headers}"
           f"MIME-Version: 1.0\r\nContent-Type: text/{kind}; charset=utf-8\r\n\r\n{body}\r\n")
    tenant = Tenant(1, "acme", "active", "", tenant_settings or {})
    return Transaction(PRINCIPAL, tenant, "a@acme.example", message=Message(raw.encode()))


async def run(check_cls, t: Transaction, **env: str):
    return await check_cls(PolicyContext(config(**env), None, None)).check(t)  # type: ignore[arg-type]


@pytest.mark.parametrize("text, kind", [
    ("Your card 4111 1111 1111 1111 was charged", "payment card number"),
    ("card: 5500-0000-0000-0004", "payment card number"),
    ("amex 378282246310005", "payment card number"),
    ("SSN 078-05-1120 on file", "US social security number"),
    ("Pay to GB82 WEST 1234 5698 7654 32", "IBAN"),
    ("IBAN: DE89370400440532013000", "IBAN"),
    ("aws AKIAIOSFODNN7EXAMPLE", "aws-access-key"),
    ("token ghp_" + "a1B2" * 9, "github-token"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIE", "private-key"),
])
def test_true_positives(text, kind):
    assert kind in sensitive.find(text)


@pytest.mark.parametrize("text", [
    "order 4111 1111 1111 1112",  # fails Luhn
    "ref 1234567890123452",  # passes Luhn, no issuer prefix
    "https://tracker.example/c/4111111111111111/open",  # inside a URL
    "SSN 666-12-3456 and 900-12-3456 and 123-00-4567",  # invalid ranges
    "call 555-123-4567 or 0800 123 456 789",
    "GB82 WEST 1234 5698 7654 33",  # bad mod-97
    "AKIA is not a key, neither is AKIAshort",
])
def test_false_positives_pass(text):
    assert sensitive.find(text) == []


def test_digits_in_html_attributes_are_not_text():
    markup = ('<a href="https://x.example/?id=4111111111111111" data-id="4111111111111111">'
              'Hi</a><img src="/i/5500000000000004.png">')
    assert sensitive.find(html_text(markup)) == []


def test_zero_holds_over_the_template_corpus():
    assert len(FIXTURES) >= 20
    for path in FIXTURES:
        assert sensitive.find(html_text(path.read_text())) == [], path.name


async def test_the_check_holds_by_default_and_names_kind_and_place_never_value():
    verdict = await run(SensitiveData, tx("<p>Card 4111 1111 1111 1111</p>", html=True))
    assert verdict.action is Action.HOLD
    assert verdict.reason == "payment card number in text/html part 0"
    assert "4111" not in verdict.reason
    in_subject = await run(SensitiveData, tx("hello", subject="SSN 078-05-1120"))
    assert in_subject.reason == "US social security number in Subject"


async def test_tenant_action_within_the_operators_floor():
    card = "Card 4111 1111 1111 1111"
    reject = await run(SensitiveData, tx(card, tenant_settings={"sensitive_data": "reject"}))
    assert reject.action is Action.REJECT and reject.reply == replies.SENSITIVE_DATA
    off = await run(SensitiveData, tx(card, tenant_settings={"sensitive_data": "off"}))
    assert off.action is Action.PASS
    floored = await run(SensitiveData, tx(card, tenant_settings={"sensitive_data": "off"}),
                        GATEWAY__POLICY__SENSITIVE_DATA__FLOOR='"hold"')
    assert floored.action is Action.HOLD  # a setting made before the floor rose
    with pytest.raises(InvalidValue, match="requires at least 'hold'"):
        settings.parse("sensitive_data", "off",
                       config(GATEWAY__POLICY__SENSITIVE_DATA__FLOOR='"hold"'))


@pytest.mark.parametrize("subject, headers, body, held", [
    ("Re: our call", "", "Hi", True),
    ("RE: our call", "In-Reply-To: <1@x.example>\r\n", "Hi", False),
    ("Fwd: pricing", "", "Hi", True),
    ("AW: Angebot", "", "Hallo", True),  # German reply
    ("TR: devis", "", "Bonjour", True),  # French forward
    ("RV: propuesta", "References: <1@x.example>\r\n", "Hola", False),
    ("Hello {{first_name}}", "", "Hi", True),
    ("Quick question", "", "Hi %FIRSTNAME%, how are you?", True),
    ("Quick question", "", "Hi [First Name],", True),
    ("Quick question", "", "Hi *|FNAME|*,", True),
    ("Regarding our call", "", "Hi Anna, 100% agreed {not a tag}.", False),
    ("Report: Q3 numbers", "", "Hi", False),  # "Report:" is no reply marker
])
async def test_misleading_subject(subject, headers, body, held):
    verdict = await run(MisleadingSubject, tx(body, subject=subject, headers=headers))
    assert (verdict.action is Action.HOLD) is held, verdict.reason


class _Directory:
    """The one directory answer this check needs: which domains are verified."""

    def __init__(self, verified: set[str]) -> None:
        self._verified = verified

    def domain_verified(self, domain: str) -> bool:
        return domain in self._verified


async def aligned(raw_from: str, *, envelope: str = "sales@acme.example", headers: str = "",
                  subject: str = "Hello", verified: frozenset[str] = frozenset({"acme.example"}),
                  tenant_settings: dict | None = None, **env: str):
    raw = (f"From: {raw_from}\r\nTo: b@example.org\r\nSubject: {subject}\r\n{headers}"
           "\r\nHi\r\n")
    tenant = Tenant(1, "acme", "active", "", tenant_settings or {})
    t = Transaction(PRINCIPAL, tenant, envelope, message=Message(raw.encode()))
    from gateway.policy.identity_alignment import IdentityAlignment

    ctx = PolicyContext(config(**env), _Directory(set(verified)), None)  # type: ignore[arg-type]
    return await IdentityAlignment(ctx).check(t)


@pytest.mark.parametrize("raw_from, kw, problem", [
    ("Sales <sales@acme.example>", {}, None),
    ("Acme News <news@news.acme.example>", {"verified": frozenset({"news.acme.example"})},
     None),  # a subdomain aligns with its organisational domain
    ("Sales <sales@acme.example>", {"verified": frozenset()}, "not verified"),
    ('"support@paypal.com" <sales@acme.example>', {}, "display name shows another domain"),
    ("PayPal.com Support <sales@acme.example>", {}, "display name shows another domain"),
    ("acme.example team <sales@acme.example>", {}, None),  # its own domain is fine
    ("Sales <sales@acme.example>", {"headers": "Reply-To: x@elsewhere.example\r\n"},
     "Reply-To is outside"),
    ("Sales <sales@acme.example>", {"headers": "Reply-To: help@support.acme.example\r\n"}, None),
    ("Sales <sales@acme.example>", {"envelope": "bounce@other.example"}, "envelope sender"),
    ("Sales <sales@acme.example>", {"headers": "Sender: x@elsewhere.example\r\n"},
     "Sender is outside"),
    ("Sales <sales@acme.example>", {"headers": "Sender: Ops <ops@mail.acme.example>\r\n"},
     None),
    ("Sales <sales@acme.example>", {"headers": "Resent-From: x@elsewhere.example\r\n"},
     "Resent-From is outside"),
    ("Sales <sales@acme.example>",
     {"headers": "Resent-Sender: ops@acme.example\r\nResent-Sender: x@elsewhere.example\r\n"},
     "Resent-Sender is outside"),  # every occurrence, not only the first
    ("Sales <sales@acme.example>",
     {"headers": "Reply-To: a@acme.example, b@elsewhere.example\r\n"}, "Reply-To is outside"),
    ("Sales <sales@acme.example>", {"headers": "Sender: not an address\r\n"},
     "Sender is outside"),
    ("Sales <sales@acme.example>",
     {"headers": "Reply-To: =?utf-8?q?x?= <x@elsewhere.example>\r\n"}, "Reply-To is outside"),
    ("Sales <sales@acme.example>", {"subject": "Invoice \u202egpj.exe"}, "bidirectional"),
    ("=?utf-8?b?U2FsZXPigK4=?= <sales@acme.example>", {}, "bidirectional"),
])
async def test_identity_alignment(raw_from, kw, problem):
    verdict = await aligned(raw_from, **kw)
    if problem is None:
        assert verdict.action is Action.PASS, verdict.reason
    else:
        assert verdict.action is Action.REJECT and problem in verdict.reason
        assert verdict.reply == replies.IDENTITY_MISALIGNED


async def test_a_tenant_can_hold_but_never_switch_alignment_off():
    bad = "Sales <sales@acme.example>"
    held = await aligned(bad, verified=frozenset(), tenant_settings={
        "identity_alignment": "hold"})
    assert held.action is Action.HOLD
    still = await aligned(bad, verified=frozenset(), tenant_settings={
        "identity_alignment": "off"})
    assert still.action is Action.REJECT
    with pytest.raises(InvalidValue, match="only the operator"):
        settings.parse("identity_alignment", "off", config())
    operator_off = await aligned(bad, verified=frozenset(),
                                 GATEWAY__POLICY__IDENTITY_ALIGNMENT__ACTION='"off"')
    assert operator_off.action is Action.PASS


@pytest.mark.parametrize("subject, check_cls, reason", [
    # RFC 2047 hides nothing from the checks: they read the Subject a mail client shows
    ("=?utf-8?b?Q2FyZCA0MTExIDExMTEgMTExMSAxMTEx?=", SensitiveData, "payment card number"),
    ("=?utf-8?q?Card_4111_1111_1111_1111?=", SensitiveData, "payment card number"),
    ("=?utf-8?q?Re=3A_our_call?=", MisleadingSubject, "reply or forward marker"),
    ("=?iso-8859-1?q?Hello_{{first=5Fname}}?=", MisleadingSubject, "merge tag"),
])
async def test_checks_read_an_encoded_subject_decoded(subject, check_cls, reason):
    verdict = await run(check_cls, tx("Hello there.", subject=subject))
    assert verdict.action is Action.HOLD
    assert reason in verdict.reason


def test_a_plain_subject_is_read_without_a_parse_and_an_encoded_one_decoded():
    plain = Message(b"Subject: Hello\r\n  there\r\n\r\n")
    assert plain.decoded("subject") == "Hello  there" == plain.value("subject")
    encoded = Message(b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= aus\r\n\r\n")
    assert encoded.decoded("subject") == "Grüße aus"
    assert Message(b"To: b@example.org\r\n\r\n").decoded("subject") is None
