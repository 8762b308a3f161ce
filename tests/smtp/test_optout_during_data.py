"""No send after an opt-out, by construction (issue 28.3): each recipient is looked up
again, all in one lookup, right before the copies go upstream — so an opt-out that lands
while the message is still coming in (here: half-way through DATA, through the admin API)
wins. The recipient is reported as accept-and-report reports one; with nobody left, the
message gets the suppression's 550."""

from __future__ import annotations

import asyncio
import smtplib
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from gateway.store.schema import audit_events, events
from tests.conftest import Harness
from tests.support import messages
from tests.support.admin_api import admin, key


async def _send_with_an_opt_out_midway(h: Harness, recipients: list[str],
                                       opting_out: str) -> tuple[int, str]:
    """MAIL, RCPT each, DATA: the first half of the body, then the opt-out (over HTTP, as a
    campaign tool or a person would), then the rest."""
    body = messages.simple()
    half = len(body) // 2
    smtp = await asyncio.to_thread(h.client)
    try:
        def start() -> None:
            smtp.mail("sales@acme.example")
            for r in recipients:
                assert smtp.rcpt(r)[0] == 250
            smtp.putcmd("data")
            assert smtp.getreply()[0] == 354
            smtp.send(body[:half])

        await asyncio.to_thread(start)
        async with admin(h, await key(h, "ops", "acme")) as client:
            added = await client.post("/api/v1/suppression-lists/acme/entries",
                                      json={"target": opting_out, "reason": "unsubscribe"})
            assert added.status_code == 201, added.text

        def finish() -> tuple[int, str]:
            smtp.send(body[half:] + b"\r\n.\r\n")
            code, text = smtp.getreply()
            return code, text.decode()

        return await asyncio.to_thread(finish)
    finally:
        await asyncio.to_thread(smtp.close)


async def _rows(h: Harness) -> tuple[list[str], list[str]]:
    async with h.gateway.engine.connect() as conn:
        audited = list((await conn.execute(sa.select(audit_events.c.event))).scalars())
        kinds = list((await conn.execute(sa.select(events.c.kind))).scalars())
    return audited, kinds


async def test_an_opt_out_during_data_wins_and_is_reported(harness: Harness):
    code, text = await _send_with_an_opt_out_midway(
        harness, ["stays@example.org", "leaves@example.org"], "leaves@example.org")
    assert code == 250, text
    assert [r.recipients for r in harness.sink.received] == [["stays@example.org"]]
    audited, kinds = await _rows(harness)
    assert audited.count("copy.suppressed") == 1 and "dsn.queued" in audited
    assert kinds.count("suppressed") == 1 and kinds.count("delivered") == 1
    await harness.gateway.worker.run_once(datetime.now(UTC) + timedelta(seconds=1))
    (report,) = [r.content for r in harness.sink.received if r.envelope_from == ""]
    assert b"Final-Recipient: rfc822; leaves@example.org" in report
    assert b"Status: 5.7.1" in report


async def test_with_nobody_left_the_message_gets_the_suppressions_550(harness: Harness):
    code, text = await _send_with_an_opt_out_midway(harness, ["leaves@example.org"],
                                                    "leaves@example.org")
    assert code == 550 and text.startswith("5.7.1"), text
    assert harness.sink.received == []
    audited, kinds = await _rows(harness)
    assert "message.refused" in audited and "copy.delivered" not in audited
    assert kinds == ["refused"]
    # and the client may not be told who is on whose list
    assert "leaves@example.org" not in text


async def test_a_message_nobody_opted_out_of_is_untouched(harness: Harness):
    def send() -> dict[str, smtplib.SMTPRecipientsRefused]:
        with harness.client() as smtp:
            return smtp.sendmail("sales@acme.example", ["a@example.org", "b@example.org"],
                                 messages.simple())

    assert await asyncio.to_thread(send) == {}
    assert sorted(r.recipients[0] for r in harness.sink.received) == ["a@example.org",
                                                                     "b@example.org"]
