"""Held and refused messages: list, show, the body (an audited read), release, discard,
note, and decisions in bulk.

Reading a message's subject and recipients is audited (`held.viewed`) as in the review
pages; its body is for compliance keys only and each read is an audit row (`held.read`).
A tenant-bound key sees its tenant's messages only: another tenant's is a 404.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from gateway.access.api_keys import ApiCaller
from gateway.errors import NotFound
from gateway.review.held import HeldMessage
from gateway.web.api.auth import AnyCaller, ComplianceCaller, Web, chosen_tenant, owned
from gateway.web.api.bounds import ID_MAX, Cursor, RowId
from gateway.web.parts import WebParts

router = APIRouter(prefix="/api/v1/held", tags=["held messages"])

Status = Literal["held", "refused", "release-requested", "released", "discarded", "expired"]


class VerdictOut(BaseModel):
    check: str
    action: str
    reason: str | None


class NoteOut(BaseModel):
    by: str
    at: str
    text: str


class HeldOut(BaseModel):
    id: int
    queue_id: str
    tenant: str
    status: str
    check: str = Field(description="the check that held or refused it")
    reason: str
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    login: str
    envelope_from: str
    recipients: list[str] = Field(description="empty once the tenant's key is shredded")
    subject: str
    size: int
    verdicts: list[VerdictOut]
    notes: list[NoteOut]


class HeldPage(BaseModel):
    messages: list[HeldOut]
    next_after: int | None = Field(description="pass as `after` for the next page; none "
                                   "when this page reached the newest message")


class DecisionIn(BaseModel):
    reason: str = Field(min_length=1, max_length=1000, description="kept in the audit trail")


class NoteIn(BaseModel):
    text: str = Field(min_length=1, max_length=2000)


class BulkIn(BaseModel):
    action: Literal["release", "discard"]
    reason: str = Field(min_length=1, max_length=1000)
    ids: list[Annotated[int, Field(ge=1, le=ID_MAX)]] | None = Field(
        default=None, max_length=500, description="these messages; or, without ids, every "
        "held message of `tenant` (of `check`)")
    tenant: str | None = Field(default=None, max_length=100)
    check: str | None = Field(default=None, max_length=64)


class BulkOut(BaseModel):
    decided: list[int] = Field(description="the ids released or discarded now")
    skipped: int = Field(description="ids not held any more, or not found")


async def _out(web: WebParts, message: HeldMessage) -> HeldOut:
    names = await web.directory.tenant_names()
    return HeldOut(
        id=message.id, queue_id=message.queue_id, tenant=names.get(message.tenant_id, ""),
        status=message.status, check=message.check_name, reason=message.reason,
        created_at=message.created_at, decided_at=message.decided_at,
        decided_by=message.decided_by, login=message.login,
        envelope_from=message.envelope_from, recipients=message.recipients,
        subject=message.subject, size=message.size,
        verdicts=[VerdictOut(check=str(v[0]), action=str(v[1]),
                             reason=str(v[2]) if len(v) > 2 and v[2] else None)
                  for v in message.verdicts],
        notes=[NoteOut(by=str(n.get("by", "")), at=str(n.get("at", "")),
                       text=str(n.get("text", ""))) for n in message.notes])


async def _visible(web: WebParts, caller: ApiCaller, held_id: int) -> HeldMessage:
    """The message's metadata unopened, if the caller may see it."""
    return owned(caller, await web.operator.decisions.held.get(held_id),
                 f"Held message {held_id} does not exist.")


@router.get("", response_model=HeldPage)
async def list_held(caller: AnyCaller, web: Web,
                    tenant: Annotated[str | None, Query(max_length=100)] = None,
                    status: Status = "held",
                    check: Annotated[str | None, Query(max_length=64)] = None,
                    after: Cursor = 0,
                    limit: Annotated[int, Query(ge=1, le=500)] = 100) -> HeldPage:
    """Oldest first, after id `after`. The view is audited (it shows subjects and
    recipients)."""
    tenant_id = caller.tenant_id
    if tenant is not None:
        tenant_id = (await chosen_tenant(web, caller, tenant)).id
    found = await web.operator.decisions.held.listing(tenant_id, status, check, limit, after,
                                                       viewer=caller.actor)
    return HeldPage(messages=[await _out(web, m) for m in found],
                    next_after=found[-1].id if len(found) == limit else None)


@router.get("/{held_id}", response_model=HeldOut)
async def show_held(held_id: RowId, caller: AnyCaller, web: Web) -> HeldOut:
    """The metadata and every verdict (not the body); the view is audited."""
    await _visible(web, caller, held_id)
    return await _out(web, await web.operator.decisions.held.get(held_id, viewer=caller.actor))


@router.get("/{held_id}/body", response_class=Response, responses={
    200: {"content": {"message/rfc822": {"schema": {"type": "string"}}},
          "description": "the message as received"}})
async def held_body(held_id: RowId, caller: ComplianceCaller, web: Web) -> Response:
    """The message as received: personal data, so each read is an audit row."""
    await _visible(web, caller, held_id)
    raw = await web.operator.decisions.held.body(held_id, caller.actor)
    return Response(raw, media_type="message/rfc822",
                    headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


@router.post("/{held_id}/release", response_model=HeldOut)
async def release(held_id: RowId, body: DecisionIn, caller: ComplianceCaller,
                  web: Web) -> HeldOut:
    """Send it after all: the running gateway queues each recipient's copy within seconds
    (suppression is checked again before sending). 409 if it is not held any more."""
    await _visible(web, caller, held_id)
    return await _out(web, await web.operator.decisions.decide(held_id, "release",
                                                                caller.actor, body.reason))


@router.post("/{held_id}/discard", response_model=HeldOut)
async def discard(held_id: RowId, body: DecisionIn, caller: ComplianceCaller,
                  web: Web) -> HeldOut:
    """Never send it: the sender gets a delivery report (no body), the tenant an event."""
    await _visible(web, caller, held_id)
    return await _out(web, await web.operator.decisions.decide(held_id, "discard",
                                                                caller.actor, body.reason))


@router.post("/{held_id}/notes", response_model=HeldOut, status_code=201)
async def add_note(held_id: RowId, body: NoteIn, caller: ComplianceCaller,
                   web: Web) -> HeldOut:
    await _visible(web, caller, held_id)
    return await _out(web, await web.operator.decisions.decide(held_id, "note", caller.actor,
                                                                body.text))


@router.post("/decisions", response_model=BulkOut)
async def decide_many(body: BulkIn, caller: ComplianceCaller, web: Web) -> BulkOut:
    """Release or discard many: the given ids, or every held message of a tenant (of one
    check). Messages another reviewer decided meanwhile are skipped."""
    decisions = web.operator.decisions
    if body.ids is not None:
        chosen = []
        for held_id in dict.fromkeys(body.ids):
            try:
                chosen.append(await _visible(web, caller, held_id))
            except NotFound:
                continue
        asked = len(dict.fromkeys(body.ids))
    else:
        tenant = await chosen_tenant(web, caller, body.tenant)
        chosen = await decisions.still_held(tenant.id, body.check)
        asked = len(chosen)
    done = await decisions.decide_all(chosen, body.action, caller.actor, body.reason)
    return BulkOut(decided=done, skipped=asked - len(done))
