"""Delivers tenant events to the tenant's webhook: batched, HMAC-signed, retried.

Each request is `POST <url>` with `{"events": [...]}` and the header
`X-OCG-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`; receivers
check the signature and reject old timestamps. Outbox rows survive restarts; a row that
cannot be delivered within `events.lifetime` is marked failed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway import background
from gateway.config import EventsConfig, FetchConfig
from gateway.events.names import EventNames
from gateway.events.targets import webhook_fetcher
from gateway.events.webhook_store import WebhookStore
from gateway.net.fetch import FetchRefused
from gateway.store.schema import events, webhook_outbox, webhooks

log = logging.getLogger("gateway.webhooks")


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class WebhookDispatcher:
    def __init__(self, engine: AsyncEngine, store: WebhookStore, config: EventsConfig,
                 names: EventNames, fetch: FetchConfig | None = None) -> None:
        self._engine = engine
        self._names = names  # opens each event's recipient (events/names.py)
        self._store = store
        self._config = config
        self._poller = background.Poller(self.run_once, full=1, interval=config.poll_interval,
                                         log=log, name="webhooks")
        fetch = fetch or FetchConfig()
        self._fetcher = webhook_fetcher(config.allow_private_targets, dataclasses.replace(
            fetch, timeout=config.timeout))

    async def start(self) -> None:
        self._poller.start()

    async def stop(self) -> None:
        await self._poller.stop()
        await self._fetcher.close()

    async def _fan_out(self, now: datetime) -> None:
        """New events of each webhook's tenant become its outbox rows; the cursor moves on.

        One transaction per webhook, the webhook row locked (SKIP LOCKED on PostgreSQL), so
        two nodes never put the same event in the outbox twice.
        """
        async with self._engine.connect() as conn:
            hook_ids = [r[0] for r in await conn.execute(sa.select(webhooks.c.id))]
        for hook_id in hook_ids:
            async with self._engine.begin() as conn:
                hook = (await conn.execute(sa.select(webhooks).where(webhooks.c.id == hook_id)
                                           .with_for_update(skip_locked=True))).first()
                if hook is None:
                    continue
                new = (await conn.execute(
                    sa.select(events.c.id).where(events.c.tenant_id == hook.tenant_id,
                                                 events.c.id > hook.event_cursor)
                    .order_by(events.c.id).limit(self._config.batch * 10))).all()
                if not new:
                    continue
                await conn.execute(webhook_outbox.insert(), [
                    {"webhook_id": hook.id, "event_id": e.id, "state": "pending",
                     "attempts": 0, "next_attempt_at": now, "created_at": now,
                     "last_status": ""} for e in new])
                await conn.execute(webhooks.update().where(
                    webhooks.c.id == hook.id, webhooks.c.event_cursor == hook.event_cursor)
                    .values(event_cursor=new[-1].id))

    async def _claim(self, now: datetime) -> list[Any]:
        t = webhook_outbox
        due = sa.or_(sa.and_(t.c.state == "pending", t.c.next_attempt_at <= now),
                     sa.and_(t.c.state == "sending", t.c.lease_until < now))
        claimed = []
        async with self._engine.begin() as conn:
            rows = (await conn.execute(sa.select(t).where(due).order_by(t.c.id)
                                       .limit(self._config.batch * 10)
                                       .with_for_update(skip_locked=True))).all()
            for row in rows:
                lease = now + timedelta(seconds=self._config.timeout * 3)
                taken = await conn.execute(t.update().where(t.c.id == row.id,
                                                            t.c.state == row.state)
                                           .values(state="sending", lease_until=lease))
                if taken.rowcount == 1:
                    claimed.append(row)
        return claimed

    async def run_once(self, now: datetime | None = None) -> int:
        now = now or datetime.now(UTC)
        await self._fan_out(now)
        claimed = await self._claim(now)
        by_hook: dict[int, list[Any]] = {}
        for row in claimed:
            by_hook.setdefault(row.webhook_id, []).append(row)
        for webhook_id, rows in by_hook.items():
            for start in range(0, len(rows), self._config.batch):
                await self._deliver(webhook_id, rows[start : start + self._config.batch], now)
        return len(claimed)

    async def _deliver(self, webhook_id: int, rows: list[Any], now: datetime) -> None:
        webhook = await self._store.get(webhook_id)
        if webhook is None:  # removed since: nothing to deliver to
            await self._finish(rows, "failed", "webhook removed", now)
            return
        async with self._engine.connect() as conn:
            found = (await conn.execute(sa.select(events).where(
                events.c.id.in_([r.event_id for r in rows])).order_by(events.c.id))).all()
        payload = [{"id": e.id, "kind": e.kind, "at": _aware(e.at).isoformat(),
                    "queue_id": e.queue_id, **await self._names.view(e),
                    "detail": e.detail} for e in found]
        body = json.dumps({"events": payload}, separators=(",", ":")).encode()
        status = ""
        try:
            response = await self._fetcher.request("POST", webhook.url, content=body, headers={
                "Content-Type": "application/json",
                "X-OCG-Signature": sign(webhook.secret, int(time.time()), body),
                "User-Agent": "outreach-compliance-gateway-webhooks",
            })
            status = f"HTTP {response.status}"
            ok = 200 <= response.status < 300
        except FetchRefused as exc:
            status, ok = str(exc), False
        except httpx.HTTPError as exc:
            status, ok = type(exc).__name__, False
        if ok:
            await self._finish(rows, "delivered", status, now)
        else:
            log.warning("webhook delivery failed", extra={"webhook_id": webhook_id,
                                                          "status": status,
                                                          "events": len(rows)})
            await self._retry(rows, status, now)

    async def _finish(self, rows: list[Any], state: str, status: str, now: datetime) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(webhook_outbox.update().where(
                webhook_outbox.c.id.in_([r.id for r in rows])).values(
                state=state, lease_until=None, last_status=status[:200],
                attempts=webhook_outbox.c.attempts + 1))

    async def _retry(self, rows: list[Any], status: str, now: datetime) -> None:
        cfg = self._config
        async with self._engine.begin() as conn:
            for r in rows:
                expired = now - _aware(r.created_at) > timedelta(seconds=cfg.lifetime)
                delay = min(cfg.retry_first * cfg.retry_factor ** r.attempts, cfg.retry_max)
                await conn.execute(webhook_outbox.update().where(webhook_outbox.c.id == r.id)
                                   .values(state="failed" if expired else "pending",
                                           lease_until=None, last_status=status[:200],
                                           attempts=r.attempts + 1,
                                           next_attempt_at=now + timedelta(seconds=delay)))
