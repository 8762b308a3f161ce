"""Access tokens for XOAUTH2: kept in memory until they expire, refreshed once per mailbox
across every task, process and node.

Single flight: inside a process, one asyncio lock per mailbox; across processes and nodes, a
lease on the credential row (`refresh_lease_until`), taken by a conditional UPDATE that
only one writer can win. The others wait for `token_version` to move and use the token the
winner stored. A refresh token the provider rotates is sealed before anything else is done.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.observability import metrics
from gateway.store.schema import mailbox_credentials
from gateway.vault.credentials import (
    DISCONNECTED,
    NEEDS_RECONSENT,
    CredentialRow,
    Credentials,
    access_name,
    missing_scopes,
    refresh_name,
)
from gateway.vault.oauth import ProviderEndpoints, ProviderError

log = logging.getLogger("gateway.tokens")

REFRESH_MARGIN = timedelta(minutes=5)  # refresh when less than this remains
LEASE = timedelta(seconds=30)  # a refresher that died frees the mailbox after this
BACKOFF = timedelta(seconds=10)  # after a failed refresh, answer 451 without asking again


class TokenUnavailable(Exception):
    """No usable access token. `state` names the mailbox state (never the token):
    'disconnected', 'needs-reconsent', 'not-connected' or 'temporary'."""

    def __init__(self, state: str, detail: str = "") -> None:
        super().__init__(f"{state}: {detail}" if detail else state)
        self.state = state
        self.detail = detail


@dataclass(slots=True)
class AccessToken:
    username: str
    token: str = field(repr=False)
    expires_at: datetime
    version: int


class TokenBroker:
    def __init__(self, engine: AsyncEngine, credentials: Credentials,
                 providers: Mapping[str, ProviderEndpoints], poll: float = 0.05) -> None:
        self._engine = engine
        self._credentials = credentials
        self._providers = providers
        self._poll = poll
        self._cache: dict[int, AccessToken] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self._failed: dict[int, tuple[datetime, TokenUnavailable]] = {}
        self.refreshes = 0  # refreshes this process made (metrics, tests)

    def forget(self, mailbox_id: int) -> None:
        self._cache.pop(mailbox_id, None)
        self._failed.pop(mailbox_id, None)

    def _fresh(self, token: AccessToken | None, now: datetime) -> bool:
        return token is not None and token.expires_at - now > REFRESH_MARGIN

    async def access_token(self, mailbox_id: int, tenant_id: int,
                           rejected: AccessToken | None = None) -> AccessToken:
        """A token with at least five minutes left. `rejected`: the upstream refused this
        token (revoked early, clock skew), so get a newer one even if it looks fresh."""
        now = datetime.now(UTC)
        cached = self._cache.get(mailbox_id)
        if cached is not None and cached.expires_at <= now:
            self._cache.pop(mailbox_id, None)  # kept in memory only until expiry
            cached = None
        if self._fresh(cached, now) and (rejected is None or cached is not rejected):
            assert cached is not None
            return cached
        lock = self._locks.setdefault(mailbox_id, asyncio.Lock())
        async with lock:
            cached = self._cache.get(mailbox_id)
            if self._fresh(cached, datetime.now(UTC)) and (
                    rejected is None or cached is not rejected):
                assert cached is not None
                return cached
            failed = self._failed.get(mailbox_id)
            if failed is not None and failed[0] > datetime.now(UTC):
                raise failed[1]  # the 49 messages behind a failed refresh do not retry it
            try:
                token = await self._obtain(mailbox_id, tenant_id,
                                           rejected.version if rejected else None)
            except TokenUnavailable as exc:
                self._failed[mailbox_id] = (datetime.now(UTC) + BACKOFF, exc)
                raise
            self._failed.pop(mailbox_id, None)
            self._cache[mailbox_id] = token
            return token

    async def _obtain(self, mailbox_id: int, tenant_id: int,
                      rejected_version: int | None) -> AccessToken:
        deadline = datetime.now(UTC) + LEASE + timedelta(seconds=5)
        while True:
            row = await self._credentials.row(mailbox_id)
            if row is None or row.kind != "oauth":
                raise TokenUnavailable("not-connected")
            now = datetime.now(UTC)
            if (row.access_expires_at is not None and row.access_expires_at - now > REFRESH_MARGIN
                    and row.token_version != rejected_version):
                stored = await self._credentials.secrets.get(tenant_id, access_name(mailbox_id))
                if stored:
                    return AccessToken(row.username, stored.decode(), row.access_expires_at,
                                       row.token_version)
            if await self._take_lease(row, now):
                return await self._refresh(row)
            if now > deadline:
                raise TokenUnavailable("temporary", "another refresh did not finish")
            await asyncio.sleep(self._poll)

    async def _take_lease(self, row: CredentialRow, now: datetime) -> bool:
        c = mailbox_credentials.c
        async with self._engine.begin() as conn:
            result = await conn.execute(mailbox_credentials.update().where(
                c.mailbox_id == row.mailbox_id, c.token_version == row.token_version,
                sa.or_(c.refresh_lease_until.is_(None), c.refresh_lease_until < now),
            ).values(refresh_lease_until=now + LEASE))
        return result.rowcount == 1

    async def _release(self, row: CredentialRow) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(mailbox_credentials.update().where(
                mailbox_credentials.c.mailbox_id == row.mailbox_id).values(
                refresh_lease_until=None))

    async def _refresh(self, row: CredentialRow) -> AccessToken:
        mailbox_id, tenant_id = row.mailbox_id, row.tenant_id
        try:
            endpoints = self._providers[row.provider]
            refresh_token = await self._credentials.secrets.get(tenant_id,
                                                                refresh_name(mailbox_id))
            if refresh_token is None or row.oauth_client_id is None:
                raise TokenUnavailable("not-connected")
            client = await self._credentials.client(row.oauth_client_id)
            self.refreshes += 1
            grant = await endpoints.refresh(client, refresh_token.decode())
        except ProviderError as exc:
            await self._release(row)
            if exc.revoked:
                # Consent revoked: no refresh loop. The mailbox waits for a person.
                await self._credentials.mark(mailbox_id, DISCONNECTED,
                                             "consent revoked at the provider (invalid_grant)",
                                             "vault", forget_tokens=True)
                metrics.TOKEN_REFRESHES.labels(row.provider, "revoked").inc()
                log.error("mailbox disconnected: grant revoked",
                          extra={"mailbox_id": mailbox_id, "provider": row.provider,
                                 "alert": "ops"})
                raise TokenUnavailable("disconnected") from None
            metrics.TOKEN_REFRESHES.labels(row.provider, "failed").inc()
            log.error("token refresh failed", extra={"mailbox_id": mailbox_id,
                                                     "provider": row.provider,
                                                     "error": exc.message, "alert": "ops"})
            raise TokenUnavailable("temporary", exc.message) from None
        except BaseException:
            await self._release(row)
            raise
        if grant.refresh_token is not None:  # rotated: keep the new one before anything else
            await self._credentials.secrets.put(tenant_id, refresh_name(mailbox_id),
                                                grant.refresh_token.encode())
        await self._credentials.secrets.put(tenant_id, access_name(mailbox_id),
                                            grant.access_token.encode())
        version = row.token_version + 1
        values: dict[str, object] = dict(
            access_expires_at=grant.expires_at, token_version=version,
            refresh_lease_until=None, updated_at=datetime.now(UTC))
        if grant.scopes:
            values["scopes"] = " ".join(grant.scopes)
        async with self._engine.begin() as conn:
            await conn.execute(mailbox_credentials.update().where(
                mailbox_credentials.c.mailbox_id == mailbox_id).values(**values))
        metrics.TOKEN_REFRESHES.labels(row.provider, "ok").inc()
        log.info("access token refreshed", extra={"mailbox_id": mailbox_id,
                                                  "provider": row.provider,
                                                  "rotated": grant.refresh_token is not None})
        required = self._credentials.providers[row.provider].config.scopes
        missing = missing_scopes(required, grant.scopes)
        if missing:
            await self._credentials.mark(mailbox_id, NEEDS_RECONSENT,
                                         f"grant lacks scopes: {' '.join(missing)}", "vault",
                                         forget_tokens=False)
            raise TokenUnavailable("needs-reconsent")
        return AccessToken(row.username, grant.access_token, grant.expires_at, version)
