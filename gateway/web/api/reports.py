"""The opt-out report of a tenant and period (reports/optouts.py), as JSON: the same figures
as `gateway optouts report --json`; and the evidence pack (reports/pack.py) as `gateway
report` writes it, with its check. A tenant-bound key sees only its own tenant's."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from gateway.errors import NotFound
from gateway.optout import receipts
from gateway.reports import pack as packs
from gateway.reports.optouts import optout_report
from gateway.reports.pack_pdf import render
from gateway.reports.period import period
from gateway.web.api.auth import AnyCaller, ComplianceCaller, Web, visible_tenant

router = APIRouter(prefix="/api/v1", tags=["reports"])


class LatencyOut(BaseModel):
    count: int
    p50_ms: float
    p99_ms: float
    max_ms: float


class OptOutReportOut(BaseModel):
    tenant: str
    tenant_id: int
    start: str = Field(description="first instant of the period (ISO)")
    end: str = Field(description="the instant it stops before (ISO)")
    opt_outs: int = Field(description="opt-outs that took effect in the period")
    by_channel: dict[str, int]
    latency: LatencyOut = Field(description="request to enforcement, every node")
    by_node: dict[str, LatencyOut] = Field(description="by the node that recorded it")
    relayed_after: int = Field(description="copies relayed after the person's opt-out "
                                           "(looked at after its effective-at): 0")
    relayed_after_queue_ids: list[str]
    in_flight: int = Field(description="copies looked at before an opt-out took effect and "
                                       "accepted upstream after it")


@router.get("/tenants/{tenant_name}/optout-report", response_model=OptOutReportOut)
async def get_optout_report(
        tenant_name: str, caller: AnyCaller, web: Web,
        start: Annotated[str | None, Query(alias="from", max_length=40,
                                           description="a date or ISO time")] = None,
        end: Annotated[str | None, Query(alias="to", max_length=40,
                                         description="a date or ISO time (excluded)")] = None,
        ) -> OptOutReportOut:
    """Opt-outs by channel, request-to-enforcement time and copies relayed after an
    opt-out, for [from, to) (default: the last 30 days), from the audit trail alone."""
    begin, stop = period(start, end)
    tenant = await visible_tenant(web, caller, tenant_name)
    async with web.directory.engine.connect() as conn:
        found = await optout_report(conn, tenant.id, begin, stop)
    return OptOutReportOut.model_validate({"tenant": tenant.name, **found.to_json()})


class PackVerifyOut(BaseModel):
    valid: bool = Field(description="hash, signature and every recomputed figure hold")
    sha256: str = Field(default="", description="the document's hash, when it is the signed one")
    reason: str = Field(default="", description="why not, when the hash or signature fails")
    problems: list[str] = Field(default_factory=list,
                                description="recorded chain heads the trail no longer has")
    differences: list[str] = Field(default_factory=list,
                                   description="figures the trail gives otherwise, by path")


@router.get("/tenants/{tenant_name}/evidence-pack",
            responses={200: {"content": {"application/json": {}, "application/pdf": {}},
                             "description": "the signed pack (JSON) or its PDF"}})
async def get_evidence_pack(
        tenant_name: str, caller: ComplianceCaller, web: Web,
        start: Annotated[str | None, Query(alias="from", max_length=40,
                                           description="a date or ISO time")] = None,
        end: Annotated[str | None, Query(alias="to", max_length=40,
                                         description="a date or ISO time (excluded)")] = None,
        as_pdf: Annotated[bool, Query(alias="pdf", description="the PDF instead")] = False,
        ) -> Response:
    """The evidence pack of a tenant and period (default: the last 30 days), as `gateway
    report` writes it: the signed JSON, or with `pdf=true` its PDF. Compliance keys."""
    begin, stop = period(start, end)
    tenant = await visible_tenant(web, caller, tenant_name)
    async with web.directory.engine.connect() as conn:
        document = await packs.generate(conn, tenant.id, tenant.name, begin, stop)
    pack = packs.signed(document, web.operator.receipts)
    if as_pdf:
        return Response(render(pack), media_type="application/pdf")
    return Response(json.dumps(pack, sort_keys=True), media_type="application/json")


@router.post("/evidence-pack/verify", response_model=PackVerifyOut)
async def verify_evidence_pack(caller: ComplianceCaller, web: Web,
                               pack: Annotated[dict[str, Any], Body()]) -> PackVerifyOut:
    """Check a pack (the JSON `gateway report` wrote, as the body): its hash, its signature,
    and every figure recomputed from the audit trail up to the same chain heads."""
    keys = receipts.keys_from(web.operator.receipts.key_document())
    try:
        checked = packs.read(json.dumps(pack))
        sha = packs.check(checked, keys)
        tenant = checked["document"].get("tenant")
        if caller.tenant_id is not None and (
                not isinstance(tenant, dict) or tenant.get("id") != caller.tenant_id):
            raise NotFound("No such tenant.")  # another tenant's figures stay unread
        async with web.directory.engine.connect() as conn:
            found = await packs.recheck(conn, checked["document"])
    except packs.InvalidPack as exc:
        return PackVerifyOut(valid=False, reason=str(exc))
    return PackVerifyOut(valid=found.holds, sha256=sha, problems=found.problems,
                         differences=found.differences)
