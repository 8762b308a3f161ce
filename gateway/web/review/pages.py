"""The review pages on the admin listener: sign-in, the queue of held and refused messages,
one message (its body served apart, sandboxed), decisions single and in bulk, and the audit
trail; the lists' pages (suppression search, add and remove; possible opt-outs) are in
`lists.py`, what every page shares in `common.py`.

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
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from gateway.errors import GatewayError, NotFound
from gateway.review.accounts import SignInRefused
from gateway.review.decisions import action_named
from gateway.store.schema import audit_events
from gateway.web.review import breakers, lists, overview, reports  # noqa: F401  # their routes join the router
from gateway.web.review.common import (
    BODY_HEADERS,
    COOKIE,
    HERE,
    LOGIN_COOKIE,
    STATUSES,
    LoginRequired,
    Refused,
    flash,
    form_of,
    message_for,
    not_found,
    parts_of,
    render,
    router,
    same_origin,
    signed_in,
    tenant_names,
    viewed,
)


def install(app: FastAPI) -> None:
    app.include_router(router)

    async def login_required(request: Request, exc: Exception) -> Response:
        response = RedirectResponse("/review/login", status_code=303)
        response.delete_cookie(COOKIE, path="/", secure=True, httponly=True,
                               samesite="strict")
        return response

    async def refused(request: Request, exc: Exception) -> Response:
        return render("base.html", 403, title="Refused", session=None,
                       error="This form was not sent from the review pages (or your session "
                             "changed). Go back, reload and try again.")

    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(Refused, refused)


# --- signing in ----------------------------------------------------------------------------
@router.get("/login")
async def login_page(request: Request) -> Response:
    _, review = parts_of(request)
    if await review.reviewers.session(request.cookies.get(COOKIE, "")) is not None:
        return RedirectResponse("/review/", status_code=303)
    return _login(error="")


def _login(error: str, status: int = 200) -> Response:
    csrf = secrets.token_urlsafe(32)
    response = render("login.html", status, title="Sign in", session=None, csrf=csrf,
                       error=error)
    response.set_cookie(LOGIN_COOKIE, csrf, httponly=True, secure=True, samesite="strict",
                        path="/")
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    _, review = parts_of(request)
    same_origin(request)
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
    session = await signed_in(request)
    await form_of(request, session)
    _, review = parts_of(request)
    await review.reviewers.sign_out(request.cookies.get(COOKIE, ""))
    raise LoginRequired()


# --- the queue -----------------------------------------------------------------------------
def _day(text: str) -> datetime | None:
    return datetime.combine(date.fromisoformat(text), time(), UTC) if text else None


@router.get("/")
async def queue(request: Request) -> Response:
    session = await signed_in(request)
    web, review = parts_of(request)
    q = request.query_params
    names = await tenant_names(web)
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
    return render(
        "queue.html", title="Review queue", session=session, tenant_name=tenant_name,
        tenants=sorted(names.values()), checks=sorted(set(counts) | {f["check"]} - {""}),
        statuses=STATUSES, f=f, counts=sorted(counts.items(), key=lambda kv: -kv[1]),
        messages=messages, names=names, link=link, error=error,
        next_before=messages[-1].id if len(messages) == size else None,
        flash=flash(q))


@router.post("/bulk")
async def bulk(request: Request) -> Response:
    session = await signed_in(request)
    form = await form_of(request, session)
    _, review = parts_of(request)
    action = action_named(str(form.get("action", "")), ("release", "discard"))
    reason = str(form.get("reason", "")).strip()
    if not session.reviewer.decides or action is None or not reason:
        return RedirectResponse("/review/", status_code=303)
    chosen = []
    for raw in form.getlist("ids"):
        try:
            chosen.append(await message_for(review, session, int(str(raw))))
        except (ValueError, NotFound):
            continue
    done = len(await review.decisions.decide_all(chosen, action, session.reviewer.actor,
                                                 reason[:500]))
    verb = "released" if action == "release" else "discarded"
    return RedirectResponse(f"/review/?done=bulk-{verb}&n={done}", status_code=303)


# --- one message ---------------------------------------------------------------------------
@router.get("/messages/{held_id}")
async def message_page(request: Request, held_id: int) -> Response:
    session = await signed_in(request)
    web, review = parts_of(request)
    try:
        message = await viewed(review, session, held_id)
    except NotFound:
        return not_found(session)
    headers = ""
    if session.reviewer.decides:  # reading the headers reads personal data: audited
        raw = await review.held.body(held_id, session.reviewer.actor)
        headers = raw.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    names = await tenant_names(web)
    return render("message.html", title=f"Message {message.id}", session=session, m=message,
                   tenant=names.get(message.tenant_id, message.tenant_id), headers=headers,
                   tenant_name=names.get(session.reviewer.tenant_id or 0, ""),
                   flash=flash(request.query_params))


@router.get("/messages/{held_id}/body")
async def message_body(request: Request, held_id: int) -> Response:
    """The body alone, for the sandboxed frame: no script runs, nothing is fetched."""
    session = await signed_in(request)
    _, review = parts_of(request)
    try:
        await message_for(review, session, held_id)
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
    session = await signed_in(request)
    form = await form_of(request, session)
    web, review = parts_of(request)
    try:
        message = await message_for(review, session, held_id)
    except NotFound:
        return not_found(session)
    action = action_named(str(form.get("action", "")))
    reason = str(form.get("reason", "")).strip()
    if not session.reviewer.decides or action is None:
        return render("base.html", 403, title="Refused", session=session,
                       error="Only compliance reviewers decide on messages.")
    if not reason:
        return RedirectResponse(f"/review/messages/{held_id}", status_code=303)
    try:
        await review.decisions.decide(message.id, action, session.reviewer.actor,
                                      reason[:1000])
    except GatewayError as exc:
        return render("base.html", 409, title=f"Message {held_id}", session=session,
                       error=exc.message)
    done = {"release": "released", "discard": "discarded", "note": "noted"}[action]
    return RedirectResponse(f"/review/messages/{held_id}?done={done}", status_code=303)


# --- the audit trail -----------------------------------------------------------------------
@router.get("/audit")
async def audit_page(request: Request) -> Response:
    session = await signed_in(request)
    web, review = parts_of(request)
    query = sa.select(audit_events).order_by(audit_events.c.id.desc()).limit(100)
    if session.reviewer.tenant_id is not None:
        query = query.where(audit_events.c.tenant_id == session.reviewer.tenant_id)
    before = request.query_params.get("before", "")
    if before.isdigit():
        query = query.where(audit_events.c.id < int(before))
    async with review.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    names = await tenant_names(web)
    return render("audit.html", title="Audit trail", session=session, rows=rows, names=names,
                   tenant_name=names.get(session.reviewer.tenant_id or 0, ""),
                   next_before=rows[-1].id if len(rows) == 100 else None)


# --- suppressions --------------------------------------------------------------------------


@router.get("/static/review.css")
async def stylesheet() -> Response:
    return FileResponse(HERE / "static" / "review.css", media_type="text/css",
                        headers={"Cache-Control": "max-age=3600",
                                 "X-Content-Type-Options": "nosniff"})
