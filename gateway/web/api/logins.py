"""SMTP submission logins: list, add (with a password given or made), remove.

The gateway keeps only a password's hash: a made one is in the answer once. A tenant-bound
key reaches its tenant's logins only; another tenant's is a 404.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from gateway.errors import NotFound
from gateway.web.api.auth import OpsCaller, Web, chosen_tenant, sees

router = APIRouter(prefix="/api/v1/logins", tags=["logins"])


class LoginOut(BaseModel):
    username: str
    tenant: str


class NewLoginOut(LoginOut):
    password: str | None = Field(description="the password made for it, shown once; none "
                                 "when the request gave one")


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=320)
    tenant: str | None = Field(default=None, max_length=100,
                               description="whose login; a tenant-bound key's own if absent")
    password: str | None = Field(default=None, max_length=1024, repr=False, description=(
        "at least `smtp.auth.min_password_length` characters; absent: one of 32 random "
        "characters is made and answered once"))


@router.get("", response_model=list[LoginOut])
async def list_logins(caller: OpsCaller, web: Web,
                      tenant: Annotated[str | None, Query(max_length=100)] = None
                      ) -> list[LoginOut]:
    name = (await chosen_tenant(web, caller, tenant)).name \
        if tenant is not None or caller.tenant_id is not None else None
    return [LoginOut(username=u, tenant=t) for t, u in await web.directory.list_logins(name)]


@router.post("", response_model=NewLoginOut, status_code=201)
async def add_login(body: LoginIn, caller: OpsCaller, web: Web) -> NewLoginOut:
    tenant = await chosen_tenant(web, caller, body.tenant)
    password = body.password if body.password is not None else secrets.token_urlsafe(24)
    await web.directory.add_login(tenant.name, body.username, password, caller.actor,
                                  min_length=web.config.smtp.auth.min_password_length)
    return NewLoginOut(username=body.username, tenant=tenant.name,
                       password=password if body.password is None else None)


@router.delete("/{username}", response_model=LoginOut)
async def remove_login(username: str, caller: OpsCaller, web: Web) -> LoginOut:
    """Its sessions are refused from then on, on every node within seconds."""
    names = await web.directory.tenant_names()
    owner = next((t for t, u in await web.directory.list_logins() if u == username), None)
    visible = {n for i, n in names.items() if sees(caller, i)}
    if owner is None or owner not in visible:
        raise NotFound(f"Login '{username}' does not exist.")
    await web.directory.remove_login(username, caller.actor)
    return LoginOut(username=username, tenant=owner)
