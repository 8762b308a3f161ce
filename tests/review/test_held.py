"""Held and refused messages: kept sealed, released through the queue (suppression checked
again), discarded with a report to the sender; from the CLI too."""

from __future__ import annotations

import asyncio
import smtplib
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from gateway.delivery.queue import CopyKind
from gateway.optout.suppressions import Actor
from gateway.store.schema import audit_events, events
from suppression.entries import Reason
from tests.support import messages
from tests.support.cli import gw
from tests.support.held import card_message, held_rows, send_data


async def test_a_held_message_is_accepted_kept_sealed_and_not_sent(harness):
    code, text = await asyncio.to_thread(send_data, harness, ["a@example.org", "b@example.org"])
    assert code == 250 and text.startswith(b"2.0.0 Ok: held for review as ")
    assert harness.sink.received == []
    (row,) = await held_rows(harness)
    assert (row.status, row.check_name) == ("held", "sensitive-data")
    # the recipients and subject are sealed under the tenant key, not in clear
    assert (row.recipients, row.subject) == ([], "")
    assert b"a@example.org" not in bytes(row.sealed_names)
    assert row.recipient_digests == [harness.gateway.handler.digest(r)
                                     for r in ("a@example.org", "b@example.org")]
    held = await harness.gateway.held.get(row.id)
    assert held.recipients == ["a@example.org", "b@example.org"]
    assert b"4111" not in bytes(row.sealed_message)  # sealed at rest
    assert b"4111 1111" in await harness.gateway.held.body(row.id, "test")
    async with harness.gateway.engine.connect() as conn:
        audited = {r.event for r in await conn.execute(sa.select(audit_events))}
    assert {"message.held", "held.read"} <= audited


async def test_release_sends_each_copy_through_the_queue_and_rechecks_suppression(harness):
    await asyncio.to_thread(send_data, harness, ["a@example.org", "b@example.org"])
    (row,) = await held_rows(harness)
    await harness.gateway.suppressions.add(Actor("test"), 1, "b@example.org",
                                           Reason.UNSUBSCRIBE, "test")
    await harness.gateway.held.request_release(row.id, "reviewer", "a false positive")
    assert await harness.gateway.review.run_once() == 1
    await harness.gateway.worker.run_once(datetime.now(UTC) + timedelta(seconds=1))
    delivered = {r.recipients[0]: r.content for r in harness.sink.received}
    assert list(delivered) == ["a@example.org"]  # b unsubscribed while it was held
    assert b"List-Unsubscribe: <https://links.gw.test/u/" in delivered["a@example.org"]
    assert b"Received: from client.test by gw.test" in delivered["a@example.org"]
    (row,) = await held_rows(harness)
    assert (row.status, row.decided_by) == ("released", "reviewer")
    # held, it was in no index of sent mail; released, feedback about it can be matched
    copies = await harness.gateway.sent_index.find(["<m1@acme.example>"])
    assert {(c.queue_id, c.recipient_digest) for c in copies} == {
        (row.queue_id, harness.gateway.handler.digest(r)) for r in ("a@example.org",
                                                                    "b@example.org")}


async def test_discard_reports_to_the_sender_and_tells_the_tenant(harness):
    await asyncio.to_thread(send_data, harness, ["a@example.org"])
    (row,) = await held_rows(harness)
    discarded = await gw(harness, "held", "discard", str(row.id), "--reason", "card data")
    assert discarded.returncode == 0, discarded.stderr
    (report,) = await harness.gateway.queue.listing()
    assert report.kind is CopyKind.DSN and report.recipient == "sales@acme.example"
    async with harness.gateway.engine.connect() as conn:
        (event,) = (await conn.execute(sa.select(events).where(
            events.c.kind == "discarded"))).all()
    assert await harness.gateway.event_names.recipient(event) == "a@example.org"
    again = await gw(harness, "held", "release", str(row.id), "--reason", "oops")
    assert again.returncode != 0 and "discarded" in again.stderr


