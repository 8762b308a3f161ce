"""Attribute and consent records: stored by audit digest only, read for many people in one
query; a consent counts only while valid (CASL's implied periods, expiry, withdrawal); an
erasure keeps a digest-only proof of each consent."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from gateway.errors import InvalidValue
from gateway.lawful import records
from gateway.lawful.records import Basis, Consent
from gateway.lawful.signals import Attributes
from gateway.lawful.table import Kind
from gateway.store.schema import consent_records, recipient_records
from tests.support.cli import gw

GIVEN = datetime(2026, 1, 10, tzinfo=UTC)


def consent(basis: Basis, **kw) -> Consent:
    return Consent(1, "ab" * 32, basis, kw.pop("given_at", GIVEN), "crm", **kw)


@pytest.mark.parametrize("basis, still, gone", [
    (Basis.CASL_PURCHASE, GIVEN + timedelta(days=729), GIVEN + timedelta(days=731)),
    (Basis.CASL_INQUIRY, GIVEN + timedelta(days=182), GIVEN + timedelta(days=184)),
    (Basis.CASL_PUBLICATION, GIVEN + timedelta(days=3650), None),
    (Basis.EXPRESS, GIVEN + timedelta(days=3650), None),
    (Basis.SOFT_OPT_IN, GIVEN + timedelta(days=3650), None),
])
def test_a_consent_counts_for_its_period(basis, still, gone):
    record = consent(basis)
    assert record.valid(still)
    assert not record.valid(GIVEN - timedelta(seconds=1))  # not before it was given
    if gone is not None:
        assert not record.valid(gone)


def test_expiry_and_withdrawal_end_a_consent_the_sooner_wins():
    assert not consent(Basis.EXPRESS, expires_at=GIVEN + timedelta(days=30)).valid(
        GIVEN + timedelta(days=31))
    assert not consent(Basis.CASL_PURCHASE, expires_at=GIVEN + timedelta(days=1000)).valid(
        GIVEN + timedelta(days=800))  # the law's two years come first
    withdrawn = consent(Basis.EXPRESS, withdrawn_at=GIVEN + timedelta(days=2))
    assert withdrawn.valid(GIVEN + timedelta(days=1)) and not withdrawn.valid(
        GIVEN + timedelta(days=3))


@pytest.mark.parametrize("record, says", [
    (consent(Basis.EXPRESS, evidence="form of anna@firma.de"), "not an address"),
    (consent(Basis.EXPRESS, evidence="x" * 2001), "at most 2000"),
    (consent(Basis.EXPRESS, expires_at=GIVEN), "expires after it was given"),
])
def test_a_record_that_cannot_be_kept_is_refused(record, says):
    with pytest.raises(InvalidValue, match=says):
        records.check_consent(record)


async def test_records_by_digest_read_in_one_query_and_erasure_keeps_a_proof(harness):
    engine = harness.gateway.engine
    digest = harness.gateway.digest
    anna, bob = digest("anna@firma.de"), digest("bob@company.ca")
    async with engine.begin() as conn:
        await records.put_attributes(conn, 1, anna, Attributes("de", Kind.NAMED), "csv", "t")
        await records.put_attributes(conn, 1, anna, Attributes("DE", Kind.SOLE_TRADER),
                                     "csv", "t")  # replaced, not added
        await records.add_consent(conn, Consent(1, anna, Basis.EXPRESS, GIVEN, "webform",
                                                "double opt-in", "form 17, ticket 4711"), "t")
        await records.add_consent(conn, Consent(1, bob, Basis.CASL_INQUIRY, GIVEN, "crm"), "t")
        with pytest.raises(InvalidValue, match="alpha-2"):
            await records.put_attributes(conn, 1, bob, Attributes("GER", None), "csv", "t")
    async with engine.connect() as conn:
        found = await records.attributes_of(conn, 1, [anna, bob])
        consents = await records.consents_of(conn, 1, [anna, bob])
        other_tenant = await records.consents_of(conn, 2, [anna, bob])
    assert found == {anna: Attributes("DE", Kind.SOLE_TRADER)}
    assert records.consented(consents[anna], GIVEN + timedelta(days=1000))
    assert not records.consented(consents[bob], GIVEN + timedelta(days=200))  # 6 months on
    assert other_tenant == {}
    async with engine.begin() as conn:
        assert await records.keep_proof_only(conn, anna, 2) == (0, 0)  # another tenant's
        assert await records.keep_proof_only(conn, anna) == (1, 1)
    async with engine.connect() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(
            recipient_records))).scalar() == 0
        (kept,) = (await conn.execute(sa.select(consent_records).where(
            consent_records.c.digest == anna))).all()
    assert kept.evidence.startswith("sha256:") and "4711" not in kept.evidence
    assert kept.basis == "express" and kept.method == "double opt-in"


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_a_subjects_export_holds_their_records_and_erasure_leaves_only_the_proof(
        harness, tmp_path):
    """As a DPO checks it: the export shows the records; after the erasure the consent's
    evidence is in no file the gateway writes, and the consent itself is kept as a hash."""
    h = harness
    person = "anna.schmidt@firma.de"
    marker = "consent-form-4711-marker"
    digest = h.gateway.digest(person)
    async with h.gateway.engine.begin() as conn:
        await records.put_attributes(conn, 1, digest, Attributes("DE", Kind.NAMED), "csv", "t")
        await records.add_consent(conn, Consent(1, digest, Basis.EXPRESS, GIVEN, "webform",
                                                "double opt-in", marker), "t")
    exported = json.loads((await gw(h, "subject", "export", person)).stdout)
    assert exported["recipient_records"][0]["country"] == "DE"
    assert exported["consent_records"][0]["evidence"] == marker
    erased = await gw(h, "subject", "erase", person, "--evidence", "ticket 99")
    assert erased.returncode == 0, erased.stderr
    receipt = json.loads(erased.stdout)
    assert receipt["deleted"]["recipient_records"] == 1
    assert receipt["kept"]["consent_records_as_proof"] == 1
    found = [p for p in tmp_path.rglob("*") if p.is_file() and "outbox" not in p.parts
             and marker.encode() in p.read_bytes()]
    assert found == []
    async with h.gateway.engine.connect() as conn:
        (kept,) = (await conn.execute(sa.select(consent_records))).all()
    assert kept.evidence == "sha256:" + hashlib.sha256(marker.encode()).hexdigest()
