"""The overview page: for one tenant, pictures of what a reviewer would rather look at than
read — breaker states, complaint and bounce rates per scope against their thresholds, opens
by verdict, and the opt-out SLA — each an inline SVG chart (web/charts.py) beside a table of
the same figures. A reviewer bound to a tenant sees only that tenant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from gateway.limits.breakers import ScopeRates
from gateway.pixels.opens import count_by_verdict
from gateway.reports.optouts import OptOutReport, optout_report
from gateway.store.schema import opens
from gateway.web import charts
from gateway.web.review.common import parts_of, render, router, signed_in, tenant_choice

OPENS_DAYS = 7
SLA_DAYS = 30
STATE_COLOURS = {"open": charts.OPEN, "warn": charts.WARN, "closed": charts.BAR}


def duration(ms: float) -> str:
    """A latency as a person reads it."""
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 120_000:
        return f"{ms / 1000:.1f} s"
    if ms < 7_200_000:
        return f"{ms / 60_000:.0f} min"
    return f"{ms / 3_600_000:.1f} h"


def sla_chart(report: OptOutReport) -> Any:
    """Request to enforcement: p50, p99 and the slowest, every node and each node."""
    items = [charts.Bar(f"{name} {label}", value, shown=duration(value))
             for name, latency in {"all nodes": report.latency, **report.by_node}.items()
             for label, value in (("p50", latency.p50_ms), ("p99", latency.p99_ms),
                                  ("max", latency.max_ms))]
    return charts.bars("Opt-out request to enforcement", items)


def channel_chart(report: OptOutReport) -> Any:
    return charts.bars("Opt-outs by channel",
                       [charts.Bar(c, n) for c, n in report.by_channel.items()])


def rate_charts(found: list[ScopeRates]) -> tuple[Any, Any]:
    complaints = charts.rates("Complaint rate, last 24 hours", [
        charts.Rate(s.name, s.complaint_rate, s.complaint_trip, s.complaint_warn,
                    s.to_feedback) for s in found])
    bounces = charts.rates("Hard-bounce rate, last 24 hours", [
        charts.Rate(s.name, s.bounce_rate, s.bounce_trip, volume=s.relayed) for s in found])
    return complaints, bounces


@router.get("/overview")
async def overview_page(request: Request) -> Response:
    session = await signed_in(request)
    web, _ = parts_of(request)
    chosen = await tenant_choice(request, session, web)
    context: dict[str, Any] = {"title": "Overview", "session": session, "duration": duration,
                               **chosen.context()}
    tenant_id = chosen.tenant_id
    if tenant_id is None:
        if chosen.wanted:
            return render("overview.html", 404, error="No such tenant.", **context)
        return render("overview.html", **context)
    breakers = web.operator.breakers
    stored = await breakers.listing(tenant_id)
    states = {s: sum(1 for b in stored if b.state == s) for s in ("open", "warn", "closed")}
    found = await breakers.scope_rates(tenant_id)
    now = datetime.now(UTC)
    async with web.directory.engine.connect() as conn:
        verdicts = await count_by_verdict(conn, opens.c.tenant_id == tenant_id,
                                          opens.c.at >= now - timedelta(days=OPENS_DAYS))
        report = await optout_report(conn, tenant_id, now - timedelta(days=SLA_DAYS), now)
    complaints, bounces = rate_charts(found)
    return render(
        "overview.html", **context, states=states, stored=stored, rates=found,
        verdicts=verdicts, report=report, opens_days=OPENS_DAYS, sla_days=SLA_DAYS,
        latencies={"all nodes": report.latency, **report.by_node},
        describe=breakers.describe,
        state_chart=charts.bars("Breakers by state", [
            charts.Bar(s, n, STATE_COLOURS[s]) for s, n in states.items()]),
        complaint_chart=complaints, bounce_chart=bounces,
        verdict_chart=charts.bars(f"Opens by verdict, last {OPENS_DAYS} days", [
            charts.Bar(v, n) for v, n in verdicts.items()]),
        sla_chart=sla_chart(report), channel_chart=channel_chart(report))
