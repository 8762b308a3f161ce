"""Sending domains: list, add, verify (the TXT proof), check (SPF, DKIM, DMARC, MX and the
link domain as receivers see them), and their DKIM keys (generate, list, retire).

A tenant-bound key reaches its tenant's domains only; another tenant's is a 404.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from gateway.access.api_keys import ApiCaller
from gateway.directory.domain_check import DnsLookup, Finding, Level
from gateway.dkim.keys import KeyInfo
from gateway.errors import NotFound
from gateway.web.api.auth import AnyCaller, OpsCaller, Web, chosen_tenant, visible_tenant
from gateway.web.parts import WebParts

router = APIRouter(prefix="/api/v1/domains", tags=["domains"])


class DomainOut(BaseModel):
    name: str
    tenant: str


class DomainIn(BaseModel):
    name: str = Field(min_length=1, max_length=253)
    tenant: str | None = Field(default=None, max_length=100,
                               description="whose domain; a tenant-bound key's own if absent")


class FindingOut(BaseModel):
    level: Literal["ok", "warn", "fail"]
    check: str
    detail: str


class CheckOut(BaseModel):
    domain: str
    passed: bool = Field(description="no finding failed")
    findings: list[FindingOut]


class DkimKeyOut(BaseModel):
    domain: str
    selector: str
    algorithm: str
    active: bool
    created_at: datetime
    retired_at: datetime | None
    dns_name: str
    dns_value: str = Field(description="the TXT record's value to publish")


class DkimKeyIn(BaseModel):
    algorithm: Literal["rsa", "ed25519"] = "rsa"
    selector: str = Field(default="", max_length=63,
                          description="the DNS selector (default ocg<yyyymm><r|e>)")


def _finding(f: Finding) -> FindingOut:
    return FindingOut(level=f.level.value, check=f.check, detail=f.detail)


def _key(k: KeyInfo) -> DkimKeyOut:
    return DkimKeyOut(domain=k.domain, selector=k.selector, algorithm=k.algorithm,
                      active=k.retired_at is None, created_at=k.created_at,
                      retired_at=k.retired_at, dns_name=k.dns_name, dns_value=k.dns_value)


async def _visible(web: WebParts, caller: ApiCaller, domain: str) -> str:
    """The domain's normal name, if the caller may reach it."""
    name = domain.strip().lower().rstrip(".")
    owner = next((t for t, d in await web.directory.list_domains() if d == name), None)
    if owner is None:
        raise NotFound(f"Domain {name} is not a sending domain of any tenant.")
    try:
        await visible_tenant(web, caller, owner)
    except NotFound:
        raise NotFound(f"Domain {name} is not a sending domain of any tenant.") from None
    return name


@router.get("", response_model=list[DomainOut])
async def list_domains(caller: AnyCaller, web: Web,
                       tenant: Annotated[str | None, Query(max_length=100)] = None
                       ) -> list[DomainOut]:
    name = (await chosen_tenant(web, caller, tenant)).name \
        if tenant is not None or caller.tenant_id is not None else None
    return [DomainOut(name=d, tenant=t) for t, d in await web.directory.list_domains(name)]


@router.post("", response_model=DomainOut, status_code=201)
async def add_domain(body: DomainIn, caller: OpsCaller, web: Web) -> DomainOut:
    """Add a sending domain to a tenant; then prove it (`verify`)."""
    tenant = await chosen_tenant(web, caller, body.tenant)
    added = await web.directory.add_domain(tenant.name, body.name, caller.actor)
    return DomainOut(name=added, tenant=tenant.name)


@router.post("/{domain}/verify", response_model=FindingOut)
async def verify(domain: str, caller: OpsCaller, web: Web) -> FindingOut:
    """`ok` once the TXT token is published; `fail` names the record to publish."""
    name = await _visible(web, caller, domain)
    return _finding(await web.operator.domains.verify(name, DnsLookup(web.config.dns),
                                                      caller.actor))


@router.get("/{domain}/check", response_model=CheckOut)
async def check(domain: str, caller: AnyCaller, web: Web) -> CheckOut:
    """SPF, DKIM, DMARC, MX and the link-domain CNAME, looked up now."""
    name = await _visible(web, caller, domain)
    findings = await web.operator.domains.report(name, DnsLookup(web.config.dns),
                                                 web.operator.dkim, caller.actor)
    return CheckOut(domain=name, passed=all(f.level is not Level.FAIL for f in findings),
                    findings=[_finding(f) for f in findings])


@router.get("/{domain}/dkim", response_model=list[DkimKeyOut])
async def list_keys(domain: str, caller: AnyCaller, web: Web) -> list[DkimKeyOut]:
    """Every key, active and retired, with the record to publish (public keys only)."""
    name = await _visible(web, caller, domain)
    return [_key(k) for k in await web.operator.dkim.listing(domain=name)]


@router.post("/{domain}/dkim", response_model=DkimKeyOut, status_code=201)
async def generate_key(domain: str, body: DkimKeyIn, caller: OpsCaller,
                       web: Web) -> DkimKeyOut:
    """The newest key of each algorithm signs within seconds on every node: publish its
    record before mail goes out."""
    name = await _visible(web, caller, domain)
    return _key(await web.operator.dkim.generate(name, body.algorithm, body.selector,
                                                 caller.actor))


@router.delete("/{domain}/dkim/{selector}", response_model=DkimKeyOut)
async def retire_key(domain: str, selector: str, caller: OpsCaller, web: Web) -> DkimKeyOut:
    """Stop signing with the key (its record may go once mail signed with it is read)."""
    name = await _visible(web, caller, domain)
    return _key(await web.operator.dkim.retire(name, selector, caller.actor))
