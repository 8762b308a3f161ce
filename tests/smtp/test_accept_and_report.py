"""Accept-and-report (issue 23): with the tenant's `suppressed_recipients =
accept-and-report`, a suppressed recipient gets 250 at RCPT, is never relayed, and is
reported: one delivery report per message to the sender (Action: failed, Status: 5.7.1, no
one's unsubscribe link), a `suppressed` event, and rows `gateway trace` shows. Only
suppression refusals become reports; the default stays 550 at RCPT."""

from __future__ import annotations

import asyncio
import re
import smtplib
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from gateway.optout.suppressions import Actor
from gateway.store.schema import events
from suppression.entries import Reason
from tests.conftest import Harness
from tests.support import messages
from tests.support.cli import gw

OPS = Actor("test")


async def accept_and_report(h: Harness, *suppressed: str,
                            reason: Reason = Reason.UNSUBSCRIBE) -> None:
    await h.store().set_tenant_setting("acme", "suppressed_recipients", "accept-and-report",
                                       "test")
    await h.refresh()
    acme = (await h.store().tenant("acme")).id
    for address in suppressed:
        await h.gateway.suppressions.add(OPS, acme, address, reason, "test")


def reports(h: Harness) -> list[bytes]:
    return [r.content for r in h.sink.received if r.envelope_from == ""]


async def deliver_reports(h: Harness) -> None:
    await h.gateway.worker.run_once(datetime.now(UTC) + timedelta(seconds=1))


async def kinds(h: Harness) -> list[str]:
    async with h.gateway.engine.connect() as conn:
        return list((await conn.execute(sa.select(events.c.kind).order_by(events.c.id)))
                    .scalars())


async def test_a_suppressed_recipient_is_accepted_not_sent_and_reported(harness: Harness):
    await accept_and_report(harness, "gone@example.org", "left@example.org")

    def run() -> tuple[list[int], int, str]:
        with harness.client() as smtp:
            smtp.mail("sales@acme.example")
            codes = [smtp.rcpt(r)[0] for r in ("ok@example.org", "gone@example.org",
                                               "left@example.org")]
            code, text = smtp.data(messages.simple())
            return codes, code, text.decode()

    codes, code, text = await asyncio.to_thread(run)
    assert codes == [250, 250, 250] and code == 250, text
    queue_id = text.rsplit(" ", 1)[1]
    assert [r.recipients for r in harness.sink.received] == [["ok@example.org"]]
    await deliver_reports(harness)
    (report,) = reports(harness)  # one report for the message, both recipients in it
    assert report.count(b"Action: failed") == 2 and report.count(b"Status: 5.7.1") == 2
    assert b"Final-Recipient: rfc822; gone@example.org" in report
    assert b"Final-Recipient: rfc822; left@example.org" in report
    assert b"X-Queue-ID: " + queue_id.encode() in report
    assert re.search(rb"/u/[a-z2-7]{16,}", report) is None
    assert (await kinds(harness)).count("suppressed") == 2
    traced = await gw(harness, "trace", queue_id)
    assert traced.returncode == 0, traced.stderr
    assert traced.stdout.count("copy.suppressed") == 2 and "dsn.queued" in traced.stdout


async def test_every_recipient_suppressed_gets_250_a_queue_id_and_a_report(harness: Harness):
    await accept_and_report(harness, "gone@example.org")
    code, text = await harness.data_reply(["gone@example.org"])
    assert code == 250 and text.startswith("2.0.0 Ok: queued as ")
    assert harness.sink.received == []  # nothing relayed
    await deliver_reports(harness)
    (report,) = reports(harness)
    assert b"rfc822; gone@example.org" in report
    queue_id = text.rsplit(" ", 1)[1]
    traced = await gw(harness, "trace", queue_id)
    assert "copy.suppressed" in traced.stdout and "5.7.1" in traced.stdout


async def test_an_erased_person_is_named_by_digest_only(harness: Harness):
    await accept_and_report(harness, "gone@example.org", reason=Reason.ERASURE)
    code, _ = await harness.data_reply(["ok@example.org", "gone@example.org"])
    assert code == 250
    await deliver_reports(harness)
    (report,) = reports(harness)
    assert b"gone@" not in report and b"erased-" in report
    async with harness.gateway.engine.connect() as conn:
        (row,) = (await conn.execute(sa.select(events).where(
            events.c.kind == "suppressed"))).all()
    assert row.sealed_recipient is None and row.recipient_digest


async def test_only_suppression_refusals_become_reports(harness: Harness):
    await accept_and_report(harness)

    def run() -> list[int]:
        with harness.client() as smtp:
            smtp.mail("sales@acme.example")
            return [smtp.docmd("RCPT", f"TO:<{r}>")[0]
                    for r in ("a%b@example.org", "@route:x@example.org", "not an address")]

    assert all(code >= 500 for code in await asyncio.to_thread(run))


async def test_refuse_stays_the_default(harness: Harness):
    acme = (await harness.store().tenant("acme")).id
    await harness.gateway.suppressions.add(OPS, acme, "gone@example.org",
                                           Reason.UNSUBSCRIBE, "test")
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        await harness.send(messages.simple(), ["gone@example.org"])
    assert "suppressed" not in await kinds(harness)


async def test_the_report_names_the_message_id_the_relayed_copies_carry(harness: Harness):
    """A message without a Message-ID gets one from the gateway; the suppressed recipient's
    event names that one too, as the delivered copy's does."""
    await accept_and_report(harness, "gone@example.org")
    bare = messages.simple().replace(b"Message-ID: <m1@acme.example>\r\n", b"")
    assert b"Message-ID" not in bare
    code, _ = await harness.data_reply(["ok@example.org", "gone@example.org"], bare)
    assert code == 250
    async with harness.gateway.engine.connect() as conn:
        rows = (await conn.execute(sa.select(events.c.kind, events.c.detail).where(
            events.c.kind.in_(["delivered", "suppressed"])))).all()
    ids = {kind: detail["message_id"] for kind, detail in rows}
    assert ids["delivered"] and ids["suppressed"] == ids["delivered"]
