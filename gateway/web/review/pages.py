"""The review pages on the admin listener: sign-in, the queue of held and refused messages,
one message (its body served apart, sandboxed), decisions single and in bulk, the audit
trail, and suppression search, add and remove.

Every page is rendered on the server (no script) under a strict Content-Security-Policy.
Every form carries the session's CSRF token, and a cross-site Origin is refused. A reviewer
bound to a tenant sees that tenant's messages only: another tenant's is a 404. Reading a
body or a message's headers, and searching suppressions, are audited.
"""

from __future__ import annotations

import email
import email.policy
import hmac
import secrets
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import jinja2
import sqlalchemy as sa
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from gateway.errors import GatewayError, NotFound
from gateway.optout.suppressions import Actor
from gateway.review.accounts import Session, SignInRefused
from gateway.review.discard import queue_discard_report
from gateway.review.held import (
    DISCARDED,
    EXPIRED,
    HELD,
    REFUSED,
    RELEASE_REQUESTED,
    RELEASED,
    HeldMessage,
)
from gateway.store.schema import audit_events
from gateway.web.parts import ReviewParts, WebParts
from suppression.entries import GLOBAL, Reason

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


def install(app: FastAPI) -> None:
    app.include_router(router)

    async def login_required(request: Request, exc: Exception) -> Response:
        response = RedirectResponse("/review/login", status_code=303)
        response.delete_cookie(COOKIE, path="/", secure=True, httponly=True,
                               samesite="strict")
        return response

    async def refused(request: Request, exc: Exception) -> Response:
        return _render("base.html", 403, title="Refused", session=None,
                       error="This form was not sent from the review pages (or your session "
                             "changed). Go back, reload and try again.")

    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(Refused, refused)


