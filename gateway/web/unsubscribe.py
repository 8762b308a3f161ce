"""The unsubscribe endpoints on the public listener: `/u/<token>`.

- `POST` is the one-click action (RFC 8058): whatever the body (form-urlencoded, multipart,
  the RFC's own malformed example, nothing), no cookie, login or CSRF token. The opt-out is
  committed before the 200 answer; never a redirect. Idempotent.
- `GET` never unsubscribes (link scanners fetch every URL): it shows one button that POSTs.
- A token that does not open gets 400 and writes nothing. Only such attempts are limited
  (per /24 or /48); a valid token's POST never is: providers send them in bursts.
"""

from __future__ import annotations

import html
import logging

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from gateway.errors import StoreError, VaultError
from gateway.observability.logs import anonymize_ip
from gateway.optout.token import Claims, InvalidToken
from gateway.web import i18n
from gateway.web.parts import WebParts

log = logging.getLogger("gateway.unsubscribe")
router = APIRouter()
MAX_BODY = 64 * 1024  # a one-click body is a few dozen bytes; the rest is not read

_STYLE = ("body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;"
          "color:#1a1a1a;background:#fff;line-height:1.5}"
          "button{font-size:1.1rem;padding:.6rem 1.4rem;border:0;border-radius:.3rem;"
          "background:#0b5cad;color:#fff;cursor:pointer}"
          "button:focus{outline:3px solid #f0a500;outline-offset:2px}"
          "pre.receipt{white-space:pre-wrap;word-break:break-all;font-size:.8rem;"
          "background:#f4f4f4;padding:.6rem}")


def masked(address: str) -> str:
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}***@{domain}" if local else address


def _page(lang: str, title: str, paragraphs: list[str], form: str = "",
          status: int = 200) -> HTMLResponse:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    page = (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="robots" content="noindex"><title>{html.escape(title)}</title>'
            f"<style>{_STYLE}</style></head><body><main><h1>{html.escape(title)}</h1>"
            f"{body}{form}</main></body></html>")
    return HTMLResponse(page, status_code=status, headers={
        "Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                                   "form-action 'self'; frame-ancestors 'none'"})


def _words(request: Request) -> tuple[str, dict[str, str]]:
    lang = i18n.pick(request.headers.get("accept-language"))
    return lang, dict(i18n.TEXTS[lang])


def _sender(web: WebParts, claims: Claims) -> str:
    tenant = web.tenants.tenant(claims.tenant_id)
    if tenant is None:
        return "the sender"
    return str(tenant.settings.get("sender_name") or tenant.name)


async def _open(web: WebParts, request: Request, token: str) -> Claims | HTMLResponse:
    """The token's claims, or the page to answer: 400 for a token that does not open, 429
    once the network sent too many of those."""
    try:
        return web.sealer.open(token)
    except InvalidToken:
        if web.sealer.newer_version(token):
            await web.sealer.refresh()
            try:
                return web.sealer.open(token)
            except InvalidToken:
                pass
    client = request.client.host if request.client else ""
    network = anonymize_ip(client)
    log.info("invalid unsubscribe token", extra={"client": network})
    limited = web.invalid_attempts.over(network)
    lang, w = _words(request)
    response = _page(lang, w["invalid_title"], [html.escape(w["invalid"])],
                     status=429 if limited else 400)
    if limited:
        response.headers["Retry-After"] = "60"
    return response


@router.get("/u/{token}")
async def unsubscribe_page(request: Request, token: str) -> HTMLResponse:
    web: WebParts = request.app.state.parts
    claims = await _open(web, request, token)
    if isinstance(claims, HTMLResponse):
        return claims
    lang, w = _words(request)
    sender, address = html.escape(_sender(web, claims)), html.escape(masked(claims.recipient))
    form = (f'<form method="post" action="{html.escape(token)}">'
            '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
            f'<button type="submit">{html.escape(w["button"])}</button></form>')
    return _page(lang, w["title"], [w["question"].format(sender=sender, address=address)],
                 form)


@router.post("/u/{token}")
async def unsubscribe_one_click(request: Request, token: str) -> HTMLResponse:
    web: WebParts = request.app.state.parts
    read = 0
    async for chunk in request.stream():  # drained, never parsed: any body is accepted
        read += len(chunk)
        if read > MAX_BODY:
            break
    claims = await _open(web, request, token)
    if isinstance(claims, HTMLResponse):
        return claims
    lang, w = _words(request)
    try:
        recorded = await web.optouts.record(claims, "one-click")
    except (StoreError, VaultError, OSError):
        log.exception("opt-out not recorded", extra={"tenant_id": claims.tenant_id})
        return _page(lang, w["busy_title"], [html.escape(w["busy"])], status=503)
    sender, address = html.escape(_sender(web, claims)), html.escape(masked(claims.recipient))
    receipt = (f'<details><summary>{html.escape(w["receipt"])}</summary>'
               f'<pre class="receipt">{html.escape(recorded.receipt)}</pre></details>'
               if recorded.receipt else "")
    return _page(lang, w["done_title"], [w["done"].format(sender=sender, address=address)],
                 receipt)
