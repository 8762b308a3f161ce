"""The notice `allow-with-notice` promises, read as the recipient and a DPO would: in the
first message from the tenant to the person (controller, source, purpose and basis, the
full notice's link, and the right to object set apart with the copy's own opt-out link),
in no later one; owed again if that copy never went; spliced without touching the rest of
the message; a message that cannot carry it is not sent to the person owed it."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import smtplib

import pytest
import sqlalchemy as sa

from gateway.store.schema import audit_events, lawful_notices
from tests.support import messages
from tests.support.cli import gw
from tests.support.lawful import NOTICE_SETTINGS, give_notice

CEO, CTO = "ceo@startup.com", "cto@startup.com"  # gTLD: the tenant default decides
SIGNED = (b"From: sales@acme.example\r\nTo: ceo@startup.com\r\nSubject: s\r\n"
          b"Date: Sun, 22 Nov 2026 10:00:00 +0000\r\nMessage-ID: <s1@acme.example>\r\n"
          b"MIME-Version: 1.0\r\nContent-Type: multipart/signed; "
          b"protocol=\"application/pkcs7-signature\"; micalg=sha-256; boundary=s1\r\n\r\n"
          b"--s1\r\nContent-Type: text/plain\r\n\r\nSigned text.\r\n--s1\r\n"
          b"Content-Type: application/pkcs7-signature\r\n\r\nMIAGCSqG\r\n--s1--\r\n")


async def set_all(h, **values: str) -> None:
    for name, value in values.items():
        done = await gw(h, "tenant", "set", "acme", name, value)
        assert done.returncode == 0, done.stderr
    await h.refresh()


async def enforce_with_notice(h, notice: bool = True) -> None:
    await set_all(h, lawful_basis="enforce", lawful_default="allow-with-notice")
    if notice:
        await give_notice(h)


def told(content: bytes) -> bool:
    return b"GDPR Art. 14" in content


def body_text(content: bytes) -> str:
    parsed = email.message_from_bytes(content, policy=email.policy.default)
    return "\n".join(p.get_content() for p in parsed.walk()
                     if p.get_content_maintype() == "text")


async def test_the_first_message_carries_the_notice_and_the_next_does_not(harness):
    h = harness
    await enforce_with_notice(h)
    before = len(h.sink.received)
    original = messages.multipart()
    assert await h.send(original, [CEO]) == {}
    assert await h.send(messages.multipart(), [CEO, CTO]) == {}
    first, *later = h.sink.received[before:]
    assert first.recipients == [CEO] and told(first.content)
    text = body_text(first.content)
    assert "Acme" in text or "acme" in text  # the controller: the tenant's sender name
    for value in NOTICE_SETTINGS.values():
        assert value in text
    objection = re.search(r"YOUR RIGHT TO OBJECT:[^\n]*?(https://\S+)", text)
    assert objection is not None  # set apart, with the copy's own opt-out link
    listed = re.search(rb"List-Unsubscribe: <([^>]+)>", first.content)
    assert listed is not None and objection.group(1) == listed.group(1).decode()
    assert "<strong>Your right to object:</strong>" in text  # and apart in the HTML part
    # byte-preserving: the parts' own text is there as it was
    assert b"plain\r\n" in first.content and b"<p>html</p>" in first.content
    # the second message: CEO was told, CTO was not (each copy is its recipient's own)
    assert {r.recipients[0]: told(r.content) for r in later} == {CEO: False, CTO: True}
    async with h.gateway.engine.connect() as conn:
        rows = [(r.recipient_digest, r.detail["lawful"].get("notice"), r.queue_id)
                for r in await conn.execute(sa.select(audit_events).where(
                    audit_events.c.event == "copy.delivered").order_by(audit_events.c.id))]
        marks = {r.digest for r in await conn.execute(sa.select(lawful_notices))}
    ceo, cto = h.gateway.digest(CEO), h.gateway.digest(CTO)
    assert [(d, n) for d, n, _ in rows] == [(ceo, "yes"), (ceo, None), (cto, "yes")]
    assert marks == {ceo, cto}


async def test_a_copy_upstream_refused_leaves_the_notice_owed(harness):
    h = harness
    await enforce_with_notice(h)
    h.sink.faults.rcpt[CEO] = "554 5.7.1 Rejected by policy"
    await h.send(messages.simple(to=CEO), [CEO, CTO])
    del h.sink.faults.rcpt[CEO]
    before = len(h.sink.received)
    assert await h.send(messages.simple(to=CEO), [CEO]) == {}
    (copy,) = h.sink.received[before:]
    assert told(copy.content)


async def test_concurrent_first_messages_all_may_carry_it_and_later_ones_do_not(harness):
    h = harness
    await enforce_with_notice(h)
    before = len(h.sink.received)
    await asyncio.gather(*(h.send(messages.simple(to=CEO), [CEO]) for _ in range(5)))
    first = [told(r.content) for r in h.sink.received[before:]]
    assert len(first) == 5 and any(first)
    after = len(h.sink.received)
    await asyncio.gather(*(h.send(messages.simple(to=CEO), [CEO]) for _ in range(3)))
    assert not any(told(r.content) for r in h.sink.received[after:])


async def test_without_the_tenants_notice_settings_the_message_waits(harness):
    h = harness
    await enforce_with_notice(h, notice=False)
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        await h.send(messages.simple(to=CEO), [CEO])
    code, text = refused.value.recipients[CEO]
    assert code == 451 and text.startswith(b"4.3.5") and b"notice" in text


async def test_a_message_that_cannot_carry_the_notice_is_not_sent_to_whom_it_is_owed(harness):
    h = harness
    await enforce_with_notice(h)
    before = len(h.sink.received)
    code, text = await h.data_reply([CEO], SIGNED)
    assert (code, text) == (550, "5.7.1 Not sent: this recipient is owed a notice, and a "
                                 "signed or encrypted message, or one without text, cannot "
                                 "carry it")
    assert len(h.sink.received) == before
    assert await h.send(messages.simple(to=CEO), [CEO]) == {}  # told now
    code, _ = await h.data_reply([CEO], SIGNED)
    assert code == 250  # owed nothing any more: the signed message goes untouched
    assert h.sink.received[-1].content.endswith(SIGNED.split(b"\r\n\r\n", 1)[1])


async def test_a_notice_template_must_show_the_objection_link(harness):
    refused = await gw(harness, "tenant", "set", "acme", "notice_text",
                       "{{ controller }} holds your data.")
    assert refused.returncode == 5 and "notice template must show" in refused.stderr
    refused = await gw(harness, "tenant", "set", "acme", "notice_url", "http://acme.example/p")
    assert refused.returncode == 5 and "https://" in refused.stderr
    fine = await gw(harness, "tenant", "set", "acme", "notice_text",
                    "{{ controller }}: object at {{ unsubscribe_url }}")
    assert fine.returncode == 0, fine.stderr
