"""Mailbox credentials and OAuth clients: the rows that say how a mailbox logs in upstream,
and the sealed secrets that let it (refresh and access tokens, passwords, client secrets).

Every change writes its audit row. Disconnecting deletes the sealed tokens at once and
revokes them at the provider when it has a revocation endpoint.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.config import OAUTH_UPSTREAM_KINDS, Config
from gateway.directory.records import Mailbox
from gateway.directory.store import (
    DirectoryStore,
    audit_change,
    mailbox_from_row,
    new_public_id,
)
from gateway.errors import InvalidValue, NotFound
from gateway.store.engine import aware
from gateway.store.schema import mailbox_credentials, mailboxes, oauth_clients
from gateway.vault.oauth import OAuthClient, ProviderEndpoints, TokenGrant
from gateway.vault.secrets import SecretStore

log = logging.getLogger("gateway.credentials")

# Mailbox states (mailboxes.status) this module sets.
ACTIVE, DISCONNECTED, NEEDS_RECONSENT = "active", "disconnected", "needs-reconsent"
# offline_access asks for a refresh token; providers do not echo it in the granted scopes.
_NOT_ECHOED = {"offline_access", "openid", "email", "profile"}


def refresh_name(mailbox_id: int) -> str:
    return f"mailbox/{mailbox_id}/refresh_token"


def access_name(mailbox_id: int) -> str:
    return f"mailbox/{mailbox_id}/access_token"


def password_name(mailbox_id: int) -> str:
    return f"mailbox/{mailbox_id}/password"


def client_secret_name(client_row_id: int) -> str:
    return f"oauth_client/{client_row_id}/client_secret"


@dataclass(frozen=True, slots=True)
class CredentialRow:
    mailbox_id: int
    tenant_id: int
    kind: str  # oauth | password
    provider: str
    oauth_client_id: int | None
    username: str
    scopes: tuple[str, ...]
    access_expires_at: datetime | None
    token_version: int
    refresh_lease_until: datetime | None


def _row(r: Any) -> CredentialRow:
    return CredentialRow(r.mailbox_id, r.tenant_id, r.kind, r.provider, r.oauth_client_id,
                         r.username, tuple(r.scopes.split()), aware(r.access_expires_at),
                         r.token_version, aware(r.refresh_lease_until))


def provider_for_upstream(config: Config, upstream: str) -> str | None:
    up = config.upstreams.get(upstream)
    return OAUTH_UPSTREAM_KINDS.get(up.kind) if up is not None else None


async def add_mailbox(config: Config, directory: DirectoryStore, tenant_name: str,
                      address: str, upstream: str, actor: str) -> tuple[str, bool]:
    """A sending mailbox on a configured upstream: (its address, whether it must be
    connected by OAuth next; until then it is `disconnected`)."""
    if upstream not in config.upstreams:
        known = ", ".join(sorted(config.upstreams))
        raise InvalidValue(f"Upstream '{upstream}' is not configured (known: {known}).")
    oauth = provider_for_upstream(config, upstream) is not None
    added = await directory.add_mailbox(
        tenant_name, address, upstream, actor,
        status="disconnected" if oauth else "active",
        status_reason="not connected yet" if oauth else "")
    return added, oauth


def missing_scopes(required: tuple[str, ...], granted: tuple[str, ...]) -> list[str]:
    if not granted:  # the provider did not say: the grant is what was asked for
        return []
    return [s for s in required if s not in granted and s not in _NOT_ECHOED]


class Credentials:
    def __init__(self, engine: AsyncEngine, secrets: SecretStore, config: Config,
                 providers: Mapping[str, ProviderEndpoints]) -> None:
        self._engine = engine
        self.secrets = secrets
        self.config = config
        self.providers = providers

    async def close(self) -> None:
        for endpoints in self.providers.values():
            await endpoints.close()
        await self.secrets.close()

    # --- mailboxes -------------------------------------------------------------------------
    async def remove_mailbox(self, directory: DirectoryStore, mailbox: Mailbox,
                             actor: str) -> None:
        """Remove a mailbox; its sealed tokens are revoked at the provider first (once
        the mailbox is known to be removable: no undelivered copies)."""
        await directory.removable_mailbox(mailbox.address)
        if await self.row(mailbox.id) is not None:
            await self.disconnect(mailbox, actor, "mailbox removed")
        await directory.remove_mailbox(mailbox.address, actor)

    # --- OAuth clients ---------------------------------------------------------------------
    async def add_client(self, provider: str, client_id: str, client_secret: str,
                         tenant_id: int | None, actor: str) -> str:
        if provider not in self.config.oauth:
            known = ", ".join(sorted(self.config.oauth)) or "none"
            raise InvalidValue(f"OAuth provider '{provider}' is not configured (known: {known}).")
        if not client_id or not client_secret:
            raise InvalidValue("An OAuth client needs a client id and a client secret.")
        public_id = new_public_id("ocl")
        now = datetime.now(UTC)
        async with self._engine.begin() as conn:
            result = await conn.execute(oauth_clients.insert().values(
                public_id=public_id, tenant_id=tenant_id, provider=provider,
                client_id=client_id, created_at=now))
            assert result.inserted_primary_key is not None
            row_id = result.inserted_primary_key[0]
            await audit_change(conn, actor, "oauth_client.added", tenant_id, provider=provider,
                         client=public_id)
        await self.secrets.put(tenant_id or 0, client_secret_name(row_id),
                               client_secret.encode())
        return public_id

    async def list_clients(self, tenant_id: int | None, only_tenant: bool
                           ) -> list[tuple[str, int | None, str, str]]:
        """(public id, tenant id, provider, client id) of each client; never the secret."""
        query = sa.select(oauth_clients).order_by(oauth_clients.c.id)
        if only_tenant:
            query = query.where(oauth_clients.c.tenant_id == tenant_id)
        async with self._engine.connect() as conn:
            return [(r.public_id, r.tenant_id, r.provider, r.client_id)
                    for r in await conn.execute(query)]

    async def client(self, row_id: int) -> OAuthClient:
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(oauth_clients).where(
                oauth_clients.c.id == row_id))).first()
        if row is None:
            raise NotFound("The OAuth client of this mailbox no longer exists.")
        secret = await self.secrets.get(row.tenant_id or 0, client_secret_name(row.id))
        if secret is None:
            raise NotFound("The OAuth client's secret is missing.")
        return OAuthClient(row.id, row.provider, row.client_id, secret.decode())

    async def find_client(self, provider: str, tenant_id: int,
                          client_id: str | None = None) -> OAuthClient:
        """The tenant's own client for `provider` first, else a global one. With a client
        id (an imported token), only a client with that id will do."""
        query = sa.select(oauth_clients).where(
            oauth_clients.c.provider == provider,
            sa.or_(oauth_clients.c.tenant_id == tenant_id, oauth_clients.c.tenant_id.is_(None)))
        if client_id is not None:
            query = query.where(oauth_clients.c.client_id == client_id)
        async with self._engine.connect() as conn:
            found = (await conn.execute(query.order_by(oauth_clients.c.id))).all()
        rows = sorted(found, key=lambda r: r.tenant_id is None)  # the tenant's own first
        if not rows:
            which = f" with client id {client_id!r}" if client_id else ""
            raise NotFound(f"No {provider} OAuth client{which} is configured for this tenant "
                           f"('gateway oauth-client add').")
        return await self.client(rows[0].id)

    # --- reading ---------------------------------------------------------------------------
    async def row(self, mailbox_id: int) -> CredentialRow | None:
        async with self._engine.connect() as conn:
            r = (await conn.execute(sa.select(mailbox_credentials).where(
                mailbox_credentials.c.mailbox_id == mailbox_id))).first()
        return _row(r) if r is not None else None

    # --- connecting ------------------------------------------------------------------------
    async def store_grant(self, mailbox: Mailbox, provider: str, client: OAuthClient,
                          grant: TokenGrant, actor: str, how: str) -> str:
        """Keep a grant's tokens (sealed) and make the mailbox usable; returns its state."""
        if grant.refresh_token is None:
            raise InvalidValue("The grant has no refresh token (was offline access asked for?).")
        required = self.config.oauth[provider].scopes
        missing = missing_scopes(required, grant.scopes)
        state = NEEDS_RECONSENT if missing else ACTIVE
        await self.secrets.put(mailbox.tenant_id, refresh_name(mailbox.id),
                               grant.refresh_token.encode())
        await self.secrets.put(mailbox.tenant_id, access_name(mailbox.id),
                               grant.access_token.encode())
        now = datetime.now(UTC)
        values = dict(tenant_id=mailbox.tenant_id, kind="oauth", provider=provider,
                      oauth_client_id=client.id, username=mailbox.address,
                      scopes=" ".join(grant.scopes or required),
                      access_expires_at=grant.expires_at, refresh_lease_until=None,
                      updated_at=now)
        async with self._engine.begin() as conn:
            await _upsert(conn, mailbox.id, now, values)
            reason = f"grant lacks scopes: {' '.join(missing)}" if missing else ""
            if mailbox.status != "paused":  # an operator's pause outlives a reconnect
                await _set_status(conn, mailbox, state, reason)
            await audit_change(conn, actor, "mailbox.connected", mailbox.tenant_id, reason,
                         mailbox=mailbox.public_id, provider=provider, how=how, state=state)
        return state

    async def import_tokens(self, mailbox: Mailbox, payload: Mapping[str, Any],
                            actor: str) -> str:
        """Tokens a campaign tool already holds. An imported refresh token refreshes only
        with the client that issued it, so `client_id` picks the OAuth client."""
        provider = provider_for_upstream(self.config, mailbox.upstream)
        if provider is None:
            raise InvalidValue(f"Mailbox {mailbox.address} sends through upstream "
                               f"'{mailbox.upstream}', which does not use OAuth.")
        refresh = payload.get("refresh_token")
        if not isinstance(refresh, str) or not refresh:
            raise InvalidValue("'refresh_token' is required (a non-empty string).")
        client_id = payload.get("client_id")
        if client_id is not None and not isinstance(client_id, str):
            raise InvalidValue("'client_id' must be a string.")
        access = payload.get("access_token")
        if access is not None and not isinstance(access, str):
            raise InvalidValue("'access_token' must be a string.")
        expires_at = _expiry(payload.get("expires_at"))
        scope = payload.get("scope", "")
        if not isinstance(scope, str):
            raise InvalidValue("'scope' must be a space-separated string.")
        client = await self.find_client(provider, mailbox.tenant_id, client_id)
        grant = TokenGrant(
            access_token=access or "",
            # without an access token (or its expiry), the first send refreshes at once
            expires_at=expires_at if access and expires_at else datetime.fromtimestamp(0, UTC),
            refresh_token=refresh, scopes=tuple(scope.split()))
        return await self.store_grant(mailbox, provider, client, grant, actor, "import")

    async def set_password(self, mailbox: Mailbox, username: str, password: str,
                           actor: str) -> None:
        """A smarthost login of this mailbox's own, sealed like the tokens."""
        up = self.config.upstreams.get(mailbox.upstream)
        if up is None or up.kind != "smtp":
            raise InvalidValue(f"Mailbox {mailbox.address} does not send through an smtp "
                               "smarthost; passwords are for smarthosts only.")
        if not username or not password:
            raise InvalidValue("A smarthost login needs a username and a password.")
        await self.secrets.put(mailbox.tenant_id, password_name(mailbox.id), password.encode())
        now = datetime.now(UTC)
        values = dict(tenant_id=mailbox.tenant_id, kind="password", provider="",
                      oauth_client_id=None, username=username, scopes="",
                      access_expires_at=None, refresh_lease_until=None, updated_at=now)
        async with self._engine.begin() as conn:
            await _upsert(conn, mailbox.id, now, values)
            await audit_change(conn, actor, "mailbox.password_set", mailbox.tenant_id,
                         mailbox=mailbox.public_id)

    # --- disconnecting ---------------------------------------------------------------------
    async def disconnect(self, mailbox: Mailbox, actor: str, reason: str,
                         revoke: bool = True) -> bool:
        """Delete the sealed tokens now; revoke them at the provider when it can.
        Returns whether the provider confirmed a revocation."""
        row = await self.row(mailbox.id)
        revoked = False
        if row is not None and row.kind == "oauth" and revoke and row.oauth_client_id:
            revoked = await self._revoke(mailbox, row)
        await self.secrets.delete(mailbox.tenant_id, [
            refresh_name(mailbox.id), access_name(mailbox.id), password_name(mailbox.id)])
        async with self._engine.begin() as conn:
            await conn.execute(mailbox_credentials.delete().where(
                mailbox_credentials.c.mailbox_id == mailbox.id))
            if provider_for_upstream(self.config, mailbox.upstream) is not None:
                await _set_status(conn, mailbox, DISCONNECTED, reason)
            await audit_change(conn, actor, "mailbox.disconnected", mailbox.tenant_id, reason,
                         mailbox=mailbox.public_id, revoked=revoked)
        return revoked

    async def _revoke(self, mailbox: Mailbox, row: CredentialRow) -> bool:
        endpoints = self.providers.get(row.provider)
        if endpoints is None or row.oauth_client_id is None:
            return False
        try:
            client = await self.client(row.oauth_client_id)
            token = await self.secrets.get(mailbox.tenant_id, refresh_name(mailbox.id))
        except Exception as exc:  # revocation is best effort; the deletion is not
            log.warning("cannot revoke: client or token unavailable",
                        extra={"mailbox_id": mailbox.id, "error": type(exc).__name__})
            return False
        if token is None:
            return False
        return await endpoints.revoke(client, token.decode())

    async def mark(self, mailbox_id: int, state: str, reason: str, actor: str,
                   forget_tokens: bool) -> None:
        """Set a mailbox's state after the provider spoke (invalid_grant, missing scope)."""
        async with self._engine.connect() as conn:
            r = (await conn.execute(sa.select(mailboxes).where(
                mailboxes.c.id == mailbox_id))).first()
        if r is None:
            return
        mailbox = mailbox_from_row(r)
        if forget_tokens:
            await self.secrets.delete(mailbox.tenant_id, [refresh_name(mailbox_id),
                                                          access_name(mailbox_id)])
        async with self._engine.begin() as conn:
            if forget_tokens:
                await conn.execute(mailbox_credentials.delete().where(
                    mailbox_credentials.c.mailbox_id == mailbox_id))
            await _set_status(conn, mailbox, state, reason)
            await audit_change(conn, actor, f"mailbox.{state}", mailbox.tenant_id, reason,
                         mailbox=mailbox.public_id)


def _expiry(value: Any) -> datetime | None:
    """A token's expiry as given (unix seconds or ISO 8601), in UTC, within years 1970-9999."""
    if value is None:
        return None
    wrong = InvalidValue("'expires_at' must be a Unix time or an ISO 8601 time between "
                         "1970 and 9999.")
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value)
            return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):  # NaN, out of range, not a time
        raise wrong from None
    raise wrong


async def _set_status(conn: AsyncConnection, mailbox: Mailbox, status: str,
                      reason: str) -> None:
    await conn.execute(mailboxes.update().where(mailboxes.c.id == mailbox.id).values(
        status=status, status_reason=reason[:500], updated_at=datetime.now(UTC)))


async def _upsert(conn: AsyncConnection, mailbox_id: int, now: datetime,
                  values: dict[str, Any]) -> None:
    """Write a mailbox's credential row; a new login moves `token_version` on."""
    c = mailbox_credentials.c
    updated = await conn.execute(mailbox_credentials.update().where(
        c.mailbox_id == mailbox_id).values(token_version=c.token_version + 1, **values))
    if updated.rowcount == 0:
        await conn.execute(mailbox_credentials.insert().values(
            mailbox_id=mailbox_id, connected_at=now, token_version=1, **values))
