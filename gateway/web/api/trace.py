"""Trace: every verdict, attempt and reply for one message, by queue id or Message-ID.

The audit trail names recipients by keyed digest: the trace names one only where the
address is known anyway (a queued copy) or given in `recipient`. A tenant-bound key traces
its tenant's messages only; another tenant's is a 404.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from gateway.delivery import trace as tracing
from gateway.store.engine import aware
from gateway.web.api.auth import AnyCaller, Web
from gateway.web.api.queue import CopyOut, copy_out

router = APIRouter(prefix="/api/v1/trace", tags=["trace"])


class TraceLineOut(BaseModel):
    at: datetime
    event: str
    who: str = Field(description="the recipient's address where known, else a digest "
                     "prefix (#...), or empty for the message itself")
    text: str


class MessageTrace(BaseModel):
    queue_id: str
    lines: list[TraceLineOut]
    copies: list[CopyOut]


class TraceOut(BaseModel):
    messages: list[MessageTrace] = Field(description="one per queue id (a Message-ID may "
                                         "name several submissions)")


@router.get("/{reference}", response_model=TraceOut)
async def trace(reference: str, caller: AnyCaller, web: Web,
                recipient: Annotated[list[str], Query(max_length=50, description=(
                    "name these recipients in the trace"))] = []) -> TraceOut:  # noqa: B006
    engine = web.directory.engine
    key = web.operator.digest.key
    found = []
    for queue_id in await tracing.queue_ids_for(engine, reference, caller.tenant_id):
        result = await tracing.trace(engine, web.operator.queue, queue_id, key, recipient)
        found.append(MessageTrace(
            queue_id=queue_id,
            lines=[TraceLineOut(at=aware(line.at) or line.at, event=line.event,
                                who=line.who, text=line.text) for line in result.lines],
            copies=[copy_out(c) for c in result.copies]))
    return TraceOut(messages=found)
