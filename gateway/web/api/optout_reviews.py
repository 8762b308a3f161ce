"""Possible opt-outs found in replies ("please remove me"): list, show (the reply's words,
an audited read), confirm (the recipient is suppressed for the tenant) or dismiss.

Reading a reply and deciding are for compliance keys; a tenant-bound key reaches its
tenant's replies only, and another tenant's is a 404.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from gateway.access.api_keys import ApiCaller
from gateway.feedback.reviews import OptOutReviews, PossibleOptOut
from gateway.store.engine import aware
from gateway.web.api.auth import AnyCaller, ComplianceCaller, Web, chosen_tenant, owned
from gateway.web.api.bounds import RowId
from gateway.web.parts import WebParts

router = APIRouter(prefix="/api/v1/optout-reviews", tags=["opt-out reviews"])


class ReviewOut(BaseModel):
    id: int
    tenant: str
    queue_id: str = Field(description="the message the reply answers")
    rule: str = Field(description="what in the reply looked like an opt-out")
    status: Literal["pending", "confirmed", "dismissed"]
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None


class ReplyOut(ReviewOut):
    sender: str
    subject: str
    words: str = Field(description="the reply's own words (quoted text removed)")


class ConfirmOut(ReviewOut):
    suppressed_now: bool = Field(description="false when the recipient was suppressed "
                                 "already")


class WhyIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500, description="kept in the audit trail")


def _reviews(web: WebParts) -> OptOutReviews:
    assert web.review is not None and web.review.optouts is not None  # the running gateway's
    return web.review.optouts


async def _out(web: WebParts, item: PossibleOptOut) -> ReviewOut:
    names = await web.directory.tenant_names()
    return ReviewOut(id=item.id, tenant=names.get(item.tenant_id, ""), queue_id=item.queue_id,
                     rule=item.rule, status=item.status,  # type: ignore[arg-type]
                     created_at=aware(item.created_at) or item.created_at,
                     decided_at=aware(item.decided_at), decided_by=item.decided_by)


async def _visible(web: WebParts, caller: ApiCaller, review_id: int) -> PossibleOptOut:
    return owned(caller, await _reviews(web).get(review_id),
                 f"Possible opt-out {review_id} does not exist.")


@router.get("", response_model=list[ReviewOut])
async def list_reviews(caller: AnyCaller, web: Web,
                       tenant: Annotated[str | None, Query(max_length=100)] = None,
                       status: Literal["pending", "confirmed", "dismissed"] = "pending",
                       limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[ReviewOut]:
    tenant_id = caller.tenant_id
    if tenant is not None:
        tenant_id = (await chosen_tenant(web, caller, tenant)).id
    return [await _out(web, item)
            for item in await _reviews(web).listing(tenant_id, status, limit)]


@router.get("/{review_id}", response_model=ReplyOut)
async def show_review(review_id: RowId, caller: ComplianceCaller, web: Web) -> ReplyOut:
    """The reply's sender, subject and own words: personal data, so the read is audited."""
    item = await _visible(web, caller, review_id)
    reply = await _reviews(web).reply(review_id, caller.actor)
    return ReplyOut(**(await _out(web, item)).model_dump(), sender=reply.sender,
                    subject=reply.subject, words=reply.words)


@router.post("/{review_id}/confirm", response_model=ConfirmOut)
async def confirm(review_id: RowId, body: WhyIn, caller: ComplianceCaller,
                  web: Web) -> ConfirmOut:
    """It is an opt-out: the recipient is suppressed for the tenant (reason unsubscribe)."""
    await _visible(web, caller, review_id)
    made = await _reviews(web).confirm(review_id, caller.actor, body.reason)
    after = await _out(web, await _reviews(web).get(review_id))
    return ConfirmOut(**after.model_dump(), suppressed_now=made)


@router.post("/{review_id}/dismiss", response_model=ReviewOut)
async def dismiss(review_id: RowId, body: WhyIn, caller: ComplianceCaller,
                  web: Web) -> ReviewOut:
    """Not an opt-out: nobody is suppressed."""
    await _visible(web, caller, review_id)
    await _reviews(web).dismiss(review_id, caller.actor, body.reason)
    return await _out(web, await _reviews(web).get(review_id))
