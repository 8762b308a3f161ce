"""The report pages: a tenant and period chosen in a plain GET form; the opt-out report
(reports/optouts.py) and the evidence pack (reports/pack.py) as tables and charts. A
reviewer bound to a tenant sees only that tenant's."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from gateway.errors import InvalidValue
from gateway.reports import pack as packs
from gateway.reports.optouts import optout_report
from gateway.reports.pack_pdf import render as render_pdf
from gateway.reports.period import period
from gateway.web import charts
from gateway.web.review.common import parts_of, render, router, signed_in, tenant_choice
from gateway.web.review.overview import channel_chart, sla_chart


@router.get("/optout-report")
async def optout_report_page(request: Request) -> Response:
    session = await signed_in(request)
    web, _ = parts_of(request)
    chosen = await tenant_choice(request, session, web)
    query = request.query_params
    start, end = query.get("from", "")[:40], query.get("to", "")[:40]
    context: dict[str, Any] = {"title": "Opt-out report", "session": session, "start": start,
                               "end": end, **chosen.context()}
    tenant_id = chosen.tenant_id
    if tenant_id is None:
        if chosen.wanted:
            return render("optout_report.html", 404, error="No such tenant.", **context)
        return render("optout_report.html", **context)
    try:
        begin, stop = period(start or None, end or None)
    except InvalidValue as exc:
        return render("optout_report.html", 400, error=exc.message, **context)
    async with web.directory.engine.connect() as conn:
        found = await optout_report(conn, tenant_id, begin, stop)
    return render("optout_report.html", report=found, sla_chart=sla_chart(found),
                  channel_chart=channel_chart(found), **context)


def _pack_charts(figures: dict[str, Any]) -> dict[str, Any]:
    delivery = figures["delivery"]
    return {
        "relayed_chart": charts.bars("Copies relayed, by provider class", [
            charts.Bar(name, p["relayed"]) for name, p in delivery.items()]),
        "bounce_chart": charts.bars("Hard-bounce rate, by provider class", [
            charts.Bar(name, round(p["hard_bounce_rate"] * 100, 3)) for name, p in
            delivery.items()], unit=" %"),
        "complaint_chart": charts.bars("Complaint rate, by provider class", [
            charts.Bar(name, round(p["complaint_rate"] * 100, 3)) for name, p in
            delivery.items()], unit=" %"),
        "lawful_chart": charts.bars("Copies sent, by lawful-basis decision", [
            charts.Bar(decision, sum(by.values()))
            for decision, by in figures["lawful_basis"]["sent"].items()]),
        "channel_chart": charts.bars("Opt-outs by channel", [
            charts.Bar(c, n) for c, n in figures["opt_outs"]["by_channel"].items()]),
    }


@router.get("/evidence-pack")
async def evidence_pack_page(request: Request) -> Response:
    """The evidence pack of a tenant and period on one page, with the signed JSON and the
    PDF to download (`?download=json|pdf`)."""
    session = await signed_in(request)
    web, _ = parts_of(request)
    chosen = await tenant_choice(request, session, web)
    query = request.query_params
    start, end = query.get("from", "")[:40], query.get("to", "")[:40]
    context: dict[str, Any] = {"title": "Evidence pack", "session": session, "start": start,
                               "end": end, **chosen.context()}
    tenant_id = chosen.tenant_id
    if tenant_id is None:
        if chosen.wanted:
            return render("evidence_pack.html", 404, error="No such tenant.", **context)
        return render("evidence_pack.html", **context)
    try:
        begin, stop = period(start or None, end or None)
    except InvalidValue as exc:
        return render("evidence_pack.html", 400, error=exc.message, **context)
    async with web.directory.engine.connect() as conn:
        document = await packs.generate(conn, tenant_id, chosen.wanted, begin, stop)
    pack = packs.signed(document, web.operator.receipts)
    download = query.get("download", "")
    name = f"evidence-{chosen.wanted}-{begin:%Y-%m-%d}-{stop:%Y-%m-%d}"
    if download == "json":
        return Response(json.dumps(pack, indent=1, sort_keys=True),
                        media_type="application/json", headers={
                            "Content-Disposition": f'attachment; filename="{name}.json"'})
    if download == "pdf":
        return Response(render_pdf(pack), media_type="application/pdf", headers={
            "Content-Disposition": f'attachment; filename="{name}.pdf"'})
    return render("evidence_pack.html", pack=pack, figures=document["figures"],
                  **_pack_charts(document["figures"]), **context)
