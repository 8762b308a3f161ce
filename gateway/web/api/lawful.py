"""The lawful-basis table over the API: the version in force (or an earlier one), the list
of versions, and publishing a new one (admin keys only: it changes what every tenant may
send). The same as `gateway policy show|versions|load`. Not legal advice."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from gateway.lawful.table import Kind
from gateway.lawful.versions import Version
from gateway.web.api.auth import AdminCaller, AnyCaller, Web

router = APIRouter(prefix="/api/v1/lawful-policy", tags=["lawful basis"])
MAX_DOCUMENT = 200_000


class RowOut(BaseModel):
    named: str
    generic: str
    sole_trader: str
    source: str
    note: str
    verified: bool


class PolicyOut(BaseModel):
    version: int
    policy_id: str
    title: str
    created_at: datetime
    created_by: str
    countries: dict[str, RowOut] = Field(description="ISO 3166-1 alpha-2 code -> its row")
    default: RowOut = Field(description="any other country, or none known")
    new: bool = Field(default=False, description="publishing: whether a version was made")


class VersionOut(BaseModel):
    version: int
    policy_id: str
    created_at: datetime
    created_by: str


class PublishIn(BaseModel):
    document: str = Field(min_length=1, max_length=MAX_DOCUMENT,
                          description="the table as TOML (deploy/lawful-basis.toml)")


def _out(found: Version, new: bool = False) -> PolicyOut:
    def row(r: object) -> RowOut:
        from gateway.lawful.table import Row

        assert isinstance(r, Row)
        return RowOut(**{k.value: r.decisions[k].value for k in Kind}, source=r.source,
                      note=r.note, verified=r.verified)

    table = found.table
    return PolicyOut(version=found.version, policy_id=table.policy_id, title=table.title,
                     created_at=found.created_at, created_by=found.created_by,
                     countries={c: row(r) for c, r in table.countries.items()},
                     default=row(table.default), new=new)


@router.get("", response_model=PolicyOut)
async def show_policy(caller: AnyCaller, web: Web,
                      version: Annotated[int | None, Query(ge=1)] = None) -> PolicyOut:
    """The table in force, or `version`."""
    return _out(await web.operator.policies.get(version))


@router.get("/versions", response_model=list[VersionOut])
async def list_versions(caller: AnyCaller, web: Web) -> list[VersionOut]:
    return [VersionOut(version=v.version, policy_id=v.table.policy_id,
                       created_at=v.created_at, created_by=v.created_by)
            for v in await web.operator.policies.versions()]


@router.post("", response_model=PolicyOut)
async def publish_policy(body: PublishIn, caller: AdminCaller, web: Web) -> PolicyOut:
    """A new version, audited, in force on every node within seconds (the same document as
    the newest makes none)."""
    found, new = await web.operator.policies.publish(body.document, caller.actor,
                                                     "api")
    return _out(found, new)
