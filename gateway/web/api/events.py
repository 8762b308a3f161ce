"""A tenant's events (delivered, refused, bounced, unsubscribed...), since a cursor, paged.

The campaign tool keeps its own lists in step by reading `unsubscribed` events from here
(or from its webhook, which carries the same events). Ids only grow: store the last `id`
seen and pass it as `after`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from gateway.store.schema import events
from gateway.web.api.auth import AnyCaller, Web, visible_tenant_id
from gateway.web.api.bounds import Cursor

router = APIRouter(prefix="/api/v1/tenants", tags=["events"])


class EventOut(BaseModel):
    id: int
    kind: str
    at: datetime
    queue_id: str | None
    recipient: str | None = Field(description="the address; none for an erased person "
                                  "(named by digest only) or an event naming no one")
    recipient_digest: str | None = Field(
        default=None, description="keyed digest of the canonical address: the same for "
        "every spelling, and the only name of an erased person")
    recipient_masked: str | None = Field(default=None, description="`j***@example.com`")
    detail: dict[str, Any]


class EventPage(BaseModel):
    events: list[EventOut]
    next_after: int | None = Field(description="pass as `after` for the next page; none "
                                   "when this page reached the newest event")


@router.get("/{tenant_name}/events", response_model=EventPage)
async def list_events(tenant_name: str, caller: AnyCaller, web: Web,
                      after: Cursor = 0,
                      limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                      kind: Annotated[str | None, Query(max_length=40)] = None) -> EventPage:
    tenant_id = await visible_tenant_id(web, caller, tenant_name)
    query = (sa.select(events).where(events.c.tenant_id == tenant_id, events.c.id > after)
             .order_by(events.c.id).limit(limit))
    if kind:
        query = query.where(events.c.kind == kind)
    async with web.directory.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    out = [EventOut(id=r.id, kind=r.kind, queue_id=r.queue_id, **await web.event_names.view(r),
                    detail=r.detail or {},
                    at=r.at if r.at.tzinfo else r.at.replace(tzinfo=UTC)) for r in rows]
    return EventPage(events=out, next_after=out[-1].id if len(out) == limit else None)
