"""Retention: how long each store of personal data is kept, and the purge that enforces it.

`SCHEDULE` is the single list of stores; `docs/retention.md` (the record-of-processing
table) is generated from it and a test keeps the two equal. One purge round (inside
`gateway serve` every `[retention] interval`, or `gateway purge`) deletes what is past its
time in every store and writes one audit row with the counts.

A tenant under legal hold (`gateway tenant legal-hold`) keeps its held and refused messages
and its suppression entries until the hold is lifted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.audit import trail as audit
from gateway.audit.verify import prune as prune_audit
from gateway.config import Config
from gateway.delivery.queue import OPEN_STATES, State
from gateway.errors import StoreError
from gateway.lifecycle.scrub import scrub
from gateway.optout.suppressions import Actor, Suppressions
from gateway.review.held import HeldStore
from gateway.store.schema import (
    events,
    feedback_marks,
    oauth_flows,
    opens,
    optout_receipts,
    optout_reviews,
    pending_copies,
    rate_counters,
    sent_messages,
    tenants,
    webhook_outbox,
)

log = logging.getLogger("gateway.retention")
PURGE_ACTOR = Actor("gateway:retention")

FINISHED_COPIES = tuple(s for s in State if s not in OPEN_STATES)  # delivered, bounced...


@dataclass(frozen=True, slots=True)
class Store:
    """One row of the record of processing."""

    name: str
    where: str  # table or place
    holds: str  # the personal data in it
    setting: str  # the configuration key of its retention
    days: Callable[[Config], float | None]  # None: not kept by time (see note)
    note: str = ""


SCHEDULE: tuple[Store, ...] = (
    Store("Held messages", "held_messages (status held)",
          "message body (sealed), envelope sender; recipients and subject sealed under the "
          "tenant key (opened per page view, audited), their keyed digests",
          "review.held_days", lambda c: c.review.held_days,
          "Then expired with a report to the sender; the copy is deleted "
          "review.refused_keep_days after that. Legal hold keeps it."),
    Store("Refused and decided messages", "held_messages (other statuses)",
          "message body (sealed), envelope sender; recipients and subject sealed under the "
          "tenant key, their keyed digests",
          "review.refused_keep_days", lambda c: c.review.refused_keep_days,
          "Counted from refusal or decision. Legal hold keeps it."),
    Store("Queued copies", "pending_copies (waiting)",
          "one recipient's copy (sealed), envelope, Message-ID",
          "queue.lifetime", lambda c: c.queue.lifetime / 86400,
          "Undelivered copies expire (the sender gets a DSN) and become finished copies."),
    Store("Finished copies and sent Message-IDs", "pending_copies (delivered, bounced, "
          "expired, deleted, failed)", "recipient, envelope sender, Message-ID, sealed copy, "
          "the upstream's reply", "retention.queue_days", lambda c: c.retention.queue_days,
          "Counted from the last attempt. This is the index of sent Message-IDs "
          "`gateway trace` reads."),
    Store("Tenant events", "events", "recipient address sealed under the tenant key, its "
          "keyed digest and masked form (digest only for an erased person), queue id, kind "
          "(opt-out, delivered, bounced, refused, held...)", "retention.events_days",
          lambda c: c.retention.events_days, "Readable by the tenant through the API and "
          "webhooks, which open the address."),
    Store("Webhook outbox", "webhook_outbox", "references to events (no address of its own)",
          "retention.webhook_outbox_days", lambda c: c.retention.webhook_outbox_days,
          "Delivered and failed rows; pending rows are kept until delivered or failed "
          "(events.lifetime)."),
    Store("Sent Message-IDs (feedback index)", "sent_messages",
          "Message-ID digest, recipient digests (audit and suppression keys), subject "
          "digest, tenant, mailbox, queue id", "retention.sent_index_days",
          lambda c: c.retention.sent_index_days,
          "Bounces, complaints and opt-out replies count only for a copy found here."),
    Store("Counted bounces and policy blocks", "feedback_marks",
          "recipient digests (audit and suppression keys), status code, tenant, mailbox",
          "retention.feedback_marks_days", lambda c: c.retention.feedback_marks_days,
          "Soft bounces counted toward an expiring suppression; 5.7.x blocks per mailbox."),
    Store("Possible opt-outs", "optout_reviews",
          "the reply (sealed: the writer's address and words), recipient digests, queue id",
          "retention.optout_reviews_days", lambda c: c.retention.optout_reviews_days,
          "Counted from arrival, decided or not: an undecided one suppresses nobody."),
    Store("Pixel opens", "opens", "recipient digest, network (/24 or /48), user-agent family",
          "retention.opens_days", lambda c: c.retention.opens_days),
    Store("Suppression entries", "suppressions", "address, or digest only after erasure",
          "-", lambda c: None,
          "Kept while they suppress: deleting one would mail the person again. Erasure "
          "replaces it by a digest-only entry."),
    Store("Expired suppression entries", "suppressions (expires_at passed)",
          "address", "suppressions.keep_expired_days",
          lambda c: c.suppressions.keep_expired_days,
          "Counted from expiry. Legal hold keeps the tenant's."),
    Store("Unsubscribe and pixel links", "none: sealed in each link (AES-256-GCM)",
          "recipient, tenant, mailbox, queue id, inside the token", "-", lambda c: None,
          "Nothing is stored per link. A link stops working when its key version is "
          "retired (`gateway key retire unsubscribe-token N`)."),
    Store("Audit trail", "audit_events (+ audit_batches, audit_anchors)",
          "recipient digests, actors (operator or login names), Message-IDs",
          "retention.audit_days", lambda c: c.retention.audit_days,
          "Pruned by whole batches under a signed checkpoint (`gateway audit verify` "
          "still passes)."),
    Store("Opt-out receipts", "optout_receipts",
          "recipient digest (audit key), tenant, channel, times, the signed receipt",
          "retention.audit_days", lambda c: c.retention.audit_days,
          "Kept with the audit trail they cite; digest-only, so they outlive erasure."),
    Store("Postmaster and abuse mail", "var/postmaster Maildir (mailto listener)",
          "whole messages people sent to postmaster@/abuse@", "retention.abuse_mail_days",
          lambda c: c.retention.abuse_mail_days),
    Store("OAuth sign-ins", "oauth_flows", "operator name, mailbox id (verifier sealed)",
          "retention.oauth_flows_days", lambda c: c.retention.oauth_flows_days,
          "Counted from expiry (10 minutes after start)."),
    Store("Logs", "stderr (journald under systemd)", "no body, token, full address or full "
          "client IP is ever logged; login names, queue ids, /24 networks", "journald",
          lambda c: None, "Set by journald's MaxRetentionSec (journald.conf), not by the gateway."),
)


def schedule_markdown(config: Config) -> str:
    """The record-of-processing table, with the defaults of `config`."""
    lines = ["| Store | Where | Personal data | Kept | Setting | Notes |",
             "|---|---|---|---|---|---|"]
    for s in SCHEDULE:
        days = s.days(config)
        kept = "while needed" if days is None else f"{days:g} days"
        lines.append(f"| {s.name} | {s.where} | {s.holds} | {kept} | `{s.setting}` | "
                     f"{s.note} |")
    return "\n".join(lines) + "\n"


async def legal_holds(conn: AsyncConnection) -> set[int]:
    """Tenants whose held messages and suppression entries must not be deleted."""
    return set((await conn.execute(sa.select(tenants.c.id).where(
        tenants.c.legal_hold_since.is_not(None)))).scalars())


@dataclass
class Purged:
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


_TABLE_OF = {"suppressions_expired": "suppressions"}  # a count not named for its table


class Retention:
    """One purge round over every store."""

    def __init__(self, config: Config, engine: AsyncEngine, held: HeldStore,
                 suppressions: Suppressions, anchor_key: Callable[[], bytes],
                 postmaster_dir: Path | None) -> None:
        self._config = config
        self._engine = engine
        self._held = held
        self._suppressions = suppressions
        self._anchor_key = anchor_key
        self._postmaster_dir = postmaster_dir

    async def run_once(self, now: datetime | None = None) -> Purged:
        now = now or datetime.now(UTC)
        r, review = self._config.retention, self._config.review

        def ago(days: float) -> datetime:
            return now - timedelta(days=days)

        counts: dict[str, int] = {}
        async with self._engine.connect() as conn:
            held_tenants = await legal_holds(conn)
        counts["held_messages"] = await self._held.purge(
            ago(review.refused_keep_days), ago(review.refused_keep_days),
            keep_tenants=held_tenants, limit=100_000)
        if self._suppressions.ready:  # else the digest key is not loaded (logged at start)
            counts["suppressions_expired"] = await self._suppressions.purge_expired(
                PURGE_ACTOR, self._config.suppressions.keep_expired_days, limit=100_000,
                keep_scopes=held_tenants, now=now.timestamp())
        async with self._engine.begin() as conn:
            counts["pending_copies"] = (await conn.execute(pending_copies.delete().where(
                pending_copies.c.state.in_([s.value for s in FINISHED_COPIES]),
                sa.func.coalesce(pending_copies.c.updated_at, pending_copies.c.created_at)
                < ago(r.queue_days)))).rowcount
            counts["events"] = (await conn.execute(events.delete().where(
                events.c.at < ago(r.events_days)))).rowcount
            counts["webhook_outbox"] = (await conn.execute(webhook_outbox.delete().where(
                webhook_outbox.c.state.in_(["delivered", "failed"]),
                webhook_outbox.c.created_at < ago(r.webhook_outbox_days)))).rowcount
            counts["opens"] = (await conn.execute(opens.delete().where(
                opens.c.at < ago(r.opens_days)))).rowcount
            counts["sent_messages"] = (await conn.execute(sent_messages.delete().where(
                sent_messages.c.sent_at < ago(r.sent_index_days)))).rowcount
            counts["feedback_marks"] = (await conn.execute(feedback_marks.delete().where(
                feedback_marks.c.at < ago(r.feedback_marks_days)))).rowcount
            counts["optout_reviews"] = (await conn.execute(optout_reviews.delete().where(
                optout_reviews.c.created_at < ago(r.optout_reviews_days)))).rowcount
            counts["oauth_flows"] = (await conn.execute(oauth_flows.delete().where(
                oauth_flows.c.expires_at < ago(r.oauth_flows_days)))).rowcount
            # not personal data: sending-limit windows that are over
            counts["rate_counters"] = (await conn.execute(rate_counters.delete().where(
                rate_counters.c.expires_at < int(now.timestamp())))).rowcount
        counts["audit_events"] = await prune_audit(self._engine, self._anchor_key(),
                                                   ago(r.audit_days))
        async with self._engine.begin() as conn:
            counts["optout_receipts"] = (await conn.execute(optout_receipts.delete().where(
                optout_receipts.c.effective_at < ago(r.audit_days)))).rowcount
        counts["abuse_mail"] = self._purge_maildir(ago(r.abuse_mail_days).timestamp())
        await self.refresh_statistics()
        purged = Purged({k: v or 0 for k, v in counts.items()})
        if purged.total:
            async with self._engine.begin() as conn:
                await audit.write(conn, [audit.row("retention.purged", actor=PURGE_ACTOR.name,
                                                   counts=purged.counts)])
            try:
                await scrub(self._engine, [_TABLE_OF.get(name, name)
                                           for name, n in purged.counts.items() if n])
            except StoreError as exc:  # the next round checkpoints again
                log.warning("retention purge: files not scrubbed yet", extra={
                    "error": exc.message})
            log.info("retention purge", extra={"counts": purged.counts})
        return purged

    async def refresh_statistics(self) -> None:
        """SQLite plans by its statistics too, and nothing else gathers them (PostgreSQL's
        autovacuum does): a bounded ANALYZE after each round keeps the review queue's and
        the suppression lookups' plans right as tables grow."""
        if self._engine.dialect.name != "sqlite":
            return
        async with self._engine.begin() as conn:
            await conn.exec_driver_sql("PRAGMA analysis_limit=1000")
            await conn.exec_driver_sql("ANALYZE")

    def _purge_maildir(self, before: float) -> int:
        """Messages of the postmaster/abuse Maildir older than `before` (by delivery)."""
        if self._postmaster_dir is None:
            return 0
        removed = 0
        for sub in ("new", "cur"):
            folder = self._postmaster_dir / sub
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                try:
                    if path.stat().st_mtime < before:
                        path.unlink()
                        removed += 1
                except FileNotFoundError:
                    continue  # another node's purge took it
        return removed
