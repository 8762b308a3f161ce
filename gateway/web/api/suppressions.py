"""Suppression lists: `{list_name}` is a tenant's name or `global`.

A key bound to a tenant reaches its own list only (another tenant's list is a 404). It may
ask whether an address is on the global list, and gets yes or no without a reason; it never
lists, exports or changes the global list.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import AsyncIterator
from typing import Annotated, BinaryIO

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from gateway.access.api_keys import ApiCaller, Forbidden
from gateway.errors import NotFound
from gateway.optout.suppressions import Actor
from gateway.web.api.auth import AnyCaller, OpsCaller, Web
from gateway.web.api.bounds import Cursor, UnixSeconds
from gateway.web.parts import WebParts
from suppression.entries import GLOBAL, Entry, Kind, Reason
from suppression.formats import OCG_HEADER, Format
from suppression.formats import export_row as ocg_row
from suppression.store import Filters

router = APIRouter(prefix="/api/v1/suppression-lists", tags=["suppressions"])
_CHUNK = 1 << 16


class EntryOut(BaseModel):
    id: int
    target: str = Field(description="address, domain, `*.domain`, or `digest:<hex>` for an "
                        "erasure (no address is kept)")
    kind: Kind
    reason: Reason
    source: str
    created_at: int
    expires_at: int | None
    note: str
    created_by: str


class EntryIn(BaseModel):
    target: str = Field(min_length=1, max_length=1000)
    reason: Reason = Reason.MANUAL
    expires_at: UnixSeconds | None = Field(default=None, description="unix seconds; none: "
                                           "permanent")
    note: str = Field(default="", max_length=500)


class RemovalIn(BaseModel):
    target: str = Field(min_length=1, max_length=1000)
    reason: str = Field(min_length=1, max_length=500, description="why it is removed")
    evidence: str = Field(default="", max_length=1000, description="required for "
                          "unsubscribe, complaint and erasure entries")


class CheckIn(BaseModel):
    address: str = Field(min_length=1, max_length=1000)


class CheckOut(BaseModel):
    suppressed: bool
    entries: list[EntryOut] | None = Field(default=None, description="omitted for the "
                                           "global list when the key is bound to a tenant")


class PageOut(BaseModel):
    entries: list[EntryOut]
    next_after: int | None = Field(description="pass as `after` for the next page")


class ImportOut(BaseModel):
    rows: int
    written: int
    skipped: int
    bad_count: int
    bad: list[dict[str, int | str]]
    seconds: float


def _out(e: Entry) -> EntryOut:
    return EntryOut(id=e.id, target=e.display, kind=e.kind, reason=e.reason, source=e.source,
                    created_at=e.created_at, expires_at=e.expires_at, note=e.note,
                    created_by=e.created_by)


def _actor(caller: ApiCaller) -> Actor:
    return Actor(f"apikey:{caller.key_id}", caller.role, caller.tenant_id)


async def _scope(web: WebParts, caller: ApiCaller, list_name: str,
                 global_reads: bool = False) -> int:
    """The list's scope id; another tenant's list is a 404 for a tenant-bound key."""
    if list_name == "global":
        if caller.tenant_id is not None and not global_reads:
            raise Forbidden("A key bound to a tenant may only check the global list.")
        return GLOBAL
    try:
        tenant = await web.directory.tenant(list_name)
    except NotFound:
        raise NotFound("No such suppression list.") from None
    if caller.tenant_id is not None and tenant.id != caller.tenant_id:
        raise NotFound("No such suppression list.")
    return tenant.id


@router.get("/{list_name}/entries", response_model=PageOut)
async def list_entries(list_name: str, caller: OpsCaller, web: Web,
                       reason: Reason | None = None, kind: Kind | None = None,
                       contains: Annotated[str | None, Query(max_length=320)] = None,
                       after: Cursor = 0,
                       limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> PageOut:
    scope = await _scope(web, caller, list_name)
    entries = await web.suppressions.page(_actor(caller), scope,
                                          Filters(reason, kind, contains=contains),
                                          after, limit)
    return PageOut(entries=[_out(e) for e in entries],
                   next_after=entries[-1].id if len(entries) == limit else None)


@router.post("/{list_name}/entries", response_model=EntryOut, status_code=201)
async def add_entry(list_name: str, body: EntryIn, caller: OpsCaller, web: Web) -> EntryOut:
    scope = await _scope(web, caller, list_name)
    entry = await web.suppressions.add(_actor(caller), scope, body.target, body.reason, "api",
                                       body.expires_at, body.note)
    return _out(entry)


@router.post("/{list_name}/removals", response_model=EntryOut)
async def remove_entry(list_name: str, body: RemovalIn, caller: AnyCaller,
                       web: Web) -> EntryOut:
    scope = await _scope(web, caller, list_name)
    return _out(await web.suppressions.remove(_actor(caller), scope, body.target, body.reason,
                                              body.evidence))


@router.post("/{list_name}/check", response_model=CheckOut, response_model_exclude_none=True)
async def check_address(list_name: str, body: CheckIn, caller: AnyCaller,
                        web: Web) -> CheckOut:
    """Is this address on the list? The address travels in the body, never in a URL."""
    return await _check(web, caller, list_name, body.address)


@router.get("/{list_name}/check", response_model=CheckOut, response_model_exclude_none=True,
            deprecated=True)
async def check_address_by_query(list_name: str, caller: AnyCaller, web: Web,
                                 address: Annotated[str, Query(min_length=1, max_length=1000)]
                                 ) -> CheckOut:
    """Deprecated: use POST. Kept for a while; the access log never shows its query."""
    return await _check(web, caller, list_name, address)


async def _check(web: WebParts, caller: ApiCaller, list_name: str, address: str) -> CheckOut:
    scope = await _scope(web, caller, list_name, global_reads=True)
    # the operator's view of the entries; only their presence for a tenant-bound caller
    entries = await web.suppressions.lookup(Actor(_actor(caller).name), scope, address)
    if scope == GLOBAL and caller.tenant_id is not None:
        return CheckOut(suppressed=bool(entries))
    return CheckOut(suppressed=bool(entries), entries=[_out(e) for e in entries])


@router.post("/{list_name}/import", response_model=ImportOut, openapi_extra={
    "requestBody": {"content": {"text/csv": {"schema": {"type": "string"}}}}})
async def import_entries(list_name: str, request: Request, caller: OpsCaller, web: Web,
                         format: Format | None = None, reason: Reason = Reason.MANUAL,
                         strict: bool = False) -> ImportOut:
    """The request body is the file (CSV or one address per line). It is spooled to disk
    as it arrives, never held in memory."""
    scope = await _scope(web, caller, list_name)
    with tempfile.TemporaryFile() as spool:
        async for chunk in request.stream():
            spool.write(chunk)

        def open_spool() -> BinaryIO:
            reader = open(spool.fileno(), "rb", closefd=False)  # noqa: SIM115
            reader.seek(0)
            return reader

        report = await web.suppressions.import_file(_actor(caller), scope, open_spool, reason,
                                                    format, strict)
    return ImportOut(rows=report.rows, written=report.written, skipped=report.skipped,
                     bad_count=report.bad_count, seconds=round(report.seconds, 3),
                     bad=[{"line": b.line, "message": b.message} for b in report.bad])


@router.get("/{list_name}/export", response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}}}})
async def export_entries(list_name: str, caller: OpsCaller, web: Web) -> StreamingResponse:
    scope = await _scope(web, caller, list_name)
    actor = _actor(caller)
    key_id = web.suppressions.key_id

    async def rows() -> AsyncIterator[bytes]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(OCG_HEADER)
        async for entry in web.suppressions.stream(actor, scope, Filters()):
            writer.writerow(ocg_row(entry, key_id))
            if buffer.tell() > _CHUNK:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue().encode()

    return StreamingResponse(rows(), media_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="suppressions-{list_name}.csv"'})
