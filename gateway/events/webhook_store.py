"""Tenant webhooks: one URL per tenant, its signing secret sealed by the vault."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit import trail as audit
from gateway.errors import NotFound
from gateway.store.schema import events, webhooks
from gateway.vault.envelope import Vault


@dataclass(frozen=True, slots=True)
class Webhook:
    id: int
    tenant_id: int
    url: str
    secret: bytes = field(repr=False)


def seal_context(tenant_id: int) -> bytes:
    return f"webhooks|{tenant_id}|secret".encode()


class TenantWrapper(Protocol):
    """Seals a value under its tenant's key first (vault/tenant_keys.py, TenantSealer)."""

    async def wrap(self, tenant_id: int, value: bytes, label: str) -> bytes: ...

    async def unwrap(self, tenant_id: int, blob: bytes, label: str) -> bytes: ...


SECRET_LABEL = "webhook-secret"


class WebhookStore:
    def __init__(self, engine: AsyncEngine, vault: Vault, tenant: TenantWrapper) -> None:
        self._engine = engine
        self._vault = vault
        self._tenant = tenant  # the secret goes with the tenant's key (issue 21)

    async def set(self, tenant_id: int, url: str, actor: str) -> str:
        """Create or replace the tenant's webhook; returns the new secret (shown once)."""
        secret = secrets.token_bytes(32)
        sealed, key_id = self._vault.seal(await self._tenant.wrap(tenant_id, secret, SECRET_LABEL),
                                          seal_context(tenant_id))
        now = datetime.now(UTC)
        async with self._engine.begin() as conn:
            existing = (await conn.execute(sa.select(webhooks.c.id).where(
                webhooks.c.tenant_id == tenant_id))).first()
            values = {"url": url, "sealed_secret": sealed, "key_id": key_id}
            if existing:
                await conn.execute(webhooks.update().where(webhooks.c.id == existing.id)
                                   .values(**values))
            else:
                # events from now on: start the cursor after the tenant's newest event
                newest = (await conn.execute(sa.select(sa.func.max(events.c.id)).where(
                    events.c.tenant_id == tenant_id))).scalar()
                await conn.execute(webhooks.insert().values(
                    tenant_id=tenant_id, created_at=now, event_cursor=newest or 0, **values))
            await audit.write(conn, [audit.row("webhook.set", actor=actor, tenant_id=tenant_id,
                                                  url=url)])
        return base64.urlsafe_b64encode(secret).decode().rstrip("=")

    async def remove(self, tenant_id: int, actor: str) -> None:
        async with self._engine.begin() as conn:
            result = await conn.execute(webhooks.delete().where(webhooks.c.tenant_id == tenant_id))
            if result.rowcount == 0:
                raise NotFound("This tenant has no webhook.")
            await audit.write(conn, [audit.row("webhook.removed", actor=actor,
                                                  tenant_id=tenant_id)])

    async def url_of(self, tenant_id: int) -> str | None:
        """Where the tenant's events go (the secret is never shown again)."""
        async with self._engine.connect() as conn:
            url: str | None = (await conn.execute(sa.select(webhooks.c.url).where(
                webhooks.c.tenant_id == tenant_id))).scalar()
        return url

    async def get(self, webhook_id: int) -> Webhook | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(webhooks).where(
                webhooks.c.id == webhook_id))).first()
        if row is None:
            return None
        secret = await self._tenant.unwrap(row.tenant_id, self._vault.open(
            row.sealed_secret, row.key_id, seal_context(row.tenant_id)), SECRET_LABEL)
        return Webhook(row.id, row.tenant_id, row.url, secret)
