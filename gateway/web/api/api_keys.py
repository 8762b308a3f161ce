"""API keys: create (shown once), list, revoke. A key creates keys only within its own role
and tenant binding, and sees only keys of its own tenant when bound to one."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from gateway.access.api_keys import ApiCaller, ApiKeyInfo, Forbidden
from gateway.web.api.auth import AnyCaller, Web
from gateway.web.api.bounds import Moment
from gateway.web.parts import WebParts

router = APIRouter(prefix="/api/v1/apikeys", tags=["apikeys"])


class KeyIn(BaseModel):
    name: str = Field(default="", max_length=200)
    role: str = Field(pattern="^(ops|compliance|admin)$")
    tenant: str | None = None
    expires_at: Moment | None = None


class KeyOut(BaseModel):
    id: str
    name: str
    role: str
    tenant: str | None
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class NewKeyOut(KeyOut):
    key: str = Field(description="shown once; only its SHA-256 is kept")


def _out(info: ApiKeyInfo, names: dict[int, str]) -> KeyOut:
    return KeyOut(id=info.key_id, name=info.name, role=info.role,
                  tenant=names.get(info.tenant_id) if info.tenant_id is not None else None,
                  created_by=info.created_by, created_at=info.created_at,
                  expires_at=info.expires_at, last_used_at=info.last_used_at,
                  revoked_at=info.revoked_at)


@router.post("", response_model=NewKeyOut, status_code=201)
async def create_key(body: KeyIn, caller: AnyCaller, web: Web) -> NewKeyOut:
    tenant_id = (await web.directory.tenant(body.tenant)).id if body.tenant else None
    if not caller.may_grant(body.role, tenant_id):
        raise Forbidden("A key can only create keys with at most its own role and the "
                        "same tenant binding.")
    key_id, key = await web.api_keys.create(body.name, body.role, tenant_id, caller.actor,
                                            body.expires_at)
    info = await web.api_keys.get(key_id)
    return NewKeyOut(**_out(info, await web.directory.tenant_names()).model_dump(), key=key)


@router.get("", response_model=list[KeyOut])
async def list_keys(caller: AnyCaller, web: Web) -> list[KeyOut]:
    names = await web.directory.tenant_names()
    keys = await web.api_keys.listing(caller.tenant_id, only_tenant=caller.tenant_id is not None)
    return [_out(k, names) for k in keys]


async def _visible(web: WebParts, caller: ApiCaller, key_id: str) -> ApiKeyInfo:
    from gateway.errors import NotFound

    info = await web.api_keys.get(key_id)
    if caller.tenant_id is not None and info.tenant_id != caller.tenant_id:
        raise NotFound(f"API key {key_id} does not exist.")
    return info


@router.get("/{key_id}", response_model=KeyOut)
async def show_key(key_id: str, caller: AnyCaller, web: Web) -> KeyOut:
    return _out(await _visible(web, caller, key_id), await web.directory.tenant_names())


@router.delete("/{key_id}", response_model=KeyOut)
async def revoke_key(key_id: str, caller: AnyCaller, web: Web) -> KeyOut:
    info = await _visible(web, caller, key_id)
    if not caller.may_grant(info.role, info.tenant_id):
        raise Forbidden("A key can only revoke keys it could have created.")
    await web.api_keys.revoke(key_id, caller.actor)
    return _out(await web.api_keys.get(key_id), await web.directory.tenant_names())
