"""A tenant's recipient attribute and consent records, imported as CSV (the body,
`text/csv`), as `gateway records import-attributes|import-consent` does. A tenant-bound key
imports into its own tenant only."""

from __future__ import annotations

import csv
import io

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel

from gateway.errors import InvalidValue
from gateway.lawful.importer import Imported, import_attributes, import_consents
from gateway.lawful.records import EXPORT_HEADER, consent_export
from gateway.web.api.auth import AnyCaller, Web, visible_tenant_id

router = APIRouter(prefix="/api/v1/tenants", tags=["lawful basis"])
MAX_BODY = 100 * 1024 * 1024


class ImportedOut(BaseModel):
    imported: int
    refused: int
    problems: list[str]


async def _csv(request: Request) -> str:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise InvalidValue("At most 100 MB a request: split the file.")
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidValue("The CSV is not UTF-8.") from None


def _out(found: Imported) -> ImportedOut:
    return ImportedOut(imported=found.imported, refused=found.refused, problems=found.problems)


@router.post("/{tenant_name}/recipient-records", response_model=ImportedOut,
             openapi_extra={"requestBody": {"content": {"text/csv": {}}}})
async def post_attributes(tenant_name: str, request: Request, caller: AnyCaller,
                          web: Web) -> ImportedOut:
    """CSV `address,country,kind`: each row sets what the tenant knows of one person."""
    tenant_id = await visible_tenant_id(web, caller, tenant_name)
    lawful = web.operator.lawful
    return _out(await import_attributes(web.directory.engine, lawful.index, tenant_id,
                                        await _csv(request), web.operator.digest,
                                        caller.actor))


@router.post("/{tenant_name}/consent-records", response_model=ImportedOut,
             openapi_extra={"requestBody": {"content": {"text/csv": {}}}})
async def post_consents(tenant_name: str, request: Request, caller: AnyCaller,
                        web: Web) -> ImportedOut:
    """CSV `address,basis,given_at,source[,method,evidence,scope,expires_at]`."""
    tenant_id = await visible_tenant_id(web, caller, tenant_name)
    lawful = web.operator.lawful
    return _out(await import_consents(web.directory.engine, lawful.index, tenant_id,
                                      await _csv(request), web.operator.digest, caller.actor))


@router.get("/{tenant_name}/consent-records", response_class=PlainTextResponse,
            responses={200: {"content": {"text/csv": {}}}})
async def get_consents(tenant_name: str, caller: AnyCaller, web: Web) -> PlainTextResponse:
    """The tenant's consent records as CSV, as `gateway records export-consent` writes them
    (people by digest: the export goes back into this installation only)."""
    tenant_id = await visible_tenant_id(web, caller, tenant_name)
    async with web.directory.engine.connect() as conn:
        rows = await consent_export(conn, tenant_id)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_HEADER)
    writer.writerows(rows)
    return PlainTextResponse(out.getvalue(), media_type="text/csv")
