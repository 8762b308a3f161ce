"""The public app (reachable from the internet): the tracking pixel, unsubscribe pages and
one-click POSTs, the OAuth consent start and callback, health."""

from __future__ import annotations

import html
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from gateway.vault.flows import FlowError
from gateway.web import errors, unsubscribe
from gateway.web.client_ip import AnonymizeClient
from gateway.web.parts import WebParts
from gateway.web.pixel import PixelEndpoint

log = logging.getLogger("gateway.web")

FLOW_COOKIE = "ocg_oauth_flow"
_PROVIDERS = {"google": "Google", "microsoft": "Microsoft 365"}


def _page(title: str, text: str, status: int = 200) -> HTMLResponse:
    body = (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title></head><body><main>"
            f"<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></main></body></html>")
    return HTMLResponse(body, status_code=status, headers={
        "Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
        "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'"})


def create_public_app(web: WebParts) -> Any:
    """The public ASGI app: the client's address anonymized first, then the pixel fast
    path, then the FastAPI routes."""
    app: Any = _routes(web)
    if web.pixels is not None:
        app = PixelEndpoint(app, web.pixels.sealer, web.pixels.recorder, web.pixels.forwarder,
                            web.pixels.judge)
    return AnonymizeClient(app, web.config.http.trusted_proxies, web.config.pixels.ipv4_prefix,
                           web.pixels.judge.classify if web.pixels is not None else None)


def openapi_document(web: WebParts) -> dict[str, Any]:
    """The public side's routes as an OpenAPI document (not served: the public listener
    shows recipients nothing they do not need; the tests fuzz it). The pixel path `/p/`
    answers before these routes and is fuzzed on its own."""
    document: dict[str, Any] = _routes(web).openapi()
    return document


def _routes(web: WebParts) -> FastAPI:
    app = FastAPI(title="Outreach Compliance Gateway public side", version="1",
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.state.parts = web
    errors.install(app)
    app.include_router(unsubscribe.router)

    @app.get("/")
    async def home() -> HTMLResponse:
        # what a curious recipient finds at the host of an unsubscribe link
        return _page("Mail preferences",
                     "This address serves the unsubscribe links and images of messages sent "
                     "through an Outreach Compliance Gateway. Use the link in a message to "
                     "unsubscribe from its sender.")

    @app.get("/.well-known/ocg-receipt-keys.json", include_in_schema=False)
    async def receipt_keys() -> JSONResponse:
        """Every public key that ever signed an opt-out receipt (optout/receipts.py)."""
        return JSONResponse(web.operator.receipts.key_document(),
                            headers={"Cache-Control": "public, max-age=300"})

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        if not web.ready:
            return JSONResponse({"status": "shutting down"}, status_code=503)
        return JSONResponse({"status": "ready"})

    _oauth_routes(app, web)
    return app


def _oauth_routes(app: FastAPI, web: WebParts) -> None:
    """Where a mailbox owner signs in with their provider, and comes back."""

    @app.get("/oauth/{provider}/start")
    async def oauth_start(provider: str, ticket: str = "") -> Response:
        if provider not in _PROVIDERS or not ticket:
            return _page("Link not valid", "This connection link is not valid.", 400)
        try:
            redirect = await web.flows.begin(provider, ticket, web.redirect_uri(provider))
        except FlowError as exc:
            return _page("Cannot connect the mailbox", exc.message, 400)
        response = RedirectResponse(redirect.url, status_code=302,
                                    headers={"Cache-Control": "no-store",
                                             "Referrer-Policy": "no-referrer"})
        response.set_cookie(FLOW_COOKIE, redirect.browser_secret, max_age=600,
                            path=f"/oauth/{provider}/", httponly=True, samesite="lax",
                            secure=web.public_base_url.startswith("https://"))
        return response

    @app.get("/oauth/{provider}/callback")
    async def oauth_callback(request: Request, provider: str, state: str = "",
                             code: str = "", error: str = "") -> Response:
        if provider not in _PROVIDERS:
            return _page("Link not valid", "This sign-in link is not valid.", 400)
        if error:
            return _page("Mailbox not connected",
                         f"{_PROVIDERS[provider]} did not grant access ({error[:60]}).", 400)
        if not state or not code:
            return _page("Link not valid", "This sign-in link is incomplete.", 400)
        try:
            mailbox_id = await web.flows.complete(
                provider, state, code, request.cookies.get(FLOW_COOKIE, ""),
                web.redirect_uri(provider))
        except FlowError as exc:
            return _page("Mailbox not connected", exc.message, 400)
        response = _page("Mailbox connected",
                         f"The mailbox ({mailbox_id}) can now send through the gateway. "
                         "You can close this page.")
        response.delete_cookie(FLOW_COOKIE, path=f"/oauth/{provider}/")
        return response
