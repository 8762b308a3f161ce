"""Connecting a mailbox in the browser: the OAuth authorization-code flow with PKCE.

1. An admin (API key) starts a flow for a mailbox and gets a one-time start link.
2. The browser opens it on the public side: the flow is bound to that browser by a cookie
   (only its digest is stored), and the browser is sent to the provider with `state` and
   an S256 code challenge (RFC 7636).
3. The provider sends the browser back to the callback with `code` and `state`. The state
   must be known, unused, under 10 minutes old and come with the same browser cookie; the
   code is exchanged with the verifier, and the account that consented must be the mailbox.

Only digests of the ticket, the state and the browser cookie are stored; the verifier is
sealed. The state is derived from the ticket, so nothing else needs keeping in clear.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.directory import address as addr
from gateway.directory.records import Mailbox
from gateway.directory.store import mailbox_from_row
from gateway.errors import InvalidValue
from gateway.store.engine import aware
from gateway.store.schema import mailboxes, oauth_flows
from gateway.vault.credentials import Credentials, provider_for_upstream
from gateway.vault.envelope import Vault
from gateway.vault.oauth import ProviderError, pkce_challenge, pkce_pair

log = logging.getLogger("gateway.oauth")

FLOW_LIFETIME = timedelta(minutes=10)


class FlowError(InvalidValue):
    """The flow cannot go on; the message is safe to show in the browser."""


def seal_context(tenant_id: int, ticket_hash: str) -> bytes:
    return f"oauth_flows|{tenant_id}|{ticket_hash}|verifier".encode()


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _state_for(ticket: str) -> str:
    return hmac.new(ticket.encode(), b"ocg-oauth-state", hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Redirect:
    url: str
    browser_secret: str  # goes into the flow cookie


class OAuthFlows:
    def __init__(self, engine: AsyncEngine, vault: Vault, credentials: Credentials) -> None:
        self._engine = engine
        self._vault = vault
        self._credentials = credentials

    async def start(self, mailbox: Mailbox, actor: str) -> tuple[str, str]:
        """Returns (provider, ticket): the start link is /oauth/<provider>/start?ticket=..."""
        provider = provider_for_upstream(self._credentials.config, mailbox.upstream)
        if provider is None:
            raise InvalidValue(f"Mailbox {mailbox.public_id} does not send through an OAuth "
                               "upstream (gmail or microsoft).")
        client = await self._credentials.find_client(provider, mailbox.tenant_id)
        ticket = secrets.token_urlsafe(32)
        ticket_hash = _digest(ticket)
        verifier, _ = pkce_pair()
        sealed, key_id = self._vault.seal(verifier.encode(),
                                          seal_context(mailbox.tenant_id, ticket_hash))
        now = datetime.now(UTC)
        async with self._engine.begin() as conn:
            await conn.execute(oauth_flows.insert().values(
                ticket_hash=ticket_hash, state_hash=_digest(_state_for(ticket)),
                tenant_id=mailbox.tenant_id, mailbox_id=mailbox.id, provider=provider,
                oauth_client_id=client.id, sealed_verifier=sealed, key_id=key_id,
                created_by=actor, created_at=now, expires_at=now + FLOW_LIFETIME))
        return provider, ticket

    async def _flow(self, column: sa.Column[str], value: str, provider: str) -> Any:
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(oauth_flows).where(column == value))).first()
        if row is None or row.provider != provider:
            raise FlowError("This connection link is not valid.")
        expires = aware(row.expires_at)
        if expires is None or expires < datetime.now(UTC):
            raise FlowError("This connection link has expired; start again.")
        return row

    async def begin(self, provider: str, ticket: str, redirect_uri: str) -> Redirect:
        """Bind the flow to this browser (once) and send it to the provider."""
        row = await self._flow(oauth_flows.c.ticket_hash, _digest(ticket), provider)
        browser_secret = secrets.token_urlsafe(32)
        async with self._engine.begin() as conn:
            claimed = await conn.execute(oauth_flows.update().where(
                oauth_flows.c.id == row.id, oauth_flows.c.browser_hash.is_(None),
                oauth_flows.c.used_at.is_(None)).values(browser_hash=_digest(browser_secret)))
        if claimed.rowcount != 1:
            raise FlowError("This connection link was already used; start again.")
        verifier = self._vault.open(row.sealed_verifier, row.key_id,
                                    seal_context(row.tenant_id, row.ticket_hash)).decode()
        challenge = pkce_challenge(verifier)
        client = await self._credentials.client(row.oauth_client_id)
        config = self._credentials.config.oauth[provider]
        async with self._engine.connect() as conn:
            address = (await conn.execute(sa.select(mailboxes.c.address).where(
                mailboxes.c.id == row.mailbox_id))).scalar()
        scopes = list(dict.fromkeys([*config.scopes, *config.identity_scopes]))
        params = {
            "response_type": "code", "client_id": client.client_id,
            "redirect_uri": redirect_uri, "scope": " ".join(scopes),
            "state": _state_for(ticket), "code_challenge": challenge,
            "code_challenge_method": "S256", "login_hint": address or "",
        }
        if provider == "google":  # a refresh token, and the consent screen every time
            params.update(access_type="offline", prompt="consent")
        separator = "&" if "?" in config.authorize_url else "?"
        return Redirect(config.authorize_url + separator + urlencode(params), browser_secret)

    async def complete(self, provider: str, state: str, code: str, browser_secret: str,
                       redirect_uri: str) -> str:
        """Finish the flow; returns the mailbox's public id."""
        row = await self._flow(oauth_flows.c.state_hash, _digest(state), provider)
        if not browser_secret or row.browser_hash is None or not hmac.compare_digest(
                row.browser_hash, _digest(browser_secret)):
            raise FlowError("This sign-in was started in another browser; start again there.")
        async with self._engine.begin() as conn:
            used = await conn.execute(oauth_flows.update().where(
                oauth_flows.c.id == row.id, oauth_flows.c.used_at.is_(None)).values(
                used_at=datetime.now(UTC)))
        if used.rowcount != 1:
            raise FlowError("This sign-in was already completed.")
        verifier = self._vault.open(row.sealed_verifier, row.key_id,
                                    seal_context(row.tenant_id, row.ticket_hash)).decode()
        client = await self._credentials.client(row.oauth_client_id)
        endpoints = self._credentials.providers[provider]
        try:
            grant = await endpoints.exchange_code(client, code, verifier, redirect_uri)
        except ProviderError as exc:
            raise FlowError(f"The provider did not confirm the sign-in ({exc.message}).") \
                from None
        mailbox = await self._mailbox(row.mailbox_id)
        if grant.email is None or addr.key(grant.email) != addr.key(mailbox.address):
            # The wrong account consented: give its tokens back, keep nothing.
            if grant.refresh_token:
                await endpoints.revoke(client, grant.refresh_token)
            log.warning("oauth consent by another account refused",
                        extra={"mailbox_id": mailbox.id, "provider": provider})
            raise FlowError(f"You signed in as another account; sign in as {mailbox.address}.")
        await self._credentials.store_grant(mailbox, provider, client, grant, row.created_by,
                                            "oauth-flow")
        return mailbox.public_id

    async def _mailbox(self, mailbox_id: int) -> Mailbox:
        async with self._engine.connect() as conn:
            r = (await conn.execute(sa.select(mailboxes).where(
                mailboxes.c.id == mailbox_id))).first()
        if r is None:
            raise FlowError("The mailbox no longer exists.")
        return mailbox_from_row(r)

