"""Mailboxes: list, add, show, pause, resume, remove, connect (import tokens, browser OAuth
flow, smarthost password), disconnect. A tenant-bound key sees only its tenant's mailboxes;
others get 404."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from gateway.access.api_keys import ApiCaller
from gateway.directory.records import Mailbox
from gateway.vault.credentials import add_mailbox as new_mailbox
from gateway.vault.credentials import provider_for_upstream
from gateway.vault.flows import FLOW_LIFETIME
from gateway.web.api.auth import OpsCaller, Web, chosen_tenant
from gateway.web.parts import WebParts

router = APIRouter(prefix="/api/v1/mailboxes", tags=["mailboxes"])


class MailboxOut(BaseModel):
    id: str
    tenant: str
    address: str
    upstream: str
    provider: str | None
    status: str
    status_reason: str
    credentials: str | None = Field(description="oauth, password or null; never the secret")


class MailboxIn(BaseModel):
    address: str = Field(min_length=3, max_length=320)
    upstream: str = Field(min_length=1, max_length=100,
                          description="an upstream name from the operator's configuration")
    tenant: str | None = Field(default=None, max_length=100,
                               description="whose mailbox; a tenant-bound key's own if absent")


class PauseIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500,
                        description="shown to the sending client in the 451 reply")


class RemovedOut(BaseModel):
    id: str
    removed: bool


class TokenImport(BaseModel):
    refresh_token: str = Field(min_length=1, repr=False)
    access_token: str | None = Field(default=None, repr=False)
    expires_at: int | str | None = None
    scope: str = ""
    client_id: str | None = Field(default=None, description="the OAuth client that issued "
                                  "the tokens (an imported token refreshes only with it)")


class PasswordIn(BaseModel):
    username: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, repr=False)


class ConnectOut(BaseModel):
    id: str
    status: str


class DisconnectOut(BaseModel):
    id: str
    status: str
    revoked_at_provider: bool


class FlowOut(BaseModel):
    start_url: str = Field(description="open in the browser of the mailbox's owner; one use")
    expires_at: datetime


async def _out(web: WebParts, tenant: str, mailbox: Mailbox) -> MailboxOut:
    row = await web.credentials.row(mailbox.id)
    return MailboxOut(id=mailbox.public_id, tenant=tenant, address=mailbox.address,
                      upstream=mailbox.upstream,
                      provider=provider_for_upstream(web.config, mailbox.upstream),
                      status=mailbox.status, status_reason=mailbox.status_reason,
                      credentials=row.kind if row else None)


async def _find(web: WebParts, caller: ApiCaller, mailbox_id: str) -> tuple[str, Mailbox]:
    return await web.directory.mailbox_by_public_id(mailbox_id, caller.tenant_id)


@router.get("", response_model=list[MailboxOut])
async def list_mailboxes(caller: OpsCaller, web: Web) -> list[MailboxOut]:
    names = await web.directory.tenant_names()
    tenant = names.get(caller.tenant_id) if caller.tenant_id is not None else None
    if caller.tenant_id is not None and tenant is None:
        return []
    return [await _out(web, owner, m) for owner, m in await web.directory.list_mailboxes(tenant)]


@router.post("", response_model=MailboxOut, status_code=201)
async def add_mailbox(body: MailboxIn, caller: OpsCaller, web: Web) -> MailboxOut:
    """A sending mailbox on one of the tenant's domains. On an OAuth upstream it starts
    `disconnected`: connect it next (`/oauth` or `/tokens`)."""
    tenant = await chosen_tenant(web, caller, body.tenant)
    address, _ = await new_mailbox(web.config, web.directory, tenant.name, body.address,
                                   body.upstream, caller.actor)
    mailbox = await web.directory.mailbox_by_address(address)
    return await _out(web, tenant.name, mailbox)


@router.delete("/{mailbox_id}", response_model=RemovedOut)
async def remove_mailbox(mailbox_id: str, caller: OpsCaller, web: Web) -> RemovedOut:
    """Its sealed tokens are revoked at the provider and deleted; 409 while it has
    undelivered copies (pause it instead)."""
    _, mailbox = await _find(web, caller, mailbox_id)
    await web.credentials.remove_mailbox(web.directory, mailbox, caller.actor)
    return RemovedOut(id=mailbox.public_id, removed=True)


@router.post("/{mailbox_id}/pause", response_model=MailboxOut)
async def pause(mailbox_id: str, body: PauseIn, caller: OpsCaller, web: Web) -> MailboxOut:
    """Its senders get `451 4.7.1` with the reason, within seconds on every node."""
    tenant, mailbox = await _find(web, caller, mailbox_id)
    await web.directory.set_mailbox_status(mailbox.address, "paused", body.reason,
                                           caller.actor)
    return await _out(web, tenant, (await _find(web, caller, mailbox_id))[1])


@router.post("/{mailbox_id}/resume", response_model=MailboxOut)
async def resume(mailbox_id: str, caller: OpsCaller, web: Web) -> MailboxOut:
    tenant, mailbox = await _find(web, caller, mailbox_id)
    await web.directory.resume_mailbox(mailbox.address, caller.actor)
    return await _out(web, tenant, (await _find(web, caller, mailbox_id))[1])


@router.get("/{mailbox_id}", response_model=MailboxOut)
async def show_mailbox(mailbox_id: str, caller: OpsCaller, web: Web) -> MailboxOut:
    tenant, mailbox = await _find(web, caller, mailbox_id)
    return await _out(web, tenant, mailbox)


@router.put("/{mailbox_id}/tokens", response_model=ConnectOut)
async def import_tokens(mailbox_id: str, body: TokenImport, caller: OpsCaller,
                        web: Web) -> ConnectOut:
    """Connect with tokens the campaign tool already holds."""
    _, mailbox = await _find(web, caller, mailbox_id)
    state = await web.credentials.import_tokens(mailbox, body.model_dump(), caller.actor)
    return ConnectOut(id=mailbox.public_id, status=state)


@router.put("/{mailbox_id}/password", response_model=ConnectOut)
async def set_password(mailbox_id: str, body: PasswordIn, caller: OpsCaller,
                       web: Web) -> ConnectOut:
    """A smarthost login of the mailbox's own (sealed like the tokens)."""
    _, mailbox = await _find(web, caller, mailbox_id)
    await web.credentials.set_password(mailbox, body.username, body.password, caller.actor)
    return ConnectOut(id=mailbox.public_id, status=mailbox.status)


@router.delete("/{mailbox_id}/tokens", response_model=DisconnectOut)
async def disconnect(mailbox_id: str, caller: OpsCaller, web: Web) -> DisconnectOut:
    """Delete the sealed tokens now and revoke them at the provider."""
    _, mailbox = await _find(web, caller, mailbox_id)
    revoked = await web.credentials.disconnect(mailbox, caller.actor, "disconnected via API")
    _, after = await _find(web, caller, mailbox_id)
    return DisconnectOut(id=mailbox.public_id, status=after.status, revoked_at_provider=revoked)


@router.post("/{mailbox_id}/oauth", response_model=FlowOut, status_code=201)
async def start_oauth(mailbox_id: str, caller: OpsCaller, web: Web) -> FlowOut:
    """Start the browser consent flow (authorization code with PKCE)."""
    _, mailbox = await _find(web, caller, mailbox_id)
    provider, ticket = await web.flows.start(mailbox, caller.actor)
    base = web.public_base_url.rstrip("/")
    return FlowOut(start_url=f"{base}/oauth/{provider}/start?ticket={ticket}",
                   expires_at=datetime.now(UTC) + FLOW_LIFETIME)
