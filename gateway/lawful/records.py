"""What a tenant knows of its recipients, named only by the audit digest of their address:
attribute records (country, kind) and consent records.

A consent record says on what basis the tenant may mail the person, with its source,
method, time, evidence, scope and expiry:

| basis | valid |
|---|---|
| `express` | until withdrawn, or its expiry |
| `soft-opt-in` | an existing customer: until withdrawn or its expiry (*) |
| `casl-purchase` | CASL implied consent after a purchase or contract: 2 years from it |
| `casl-inquiry` | CASL implied consent after an inquiry: 6 months from it |
| `casl-publication` | CASL conspicuous publication relevant to the person's role: no period |

(*) UWG §7(3), PECR reg. 22(3), ePrivacy Art. 13(2).

Nothing here names anyone: the digest is keyed (audit/trail.py), and evidence is the
tenant's words about the consent (a form's id, a ticket), never the address itself. On a
data subject's erasure the evidence is replaced by its SHA-256, so the tenant can still
prove the consent it had.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.errors import InvalidValue
from gateway.lawful.signals import Attributes
from gateway.lawful.table import Kind, country_code
from gateway.store.engine import aware
from gateway.store.schema import consent_records, lawful_record_changes, recipient_records

MAX_EVIDENCE = 2000


class Basis(enum.StrEnum):
    EXPRESS = "express"
    SOFT_OPT_IN = "soft-opt-in"
    CASL_PURCHASE = "casl-purchase"
    CASL_INQUIRY = "casl-inquiry"
    CASL_PUBLICATION = "casl-publication"


# CASL s.10(10): the periods an implied consent lasts
PERIODS = {Basis.CASL_PURCHASE: timedelta(days=730), Basis.CASL_INQUIRY: timedelta(days=183)}


@dataclass(frozen=True, slots=True)
class Consent:
    tenant_id: int
    digest: str
    basis: Basis
    given_at: datetime
    source: str
    method: str = ""
    evidence: str = ""
    scope: str = ""
    expires_at: datetime | None = None
    withdrawn_at: datetime | None = None

    def lapses(self) -> datetime | None:
        """When it stops counting: its own expiry, or the law's period, the sooner."""
        ends = [e for e in (self.expires_at, self._period_end()) if e is not None]
        return min(ends) if ends else None

    def _period_end(self) -> datetime | None:
        period = PERIODS.get(self.basis)
        return self.given_at + period if period is not None else None

    def valid(self, now: datetime) -> bool:
        if self.withdrawn_at is not None and self.withdrawn_at <= now:
            return False
        if self.given_at > now:
            return False
        lapses = self.lapses()
        return lapses is None or now < lapses


def check_consent(consent: Consent) -> None:
    """InvalidValue for a record that cannot be kept as it is."""
    if len(consent.evidence) > MAX_EVIDENCE:
        raise InvalidValue(f"Evidence has at most {MAX_EVIDENCE} characters.")
    if "@" in consent.evidence:
        raise InvalidValue("Evidence names the consent (a form, a ticket), not an address.")
    if consent.expires_at is not None and consent.expires_at <= consent.given_at:
        raise InvalidValue("A consent expires after it was given.")
    if not consent.source.strip():
        raise InvalidValue("Say where the consent was recorded (source).")


MAX_DIGESTS = 1000  # a change touching more names only the tenant: it is re-read whole


async def note_change(conn: AsyncConnection, tenant_id: int, digests: Sequence[str]) -> None:
    """The last statement of a transaction that wrote records: the people every node's
    in-memory copy re-reads (lawful/index.py)."""
    await conn.execute(lawful_record_changes.insert().values(
        tenant_id=tenant_id, changed_at=datetime.now(UTC),
        digests=list(digests) if len(digests) <= MAX_DIGESTS else None))


async def put_attributes(conn: AsyncConnection, tenant_id: int, digest: str,
                         attributes: Attributes, source: str, actor: str,
                         batch: list[str] | None = None) -> None:
    """Set (or replace) what the tenant knows of one person. `batch`: the caller notes the
    change once for many (else it is noted here)."""
    r = recipient_records.c
    country = country_code(attributes.country) if attributes.country else None
    if country is not None and (len(country) != 2 or not country.isalpha()):
        raise InvalidValue(f"country is an ISO 3166-1 alpha-2 code, not {country[:10]!r}.")
    values = {"country": country, "kind": attributes.kind.value if attributes.kind else None,
              "source": source[:40], "updated_at": datetime.now(UTC), "updated_by": actor[:200]}
    changed = await conn.execute(recipient_records.update().where(
        r.tenant_id == tenant_id, r.digest == digest).values(**values))
    if changed.rowcount == 0:
        await conn.execute(recipient_records.insert().values(
            tenant_id=tenant_id, digest=digest, **values))
    await _changed(conn, tenant_id, digest, batch)


async def _changed(conn: AsyncConnection, tenant_id: int, digest: str,
                   batch: list[str] | None) -> None:
    if batch is None:
        await note_change(conn, tenant_id, [digest])
    else:
        batch.append(digest)


