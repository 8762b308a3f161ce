"""The `parsed` check against a malformed corpus, called directly with a real Transaction."""

from __future__ import annotations

import pytest

from gateway.directory.records import Principal, Tenant
from gateway.policy.check import PolicyContext, Transaction
from gateway.policy.message import Message
from gateway.policy.parsed import Parsed
from gateway.policy.verdict import Action
from gateway.protocol import replies
from tests.support import messages
from tests.support.config import load

TENANT = Tenant(1, "acme", "active", "")
PRINCIPAL = Principal(1, "campaign", 1, "password")

GOOD = messages.simple()
MALFORMED = {
    "no From": GOOD.replace(b"From: Sales <sales@acme.example>\r\n", b""),
    "two From fields": b"From: a@acme.example\r\n" + GOOD,
    "two From addresses": GOOD.replace(b"From: Sales <sales@acme.example>",
                                       b"From: a@acme.example, b@acme.example"),
    "From is not an address": GOOD.replace(b"From: Sales <sales@acme.example>",
                                           b"From: Sales <sales@>"),
    "first line is a continuation": b"  folded\r\n" + GOOD,
    "header line without colon": GOOD.replace(b"Subject: Hello\r\n",
                                              b"Subject: Hello\r\nnot a header\r\n"),
    "8-bit header without SMTPUTF8": GOOD.replace(b"Subject: Hello", "Subject: Grüße".encode()),
    "multipart without boundary": GOOD.replace(b"text/plain; charset=utf-8",
                                               b"multipart/mixed"),
    "multipart start boundary missing": GOOD.replace(
        b"text/plain; charset=utf-8", b'multipart/mixed; boundary="zz"'),
    "multipart close boundary missing": messages.multipart().replace(b"--b1--\r\n", b""),
    "MIME too deep": None,  # built below
}


def deep_message(depth: int) -> bytes:
    head = (b"From: sales@acme.example\r\nTo: a@example.org\r\nSubject: deep\r\n"
            b"MIME-Version: 1.0\r\n")
    body = b"Content-Type: text/plain\r\n\r\nleaf\r\n"
    for i in range(depth):
        b = f"b{i}".encode()
        body = (b'Content-Type: multipart/mixed; boundary="' + b + b'"\r\n\r\n--' + b
                + b"\r\n" + body + b"--" + b + b"--\r\n")
    return head + body


MALFORMED["MIME too deep"] = deep_message(30)


def make_check(**smtp: object) -> Parsed:
    env = {f"GATEWAY__SMTP__{k.upper()}": str(v) for k, v in smtp.items()}
    config = load(**env)
    return Parsed(PolicyContext(config, None, None))  # type: ignore[arg-type]


def tx(raw: bytes, smtputf8: bool = False) -> Transaction:
    return Transaction(PRINCIPAL, TENANT, "sales@acme.example", message=Message(raw),
                       smtputf8=smtputf8)


@pytest.mark.parametrize("name", sorted(MALFORMED))
async def test_malformed_message_is_refused_554_5_6_0(name: str):
    verdict = await make_check().check(tx(MALFORMED[name]))
    assert verdict.action is Action.REJECT, name
    assert verdict.reply == replies.MESSAGE_UNPARSABLE
    assert verdict.reason and "sales@" not in verdict.reason  # no value in the reason


@pytest.mark.parametrize("raw", [GOOD, messages.multipart(), deep_message(5)],
                         ids=["simple", "multipart", "nested-5"])
async def test_well_formed_messages_pass(raw: bytes):
    assert (await make_check().check(tx(raw))).action is Action.PASS


async def test_8bit_header_passes_with_smtputf8():
    raw = GOOD.replace(b"Subject: Hello", "Subject: Grüße".encode())
    assert (await make_check().check(tx(raw, smtputf8=True))).action is Action.PASS


async def test_header_count_and_size_are_bounded():
    many = b"".join(b"X-Filler-%d: y\r\n" % i for i in range(60)) + GOOD
    verdict = await make_check(max_header_count=50).check(tx(many))
    assert verdict.reply == replies.HEADERS_TOO_LARGE
    big = b"X-Big: " + b"y" * 5000 + b"\r\n" + GOOD
    verdict = await make_check(max_header_bytes=4000).check(tx(big))
    assert verdict.reply == replies.HEADERS_TOO_LARGE


def test_message_keeps_bytes_and_edits_headers_only():
    raw = b"Subject: a\r\n b\r\nFrom: x@acme.example\r\nBcc: y@z\r\n\r\nbody\r\n.\r\n"
    msg = Message(raw)
    assert msg.as_bytes() == raw
    msg.remove("bcc")
    msg.prepend("Received", "from a by b")
    assert msg.as_bytes() == (b"Received: from a by b\r\nSubject: a\r\n b\r\n"
                              b"From: x@acme.example\r\n\r\nbody\r\n.\r\n")
    with pytest.raises(ValueError):
        msg.append("X-Injected", "a\r\nBcc: evil@example.org")
