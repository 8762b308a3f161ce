"""How a tenant event names its recipient, at rest and when read (issue 20).

Events are the tenant's own record of its mail, so the API and webhooks name the recipient
by address. At rest the address is sealed under the tenant's key (shredded with the tenant)
beside two fields that need no key to read: `recipient_digest`, the keyed digest of the
canonical address (one value for every spelling: case, dots, `+tags`), which export and
erasure match on; and `recipient_masked` (`j***@example.com`) for a person reading logs of
the tool. A recipient under an erasure entry is named by digest only: no sealed address,
no masked form, in the row, the API and the webhook.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, MutableMapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.store.schema import events
from gateway.vault.tenant_keys import TenantSealer
from suppression.canonical import InvalidAddress, canonical

LABEL = "event-recipient"


def masked(address: str) -> str:
    """`j***@example.com`: enough for a person to tell rows apart, not to mail them."""
    local, at, domain = address.rpartition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain.lower()}"


def canonical_or_folded(address: str) -> str:
    """The form a person's digest is taken of: the canonical address, or for a string that
    is not one (a refused syntax error) the case-folded text."""
    try:
        return canonical(address)
    except InvalidAddress:
        return address.casefold()


class EventNames:
    def __init__(self, sealer: TenantSealer, digest: Callable[[str], str]) -> None:
        self._sealer = sealer
        self._digest = digest  # the audit trail's keyed digest

    def person_digest(self, address: str) -> str:
        return self._digest(canonical_or_folded(address))

    async def seal(self, rows: Iterable[MutableMapping[str, Any]],
                   conn: AsyncConnection | None = None) -> None:
        """Turn each row's plain `recipient` (and `erased` flag) into the stored fields, in
        place. Rows already sealed, or naming no one, are left as they are. `conn`: the
        caller's transaction, when it holds one (TenantKeys.key)."""
        for row in rows:
            address = row.pop("recipient", None)
            erased = row.pop("erased", False)
            if not address:
                continue
            row["recipient_digest"] = self.person_digest(address)
            if erased:
                continue
            row["recipient_masked"] = masked(address)[:320]
            row["sealed_recipient"] = await self._sealer.seal(
                row["tenant_id"], address.encode(), LABEL, conn)

    async def recipient(self, row: Any) -> str | None:
        """The stored row's recipient address: None for an erased person (digest only), a
        shredded tenant, or an event naming no one."""
        if row.sealed_recipient is not None:
            plain = await self._sealer.open(row.tenant_id, row.sealed_recipient, LABEL)
            return plain.decode() if plain is not None else None
        return row.recipient  # type: ignore[no-any-return]  # a row sealed before 0020

    async def view(self, row: Any) -> dict[str, Any]:
        """The three names of a stored row's recipient, as the API and webhooks give them."""
        return {"recipient": await self.recipient(row),
                "recipient_digest": row.recipient_digest,
                "recipient_masked": row.recipient_masked}

    async def seal_legacy(self, engine: AsyncEngine, batch: int = 500) -> int:
        """Seal the recipients of rows written before 0020 and clear their plain column:
        run by a starting gateway. Returns how many rows it sealed."""
        done = 0
        while True:
            async with engine.begin() as conn:
                rows = (await conn.execute(sa.select(events.c.id, events.c.tenant_id,
                                                     events.c.recipient).where(
                    events.c.recipient.is_not(None)).limit(batch))).all()
                for r in rows:
                    named: dict[str, Any] = {"tenant_id": r.tenant_id,
                                             "recipient": r.recipient}
                    await self.seal([named], conn)
                    del named["tenant_id"]
                    await conn.execute(events.update().where(events.c.id == r.id).values(
                        recipient=None, **named))
            done += len(rows)
            if len(rows) < batch:
                return done
