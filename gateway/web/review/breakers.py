"""The reputation breakers page: every breaker that warned or tripped, its rate and window,
and — for a compliance reviewer — the form that resumes it (with a reason, audited)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from gateway.errors import GatewayError, NotFound
from gateway.web.review.common import (
    form_of,
    not_found,
    parts_of,
    render,
    router,
    signed_in,
    tenant_names,
    visible,
)

DONE = {"resumed": "Resumed: the scope sends again within seconds, its rates counted afresh."}


@router.get("/breakers")
async def breakers_page(request: Request) -> Response:
    session = await signed_in(request)
    web, _ = parts_of(request)
    breakers = web.operator.breakers
    names = await tenant_names(web)
    shown = await breakers.listing(session.reviewer.tenant_id)
    return render("breakers.html", title="Reputation breakers", session=session,
                  items=shown, names=names, describe=breakers.describe,
                  tenant_name=names.get(session.reviewer.tenant_id or 0, ""),
                  flash=DONE.get(request.query_params.get("done", ""), ""))


@router.post("/breakers/{breaker_id}")
async def resume(request: Request, breaker_id: int) -> Response:
    session = await signed_in(request)
    form = await form_of(request, session)
    web, _ = parts_of(request)
    try:
        found = await web.operator.breakers.get(breaker_id)
    except NotFound:
        return not_found(session)
    if not visible(session, found.tenant_id):
        return not_found(session)
    if not session.reviewer.decides:
        return render("base.html", 403, title="Refused", session=session,
                      error="Only compliance reviewers resume a breaker.")
    try:
        await web.operator.breakers.resume(breaker_id, session.reviewer.actor,
                                           str(form.get("why", "")).strip()[:500])
    except GatewayError as exc:
        return render("base.html", 409, title="Reputation breakers", session=session,
                      error=exc.message)
    return RedirectResponse("/review/breakers?done=resumed", status_code=303)
