"""Old relay syntax, tried as an attacker would: a next hop that still honours the percent
hack, bang paths, source routes or quoted specials could deliver to a second, hidden address.
Each is refused at RCPT (553 5.1.3) and MAIL FROM (553 5.1.7), for every domain, and never
reaches the suppression check or an upstream in another form."""

from __future__ import annotations

import asyncio

import pytest

from gateway.directory import address as addr
from gateway.protocol import replies
from tests.conftest import PASSWORD, Harness
from tests.support import messages
from tests.support.raw_smtp import RawSession

RELAY_FORMS = [
    "<alice%victim.example@example.org>",  # percent hack
    "<victim.example!alice@example.org>",  # bang path
    "<@relay.example:alice@example.org>",  # source route (RFC 5321 s 4.1.1.3)
    "<@a.example,@b.example:alice@example.org>",
    '<"alice@victim.example"@example.org>',  # quoted local part holding @
    '<"alice%victim.example"@example.org>',
    '<"victim.example!alice"@example.org>',
    '<"alice\\@victim.example"@example.org>',
    '<"a:b"@example.org>', '<"a,b"@example.org>', '<"<a>"@example.org>',
    "<alice%victim.example@acme.example>",  # our own domains too
]
PLAIN = ["<alice@example.org>", '<"alice smith"@example.org>', "<alice+tag@example.org>"]


def status_of(reply: str) -> tuple[int, str]:
    last = reply.split("\r\n")[-1]
    return int(last[:3]), last[4:].split(" ", 1)[0]


@pytest.mark.parametrize("form", RELAY_FORMS)
def test_relay_forms_are_recognised(form: str):
    assert addr.relay_form(form[1:-1])


@pytest.mark.parametrize("form", PLAIN)
def test_plain_forms_are_not(form: str):
    assert not addr.relay_form(form[1:-1])


async def test_relay_syntax_is_refused_at_rcpt_and_mail_and_never_passed_on(harness: Harness):
    def run() -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[str]]:
        with RawSession(harness.port, harness.pki.client_context()) as s:
            s.ready("campaign", PASSWORD)
            assert s.cmd("MAIL FROM:<sales@acme.example>").startswith("250")
            at_rcpt = [(f, s.cmd(f"RCPT TO:{f}")) for f in RELAY_FORMS]
            plain = [s.cmd(f"RCPT TO:{f}") for f in PLAIN]
            s.cmd("RSET")
            senders = ["<sales%acme.example@acme.example>", "<@relay.example:sales@acme.example>",
                       "<relay!sales@acme.example>", '<"sales@x"@acme.example>']
            at_mail = [(f, s.cmd(f"MAIL FROM:{f}")) for f in senders]
            return at_rcpt, at_mail, plain

    at_rcpt, at_mail, plain = await asyncio.to_thread(run)
    rcpt = replies.RECIPIENT_RELAY_FORM
    for form, answer in at_rcpt:
        assert status_of(answer) == (rcpt.code, rcpt.status), (form, answer)
    mail = replies.SENDER_RELAY_FORM
    for form, answer in at_mail:
        assert status_of(answer) == (mail.code, mail.status), (form, answer)
    assert all(p.startswith("250 2.1.5") for p in plain), plain


async def test_a_relay_form_beside_a_good_recipient_never_reaches_upstream(harness: Harness):
    def run() -> tuple[str, tuple[int, bytes]]:
        with harness.client() as smtp:
            smtp.mail("sales@acme.example")
            # docmd: smtplib's rcpt() would itself drop the route
            code, text = smtp.docmd("RCPT TO:<@relay.example:victim@example.org>")
            smtp.rcpt("alice@example.org")
            return f"{code} {text.decode()}", smtp.data(messages.simple())

    refused, (code, _) = await asyncio.to_thread(run)
    assert refused.startswith("553 5.1.3"), refused
    assert code == 250
    assert [m.recipients for m in harness.sink.received] == [["alice@example.org"]]
