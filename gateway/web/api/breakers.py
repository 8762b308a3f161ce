"""Reputation breakers: list them with their state and rate, and resume one (compliance
keys only: a person decides that a paused sender may send again; docs/breakers.md).

A tenant-bound key sees its tenant's breakers only; another tenant's is a 404.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from gateway.access.api_keys import ApiCaller
from gateway.limits.breakers import Breaker
from gateway.web.api.auth import AnyCaller, ComplianceCaller, Web, chosen_tenant, owned
from gateway.web.api.bounds import RowId
from gateway.web.parts import WebParts

router = APIRouter(prefix="/api/v1/breakers", tags=["reputation breakers"])


class BreakerOut(BaseModel):
    id: int
    tenant: str
    scope: Literal["tenant", "domain", "mailbox", "campaign"]
    name: str = Field(description="the tenant, sending domain, mailbox or campaign it guards")
    state: Literal["closed", "warn", "open"] = Field(description="open: its senders get "
                                                     "451 4.7.1 until it is resumed")
    metric: str = Field(description="complaints, bounces, blocks or authentication")
    rate_percent: float = Field(description="the rate that moved it (0 for authentication)")
    window: str = Field(description="24h, 7d, or now (an authentication refusal)")
    generation: int = Field(description="how often it was resumed")
    changed_at: datetime
    changed_by: str


class ResumeIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500, description="kept in the audit trail")


def _out(web: WebParts, names: dict[int, str], b: Breaker) -> BreakerOut:
    return BreakerOut.model_validate({
        "id": b.id, "tenant": names.get(b.tenant_id, ""), "scope": b.kind,
        "name": web.operator.breakers.describe(b.scope).split(" ", 1)[1], "state": b.state,
        "metric": b.metric, "rate_percent": round(b.rate * 100, 4), "window": b.window,
        "generation": b.generation, "changed_at": b.changed_at, "changed_by": b.changed_by})


async def _visible(web: WebParts, caller: ApiCaller, breaker_id: int) -> Breaker:
    return owned(caller, await web.operator.breakers.get(breaker_id),
                 f"Breaker {breaker_id} does not exist.")


@router.get("", response_model=list[BreakerOut])
async def list_breakers(caller: AnyCaller, web: Web,
                        tenant: Annotated[str | None, Query(max_length=100)] = None
                        ) -> list[BreakerOut]:
    """Every breaker that ever warned or tripped, and its state now."""
    tenant_id = caller.tenant_id
    if tenant is not None:
        tenant_id = (await chosen_tenant(web, caller, tenant)).id
    names = await web.directory.tenant_names()
    return [_out(web, names, b) for b in await web.operator.breakers.listing(tenant_id)]


@router.get("/{breaker_id}", response_model=BreakerOut)
async def show_breaker(breaker_id: RowId, caller: AnyCaller, web: Web) -> BreakerOut:
    return _out(web, await web.directory.tenant_names(), await _visible(web, caller,
                                                                          breaker_id))


@router.post("/{breaker_id}/resume", response_model=BreakerOut)
async def resume(breaker_id: RowId, body: ResumeIn, caller: ComplianceCaller,
                 web: Web) -> BreakerOut:
    """Let the scope send again, within seconds on every node; its rates start afresh
    from now. 409 if it is not open or warning."""
    await _visible(web, caller, breaker_id)
    resumed = await web.operator.breakers.resume(breaker_id, caller.actor, body.reason)
    return _out(web, await web.directory.tenant_names(), resumed)
