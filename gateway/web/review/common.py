"""What every review page shares: the router, templates and headers, the session and its
CSRF check, and which messages a reviewer may see."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.datastructures import FormData

from gateway.errors import NotFound
from gateway.review.accounts import Session
from gateway.review.held import (
    DISCARDED,
    EXPIRED,
    HELD,
    REFUSED,
    RELEASE_REQUESTED,
    RELEASED,
    HeldMessage,
)
from gateway.web.parts import ReviewParts, WebParts

router = APIRouter(prefix="/review", include_in_schema=False)
HERE = Path(__file__).parent
ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True)

COOKIE = "__Host-ocg-review"
LOGIN_COOKIE = "__Host-ocg-login"
PAGE_CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
            "frame-src 'self'; frame-ancestors 'none'; base-uri 'none'")
BODY_CSP = "default-src 'none'; img-src data: cid:; style-src 'unsafe-inline'; sandbox"
_COMMON = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
# same-origin, not no-referrer: with no-referrer a browser sends `Origin: null` on the pages'
# own form posts, and the Origin check could not tell them from a forged one.
PAGE_HEADERS = {**_COMMON, "Content-Security-Policy": PAGE_CSP, "X-Frame-Options": "DENY",
                "Referrer-Policy": "same-origin"}
BODY_HEADERS = {**_COMMON, "Content-Security-Policy": BODY_CSP,
                "X-Frame-Options": "SAMEORIGIN", "Referrer-Policy": "no-referrer"}
STATUSES = (HELD, REFUSED, RELEASE_REQUESTED, RELEASED, DISCARDED, EXPIRED, "")  # "": any
DONE = {
    "released": "Released: each recipient's copy is being queued for delivery.",
    "discarded": "Discarded: the sender gets a report and the tenant an event.",
    "noted": "Note added.",
    "added": "Entry added.",
    "removed": "Entry removed.",
}


class LoginRequired(Exception):
    """No live session: the page answers with the sign-in page."""


class Refused(Exception):
    """A form without its CSRF token, or from another site."""


def render(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(ENV.get_template(template).render(**context), status_code=status,
                        headers=PAGE_HEADERS)


def parts_of(request: Request) -> tuple[WebParts, ReviewParts]:
    web: WebParts = request.app.state.parts
    assert web.review is not None  # set by the running gateway
    return web, web.review


async def signed_in(request: Request) -> Session:
    _, review = parts_of(request)
    session = await review.reviewers.session(request.cookies.get(COOKIE, ""))
    if session is None:
        raise LoginRequired()
    return session


def same_origin(request: Request) -> None:
    """Browsers say where a POST comes from; anything but this host is refused."""
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host", ""):
        raise Refused()
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        raise Refused()


async def form_of(request: Request, session: Session) -> FormData:
    same_origin(request)
    form = await request.form()
    if not hmac.compare_digest(str(form.get("csrf", "")), session.csrf):
        raise Refused()
    return form


async def tenant_names(web: WebParts) -> dict[int, str]:
    return {t.id: t.name for t in await web.directory.list_tenants()}


def visible(session: Session, tenant_id: int | None) -> bool:
    bound = session.reviewer.tenant_id
    return bound is None or bound == tenant_id


async def message_for(review: ReviewParts, session: Session, held_id: int) -> HeldMessage:
    """The message, if this reviewer may see it (another tenant's is as absent)."""
    message = await review.held.get(held_id)
    if not visible(session, message.tenant_id):
        raise NotFound(f"Held message {held_id} does not exist.")
    return message


async def viewed(review: ReviewParts, session: Session, held_id: int) -> HeldMessage:
    """The message shown to this reviewer: its subject and recipients are opened, and the
    view is an audit row (another tenant's message is as absent, and not opened)."""
    await message_for(review, session, held_id)
    message = await review.held.get(held_id, viewer=session.reviewer.actor)
    if not visible(session, message.tenant_id):
        raise NotFound(f"Held message {held_id} does not exist.")
    return message


def not_found(session: Session) -> HTMLResponse:
    return render("base.html", 404, title="Not found", session=session,
                   error="There is no such message.")


def flash(q: Mapping[str, str]) -> str:
    done = q.get("done", "")
    if done.startswith("bulk-") and done[5:] in DONE:
        count = q.get("n", "0")
        return f"{int(count) if count.isdigit() else 0} messages: {DONE[done[5:]]}"
    return DONE.get(done, "")


@dataclass(frozen=True, slots=True)
class TenantChoice:
    """The tenant a page about one tenant was asked for, among those the reviewer sees."""

    choices: dict[int, str]  # id -> name: every tenant, or only the reviewer's own
    wanted: str  # the name asked for ("" none; the only one if the reviewer sees one)
    tenant_id: int | None  # None: none asked for, or not one the reviewer sees
    own_name: str  # the reviewer's tenant, for the header ("" if not bound)

    def context(self) -> dict[str, Any]:
        return {"choices": self.choices, "wanted": self.wanted, "tenant_name": self.own_name}


async def tenant_choice(request: Request, session: Session, web: WebParts) -> TenantChoice:
    names = await tenant_names(web)
    bound = session.reviewer.tenant_id
    choices = {i: n for i, n in names.items() if bound is None or i == bound}
    wanted = request.query_params.get("tenant", "")[:200]
    if not wanted and len(choices) == 1:
        wanted = next(iter(choices.values()))
    return TenantChoice(choices, wanted, next((i for i, n in choices.items() if n == wanted),
                                              None), names.get(bound or 0, ""))
