"""An upstream's "no such mailbox" (5.1.x) suppresses the recipient for the tenant, whether
it came during the client's session or on a retry from the queue; the next message to that
address is refused at RCPT. A policy refusal (5.7.x) is about the sender: no entry."""

from __future__ import annotations

import smtplib
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from gateway.store.schema import audit_events
from suppression.schema import suppressions
from tests.conftest import Harness


async def entries(h: Harness) -> list:
    async with h.gateway.engine.connect() as conn:
        return (await conn.execute(sa.select(suppressions))).all()


async def refused_at_rcpt(h: Harness, recipient: str) -> int:
    with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
        await h.send(b"Subject: again\r\n\r\nHi\r\n", [recipient])
    return info.value.recipients[recipient][0]


async def test_a_synchronous_5_1_1_suppresses_and_the_next_rcpt_is_refused(harness: Harness):
    harness.sink.faults.rcpt["gone@example.org"] = "550 5.1.1 no such user"
    code, text = await harness.data_reply(["lead@example.org", "gone@example.org"])
    assert code == 250, text
    (entry,) = await entries(harness)
    assert (entry.scope, entry.target, entry.reason, entry.source) == (
        1, "gone@example.org", "bounce", "upstream")
    assert "5.1.1" in entry.note and "@" not in entry.note  # evidence, not the address
    async with harness.gateway.engine.connect() as conn:
        actors = (await conn.execute(sa.select(audit_events.c.actor).where(
            audit_events.c.event == "suppression.added"))).scalars().all()
    assert actors == ["upstream"]
    assert await refused_at_rcpt(harness, "gone@example.org") == 550
    assert harness.sink.received[-1].recipients == ["lead@example.org"]


async def test_a_policy_refusal_is_about_the_sender_and_suppresses_nobody(harness: Harness):
    harness.sink.faults.rcpt["blocked@example.org"] = "550 5.7.1 sender not allowed"
    harness.sink.faults.rcpt["full@example.org"] = "552 5.2.2 mailbox full"
    await harness.data_reply(["lead@example.org", "blocked@example.org", "full@example.org"])
    assert await entries(harness) == []


async def test_a_5_1_1_on_a_queued_retry_suppresses_too(harness: Harness):
    harness.sink.faults.rcpt["moved@example.org"] = "451 4.4.1 try later"
    code, _ = await harness.data_reply(["lead@example.org", "moved@example.org"])
    assert code == 250 and await entries(harness) == []  # deferred: not a bounce
    harness.sink.faults.rcpt["moved@example.org"] = "550 5.1.1 user unknown"
    await harness.gateway.worker.run_once(datetime.now(UTC) + timedelta(minutes=30))
    (entry,) = await entries(harness)
    assert (entry.target, entry.reason) == ("moved@example.org", "bounce")
    assert await refused_at_rcpt(harness, "moved@example.org") == 550
