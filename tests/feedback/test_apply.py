"""Bounces, complaints and replies read from a mailbox become suppression entries, but only
for a copy the gateway sent through that mailbox, and only for that copy's recipient."""

from __future__ import annotations

import json
import smtplib
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway.feedback.apply import Arrival
from gateway.store.schema import audit_events, events, feedback_marks, optout_reviews
from suppression.schema import suppressions
from tests.conftest import OTHER_PASSWORD, Harness
from tests.support import messages
from tests.support.feedback import FEEDBACK

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "replies" / "corpus.jsonl"


def fixture(name: str) -> bytes:
    return (FEEDBACK / f"{name}.eml").read_bytes()


def reply(reply_id: str) -> dict:
    for line in CORPUS.read_text().splitlines():
        item = json.loads(line)
        if item["id"] == reply_id:
            return item
    raise KeyError(reply_id)


async def send_with_id(h: Harness, message_id: str, recipients: list[str],
                       tenant: str = "acme") -> Arrival:
    """Relay one message carrying `message_id`; the mailbox it went through."""
    if tenant == "acme":
        raw = messages.simple().replace(b"<m1@acme.example>", message_id.encode())
        await h.send(raw, recipients)
    else:
        raw = messages.simple(sender="ceo@other.example").replace(
            b"<m1@acme.example>", message_id.encode())
        await h.send(raw, recipients, sender="ceo@other.example", user="other-tool",
                     password=OTHER_PASSWORD)
    copy = (await h.gateway.sent_index.find([message_id]))[-1]  # the newest
    return Arrival.inbox(copy.tenant_id, copy.mailbox_id)


async def entries(h: Harness) -> list:
    async with h.gateway.engine.connect() as conn:
        return (await conn.execute(sa.select(suppressions).order_by(suppressions.c.id))).all()


async def refused_at_rcpt(h: Harness, recipient: str, **kw) -> int:
    with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
        await h.send(b"Subject: again\r\n\r\nHi\r\n", [recipient], **kw)
    return info.value.recipients[recipient][0]


async def test_a_hard_bounce_in_the_mailbox_suppresses_its_recipient(harness: Harness):
    arrival = await send_with_id(harness, "<OCG.11AA22BB33.0@acme.example>",
                                 ["sophie.dubois@gmail.example", "lead@example.org"])
    applied = await harness.gateway.feedback.apply(fixture("gmail-no-such-user"), arrival)
    assert applied.suppressed == ["bounce"]
    (entry,) = await entries(harness)
    assert (entry.scope, entry.target, entry.reason, entry.source) == (
        arrival.tenant_id, "sophie.dubois@gmail.example", "bounce", "inbox")
    async with harness.gateway.engine.connect() as conn:
        (row,) = (await conn.execute(sa.select(audit_events).where(
            audit_events.c.event == "optout.automatic"))).all()
        (event,) = (await conn.execute(sa.select(events).where(
            events.c.kind == "bounced"))).all()
    assert row.detail["rule"] == "dsn:5.1.1" and row.queue_id and row.recipient_digest
    assert len(row.detail["feedback"]) == 64  # the report's Message-ID, hashed
    assert "sophie" not in json.dumps(row.detail)  # evidence, never the address or body
    assert await harness.gateway.event_names.recipient(event) == "sophie.dubois@gmail.example"
    assert event.recipient is None and event.recipient_masked == "s***@gmail.example"
    assert await refused_at_rcpt(harness, "sophie.dubois@gmail.example") == 550
    await harness.send(messages.simple(), ["lead@example.org"])  # the other copy: unaffected