async def add_consent(conn: AsyncConnection, consent: Consent, actor: str,
                      batch: list[str] | None = None) -> None:
    check_consent(consent)
    await conn.execute(consent_records.insert().values(
        tenant_id=consent.tenant_id, digest=consent.digest, basis=consent.basis.value,
        given_at=consent.given_at, source=consent.source[:40], method=consent.method[:100],
        evidence=consent.evidence, scope=consent.scope[:200], expires_at=consent.expires_at,
        withdrawn_at=consent.withdrawn_at, created_at=datetime.now(UTC),
        created_by=actor[:200]))
    await _changed(conn, consent.tenant_id, consent.digest, batch)


async def attributes_of(conn: AsyncConnection, tenant_id: int, digests: Sequence[str]
                        ) -> dict[str, Attributes]:
    """The attribute records of these people (one query)."""
    r = recipient_records.c
    rows = await conn.execute(sa.select(r.digest, r.country, r.kind).where(
        r.tenant_id == tenant_id, r.digest.in_(list(digests))))
    return {row.digest: Attributes(row.country, Kind(row.kind) if row.kind else None)
            for row in rows}


async def consents_of(conn: AsyncConnection, tenant_id: int, digests: Sequence[str]
                      ) -> dict[str, list[Consent]]:
    """The consent records of these people (one query), oldest first."""
    c = consent_records.c
    found: dict[str, list[Consent]] = {}
    for row in await conn.execute(sa.select(consent_records).where(
            c.tenant_id == tenant_id, c.digest.in_(list(digests))).order_by(c.id)):
        given = aware(row.given_at)
        assert given is not None
        found.setdefault(row.digest, []).append(Consent(
            row.tenant_id, row.digest, Basis(row.basis), given, row.source, row.method,
            row.evidence, row.scope, aware(row.expires_at), aware(row.withdrawn_at)))
    return found


async def all_attributes(conn: AsyncConnection, tenant_id: int | None,
                         digests: Sequence[str] | None) -> dict[tuple[int, str], Attributes]:
    """The attribute records of these people of this tenant (None: every one)."""
    r = recipient_records.c
    rows = await conn.execute(sa.select(r.tenant_id, r.digest, r.country, r.kind).where(
        *([r.tenant_id == tenant_id] if tenant_id is not None else []),
        *([r.digest.in_(list(digests))] if digests is not None else [])))
    return {(row.tenant_id, row.digest): Attributes(row.country,
                                                    Kind(row.kind) if row.kind else None)
            for row in rows}


async def all_consents(conn: AsyncConnection, tenant_id: int | None,
                       digests: Sequence[str] | None) -> list[Consent]:
    """The consent records of these people of this tenant (None: every one), oldest first."""
    c = consent_records.c
    found = []
    for row in await conn.execute(sa.select(
            c.tenant_id, c.digest, c.basis, c.given_at, c.expires_at, c.withdrawn_at).where(
            *([c.tenant_id == tenant_id] if tenant_id is not None else []),
            *([c.digest.in_(list(digests))] if digests is not None else [])).order_by(c.id)):
        given = aware(row.given_at)
        assert given is not None
        # what a decision needs; the evidence stays in the database
        found.append(Consent(row.tenant_id, row.digest, Basis(row.basis), given, "",
                             expires_at=aware(row.expires_at),
                             withdrawn_at=aware(row.withdrawn_at)))
    return found


EXPORT_HEADER = ("digest", "basis", "given_at", "source", "method", "evidence", "scope",
                 "expires_at", "withdrawn_at")


async def consent_export(conn: AsyncConnection, tenant_id: int) -> list[list[str]]:
    """A tenant's consent records as `gateway records import-consent` reads them back: the
    person by digest (the address was never stored), so into this installation only."""
    c = consent_records.c
    rows = await conn.execute(sa.select(consent_records).where(
        c.tenant_id == tenant_id).order_by(c.id))

    def when(at: datetime | None) -> str:
        found = aware(at)
        return found.isoformat() if found is not None else ""

    return [[r.digest, r.basis, when(r.given_at), r.source, r.method, r.evidence, r.scope,
             when(r.expires_at), when(r.withdrawn_at)] for r in rows]


def consented(consents: Sequence[Consent], now: datetime) -> bool:
    return any(c.valid(now) for c in consents)


async def keep_proof_only(conn: AsyncConnection, digest: str, tenant_id: int | None = None
                          ) -> tuple[int, int]:
    """On erasure (of one tenant's, or every tenant's): the person's attribute records go;
    their consent records stay, each evidence replaced by its SHA-256 (the proof the tenant
    had it). (attribute records deleted, consent records kept)."""
    r, c = recipient_records.c, consent_records.c
    mine = [r.tenant_id == tenant_id] if tenant_id is not None else []
    theirs = [c.tenant_id == tenant_id] if tenant_id is not None else []
    tenants = {t for (t,) in await conn.execute(sa.select(r.tenant_id).where(
        r.digest == digest, *mine))} | {t for (t,) in await conn.execute(sa.select(
            c.tenant_id).where(c.digest == digest, *theirs))}
    deleted = (await conn.execute(recipient_records.delete().where(
        r.digest == digest, *mine))).rowcount
    rows = (await conn.execute(sa.select(c.id, c.evidence).where(
        c.digest == digest, *theirs))).all()
    for row in rows:
        if row.evidence and not row.evidence.startswith("sha256:"):
            await conn.execute(consent_records.update().where(c.id == row.id).values(
                evidence="sha256:" + hashlib.sha256(row.evidence.encode()).hexdigest()))
    for t in sorted(tenants):  # every node's copy drops the attribute record
        await note_change(conn, t, [digest])
    return deleted, len(rows)
