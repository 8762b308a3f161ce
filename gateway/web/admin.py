"""The admin app (private listener): the JSON API with its OpenAPI document, health."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from gateway.web import errors, health
from gateway.web.api import (
    api_keys,
    events,
    mailboxes,
    oauth_clients,
    opens,
    subjects,
    suppressions,
)
from gateway.web.client_ip import AnonymizeClient
from gateway.web.parts import WebParts
from gateway.web.review import pages


def create_admin_app(web: WebParts) -> Any:
    """The admin ASGI app, behind the same client-address anonymizer as the public one."""
    return AnonymizeClient(_routes(web), web.config.http.trusted_proxies,
                           web.config.pixels.ipv4_prefix)


def _routes(web: WebParts) -> FastAPI:
    app = FastAPI(title="Outreach Compliance Gateway admin API", version="1",
                  docs_url=None, redoc_url=None, openapi_url="/api/v1/openapi.json")
    app.state.parts = web
    errors.install(app)
    app.include_router(mailboxes.router)
    app.include_router(oauth_clients.router)
    app.include_router(api_keys.router)
    app.include_router(suppressions.router)
    app.include_router(events.router)
    app.include_router(opens.router)
    app.include_router(subjects.router)
    pages.install(app)  # the review pages: /review/

    @app.get("/api/v1/", tags=["index"])
    async def index() -> dict[str, str]:
        """Where to start: what the banner of `gateway serve` links to (no key needed)."""
        return {"name": "Outreach Compliance Gateway admin API",
                "openapi": "/api/v1/openapi.json",
                "authentication": "Authorization: Bearer <key from 'gateway apikey add'>",
                "review_pages": "/review/", "metrics": "/metrics", "health": "/healthz"}

    app.include_router(health.router)  # /healthz, /readyz, /metrics
    return app
