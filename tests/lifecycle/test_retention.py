"""The retention round: every store purged past its time, legal hold respected, the audit
trail still verifiable after its own pruning; `gateway purge` and `gateway retention`."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from gateway.optout.suppressions import Actor
from gateway.store.schema import (
    events,
    feedback_marks,
    held_messages,
    mailboxes,
    oauth_flows,
    opens,
    optout_reviews,
    pending_copies,
    webhook_outbox,
)
from suppression.entries import Reason
from tests.support.cli import gw
from tests.support.held import held_rows, send_data

LATER = timedelta(days=800)  # every default retention is shorter


async def _fill(h, at: datetime) -> None:
    """One row of each database store, written at `at`, for tenant acme."""
    async with h.gateway.engine.begin() as conn:
        mailbox = (await conn.execute(sa.select(mailboxes.c.id).where(
            mailboxes.c.tenant_id == 1))).scalars().first()
        await conn.execute(events.insert().values(tenant_id=1, at=at, kind="delivered",
                                                  recipient="a@example.org", detail={}))
        await conn.execute(opens.insert().values(
            tenant_id=1, at=at, campaign="c", network="192.0.2.0/24", ua_family="other",
            machine=False))
        await conn.execute(webhook_outbox.insert().values(
            webhook_id=1, event_id=1, state="delivered", next_attempt_at=at, created_at=at))
        await conn.execute(oauth_flows.insert().values(
            ticket_hash=os.urandom(8).hex(), state_hash=os.urandom(8).hex(), tenant_id=1,
            mailbox_id=mailbox, provider="gmail", oauth_client_id=1, sealed_verifier=b"x",
            key_id="k", created_by="ops", created_at=at, expires_at=at))
        await conn.execute(pending_copies.insert().values(
            queue_id=os.urandom(6).hex(), tenant_id=1, mailbox_id=mailbox,
            envelope_from="sales@acme.example", recipient="a@example.org", state="delivered",
            reply_code=250, reply_status="2.0.0", reply_text="ok", sealed_message=b"x",
            key_id="k", created_at=at, updated_at=at))
        await conn.execute(feedback_marks.insert().values(
            tenant_id=1, mailbox_id=mailbox, kind="soft", status="4.2.2",
            suppression_digest=b"d" * 16, recipient_digest="r", at=at))
        await conn.execute(optout_reviews.insert().values(
            tenant_id=1, mailbox_id=mailbox, queue_id="Q", recipient_digest="r", rule="x",
            sealed_reply=b"x", key_id="k", status="pending", created_at=at))


async def _counts(h) -> dict[str, int]:
    async with h.gateway.engine.connect() as conn:
        return {t.name: (await conn.execute(sa.select(sa.func.count()).select_from(t)))
                .scalar_one() for t in (events, opens, webhook_outbox, oauth_flows,
                                        pending_copies, held_messages, feedback_marks,
                                        optout_reviews)}


async def test_a_round_purges_every_store_past_its_time_but_not_under_legal_hold(harness):
    now = datetime.now(UTC)
    await _fill(harness, now)  # old by the time the round looks
    await _fill(harness, now + LATER)  # recent then: kept
    await asyncio.to_thread(send_data, harness, ["a@example.org"])  # held by sensitive-data
    ops = Actor("test")
    soon = int(time.time()) + 60  # in the future when added, however slow the host
    for tenant in (1, 2):
        await harness.gateway.suppressions.add(ops, tenant, "soft@example.org", Reason.BOUNCE,
                                               "t", expires_at=soon)
    postmaster = harness.gateway.config.data_dir + "/postmaster/new"
    os.makedirs(postmaster, exist_ok=True)
    with open(postmaster + "/1.msg", "w") as f:
        f.write("Subject: abuse report\n\nbody\n")
    await harness.gateway.review.run_once(now + timedelta(days=15))  # expires the held one
    assert [r.status for r in await held_rows(harness)] == ["expired"]
    held = await gw(harness, "tenant", "legal-hold", "acme", "--reason", "case 2026-114")
    assert held.returncode == 0 and "legal hold since" in held.stdout, held.stderr

    purged = await harness.gateway.retention.run_once(now + LATER)

    assert await _counts(harness) == {"events": 1, "opens": 1, "webhook_outbox": 1,
                                      "oauth_flows": 1, "held_messages": 1,  # legal hold
                                      "pending_copies": 2,  # + the expiry's report, unsent
                                      "feedback_marks": 1, "optout_reviews": 1}
    assert purged.counts["held_messages"] == 0
    assert purged.counts["suppressions_expired"] == 1  # the other tenant's only
    assert purged.counts["abuse_mail"] == 1 and purged.counts["audit_events"] > 0
    assert not os.listdir(postmaster)
    lifted = await gw(harness, "tenant", "legal-hold", "acme", "--lift")
    assert "no legal hold" in lifted.stdout, lifted.stderr
    again = await harness.gateway.retention.run_once(now + LATER)
    assert again.counts["held_messages"] == 1 and again.counts["suppressions_expired"] == 1
    verified = await gw(harness, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "1 checkpoints" in verified.stdout or "2 checkpoints" in verified.stdout


async def test_gateway_purge_runs_the_round_and_prints_counts(harness):
    await _fill(harness, datetime.now(UTC) - timedelta(days=400))
    result = await gw(harness, "purge")
    assert result.returncode == 0, result.stderr
    assert "events\t1" in result.stdout and "pending_copies\t1" in result.stdout
    assert await _counts(harness) == {"events": 0, "opens": 0, "webhook_outbox": 0,
                                      "oauth_flows": 0, "pending_copies": 0,
                                      "held_messages": 0, "feedback_marks": 0,
                                      "optout_reviews": 0}
    table = await gw(harness, "retention")
    assert "| Pixel opens |" in table.stdout and "`retention.opens_days`" in table.stdout


async def test_a_legal_hold_needs_a_reason(harness):
    result = await gw(harness, "tenant", "legal-hold", "acme", "--reason", "  ")
    assert result.returncode != 0 and "--reason must say why" in result.stderr