def _render(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(ENV.get_template(template).render(**context), status_code=status,
                        headers=PAGE_HEADERS)


def _parts(request: Request) -> tuple[WebParts, ReviewParts]:
    web: WebParts = request.app.state.parts
    assert web.review is not None  # set by the running gateway
    return web, web.review


async def _session(request: Request) -> Session:
    _, review = _parts(request)
    session = await review.reviewers.session(request.cookies.get(COOKIE, ""))
    if session is None:
        raise LoginRequired()
    return session


def _same_origin(request: Request) -> None:
    """Browsers say where a POST comes from; anything but this host is refused."""
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host", ""):
        raise Refused()
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        raise Refused()


async def _form(request: Request, session: Session) -> FormData:
    _same_origin(request)
    form = await request.form()
    if not hmac.compare_digest(str(form.get("csrf", "")), session.csrf):
        raise Refused()
    return form


async def _tenant_names(web: WebParts) -> dict[int, str]:
    return {t.id: t.name for t in await web.directory.list_tenants()}


def _visible(session: Session, tenant_id: int | None) -> bool:
    bound = session.reviewer.tenant_id
    return bound is None or bound == tenant_id


async def _message(review: ReviewParts, session: Session, held_id: int) -> HeldMessage:
    """The message, if this reviewer may see it (another tenant's is as absent)."""
    message = await review.held.get(held_id)
    if not _visible(session, message.tenant_id):
        raise NotFound(f"Held message {held_id} does not exist.")
    return message


async def _viewed(review: ReviewParts, session: Session, held_id: int) -> HeldMessage:
    """The message shown to this reviewer: its subject and recipients are opened, and the
    view is an audit row (another tenant's message is as absent, and not opened)."""
    await _message(review, session, held_id)
    message = await review.held.get(held_id, viewer=session.reviewer.actor)
    if not _visible(session, message.tenant_id):
        raise NotFound(f"Held message {held_id} does not exist.")
    return message


def _not_found(session: Session) -> HTMLResponse:
    return _render("base.html", 404, title="Not found", session=session,
                   error="There is no such message.")


# --- signing in ----------------------------------------------------------------------------
@router.get("/login")
async def login_page(request: Request) -> Response:
    _, review = _parts(request)
    if await review.reviewers.session(request.cookies.get(COOKIE, "")) is not None:
        return RedirectResponse("/review/", status_code=303)
    return _login(error="")


def _login(error: str, status: int = 200) -> Response:
    csrf = secrets.token_urlsafe(32)
    response = _render("login.html", status, title="Sign in", session=None, csrf=csrf,
                       error=error)
    response.set_cookie(LOGIN_COOKIE, csrf, httponly=True, secure=True, samesite="strict",
                        path="/")
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    _, review = _parts(request)
    _same_origin(request)
    form = await request.form()
    if not hmac.compare_digest(str(form.get("csrf", "")),
                               request.cookies.get(LOGIN_COOKIE, "-")):
        raise Refused()
    try:
        token, _ = await review.reviewers.sign_in(str(form.get("username", ""))[:200],
                                                  str(form.get("password", ""))[:1000],
                                                  str(form.get("code", ""))[:10])
    except SignInRefused as exc:
        return _login("This account is locked after too many failed sign-ins. Try again "
                      "later, or ask an administrator to unlock it." if exc.locked else
                      "Wrong username, password or code.", 401)
    response = RedirectResponse("/review/", status_code=303)
    response.set_cookie(COOKIE, token, httponly=True, secure=True, samesite="strict",
                        path="/")
    response.delete_cookie(LOGIN_COOKIE, path="/", secure=True, httponly=True,
                           samesite="strict")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    session = await _session(request)
    await _form(request, session)
    _, review = _parts(request)
    await review.reviewers.sign_out(request.cookies.get(COOKIE, ""))
    raise LoginRequired()


# --- the queue -----------------------------------------------------------------------------
def _day(text: str) -> datetime | None:
    return datetime.combine(date.fromisoformat(text), time(), UTC) if text else None


@router.get("/")
async def queue(request: Request) -> Response:
    session = await _session(request)
    web, review = _parts(request)
    q = request.query_params
    names = await _tenant_names(web)
    f = {"tenant": q.get("tenant", ""), "check": q.get("check", ""),
         "status": q.get("status", "held"), "since": q.get("since", ""),
         "until": q.get("until", ""), "subject": q.get("subject", "")[:998]}
    error = ""
    tenant_id = session.reviewer.tenant_id
    if tenant_id is None and f["tenant"]:
        tenant_id = next((i for i, n in names.items() if n == f["tenant"]), -1)
    try:
        since, until = _day(f["since"]), _day(f["until"])
        before = int(q["before"]) if q.get("before") else None
    except ValueError:
        since = until = before = None
        error = "Dates are YYYY-MM-DD; the date filter was left out."
    if until is not None:
        until += timedelta(days=1)  # the whole last day
    status = f["status"] if f["status"] in STATUSES else "held"
    size = web.config.review.page_size
    messages, counts = await review.held.page(
        tenant_id=tenant_id, status=status or None, check_name=f["check"] or None,
        since=since, until=until, before=before, limit=size, subject=f["subject"],
        viewer=session.reviewer.actor)

    def link(**change: Any) -> str:
        params = {k: v for k, v in {**f, **change}.items() if v}
        return "/review/?" + urlencode(params)

    tenant_name = names.get(session.reviewer.tenant_id or 0, "")
    return _render(
        "queue.html", title="Review queue", session=session, tenant_name=tenant_name,
        tenants=sorted(names.values()), checks=sorted(set(counts) | {f["check"]} - {""}),
        statuses=STATUSES, f=f, counts=sorted(counts.items(), key=lambda kv: -kv[1]),
        messages=messages, names=names, link=link, error=error,
        next_before=messages[-1].id if len(messages) == size else None,
        flash=_flash(q))


def _flash(q: Mapping[str, str]) -> str:
    done = q.get("done", "")
    if done.startswith("bulk-") and done[5:] in DONE:
        count = q.get("n", "0")
        return f"{int(count) if count.isdigit() else 0} messages: {DONE[done[5:]]}"
    return DONE.get(done, "")


@router.post("/bulk")
async def bulk(request: Request) -> Response:
    session = await _session(request)
    form = await _form(request, session)
    web, review = _parts(request)
    action, reason = str(form.get("action", "")), str(form.get("reason", "")).strip()
    if not session.reviewer.decides or action not in ("release", "discard") or not reason:
        return RedirectResponse("/review/", status_code=303)
    done = 0
    for raw in form.getlist("ids"):
        try:
            message = await _message(review, session, int(str(raw)))
        except (ValueError, NotFound):
            continue
        if message.status == HELD:
            await _decide(web, review, session, message, action, reason[:500])
            done += 1
    verb = "released" if action == "release" else "discarded"
    return RedirectResponse(f"/review/?done=bulk-{verb}&n={done}", status_code=303)


async def _decide(web: WebParts, review: ReviewParts, session: Session,
                  message: HeldMessage, action: str, reason: str) -> None:
    actor = session.reviewer.actor
    if action == "release":
        await review.held.request_release(message.id, actor, reason)
    elif action == "discard":
        decided = await review.held.discard(message.id, actor, reason)
        body = await review.held.body(message.id, "review:discard-report")
        await queue_discard_report(review.queue, decided, body, web.config)
    else:
        await review.held.note(message.id, actor, reason)


# --- one message ---------------------------------------------------------------------------
@router.get("/messages/{held_id}")
async def message_page(request: Request, held_id: int) -> Response:
    session = await _session(request)
    web, review = _parts(request)
    try:
        message = await _viewed(review, session, held_id)
    except NotFound:
        return _not_found(session)
    headers = ""
    if session.reviewer.decides:  # reading the headers reads personal data: audited
        raw = await review.held.body(held_id, session.reviewer.actor)
        headers = raw.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    names = await _tenant_names(web)
    return _render("message.html", title=f"Message {message.id}", session=session, m=message,
                   tenant=names.get(message.tenant_id, message.tenant_id), headers=headers,
                   tenant_name=names.get(session.reviewer.tenant_id or 0, ""),
                   flash=_flash(request.query_params))


@router.get("/messages/{held_id}/body")
async def message_body(request: Request, held_id: int) -> Response:
    """The body alone, for the sandboxed frame: no script runs, nothing is fetched."""
    session = await _session(request)
    _, review = _parts(request)
    try:
        await _message(review, session, held_id)
    except NotFound:
        return Response("no such message", 404, headers=BODY_HEADERS, media_type="text/plain")
    if not session.reviewer.decides:
        return Response("compliance reviewers only", 403, headers=BODY_HEADERS,
                        media_type="text/plain")
    raw = await review.held.body(held_id, session.reviewer.actor)
    html_body, text_body = _body_parts(raw)
    if request.query_params.get("as") == "text" or html_body is None:
        return Response(text_body if text_body is not None else (html_body or ""),
                        headers=BODY_HEADERS, media_type="text/plain; charset=utf-8")
    return Response(html_body, headers=BODY_HEADERS, media_type="text/html; charset=utf-8")


def _body_parts(raw: bytes) -> tuple[str | None, str | None]:
    """The message's HTML and plain-text bodies, decoded (either may be missing)."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    found: dict[str, str | None] = {"html": None, "plain": None}
    for kind in found:
        part = message.get_body(preferencelist=(kind,))
        if part is None:
            continue
        try:
            found[kind] = part.get_content()
        except (LookupError, ValueError, AssertionError):
            payload = part.get_payload(decode=True)
            found[kind] = payload.decode("utf-8", "replace") if isinstance(payload, bytes) \
                else None
    return found["html"], found["plain"]


@router.post("/messages/{held_id}/decide")
async def decide(request: Request, held_id: int) -> Response:
    session = await _session(request)
    form = await _form(request, session)
    web, review = _parts(request)
    try:
        message = await _message(review, session, held_id)
    except NotFound:
        return _not_found(session)
    action, reason = str(form.get("action", "")), str(form.get("reason", "")).strip()
    if not session.reviewer.decides or action not in ("release", "discard", "note"):
        return _render("base.html", 403, title="Refused", session=session,
                       error="Only compliance reviewers decide on messages.")
    if not reason:
        return RedirectResponse(f"/review/messages/{held_id}", status_code=303)
    try:
        await _decide(web, review, session, message, action, reason[:1000])
    except GatewayError as exc:
        return _render("base.html", 409, title=f"Message {held_id}", session=session,
                       error=exc.message)
    done = {"release": "released", "discard": "discarded", "note": "noted"}[action]
    return RedirectResponse(f"/review/messages/{held_id}?done={done}", status_code=303)


# --- the audit trail -----------------------------------------------------------------------
@router.get("/audit")
async def audit_page(request: Request) -> Response:
    session = await _session(request)
    web, review = _parts(request)
    query = sa.select(audit_events).order_by(audit_events.c.id.desc()).limit(100)
    if session.reviewer.tenant_id is not None:
        query = query.where(audit_events.c.tenant_id == session.reviewer.tenant_id)
    before = request.query_params.get("before", "")
    if before.isdigit():
        query = query.where(audit_events.c.id < int(before))
    async with review.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    names = await _tenant_names(web)
    return _render("audit.html", title="Audit trail", session=session, rows=rows, names=names,
                   tenant_name=names.get(session.reviewer.tenant_id or 0, ""),
                   next_before=rows[-1].id if len(rows) == 100 else None)


# --- suppressions --------------------------------------------------------------------------
def _actor(session: Session) -> Actor:
    r = session.reviewer
    return Actor(r.actor, r.role, r.tenant_id)


def _lists(session: Session, names: dict[int, str]) -> list[str]:
    if session.reviewer.tenant_id is not None:
        return [names.get(session.reviewer.tenant_id, "")]
    return ["global", *sorted(names.values())]


def _scope(list_name: str, names: dict[int, str]) -> int | None:
    if list_name == "global":
        return GLOBAL
    return next((i for i, n in names.items() if n == list_name), None)


@router.get("/suppressions")
async def suppressions_page(request: Request) -> Response:
    session = await _session(request)
    web, review = _parts(request)
    names = await _tenant_names(web)
    lists = _lists(session, names)
    q = request.query_params
    list_name = q.get("list", lists[0])
    # a search is a POST (no address in any URL or log); `?address=` still works for a while
    return await _search_page(web, session, names, list_name, q.get("address", ""),
                              _flash(q))


async def _search_page(web: WebParts, session: Session, names: dict[int, str],
                       list_name: str, address: str, flash: str = "") -> Response:
    lists = _lists(session, names)
    if list_name not in lists:
        list_name = lists[0]
    address, entries, error = address.strip()[:320], [], ""
    if address:
        scope = _scope(list_name, names)
        try:
            found = await web.suppressions.lookup(_actor(session), scope or 0, address)
            entries = [{"display": e.display, "reason": e.reason, "source": e.source,
                        "created": _unix(e.created_at), "expires": _unix(e.expires_at)}
                       for e in found]
        except GatewayError as exc:
            error = exc.message
    return _render("suppressions.html", title="Suppressions", session=session, lists=lists,
                   list_name=list_name, address=address, entries=entries, error=error,
                   reasons=[r.value for r in Reason if r is not Reason.ERASURE],
                   tenant_name=names.get(session.reviewer.tenant_id or 0, ""),
                   flash=flash)


def _unix(value: int | None) -> str:
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M") if value else ""


@router.post("/suppressions")
async def suppressions_change(request: Request) -> Response:
    session = await _session(request)
    form = await _form(request, session)
    web, _ = _parts(request)
    names = await _tenant_names(web)
    list_name = str(form.get("list", ""))
    if form.get("action") == "search":
        return await _search_page(web, session, names, list_name, str(form.get("address", "")))
    scope = _scope(list_name, names) if list_name in _lists(session, names) else None
    action, target = str(form.get("action", "")), str(form.get("target", "")).strip()[:320]
    error = ""
    if scope is None:
        error = "No such list."
    else:
        try:
            if action == "add":
                reason = Reason(str(form.get("reason", "manual")))
                await web.suppressions.add(_actor(session), scope, target, reason, "review")
            elif action == "remove":
                await web.suppressions.remove(_actor(session), scope, target,
                                              str(form.get("why", ""))[:500],
                                              str(form.get("evidence", ""))[:1000])
            else:
                error = "Unknown action."
        except ValueError:
            error = "Unknown reason."
        except GatewayError as exc:
            error = exc.message
    if error:
        return _render("suppressions.html", 400, title="Suppressions", session=session,
                       lists=_lists(session, names), list_name=list_name, address="",
                       entries=[], error=error,
                       reasons=[r.value for r in Reason if r is not Reason.ERASURE],
                       tenant_name=names.get(session.reviewer.tenant_id or 0, ""))
    done = "added" if action == "add" else "removed"
    return RedirectResponse(f"/review/suppressions?{urlencode({'list': list_name})}"
                            f"&done={done}", status_code=303)


# --- possible opt-outs --------------------------------------------------------------------
@router.get("/optouts")
async def optouts_page(request: Request) -> Response:
    """Replies that may ask to stop, pending a person's decision. Each reply's own words are
    shown as text (an audited read); compliance reviewers confirm or dismiss."""
    session = await _session(request)
    web, review = _parts(request)
    assert review.optouts is not None
    names = await _tenant_names(web)
    pending = await review.optouts.listing(session.reviewer.tenant_id, limit=50)
    replies = {}
    if session.reviewer.decides:
        for item in pending:
            replies[item.id] = await review.optouts.reply(item.id, session.reviewer.actor)
    return _render("optouts.html", title="Possible opt-outs", session=session,
                   items=pending, replies=replies, names=names,
                   tenant_name=names.get(session.reviewer.tenant_id or 0, ""),
                   flash=OPTOUT_DONE.get(request.query_params.get("done", ""), ""))


OPTOUT_DONE = {"confirmed": "Confirmed: the recipient is suppressed for the tenant.",
               "dismissed": "Dismissed: nobody was suppressed."}


@router.post("/optouts/{review_id}")
async def optout_decide(request: Request, review_id: int) -> Response:
    session = await _session(request)
    form = await _form(request, session)
    web, review = _parts(request)
    assert review.optouts is not None
    action, why = str(form.get("action", "")), str(form.get("why", "")).strip()[:500]
    try:
        item = await review.optouts.get(review_id)
    except NotFound:
        return _not_found(session)
    if not _visible(session, item.tenant_id):
        return _not_found(session)
    if not session.reviewer.decides or action not in ("confirm", "dismiss"):
        return _render("base.html", 403, title="Refused", session=session,
                       error="Only compliance reviewers decide on possible opt-outs.")
    try:
        if action == "confirm":
            await review.optouts.confirm(review_id, session.reviewer.actor, why)
        else:
            await review.optouts.dismiss(review_id, session.reviewer.actor, why)
    except GatewayError as exc:
        return _render("base.html", 409, title="Possible opt-outs", session=session,
                       error=exc.message)
    done = "confirmed" if action == "confirm" else "dismissed"
    return RedirectResponse(f"/review/optouts?done={done}", status_code=303)


@router.get("/static/review.css")
async def stylesheet() -> Response:
    return FileResponse(HERE / "static" / "review.css", media_type="text/css",
                        headers={"Cache-Control": "max-age=3600",
                                 "X-Content-Type-Options": "nosniff"})
