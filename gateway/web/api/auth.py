"""The admin API's caller: an API key from `Authorization: Bearer`, with its role checked."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Protocol, TypeVar

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from gateway.access.api_keys import ApiCaller, Forbidden, Unauthorized
from gateway.directory.records import Tenant
from gateway.errors import InvalidValue, NotFound
from gateway.web.parts import WebParts


def parts(request: Request) -> WebParts:
    web: WebParts = request.app.state.parts
    return web


Web = Annotated[WebParts, Depends(parts)]


# Declared in the OpenAPI document (components.securitySchemes.apiKey, and on each route
# that needs it), so a generated client sends the key; a missing or malformed header is
# answered by our 401, not FastAPI's.
_BEARER = HTTPBearer(auto_error=False, scheme_name="apiKey", bearerFormat="ocg_<id>_<secret>",
                     description="An admin API key from 'gateway apikey add', as "
                                 "'Authorization: Bearer ocg_...'.")
Bearer = Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)]


def require(*roles: str) -> Callable[..., Awaitable[ApiCaller]]:
    """A dependency: the caller, if its key holds one of `roles` (admin holds all)."""

    async def caller(request: Request, credentials: Bearer) -> ApiCaller:
        key = credentials.credentials.strip() if credentials is not None else ""
        if not key:
            raise Unauthorized("no key")
        found = await parts(request).api_keys.authenticate(key)
        if found.role != "admin" and found.role not in roles:
            raise Forbidden(f"Role '{found.role}' may not do this "
                            f"(needs {' or '.join(roles) or 'admin'}).")
        return found

    return caller


OpsCaller = Annotated[ApiCaller, Depends(require("ops"))]
ComplianceCaller = Annotated[ApiCaller, Depends(require("compliance"))]
AnyCaller = Annotated[ApiCaller, Depends(require("ops", "compliance"))]
AdminCaller = Annotated[ApiCaller, Depends(require())]


async def visible_tenant(web: WebParts, caller: ApiCaller, tenant_name: str) -> Tenant:
    """A tenant the caller may read; another tenant's is a 404, as if absent."""
    try:
        tenant = await web.directory.tenant(tenant_name)
    except NotFound:
        raise NotFound("No such tenant.") from None
    if not sees(caller, tenant.id):
        raise NotFound("No such tenant.")
    return tenant


async def visible_tenant_id(web: WebParts, caller: ApiCaller, tenant_name: str) -> int:
    return (await visible_tenant(web, caller, tenant_name)).id


def sees(caller: ApiCaller, tenant_id: int) -> bool:
    """Whether the caller's key may see an object of this tenant."""
    return caller.tenant_id is None or caller.tenant_id == tenant_id


class Owned(Protocol):
    @property
    def tenant_id(self) -> int: ...


T = TypeVar("T", bound=Owned)


def owned(caller: ApiCaller, found: T, missing: str) -> T:
    """`found`, if the caller's key may see its tenant; else the 404 a missing one gets
    (`missing`, the store's own words), so another tenant's object looks absent."""
    if not sees(caller, found.tenant_id):
        raise NotFound(missing)
    return found


def unbound(caller: ApiCaller, what: str) -> None:
    """Refuse (403) a key bound to a tenant: `what` is the operator's alone."""
    if caller.tenant_id is not None:
        raise Forbidden(f"A key bound to a tenant may not {what}; use an operator's key.")


async def chosen_tenant(web: WebParts, caller: ApiCaller, tenant_name: str | None) -> Tenant:
    """The tenant a request names, or a tenant-bound key's own when it names none."""
    if tenant_name is None:
        if caller.tenant_id is None:
            raise InvalidValue("Name the tenant ('tenant').")
        names = await web.directory.tenant_names()
        return await web.directory.tenant(names[caller.tenant_id])
    return await visible_tenant(web, caller, tenant_name)
