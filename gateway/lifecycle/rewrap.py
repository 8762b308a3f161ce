"""`gateway vault rewrap`: move every sealed value to the primary master key; and `gateway
vault reseal`: seal a tenant's values written before tenant keys under its key.

Only the wrapped data keys change (format 2), batch by batch, each batch its own
transaction; an update applies only if the row still names the old key (reseal: still holds
the value it read), so a run killed half-way (or racing a node that rewrote the row) is
simply run again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.delivery.queue import copy_label
from gateway.delivery.queue import seal_context as queue_context
from gateway.dkim.keys import key_label
from gateway.dkim.keys import seal_context as dkim_context
from gateway.errors import VaultError
from gateway.events.webhook_store import SECRET_LABEL
from gateway.events.webhook_store import seal_context as webhook_context
from gateway.feedback.apply import reply_label, review_context
from gateway.review.accounts import seal_context as reviewer_context
from gateway.review.held import body_label
from gateway.review.held import seal_context as held_context
from gateway.store.schema import (
    dkim_keys,
    held_messages,
    oauth_flows,
    optout_reviews,
    pending_copies,
    purpose_keys,
    reviewers,
    sealed_secrets,
    tenant_keys,
    webhooks,
)
from gateway.vault.envelope import Vault
from gateway.vault.flows import seal_context as flow_context
from gateway.vault.purpose import seal_context as purpose_context
from gateway.vault.secrets import seal_context as secret_context
from gateway.vault.tenant_keys import MARKER, TenantSealer
from gateway.vault.tenant_keys import seal_context as tenant_key_context


@dataclass(frozen=True, slots=True)
class SealedColumn:
    """A column holding sealed values, with the context each row was sealed under."""

    table: sa.Table
    blob: str
    context: Callable[[Any], bytes]


SEALED: tuple[SealedColumn, ...] = (
    SealedColumn(pending_copies, "sealed_message",
                 lambda r: queue_context(r.tenant_id, r.queue_id, r.recipient)),
    SealedColumn(webhooks, "sealed_secret", lambda r: webhook_context(r.tenant_id)),
    SealedColumn(purpose_keys, "sealed_key", lambda r: purpose_context(r.purpose, r.version)),
    SealedColumn(sealed_secrets, "sealed", lambda r: secret_context(r.tenant_id, r.name)),
    SealedColumn(dkim_keys, "sealed_key", lambda r: dkim_context(r.domain, r.selector)),
    SealedColumn(held_messages, "sealed_message",
                 lambda r: held_context(r.tenant_id, r.queue_id)),
    SealedColumn(oauth_flows, "sealed_verifier",
                 lambda r: flow_context(r.tenant_id, r.ticket_hash)),
    SealedColumn(reviewers, "sealed_totp", lambda r: reviewer_context(r.username)),
    SealedColumn(tenant_keys, "sealed_key", lambda r: tenant_key_context(r.tenant_id)),
    SealedColumn(optout_reviews, "sealed_reply",
                 lambda r: review_context(r.tenant_id, r.queue_id)),
)


async def remaining(engine: AsyncEngine, vault: Vault) -> int:
    total = 0
    async with engine.connect() as conn:
        for col in SEALED:
            total += (await conn.execute(sa.select(sa.func.count()).select_from(col.table)
                                         .where(col.table.c.key_id != vault.primary_key_id))
                      ).scalar() or 0
    return total


async def rewrap(engine: AsyncEngine, vault: Vault, batch: int = 500,
                 progress: Callable[[int], None] = lambda n: None, pause: float = 0.0) -> int:
    """Re-wrap every value not under the primary key; returns how many were re-wrapped.

    `pause` seconds between batches spare a database that is busy carrying mail.
    """
    done = 0
    for col in SEALED:
        t = col.table
        after = 0
        while True:
            async with engine.connect() as conn:
                rows = (await conn.execute(
                    sa.select(t).where(t.c.key_id != vault.primary_key_id, t.c.id > after)
                    .order_by(t.c.id).limit(batch))).all()
            if not rows:
                break
            params = []
            for row in rows:
                blob, key_id = vault.rewrap(getattr(row, col.blob), row.key_id,
                                            col.context(row))
                params.append({"b_id": row.id, "b_old": row.key_id, "b_blob": blob,
                               "b_key": key_id})
            statement = t.update().where(
                t.c.id == sa.bindparam("b_id"), t.c.key_id == sa.bindparam("b_old")
            ).values({col.blob: sa.bindparam("b_blob"), "key_id": sa.bindparam("b_key")})
            async with engine.begin() as conn:
                await conn.execute(statement, params)
            after = rows[-1].id
            done += len(rows)
            progress(len(rows))
            if pause:
                await asyncio.sleep(pause)
    return done


# What is sealed under its tenant's key (then by the vault), with the label bound in.
def _sealed(table: sa.Table) -> SealedColumn:
    (col,) = [c for c in SEALED if c.table is table]
    return col


TENANT_SEALED: tuple[tuple[SealedColumn, Callable[[Any], str]], ...] = (
    (_sealed(pending_copies), lambda r: copy_label(r.queue_id, r.recipient)),
    (_sealed(held_messages), lambda r: body_label(r.queue_id)),
    (_sealed(optout_reviews), lambda r: reply_label(r.queue_id)),
    (_sealed(dkim_keys), lambda r: key_label(r.domain, r.selector)),
    (_sealed(webhooks), lambda r: SECRET_LABEL),
    # mailbox secrets sealed before tenant keys (TenantSealedSecrets: the same format)
    (_sealed(sealed_secrets), lambda r: str(r.name)),
)


async def reseal(engine: AsyncEngine, vault: Vault, sealer: TenantSealer, batch: int = 500,
                 progress: Callable[[int], None] = lambda n: None, pause: float = 0.0) -> int:
    """Seal values written before tenant keys under their tenant's key (issue 21), online:
    each row is rewritten only if it still holds what was read. Rows of a deleted or keyless
    tenant are left. Returns how many were re-sealed; a second run finds none."""
    done = 0
    for col, label in TENANT_SEALED:
        t, blob = col.table, col.table.c[col.blob]
        after = 0
        while True:
            async with engine.connect() as conn:
                rows = (await conn.execute(sa.select(t).where(t.c.id > after)
                                           .order_by(t.c.id).limit(batch))).all()
            if not rows:
                break
            after = rows[-1].id
            params = []
            for row in rows:
                old = getattr(row, col.blob)
                inner = vault.open(old, row.key_id, col.context(row))
                if inner.startswith(MARKER):
                    continue
                try:
                    wrapped = await sealer.wrap(row.tenant_id, inner, label(row))
                except VaultError:  # the tenant was deleted, or its key is missing
                    continue
                sealed, key_id = vault.seal(wrapped, col.context(row))
                params.append({"b_id": row.id, "b_old": old, "b_blob": sealed,
                               "b_key": key_id})
            if params:
                statement = t.update().where(
                    t.c.id == sa.bindparam("b_id"), blob == sa.bindparam("b_old")
                ).values({col.blob: sa.bindparam("b_blob"), "key_id": sa.bindparam("b_key")})
                async with engine.begin() as conn:
                    await conn.execute(statement, params)
                done += len(params)
                progress(len(params))
            if pause:
                await asyncio.sleep(pause)
    return done
