"""Data subjects: export everything held about one address, or erase it.

POST with the address in the body (never in a URL, where access logs would keep it).
Compliance or admin keys only; a key bound to a tenant reaches that tenant's data only, and
its erasure entry goes on that tenant's list rather than the global one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from gateway.lifecycle.subjects import Subjects
from gateway.reports.period import moment
from gateway.web.api.auth import ComplianceCaller, Web
from gateway.web.parts import WebParts

router = APIRouter(prefix="/api/v1/subjects", tags=["data subjects"])


class SubjectIn(BaseModel):
    address: str = Field(min_length=3, max_length=320)
    requested_at: str | None = Field(
        default=None, max_length=40,
        description="when the person asked (a date or ISO time; default: now): the "
                    "evidence pack reports the time from request to completion")


class ErasureIn(SubjectIn):
    evidence: str = Field(min_length=1, max_length=500,
                          description="the person's request (e.g. its ticket)")


def _requested(body: SubjectIn) -> datetime | None:
    return moment(body.requested_at, "requested_at") if body.requested_at else None


def _subjects(web: WebParts) -> Subjects:
    assert web.subjects is not None  # set by the running gateway
    return web.subjects


@router.post("/export")
async def export(body: SubjectIn, caller: ComplianceCaller, web: Web) -> dict[str, Any]:
    """Suppression entries, events, opens, queued copies, held messages and audit rows about
    the address, as one document. The read is audited."""
    return await _subjects(web).export(body.address, caller.actor, caller.tenant_id,
                                       _requested(body))


@router.post("/erase")
async def erase(body: ErasureIn, caller: ComplianceCaller, web: Web) -> dict[str, Any]:
    """Delete what is held about the address and keep a digest-only erasure entry; the
    receipt says what was deleted, what was kept and why."""
    return await _subjects(web).erase(body.address, caller.actor, body.evidence,
                                      caller.tenant_id, _requested(body))
