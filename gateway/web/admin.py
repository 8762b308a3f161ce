"""The admin app (private listener): the JSON API with its OpenAPI document, health."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from gateway.web import errors, health
from gateway.web.api import (
    api_keys,
    breakers,
    domains,
    events,
    held,
    lawful,
    logins,
    mailboxes,
    oauth_clients,
    opens,
    optout_reviews,
    queue,
    receipts,
    records,
    reference_page,
    reports,
    subjects,
    suppressions,
    tenants,
    trace,
    webhooks,
)
from gateway.web.client_ip import AnonymizeClient
from gateway.web.parts import WebParts
from gateway.web.review import pages


def create_admin_app(web: WebParts) -> Any:
    """The admin ASGI app, behind the same client-address anonymizer as the public one."""
    return AnonymizeClient(_routes(web), web.config.http.trusted_proxies,
                           web.config.pixels.ipv4_prefix)


def openapi_document() -> dict[str, Any]:
    """The admin API's OpenAPI document, without a running gateway (docs/api.md)."""
    document: dict[str, Any] = _routes(None).openapi()
    return document


def _routes(web: WebParts | None) -> FastAPI:
    app = FastAPI(title="Outreach Compliance Gateway admin API", version="1",
                  docs_url=None, redoc_url=None, openapi_url="/api/v1/openapi.json")
    app.state.parts = web
    errors.install(app)
    for room in (tenants, domains, logins, mailboxes, oauth_clients, api_keys, webhooks,
                 suppressions, held, optout_reviews, breakers, queue, trace, events, opens,
                 subjects, receipts, reports, lawful, records):
        app.include_router(room.router)
    app.include_router(reference_page.router)  # /api/v1/reference: the browsable document
    pages.install(app)  # the review pages: /review/

    @app.get("/api/v1/", tags=["index"])
    async def index() -> dict[str, str]:
        """Where to start: what the banner of `gateway serve` links to (no key needed)."""
        return {"name": "Outreach Compliance Gateway admin API",
                "openapi": "/api/v1/openapi.json", "reference": "/api/v1/reference",
                "authentication": "Authorization: Bearer <key from 'gateway apikey add'>",
                "review_pages": "/review/", "metrics": "/metrics", "health": "/healthz"}

    app.include_router(health.router)  # /healthz, /readyz, /metrics
    return app
