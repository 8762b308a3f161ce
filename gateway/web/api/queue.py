"""The delivery queue: copies waiting for a retry and delivery reports owed, one copy's
state, retry now, and delete (the sender gets a report saying so).

A tenant-bound key reaches its tenant's copies only; another tenant's is a 404.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from gateway.access.api_keys import ApiCaller
from gateway.delivery.queue import OPEN_STATES, QueuedCopy, State
from gateway.errors import Conflict
from gateway.web.api.auth import OpsCaller, Web, chosen_tenant, owned
from gateway.web.api.bounds import RowId
from gateway.web.parts import WebParts

router = APIRouter(prefix="/api/v1/queue", tags=["queue"])


class CopyOut(BaseModel):
    id: int
    queue_id: str
    kind: str = Field(description="copy (a recipient's message) or dsn (a delivery report)")
    state: str
    envelope_from: str
    recipient: str
    attempts: int
    last_reply: str
    created_at: datetime
    next_attempt_at: datetime | None
    expires_at: datetime | None
    message_id: str | None


class RetryOut(BaseModel):
    due_now: int = Field(description="how many copies were made due now")


class DeleteIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500,
                        description="told to the sender in the delivery report")


def copy_out(c: QueuedCopy) -> CopyOut:
    return CopyOut(id=c.id, queue_id=c.queue_id, kind=c.kind.value, state=c.state.value,
                   envelope_from=c.envelope_from, recipient=c.recipient, attempts=c.attempts,
                   last_reply=c.reply, created_at=c.created_at,
                   next_attempt_at=c.next_attempt_at, expires_at=c.expires_at,
                   message_id=c.message_id)


async def _visible(web: WebParts, caller: ApiCaller, copy_id: int) -> QueuedCopy:
    return owned(caller, await web.operator.queue.get(copy_id),
                 f"Queued copy {copy_id} does not exist.")


@router.get("", response_model=list[CopyOut])
async def list_copies(caller: OpsCaller, web: Web,
                      tenant: Annotated[str | None, Query(max_length=100)] = None,
                      all: Annotated[bool, Query(description="finished copies too")] = False,
                      limit: Annotated[int, Query(ge=1, le=1000)] = 1000) -> list[CopyOut]:
    """Waiting copies and owed reports, oldest first."""
    tenant_id = caller.tenant_id
    if tenant is not None:
        tenant_id = (await chosen_tenant(web, caller, tenant)).id
    states = list(State) if all else list(OPEN_STATES)
    return [copy_out(c) for c in await web.operator.queue.listing(states, tenant_id, limit)]


@router.post("/retry", response_model=RetryOut)
async def retry_all(caller: OpsCaller, web: Web) -> RetryOut:
    """Every deferred copy (a tenant-bound key: its tenant's) due now."""
    return RetryOut(due_now=await web.operator.queue.retry_now(None, caller.tenant_id))


@router.get("/{copy_id}", response_model=CopyOut)
async def show_copy(copy_id: RowId, caller: OpsCaller, web: Web) -> CopyOut:
    return copy_out(await _visible(web, caller, copy_id))


@router.post("/{copy_id}/retry", response_model=RetryOut)
async def retry(copy_id: RowId, caller: OpsCaller, web: Web) -> RetryOut:
    """Due now: a running gateway sends it within a second. 409 unless it is deferred."""
    await _visible(web, caller, copy_id)
    count = await web.operator.queue.retry_now(copy_id)
    if count == 0:
        raise Conflict(f"Queued copy {copy_id} is not waiting for a retry.")
    return RetryOut(due_now=count)


@router.post("/{copy_id}/delete", response_model=CopyOut)
async def delete_copy(copy_id: RowId, body: DeleteIn, caller: OpsCaller,
                      web: Web) -> CopyOut:
    """Remove a waiting copy; its sender gets a delivery report saying so (a POST, since
    the reason travels in the body)."""
    await _visible(web, caller, copy_id)
    await web.operator.retries.delete(copy_id, body.reason, caller.actor)
    return copy_out(await web.operator.queue.get(copy_id))
