"""Tenants: list, add, show, suspend, resume, settings, legal hold, delete.

A tenant-bound key sees and tunes its own tenant (settings within the operator's limits);
adding, suspending, resuming, deleting and the legal hold are the operator's, so they need
a key bound to no tenant. Another tenant is a 404, as if absent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from gateway.directory import settings as tenant_settings
from gateway.directory.records import Tenant
from gateway.errors import InvalidValue
from gateway.lifecycle.offboarding import delete_tenant
from gateway.web.api.auth import (
    AdminCaller,
    AnyCaller,
    ComplianceCaller,
    OpsCaller,
    Web,
    sees,
    unbound,
    visible_tenant,
)
from gateway.web.parts import WebParts

router = APIRouter(prefix="/api/v1/tenants", tags=["tenants"])

SettingValue = str | int


class TenantOut(BaseModel):
    name: str
    status: str = Field(description="active, suspended or deleted")
    status_reason: str


class LegalHoldOut(BaseModel):
    since: datetime
    reason: str


class TenantDetail(TenantOut):
    settings: dict[str, Any] = Field(description="every setting's effective value: the "
                                     "tenant's own, else the operator's default")
    legal_hold: LegalHoldOut | None


class TenantIn(BaseModel):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[a-z0-9._-]+$")


class ReasonIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class LegalHoldIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500, description="why, e.g. a case reference")


def _out(tenant: Tenant) -> TenantOut:
    return TenantOut(name=tenant.name, status=tenant.status, status_reason=tenant.status_reason)


async def _detail(web: WebParts, name: str) -> TenantDetail:
    tenant = await web.directory.tenant(name)
    hold = await web.directory.legal_hold(name)
    return TenantDetail(
        name=tenant.name, status=tenant.status, status_reason=tenant.status_reason,
        settings=tenant_settings.effective(tenant.settings, web.config),
        legal_hold=LegalHoldOut(since=hold[0], reason=hold[1]) if hold else None)


@router.get("", response_model=list[TenantOut])
async def list_tenants(caller: AnyCaller, web: Web) -> list[TenantOut]:
    return [_out(t) for t in await web.directory.list_tenants() if sees(caller, t.id)]


@router.post("", response_model=TenantDetail, status_code=201)
async def add_tenant(body: TenantIn, caller: OpsCaller, web: Web) -> TenantDetail:
    """A new customer: then its domains, logins and mailboxes."""
    unbound(caller, "add tenants")
    await web.directory.add_tenant(body.name, caller.actor)
    return await _detail(web, body.name)


@router.get("/{tenant_name}", response_model=TenantDetail)
async def show_tenant(tenant_name: str, caller: AnyCaller, web: Web) -> TenantDetail:
    await visible_tenant(web, caller, tenant_name)
    return await _detail(web, tenant_name)


@router.post("/{tenant_name}/suspend", response_model=TenantDetail)
async def suspend(tenant_name: str, body: ReasonIn, caller: OpsCaller,
                  web: Web) -> TenantDetail:
    """Its senders get `451 4.7.1` with the reason, within seconds on every node."""
    await visible_tenant(web, caller, tenant_name)
    unbound(caller, "suspend a tenant")
    await web.directory.set_tenant_status(tenant_name, "suspended", body.reason, caller.actor)
    return await _detail(web, tenant_name)


@router.post("/{tenant_name}/resume", response_model=TenantDetail)
async def resume(tenant_name: str, caller: OpsCaller, web: Web) -> TenantDetail:
    await visible_tenant(web, caller, tenant_name)
    unbound(caller, "resume a tenant")
    await web.directory.set_tenant_status(tenant_name, "active", "", caller.actor)
    return await _detail(web, tenant_name)


@router.patch("/{tenant_name}/settings", response_model=TenantDetail)
async def change_settings(tenant_name: str, body: dict[str, SettingValue], caller: OpsCaller,
                          web: Web) -> TenantDetail:
    """Change settings (`{"max_recipients": 50}`), each within the operator's limits; all or
    none: one refused value changes nothing. Each change is an audit row."""
    await visible_tenant(web, caller, tenant_name)
    if not body:
        raise InvalidValue("Give at least one setting.")
    parsed = {key: tenant_settings.parse(key, str(value), web.config)
              for key, value in body.items()}
    for key, value in parsed.items():
        await web.directory.set_tenant_setting(tenant_name, key, value, caller.actor)
    return await _detail(web, tenant_name)


@router.put("/{tenant_name}/legal-hold", response_model=TenantDetail)
async def place_legal_hold(tenant_name: str, body: LegalHoldIn, caller: ComplianceCaller,
                           web: Web) -> TenantDetail:
    """Suspend purge and erasure of the tenant's held messages and suppression entries."""
    await visible_tenant(web, caller, tenant_name)
    unbound(caller, "place a legal hold")
    await web.directory.set_legal_hold(tenant_name, body.reason.strip(), caller.actor)
    return await _detail(web, tenant_name)


@router.delete("/{tenant_name}/legal-hold", response_model=TenantDetail)
async def lift_legal_hold(tenant_name: str, caller: ComplianceCaller,
                          web: Web) -> TenantDetail:
    await visible_tenant(web, caller, tenant_name)
    unbound(caller, "lift a legal hold")
    await web.directory.set_legal_hold(tenant_name, None, caller.actor)
    return await _detail(web, tenant_name)


@router.delete("/{tenant_name}")
async def remove_tenant(tenant_name: str, caller: AdminCaller, web: Web,
                        confirm: Annotated[str, Query(max_length=100, description=(
                            "the tenant's name again"))]) -> dict[str, Any]:
    """Remove the tenant's data, revoking its mailbox tokens and shredding its key; a legal
    hold keeps its held messages and suppression entries. Answers the receipt."""
    await visible_tenant(web, caller, tenant_name)
    unbound(caller, "delete a tenant")
    if confirm != tenant_name:
        raise InvalidValue("'confirm' must repeat the tenant's name.")
    return await delete_tenant(web.directory, web.credentials, tenant_name, caller.actor)
