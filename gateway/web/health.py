"""`/metrics` (Prometheus), `/healthz` and `/readyz` on the admin listener.

`/readyz` answers 503 while the process shuts down, when the database does not answer, or
when the vault's keys are not loaded (every suppression check would fail closed). Tenants
whose key is missing from the tenant key store are named in its body. Upstream
reachability is reported in its body but does not fail it: every node shares the upstreams,
and a node that stops accepting because the provider is down only moves the queue onto the
clients.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from gateway.delivery.queue import OPEN_STATES
from gateway.limits.breakers import SCOPE_KINDS
from gateway.observability import metrics
from gateway.store.schema import held_messages, pending_copies
from gateway.web.parts import WebParts
from suppression.schema import suppressions

router = APIRouter(include_in_schema=False)
_SUPPRESSION_EVERY = 60.0  # counting a 10,000,000-entry list is not done per scrape
_suppression_counted = 0.0
_RATES_EVERY = 60.0  # each tenant's rates read its counters: not on every scrape
_rates_read = 0.0


def _web(request: Request) -> WebParts:
    web: WebParts = request.app.state.parts
    return web


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    web = _web(request)
    checks: dict[str, Any] = {"shutting_down": not web.ready}
    try:
        async with asyncio.timeout(2):
            async with web.directory.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any failure means not ready; the type says which
        checks["database"] = f"unavailable ({type(exc).__name__})"
    checks["vault"] = "ok" if web.suppressions.ready else "keys not loaded"
    checks["upstreams"] = await _upstreams(web)
    checks["tenant_keys"] = await _tenant_keys(web)
    ready = web.ready and checks["database"] == "ok" and checks["vault"] == "ok"
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                        status_code=200 if ready else 503)


async def _tenant_keys(web: WebParts) -> str:
    """Live tenants whose key the key store lacks (reported; their mail is deferred, the
    others' goes on, so it does not fail readiness). Looked up at most once a minute."""
    if web.tenant_keys is None:
        return "ok"
    try:
        missing = await web.tenant_keys.missing(max_age=60.0)
    except Exception as exc:
        return f"unavailable ({type(exc).__name__})"
    return "ok" if not missing else f"missing for tenant ids {', '.join(map(str, missing))}"


async def _upstreams(web: WebParts) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, up in web.config.upstreams.items():
        if up.kind == "maildir":
            found[name] = "ok" if os.access(up.path, os.W_OK) or not os.path.exists(up.path) \
                else "not writable"
            continue
        try:
            async with asyncio.timeout(2):
                _, writer = await asyncio.open_connection(up.host, up.port)
                writer.close()
                await writer.wait_closed()
            found[name] = "ok"
        except (OSError, TimeoutError) as exc:
            found[name] = f"unreachable ({type(exc).__name__})"
    return found


@router.get("/metrics")
async def prometheus(request: Request) -> Response:
    global _suppression_counted
    web = _web(request)
    async with web.directory.engine.connect() as conn:
        for state in OPEN_STATES:
            metrics.QUEUE_DEPTH.labels(state.value).set(0)
        for state, n in await conn.execute(sa.select(
                pending_copies.c.state, sa.func.count()).where(
                pending_copies.c.state.in_([s.value for s in OPEN_STATES])).group_by(
                pending_copies.c.state)):
            metrics.QUEUE_DEPTH.labels(state).set(n)
        metrics.HELD_DEPTH.set((await conn.execute(sa.select(sa.func.count()).where(
            held_messages.c.status == "held"))).scalar_one())
        if time.monotonic() - _suppression_counted > _SUPPRESSION_EVERY or \
                _suppression_counted == 0.0:
            metrics.SUPPRESSIONS.set((await conn.execute(sa.select(sa.func.count()).select_from(
                suppressions))).scalar_one())
            _suppression_counted = time.monotonic()
    for listener, days in _certificate_days(web).items():
        metrics.CERT_DAYS.labels(listener).set(days)
    await _breakers(web)
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


async def _breakers(web: WebParts) -> None:
    """Breakers by kind and state; the highest 24-hour rate among each kind's scopes (read
    at most once a minute). No label names a tenant or a scope."""
    global _rates_read
    breakers = web.operator.breakers
    states = breakers.states()
    for kind in SCOPE_KINDS.values():
        for state in ("warn", "open", "closed"):
            metrics.BREAKERS.labels(kind, state).set(states.get((kind, state), 0))
    if _rates_read and time.monotonic() - _rates_read < _RATES_EVERY:
        return
    _rates_read = time.monotonic()
    highest: dict[tuple[str, str], float] = {
        (kind, metric): 0.0 for kind in SCOPE_KINDS.values()
        for metric in ("complaints", "bounces", "blocks")}
    for tenant in await web.directory.list_tenants():
        if tenant.status == "deleted":
            continue
        for scope in await breakers.scope_rates(tenant.id):
            kind = SCOPE_KINDS[scope.scope[0]]
            for metric, rate in (("complaints", scope.complaint_rate),
                                 ("bounces", scope.bounce_rate), ("blocks", scope.block_rate)):
                highest[kind, metric] = max(highest[kind, metric], rate)
    for (kind, metric), rate in highest.items():
        metrics.BREAKER_RATE.labels(kind, metric).set(rate)


def _certificate_days(web: WebParts) -> dict[str, float]:
    from gateway.smtp.tls import certificate_days_left

    return certificate_days_left(web.config)
