"""OAuth clients (client id and sealed secret), global or per tenant. Endpoints (URLs the
gateway sends tokens to) are operator configuration and cannot be set here."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from gateway.access.api_keys import Forbidden
from gateway.web.api.auth import OpsCaller, Web

router = APIRouter(prefix="/api/v1/oauth-clients", tags=["oauth-clients"])


class ClientIn(BaseModel):
    provider: str = Field(pattern="^(google|microsoft)$")
    client_id: str = Field(min_length=1, max_length=500)
    client_secret: str = Field(min_length=1, repr=False)
    tenant: str | None = Field(default=None, description="null: every tenant may use it")


class ClientOut(BaseModel):
    id: str
    provider: str
    client_id: str
    tenant: str | None


@router.post("", response_model=ClientOut, status_code=201)
async def add_client(body: ClientIn, caller: OpsCaller, web: Web) -> ClientOut:
    tenant_id = (await web.directory.tenant(body.tenant)).id if body.tenant else None
    if caller.tenant_id is not None and tenant_id != caller.tenant_id:
        raise Forbidden("A tenant-bound key adds OAuth clients for its own tenant only.")
    public_id = await web.credentials.add_client(body.provider, body.client_id,
                                                 body.client_secret, tenant_id, caller.actor)
    return ClientOut(id=public_id, provider=body.provider, client_id=body.client_id,
                     tenant=body.tenant)


@router.get("", response_model=list[ClientOut])
async def list_clients(caller: OpsCaller, web: Web) -> list[ClientOut]:
    names = await web.directory.tenant_names()
    rows = await web.credentials.list_clients(caller.tenant_id,
                                              only_tenant=caller.tenant_id is not None)
    return [ClientOut(id=p, provider=prov, client_id=cid,
                      tenant=names.get(t) if t is not None else None)
            for p, t, prov, cid in rows]
