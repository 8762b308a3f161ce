"""Each check on its own: its `check()` called with a transaction, against the real parts a
running gateway hands it (its directory snapshot and suppression lists), for the checks
the other policy tests reach only through an SMTP session."""

from __future__ import annotations

import pytest

from gateway.directory.records import Principal
from gateway.optout.suppressions import Actor
from gateway.policy.check import PolicyContext, Transaction
from gateway.policy.header_from import HeaderFrom
from gateway.policy.identity_alignment import IdentityAlignment
from gateway.policy.message import Message
from gateway.policy.recipient_suppressed import RecipientSuppressed
from gateway.policy.recipient_valid import RecipientValid
from gateway.policy.sender_allowed import SenderAllowed
from gateway.policy.submission_headers import SubmissionHeaders
from gateway.policy.unsubscribe_footer import UnsubscribeFooter
from gateway.policy.verdict import Action
from gateway.protocol import replies
from suppression.entries import Reason
from tests.conftest import Harness

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)
PRINCIPAL = Principal(1, "campaign", 1, "password")
POSTAL = "Acme Corp, 1 Main Street, Springfield"


def context(h: Harness) -> PolicyContext:
    return PolicyContext(h.gateway.config, h.gateway.directory, h.gateway.suppressions)


async def tx(h: Harness, *, sender: str = "sales@acme.example", recipient: str = "",
             head: str = "From: Sales <sales@acme.example>\r\n", body: str = "Hello.\r\n",
             settings: dict | None = None, smtputf8: bool = False) -> Transaction:
    tenant = h.gateway.directory.tenant(1)
    assert tenant is not None
    if settings is not None:
        tenant = type(tenant)(tenant.id, tenant.name, tenant.status, tenant.status_reason,
                              {**tenant.settings, **settings})
    raw = f"{head}To: b@example.org\r\nSubject: Hi\r\n\r\n{body}".encode()
    return Transaction(PRINCIPAL, tenant, sender, recipient=recipient,
                       message=Message(raw), smtputf8=smtputf8)


def refused_with(verdict, reply) -> bool:
    return verdict.action is Action.REJECT and verdict.reply == reply


async def test_recipient_valid(harness: Harness):
    check = RecipientValid(context(harness))
    assert (await check.check(await tx(harness, recipient="b@example.org"))).action is Action.PASS
    assert refused_with(await check.check(await tx(harness, recipient="a%b@example.org")),
                        replies.RECIPIENT_RELAY_FORM)
    assert refused_with(await check.check(await tx(harness, recipient="not an address")),
                        replies.RECIPIENT_MALFORMED)
    assert refused_with(await check.check(await tx(harness, recipient="jörg@example.org")),
                        replies.NEEDS_SMTPUTF8)


async def test_sender_allowed(harness: Harness):
    check = SenderAllowed(context(harness))
    assert (await check.check(await tx(harness))).action is Action.PASS
    assert refused_with(await check.check(await tx(harness, sender="ceo@other.example")),
                        replies.SENDER_NOT_ALLOWED)  # another tenant's mailbox
    assert refused_with(await check.check(await tx(harness, sender="x%y@acme.example")),
                        replies.SENDER_RELAY_FORM)


async def test_header_from(harness: Harness):
    check = HeaderFrom(context(harness))
    assert (await check.check(await tx(harness))).action is Action.PASS
    foreign = await check.check(await tx(harness, head="From: <ceo@other.example>\r\n"))
    assert foreign.action is Action.REJECT and foreign.reply is not None
    assert foreign.reply.code == 550


async def test_identity_alignment(harness: Harness):
    check = IdentityAlignment(context(harness))
    assert (await check.check(await tx(harness))).action is Action.PASS
    for head in ("From: \"support@bank.example\" <sales@acme.example>\r\n",  # lookalike name
                 "From: <sales@acme.example>\r\nReply-To: <x@elsewhere.example>\r\n"):
        verdict = await check.check(await tx(harness, head=head))
        assert verdict.action is Action.REJECT, head


async def test_submission_headers_adds_what_is_missing_and_drops_bcc(harness: Harness):
    check = SubmissionHeaders(context(harness))
    verdict = await check.check(await tx(harness, head="From: <sales@acme.example>\r\n"
                                         "Bcc: hidden@example.org\r\n"))
    assert verdict.action is Action.FIX
    assert verdict.reason == "added Message-ID, added Date, removed Bcc"
    whole = await tx(harness, head="From: <sales@acme.example>\r\nMessage-ID: <1@a>\r\n"
                     "Date: Sat, 05 Dec 2026 10:00:00 +0000\r\n")
    assert (await check.check(whole)).action is Action.PASS


async def test_an_empty_message_id_is_replaced_by_one_with_a_value(harness: Harness):
    """The one place a Message-ID is added (the hand-off no longer adds its own): a field
    with nothing in it counts as missing, and the copy leaves with exactly one."""
    check = SubmissionHeaders(context(harness))
    blank = await tx(harness, head="From: <sales@acme.example>\r\nMessage-ID: \r\n"
                     "Date: Sat, 05 Dec 2026 10:00:00 +0000\r\n")
    verdict = await check.check(blank)
    assert verdict.action is Action.FIX and verdict.reason == "added Message-ID"
    for edit in verdict.edits:
        edit.apply(blank.message)
    assert blank.message.count("message-id") == 1
    assert (blank.message.value("message-id") or "").endswith("@gw.test>")


async def test_unsubscribe_footer(harness: Harness):
    check = UnsubscribeFooter(context(harness))
    assert (await check.check(await tx(harness))).action is Action.PASS  # body = add
    assert refused_with(await check.check(await tx(harness, settings={"postal_address": ""})),
                        replies.NO_POSTAL_ADDRESS)
    required = {"body": "require"}
    assert refused_with(await check.check(await tx(harness, settings=required)),
                        replies.NO_UNSUBSCRIBE_IN_BODY)
    own = f"Unsubscribe: https://tool.example/u/1\r\n{POSTAL}\r\n"
    assert (await check.check(await tx(harness, body=own, settings=required))).action \
        is Action.PASS


async def test_recipient_suppressed(harness: Harness):
    await harness.gateway.suppressions.add(Actor("test"), 1, "gone@example.org",
                                           Reason.COMPLAINT, "test")
    check = RecipientSuppressed(context(harness))
    assert (await check.check(await tx(harness, recipient="ok@example.org"))).action \
        is Action.PASS
    verdict = await check.check(await tx(harness, recipient="Gone@Example.org"))
    assert refused_with(verdict, replies.SUPPRESSED["complaint"]) and not verdict.erased
