"""Opens for the campaign tool: per message, per campaign, over a time range; JSON or CSV.

Rows name the recipient only by keyed digest (none in aggregate mode) and the opener only
by network (/24 or /16, /48) and user-agent family. `verdict` says who fetched the pixel —
`human`, `machine` (a privacy proxy prefetching on delivery) or `bot` (a link scanner, a
script) — from its `signals` (pixels/verdict.py); `machine` is true for either of the last
two, so reports can leave them out.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Annotated, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from gateway.pixels.opens import count_by_verdict
from gateway.store.schema import opens
from gateway.web.api.auth import AnyCaller, Web, visible_tenant_id
from gateway.web.api.bounds import Cursor, Moment

router = APIRouter(prefix="/api/v1/tenants", tags=["opens"])
COLUMNS = ("id", "at", "queue_id", "campaign", "recipient_digest", "network", "ua_family",
           "machine", "signals", "verdict")


class OpenOut(BaseModel):
    id: int
    at: datetime
    queue_id: str | None
    campaign: str
    recipient_digest: str | None
    network: str
    ua_family: str
    machine: bool
    signals: str
    verdict: Literal["human", "machine", "bot"]


class OpenPage(BaseModel):
    opens: list[OpenOut]
    next_after: int | None


class OpenSummary(BaseModel):
    opens: int
    machine_opens: int
    human_opens: int
    unique_recipients: int = Field(description="distinct recipient digests (proxy mode)")
    unique_human_recipients: int
    by_verdict: dict[str, int] = Field(description="opens by verdict: human, machine, bot")


def _where(tenant_id: int, queue_id: str | None, campaign: str | None,
           since: datetime | None, until: datetime | None) -> list[sa.ColumnElement[bool]]:
    where = [opens.c.tenant_id == tenant_id]
    if queue_id:
        where.append(opens.c.queue_id == queue_id)
    if campaign:
        where.append(opens.c.campaign == campaign)
    if since:
        where.append(opens.c.at >= since)
    if until:
        where.append(opens.c.at < until)
    return where


def _out(row: sa.Row[tuple[object, ...]]) -> OpenOut:
    at = row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC)
    return OpenOut(id=row.id, at=at, queue_id=row.queue_id, campaign=row.campaign,
                   recipient_digest=row.recipient_digest, network=row.network,
                   ua_family=row.ua_family, machine=row.machine, signals=row.signals,
                   verdict=row.verdict or ("machine" if row.machine else "human"))


@router.get("/{tenant_name}/opens", response_model=OpenPage,
            responses={200: {"content": {"text/csv": {}}}})
async def list_opens(tenant_name: str, caller: AnyCaller, web: Web,
                     queue_id: Annotated[str | None, Query(max_length=40)] = None,
                     campaign: Annotated[str | None, Query(max_length=200)] = None,
                     since: Moment | None = None, until: Moment | None = None,
                     after: Cursor = 0,
                     limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
                     format: Literal["json", "csv"] = "json") -> OpenPage | Response:
    tenant_id = await visible_tenant_id(web, caller, tenant_name)
    query = (sa.select(opens).where(*_where(tenant_id, queue_id, campaign, since, until),
                                    opens.c.id > after).order_by(opens.c.id).limit(limit))
    async with web.directory.engine.connect() as conn:
        rows = [_out(r) for r in await conn.execute(query)]
    next_after = rows[-1].id if len(rows) == limit else None
    if format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(COLUMNS)
        for r in rows:
            writer.writerow([r.id, r.at.isoformat(), r.queue_id or "", r.campaign,
                             r.recipient_digest or "", r.network, r.ua_family,
                             "yes" if r.machine else "no", r.signals, r.verdict])
        headers = {"X-Next-After": str(next_after)} if next_after else {}
        return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8",
                        headers=headers)
    return OpenPage(opens=rows, next_after=next_after)


@router.get("/{tenant_name}/opens/summary", response_model=OpenSummary)
async def summary(tenant_name: str, caller: AnyCaller, web: Web,
                  queue_id: Annotated[str | None, Query(max_length=40)] = None,
                  campaign: Annotated[str | None, Query(max_length=200)] = None,
                  since: Moment | None = None, until: Moment | None = None) -> OpenSummary:
    tenant_id = await visible_tenant_id(web, caller, tenant_name)
    where = _where(tenant_id, queue_id, campaign, since, until)
    human = sa.and_(*where, opens.c.machine.is_(False))
    async with web.directory.engine.connect() as conn:
        total, machine, unique = (await conn.execute(sa.select(
            sa.func.count(), sa.func.count().filter(opens.c.machine.is_(True)),
            sa.func.count(sa.distinct(opens.c.recipient_digest))).where(*where))).one()
        unique_human = (await conn.execute(sa.select(
            sa.func.count(sa.distinct(opens.c.recipient_digest))).where(human))).scalar()
        verdicts = await count_by_verdict(conn, *where)
    return OpenSummary(opens=total, machine_opens=machine, human_opens=total - machine,
                       unique_recipients=unique, unique_human_recipients=unique_human or 0,
                       by_verdict=verdicts)
