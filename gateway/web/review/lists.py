"""The review pages of the lists: suppression search, add and remove, and the replies that
may ask to stop (possible opt-outs) waiting for a person."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from gateway.errors import GatewayError, NotFound
from gateway.optout.suppressions import Actor
from gateway.review.accounts import Session
from gateway.web.parts import WebParts
from gateway.web.review.common import (
    flash,
    form_of,
    not_found,
    parts_of,
    render,
    router,
    signed_in,
    tenant_names,
    visible,
)
from suppression.entries import GLOBAL, Entry, Reason
from suppression.store import Filters

# what a person adds by hand: `manual` first (the default); erasure is the erase command's
_REASONS = ["manual", *(r.value for r in Reason if r not in (Reason.ERASURE, Reason.MANUAL))]


def _actor(session: Session) -> Actor:
    r = session.reviewer
    return Actor(r.actor, r.role, r.tenant_id)


def _lists(session: Session, names: dict[int, str]) -> list[str]:
    if session.reviewer.tenant_id is not None:
        return [names.get(session.reviewer.tenant_id, "")]
    return ["global", *sorted(names.values())]


def _add_lists(session: Session, names: dict[int, str]) -> list[str]:
    """The lists this reviewer may add to: a reviewer bound to a tenant, that tenant's;
    one who is not, every tenant's, and the global list only for one who decides
    (compliance, admin), never chosen for them."""
    if session.reviewer.tenant_id is not None:
        return [names.get(session.reviewer.tenant_id, "")]
    return sorted(names.values()) + (["global"] if session.reviewer.decides else [])


def _scope(list_name: str, names: dict[int, str]) -> int | None:
    if list_name == "global":
        return GLOBAL
    return next((i for i, n in names.items() if n == list_name), None)


@router.get("/suppressions")
async def suppressions_page(request: Request) -> Response:
    session = await signed_in(request)
    web, review = parts_of(request)
    names = await tenant_names(web)
    lists = _lists(session, names)
    q = request.query_params
    list_name = q.get("list", lists[0])
    # a search is a POST (no address in any URL or log); `?address=` still works for a while
    return await _search_page(web, session, names, list_name, q.get("address", ""),
                              flash(q), browse={})


_PAGE = 50  # entries a browsed page shows


def _browsing(form: Mapping[str, object]) -> tuple[Filters, int, dict[str, str], str]:
    """(filters, after, the values as typed, an error) of a browse form. Filters and the
    prefix travel in POST bodies, never in a URL: a prefix may be a whole address."""
    typed = {k: str(form.get(k) or "").strip()[:320]
             for k in ("reason_filter", "source", "prefix", "from", "until")}
    error = ""
    reason = None
    if typed["reason_filter"]:
        try:
            reason = Reason(typed["reason_filter"])
        except ValueError:
            error = "Unknown reason."
    days = {}
    for key in ("from", "until"):
        if typed[key]:
            try:
                day = datetime.strptime(typed[key], "%Y-%m-%d").replace(tzinfo=UTC)
                days[key] = int(day.timestamp())
            except ValueError:
                error = "Dates are written YYYY-MM-DD."
    after = str(form.get("after") or "0")
    filters = Filters(reason=reason, source=typed["source"][:40] or None,
                      prefix=typed["prefix"] or None, created_from=days.get("from"),
                      created_until=days["until"] + 86400 if "until" in days else None)
    return filters, int(after) if after.isdigit() else 0, typed, error


async def _search_page(web: WebParts, session: Session, names: dict[int, str],
                       list_name: str, address: str, flash: str = "",
                       browse: Mapping[str, object] | None = None) -> Response:
    """The suppressions page: a search for one address (`address`), or a page of the list
    (`browse`: the browse form's fields, `{}` for the first page unfiltered)."""
    lists = _lists(session, names)
    if list_name not in lists:
        list_name = lists[0]
    browsed: list[dict[str, object]] = []
    typed: dict[str, str] = {}
    next_after = 0
    browse_error = ""
    if browse is not None:
        filters, after, typed, browse_error = _browsing(browse)
        scope = _scope(list_name, names)
        if not browse_error and scope is not None:
            try:
                page = await web.suppressions.browse(_actor(session), scope, filters, after,
                                                     _PAGE)
            except GatewayError as exc:
                browse_error, page = exc.message, []
            browsed = [_row(e) for e in page]
            next_after = page[-1].id if len(page) == _PAGE else 0
    address, entries, error = address.strip()[:320], [], ""
    if address:
        scope = _scope(list_name, names)
        try:
            found = await web.suppressions.lookup(_actor(session), scope or 0, address)
            entries = [_row(e) for e in found]
        except GatewayError as exc:
            error = exc.message
    return render("suppressions.html", title="Suppressions", session=session, lists=lists,
                   list_name=list_name, address=address, entries=entries, error=error,
                   reasons=_REASONS, add_lists=_add_lists(session, names),
                   tenant_name=names.get(session.reviewer.tenant_id or 0, ""),
                   flash=flash, browsing=browse is not None, browsed=browsed, typed=typed,
                   next_after=next_after, browse_error=browse_error,
                   all_reasons=[r.value for r in Reason])


def _row(e: Entry) -> dict[str, object]:
    return {"display": e.display, "reason": e.reason, "source": e.source,
            "created": _unix(e.created_at), "expires": _unix(e.expires_at)}


def _unix(value: int | None) -> str:
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M") if value else ""


@router.post("/suppressions")
async def suppressions_change(request: Request) -> Response:
    session = await signed_in(request)
    form = await form_of(request, session)
    web, _ = parts_of(request)
    names = await tenant_names(web)
    list_name = str(form.get("list", ""))
    if form.get("action") == "search":
        return await _search_page(web, session, names, list_name, str(form.get("address", "")))
    if form.get("action") == "browse":
        return await _search_page(web, session, names, list_name, "", browse=form)
    action, target = str(form.get("action", "")), str(form.get("target", "")).strip()[:320]
    allowed = _add_lists(session, names) if action == "add" else _lists(session, names)
    scope = _scope(list_name, names) if list_name in allowed else None
    error = ""
    if action == "add" and list_name == "global" and scope is None:
        error = "Only a compliance reviewer adds to the global list."
    elif action == "add" and not list_name:
        error = "Choose the list to add to."
    elif scope is None:
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
        return render("suppressions.html", 400, title="Suppressions", session=session,
                       lists=_lists(session, names), list_name=list_name, address="",
                       entries=[], error=error, reasons=_REASONS,
                       add_lists=_add_lists(session, names), typed={},
                       all_reasons=[r.value for r in Reason],
                       tenant_name=names.get(session.reviewer.tenant_id or 0, ""))
    done = "added" if action == "add" else "removed"
    return RedirectResponse(f"/review/suppressions?{urlencode({'list': list_name})}"
                            f"&done={done}", status_code=303)


# --- possible opt-outs --------------------------------------------------------------------
@router.get("/optouts")
async def optouts_page(request: Request) -> Response:
    """Replies that may ask to stop, pending a person's decision. Each reply's own words are
    shown as text (an audited read); compliance reviewers confirm or dismiss."""
    session = await signed_in(request)
    web, review = parts_of(request)
    assert review.optouts is not None
    names = await tenant_names(web)
    pending = await review.optouts.listing(session.reviewer.tenant_id, limit=50)
    replies = {}
    if session.reviewer.decides:
        for item in pending:
            replies[item.id] = await review.optouts.reply(item.id, session.reviewer.actor)
    return render("optouts.html", title="Possible opt-outs", session=session,
                   items=pending, replies=replies, names=names,
                   tenant_name=names.get(session.reviewer.tenant_id or 0, ""),
                   flash=OPTOUT_DONE.get(request.query_params.get("done", ""), ""))


OPTOUT_DONE = {"confirmed": "Confirmed: the recipient is suppressed for the tenant.",
               "dismissed": "Dismissed: nobody was suppressed."}


@router.post("/optouts/{review_id}")
async def optout_decide(request: Request, review_id: int) -> Response:
    session = await signed_in(request)
    form = await form_of(request, session)
    web, review = parts_of(request)
    assert review.optouts is not None
    action, why = str(form.get("action", "")), str(form.get("why", "")).strip()[:500]
    try:
        item = await review.optouts.get(review_id)
    except NotFound:
        return not_found(session)
    if not visible(session, item.tenant_id):
        return not_found(session)
    if not session.reviewer.decides or action not in ("confirm", "dismiss"):
        return render("base.html", 403, title="Refused", session=session,
                       error="Only compliance reviewers decide on possible opt-outs.")
    try:
        if action == "confirm":
            await review.optouts.confirm(review_id, session.reviewer.actor, why)
        else:
            await review.optouts.dismiss(review_id, session.reviewer.actor, why)
    except GatewayError as exc:
        return render("base.html", 409, title="Possible opt-outs", session=session,
                       error=exc.message)
    done = "confirmed" if action == "confirm" else "dismissed"
    return RedirectResponse(f"/review/optouts?done={done}", status_code=303)
