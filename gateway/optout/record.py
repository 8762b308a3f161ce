"""The one place an opt-out is recorded, whatever it came from (one-click POST, mailto).

One transaction holds the tenant-scoped suppression entry (reason `unsubscribe`), the tenant
event (`unsubscribed`, which the webhook dispatcher fans out) and the audit row. It commits
before the caller answers, so the next RCPT for that recipient is refused.

Idempotent: a second opt-out of someone already unsubscribed changes nothing and writes no
second event (mailbox providers repeat one-click POSTs).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit import trail as audit
from gateway.audit.trail import EventSealer
from gateway.directory.store import audit_change
from gateway.observability import metrics
from gateway.optout.receipts import ReceiptSigner, receipts_of
from gateway.optout.suppressions import Suppressions
from gateway.optout.token import Claims
from gateway.store.schema import tenants
from suppression.canonical import InvalidAddress, canonical
from suppression.entries import GLOBAL, Kind, NewEntry, Reason, Target

log = logging.getLogger("gateway.optout")


@dataclass(frozen=True, slots=True)
class Recorded:
    new: bool  # False: the recipient was already unsubscribed from this tenant
    entry_id: int
    receipt: str = ""  # the signed receipt (optout/receipts.py), this one's or the first


class OptOuts:
    def __init__(self, engine: AsyncEngine, suppressions: Suppressions,
                 names: EventSealer, receipts: ReceiptSigner | None = None) -> None:
        self._engine = engine
        self._suppressions = suppressions
        self._names = names  # seals the recipient of the `unsubscribed` event
        self._receipts = receipts  # signs the opt-out's receipt (optout/receipts.py)

    async def record(self, claims: Claims, source: str) -> Recorded:
        received = datetime.now(UTC)
        store = self._suppressions.store  # VaultError when the digest key is not loaded
        try:
            target = Target(Kind.ADDRESS, canonical(claims.recipient))
        except InvalidAddress:
            # Sealed by us, so it was valid when sent; canonical rules may have tightened.
            target = Target(Kind.ADDRESS, claims.recipient.casefold())
        now = int(time.time())
        scope = claims.tenant_id
        async with self._engine.begin() as conn:
            status = (await conn.execute(sa.select(tenants.c.status).where(
                tenants.c.id == scope))).scalar()
            if status == "deleted":
                # The tenant left (gateway tenant delete): it sends nothing any more, and
                # recording would bring back personal data its deletion removed.
                return Recorded(False, 0)
            before = await store.find(conn, scope, target)
            digest = self._suppressions.audit_digest
            if before is not None and before.reason is Reason.UNSUBSCRIBE \
                    and before.active(now):
                found = await receipts_of(conn, scope, digest(claims.recipient)) \
                    if digest is not None else []
                return Recorded(False, before.id, found[0] if found else "")
            for erased in (before, await store.find(conn, GLOBAL, target)):
                if erased is not None and erased.reason is Reason.ERASURE:
                    # An old link of an erased person: they stay suppressed, and recording it
                    # would store their address again (issue 20). Nothing more is written.
                    return Recorded(False, erased.id)
            await store.add(conn, [NewEntry(scope, target, Reason.UNSUBSCRIBE, source, now,
                                            created_by=f"recipient:{source}")], now)
            entry = await store.find(conn, scope, target)
            assert entry is not None
            head = await audit_change(conn, f"recipient:{source}", "optout.recorded", scope,
                                      entry=entry.id, digest=entry.digest.hex(),
                                      source=source, queue_id=claims.queue_id,
                                      mailbox_id=claims.mailbox_id)
            pending: list[int] = []
            if self._receipts is not None and digest is not None:
                pending.append(await self._receipts.pend(conn, scope, digest(claims.recipient),
                                                         source, received, head))
            rows = [audit.event("unsubscribed", tenant_id=scope, queue_id=claims.queue_id,
                                recipient=claims.recipient, source=source,
                                mailbox_id=claims.mailbox_id)]
            await self._names.seal(rows, conn)
            await audit.write(conn, (), rows)
        # signed once the entry is committed: effective-at is a time it was enforced
        signed = await self._receipts.complete(self._engine, pending) if self._receipts else []
        receipt = signed[0] if signed else ""
        metrics.OPT_OUTS.labels(source).inc()
        log.info("opt-out recorded", extra={"tenant_id": scope, "source": source,
                                            "queue_id": claims.queue_id})
        return Recorded(True, entry.id, receipt)