async def test_the_cli_lists_shows_and_notes(harness):
    await asyncio.to_thread(send_data, harness, ["a@example.org"])
    (row,) = await held_rows(harness)
    listed = await gw(harness, "held", "list", "--tenant", "acme")
    assert f"{row.id}\t{row.queue_id}\theld\tsensitive-data\t" in listed.stdout
    assert "4111" not in listed.stdout
    assert (await gw(harness, "held", "note", str(row.id), "called the sender")).returncode == 0
    shown = await gw(harness, "held", "show", str(row.id))
    assert "sensitive-data=hold  payment card number in text/plain part 0" in shown.stdout
    assert "called the sender" in shown.stdout
    body = await gw(harness, "held", "body", str(row.id))
    assert "4111 1111 1111 1111" in body.stdout


async def test_a_refused_message_keeps_a_copy_unless_the_tenant_says_no(harness):
    await harness.store().set_tenant_setting("acme", "sensitive_data", "reject", "test")
    await harness.refresh()
    try:
        await harness.send(card_message(), ["a@example.org"])
    except smtplib.SMTPDataError as exc:
        assert exc.smtp_code == 550
    (row,) = await held_rows(harness)
    assert row.status == "refused"
    await harness.store().set_tenant_setting("acme", "keep_refused", "no", "test")
    await harness.refresh()
    try:
        await harness.send(card_message(), ["a@example.org"])
    except smtplib.SMTPDataError:
        pass
    assert len(await held_rows(harness)) == 1


async def test_an_undecided_message_expires_with_a_report_and_old_copies_are_purged(harness):
    await asyncio.to_thread(send_data, harness, ["a@example.org"])
    await harness.store().set_tenant_setting("acme", "sensitive_data", "reject", "test")
    await harness.refresh()
    try:
        await harness.send(card_message(), ["b@example.org"])
    except smtplib.SMTPDataError:
        pass
    assert sorted(r.status for r in await held_rows(harness)) == ["held", "refused"]
    review = harness.gateway.review
    assert await review.run_once(datetime.now(UTC) + timedelta(days=1)) == 0  # not yet
    await review.run_once(datetime.now(UTC) + timedelta(days=15))
    rows = await held_rows(harness)
    assert sorted(r.status for r in rows) == ["expired", "refused"]  # refused: kept 30 days
    (report,) = await harness.gateway.queue.listing()
    assert report.kind is CopyKind.DSN and report.recipient == "sales@acme.example"
    async with harness.gateway.engine.connect() as conn:
        (event,) = (await conn.execute(sa.select(events).where(
            events.c.kind == "expired"))).all()
    assert await harness.gateway.event_names.recipient(event) == "a@example.org"
    await harness.gateway.retention.run_once(datetime.now(UTC) + timedelta(days=60))
    assert await held_rows(harness) == []  # decided and refused copies past retention


async def test_bulk_release_and_discard_of_a_filtered_selection(harness):
    for _ in range(3):
        await asyncio.to_thread(send_data, harness, ["a@example.org"])
    subject_hold = messages.simple().replace(b"Subject: Hello", b"Subject: Re: Hello")
    await harness.send(subject_hold, ["c@example.org"])  # held by misleading-subject
    rows = await held_rows(harness)
    assert sorted(r.check_name for r in rows) == ["misleading-subject"] + ["sensitive-data"] * 3
    released = await gw(harness, "held", "release-all", "--tenant", "acme", "--check",
                        "misleading-subject", "--reason", "thread markers are fine here")
    assert released.stdout.strip() == "1 released", released.stderr
    discarded = await gw(harness, "held", "discard-all", "--tenant", "acme", "--reason", "cards")
    assert discarded.stdout.strip() == "3 discarded", discarded.stderr
    statuses = sorted((r.check_name, r.status) for r in await held_rows(harness))
    assert statuses == [("misleading-subject", "release-requested")] + \
        [("sensitive-data", "discarded")] * 3
    assert len(await harness.gateway.queue.listing()) == 3  # one report per sender message
    other = await gw(harness, "held", "discard-all", "--tenant", "other", "--reason", "x")
    assert other.stdout.strip() == "0 discarded"