async def test_forged_feedback_suppresses_nobody(harness: Harness):
    # a bounce about a message the gateway never sent
    arrival = await send_with_id(harness, "<something-else@acme.example>",
                                 ["sophie.dubois@gmail.example"])
    applied = await harness.gateway.feedback.apply(fixture("gmail-no-such-user"), arrival)
    assert applied.ignored == "not-ours"
    # the right Message-ID, read from another tenant's mailbox
    await send_with_id(harness, "<OCG.11AA22BB33.0@acme.example>",
                       ["sophie.dubois@gmail.example"])
    other = await send_with_id(harness, "<x@other.example>", ["a@example.org"], "other")
    applied = await harness.gateway.feedback.apply(fixture("gmail-no-such-user"), other)
    assert applied.ignored == "not-ours"
    # the right message, but a bounce naming someone it was not sent to
    arrival = await send_with_id(harness, "<OCG.7F3A2B9C1D.0@acme.example>",
                                 ["someone.else@example.org"])
    applied = await harness.gateway.feedback.apply(fixture("postfix-user-unknown"), arrival)
    assert applied.ignored == "recipient-not-ours"
    assert await entries(harness) == []


async def test_soft_bounces_suppress_for_a_while_after_three(harness: Harness):
    arrival = await send_with_id(harness, "<OCG.77EE88FF99.0@acme.example>",
                                 ["giulia.rossi@fratelliconti.example"])
    for _ in range(2):
        applied = await harness.gateway.feedback.apply(fixture("postfix-delayed"), arrival)
        assert applied.marked == ["soft"] and not applied.suppressed
    assert await entries(harness) == []
    applied = await harness.gateway.feedback.apply(fixture("postfix-delayed"), arrival)
    assert applied.suppressed == ["bounce"]
    (entry,) = await entries(harness)
    assert entry.reason == "bounce" and entry.expires_at is not None
    assert abs(entry.expires_at - (time.time() + 7 * 86400)) < 60
    assert await refused_at_rcpt(harness, "giulia.rossi@fratelliconti.example") == 550


async def test_a_policy_block_is_counted_for_the_mailbox_and_suppresses_nobody(
        harness: Harness):
    arrival = await send_with_id(harness, "<OCG.44CC55DD66.0@acme.example>",
                                 ["pablo.lopez@datosclaros.example"])
    applied = await harness.gateway.feedback.apply(fixture("exchange-online-policy"), arrival)
    assert applied.marked == ["policy"] and not applied.suppressed
    assert await entries(harness) == []
    async with harness.gateway.engine.connect() as conn:
        (mark,) = (await conn.execute(sa.select(feedback_marks))).all()
    assert (mark.kind, mark.status, mark.mailbox_id) == ("policy", "5.7.1", arrival.mailbox_id)


async def test_complaints_suppress_for_the_tenant_and_globally_from_two_tenants(
        harness: Harness):
    arrival = await send_with_id(harness, "<OCG.EF90AB12CD.0@acme.example>",
                                 ["oliver.taylor@brightpath.example"])
    applied = await harness.gateway.feedback.apply(fixture("arf-abuse"), arrival)
    assert applied.suppressed == ["complaint"]
    assert [(e.scope, e.reason) for e in await entries(harness)] == [
        (arrival.tenant_id, "complaint")]
    other = await send_with_id(harness, "<OCG.EF90AB12CD.0@acme.example>",
                               ["oliver.taylor@brightpath.example"], "other")
    applied = await harness.gateway.feedback.apply(fixture("arf-abuse"), other)
    assert applied.suppressed == ["complaint", "global-complaint"]
    assert sorted((e.scope, e.reason, e.source) for e in await entries(harness)) == [
        (0, "complaint", "complaints"), (arrival.tenant_id, "complaint", "inbox"),
        (other.tenant_id, "complaint", "inbox")]


async def test_a_redacted_complaint_suppresses_the_copy_by_digest(harness: Harness):
    arrival = await send_with_id(harness, "<OCG.0A1B2C3D4E.0@acme.example>",
                                 ["hidden.person@example.net"])
    applied = await harness.gateway.feedback.apply(fixture("arf-redacted"), arrival)
    assert applied.suppressed == ["complaint"]
    (entry,) = await entries(harness)
    assert entry.target is None and entry.reason == "complaint"  # digest only
    assert await refused_at_rcpt(harness, "hidden.person@example.net") == 550


