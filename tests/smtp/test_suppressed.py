"""Suppressed recipients through the real gateway and sink: refused at RCPT, the others of
the same message delivered; an opt-out that arrives while a copy waits in the queue wins."""

from __future__ import annotations

import asyncio
import smtplib
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from gateway.smtp import replies
from gateway.store.schema import audit_events
from gateway.suppressions import Actor
from suppression.entries import GLOBAL, Reason
from tests.conftest import Harness
from tests.support import messages

OPS = Actor("test")


async def rcpt_replies(h: Harness, recipients: list[str]) -> tuple[list[tuple[int, str]], int]:
    def run():
        with h.client() as smtp:
            smtp.mail("sales@acme.example")
            got = [(code, text.decode()) for code, text in (smtp.rcpt(r) for r in recipients)]
            try:
                code, _ = smtp.data(messages.simple())
            except smtplib.SMTPException:
                code = 0
            return got, code

    return await asyncio.to_thread(run)


async def test_suppressed_recipient_is_refused_at_rcpt_and_never_reaches_the_sink(
        harness: Harness):
    acme = (await harness.store().tenant("acme")).id
    other = (await harness.store().tenant("other")).id
    s = harness.gateway.suppressions
    await s.add(OPS, acme, "Bob.Smith+old@GMail.com", Reason.UNSUBSCRIBE, "test")
    await s.add(OPS, GLOBAL, "*.blocked.example", Reason.MANUAL, "test")
    await s.add(OPS, other, "only-other@example.org", Reason.COMPLAINT, "test")
    got, data_code = await rcpt_replies(harness, [
        "bobsmith@googlemail.com", "x@mx.blocked.example", "only-other@example.org",
        "fine@example.org"])
    assert got[0] == (550, "5.7.1 " + replies.SUPPRESSED["unsubscribe"].text)
    assert got[1] == (550, "5.7.1 " + replies.SUPPRESSED_GLOBAL.text)
    assert got[2][0] == 250 and got[3][0] == 250  # another tenant's list does not apply
    for _, text in got[:2]:
        assert "bob" not in text.lower() and "blocked" not in text and "acme" not in text
    assert data_code == 250
    assert sorted(r.recipients[0] for r in harness.sink.received) == [
        "fine@example.org", "only-other@example.org"]
    async with harness.gateway.engine.connect() as conn:
        checks = (await conn.execute(sa.select(audit_events.c.check_name).where(
            audit_events.c.event == "recipient.refused"))).scalars().all()
    assert checks == ["recipient-suppressed", "recipient-suppressed"]


async def test_an_opt_out_that_arrives_while_a_copy_waits_wins(harness: Harness):
    acme = (await harness.store().tenant("acme")).id
    harness.sink.faults.rcpt["later@example.org"] = "451 4.2.1 try later"
    _, data_code = await rcpt_replies(harness, ["later@example.org", "now@example.org"])
    assert data_code == 250  # one delivered, one queued
    await harness.gateway.suppressions.add(OPS, acme, "later@example.org",
                                           Reason.UNSUBSCRIBE, "test")
    harness.sink.faults.rcpt.clear()
    later = datetime.now(UTC) + timedelta(hours=2)
    while await harness.gateway.worker.run_once(later):
        pass
    received = [r.recipients[0] for r in harness.sink.received]
    assert "later@example.org" not in received
    # the sender is told in a delivery report (no recipient is silently dropped)
    assert "sales@acme.example" in received