async def test_a_confident_opt_out_reply_suppresses_its_writer(harness: Harness):
    item = reply("en-opt-out-dev-00")
    writer = item["eml"].split("<", 1)[1].split(">", 1)[0]
    arrival = await send_with_id(harness, item["in_reply_to"], [writer, "lead@example.org"])
    applied = await harness.gateway.feedback.apply(item["eml"].encode(), arrival)
    assert applied.suppressed == ["unsubscribe"]
    (entry,) = await entries(harness)
    assert (entry.target, entry.reason, entry.source) == (writer, "unsubscribe", "reply")
    async with harness.gateway.engine.connect() as conn:
        (row,) = (await conn.execute(sa.select(audit_events).where(
            audit_events.c.event == "optout.automatic"))).all()
    assert row.detail["rule"].startswith("request:en:")
    assert await refused_at_rcpt(harness, writer) == 550
    again = await harness.gateway.feedback.apply(item["eml"].encode(), arrival)
    assert again.ignored == "already-suppressed"  # read twice: one entry, one audit row


@pytest.mark.parametrize("reply_id, ignored", [
    ("en-auto-reply-dev-00", "auto-reply"), ("de-not-opt-out-dev-00", "none"),
])
async def test_auto_replies_and_other_replies_suppress_nobody(harness: Harness, reply_id,
                                                              ignored):
    item = reply(reply_id)
    writer = item["eml"].split("<", 1)[1].split(">", 1)[0]
    arrival = await send_with_id(harness, item["in_reply_to"] or "<x@acme.example>", [writer])
    applied = await harness.gateway.feedback.apply(item["eml"].encode(), arrival)
    assert applied.ignored == ignored and await entries(harness) == []


async def test_an_opt_out_from_another_address_goes_to_a_person(harness: Harness):
    item = reply("fr-opt-out-dev-00")
    writer = item["eml"].split("<", 1)[1].split(">", 1)[0]
    arrival = await send_with_id(harness, item["in_reply_to"], ["assistant@example.org"])
    applied = await harness.gateway.feedback.apply(item["eml"].encode(), arrival)
    assert applied.review_id is not None and await entries(harness) == []
    async with harness.gateway.engine.connect() as conn:
        (review,) = (await conn.execute(sa.select(optout_reviews))).all()
    assert review.status == "pending" and review.rule.endswith(":other-sender")
    assert writer.encode() not in review.sealed_reply  # sealed by the vault


def threadless(sender: str, subject: str) -> bytes:
    """A reply whose mail program dropped In-Reply-To and References."""
    return (f"From: Pat <{sender}>\r\nTo: sales@acme.example\r\nSubject: {subject}\r\n"
            "Message-ID: <t1@example.net>\r\n\r\nPlease remove me from your list.\r\n"
            ).encode()


async def test_a_reply_without_thread_headers_is_matched_by_writer_and_subject(
        harness: Harness):
    raw = messages.simple(subject="=?utf-8?q?Gr=C3=BC=C3=9Fe_aus_Acme?=")
    await harness.send(raw, ["pat@example.net", "lead@example.org"])
    (copy, *_) = await harness.gateway.sent_index.find(["<m1@acme.example>"])
    arrival = Arrival.inbox(copy.tenant_id, copy.mailbox_id)
    apply = harness.gateway.feedback.apply
    # another subject, or a writer the message was not sent to: not this thread
    assert (await apply(threadless("pat@example.net", "Re: Something else"),
                        arrival)).ignored == "not-ours"
    assert (await apply(threadless("eve@example.net", "AW: Grüße aus Acme"),
                        arrival)).ignored == "not-ours"
    # another mailbox of the tenant did not send it
    other = Arrival.inbox(copy.tenant_id, copy.mailbox_id + 1)
    assert (await apply(threadless("pat@example.net", "AW: Grüße aus Acme"),
                        other)).ignored == "not-ours"
    applied = await apply(threadless("pat@example.net", "AW: Re: Grüße aus Acme"), arrival)
    assert applied.suppressed == ["unsubscribe"]
    (entry,) = await entries(harness)
    assert (entry.target, entry.source) == ("pat@example.net", "reply")
