"""Data subjects' rights and tenant offboarding: `gateway subject export|erase` (and the
API), `gateway tenant delete`; one person's data only, legal hold respected, the audit
trail still verifiable afterwards."""

from __future__ import annotations

import asyncio
import json
import smtplib

import pytest
import sqlalchemy as sa

from gateway.app.parts import Parts
from gateway.errors import VaultError
from gateway.store.schema import (
    domains,
    events,
    feedback_marks,
    held_messages,
    logins,
    mailboxes,
    opens,
    optout_reviews,
    sealed_secrets,
    sent_messages,
    tenants,
)
from suppression.entries import GLOBAL
from suppression.schema import suppressions
from tests.conftest import PASSWORD
from tests.support import messages
from tests.support.admin_api import admin, key
from tests.support.cli import gw
from tests.support.subjects import OTHER, PERSON, their_data
from tests.support.unsubscribe import public, token_for


async def test_export_holds_everything_about_the_person_and_nobody_else(harness):
    await their_data(harness)
    result = await gw(harness, "subject", "export", PERSON)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["subject"] == "person@example.org"
    assert sorted(e["list"] for e in doc["suppression_entries"]) == ["acme", "other"]
    assert [e["kind"] for e in doc["events"]] == ["delivered", "held", "unsubscribed"]
    assert len(doc["opens"]) == 1
    assert len(doc["sent_copies"]) == 1 and doc["sent_copies"][0]["queue_id"]
    assert [c["status"] for c in doc["counted_bounces"]] == ["4.2.2"]
    assert [r["status"] for r in doc["possible_opt_outs"]] == ["pending"]
    (held,) = doc["held_messages"]
    assert held["role"] == "recipient" and held["check"] == "sensitive-data"
    assert doc["audit"] and all(a["queue_id"] for a in doc["audit"]
                                if a["event"] != "optout.effective")
    assert [a["actor"] for a in doc["audit"]
            if a["event"] == "optout.effective"] == ["receipts"]  # their opt-out's proof
    assert OTHER not in result.stdout  # the other recipient is nowhere in it
    scoped = json.loads((await gw(harness, "subject", "export", PERSON, "--tenant",
                                  "other")).stdout)
    assert [e["list"] for e in scoped["suppression_entries"]] == ["other"]
    assert scoped["events"] == scoped["opens"] == scoped["held_messages"] == []
    assert scoped["sent_copies"] == []


async def test_erase_deletes_it_all_keeps_a_digest_only_entry_and_prints_a_receipt(harness):
    await their_data(harness)
    result = await gw(harness, "subject", "erase", PERSON, "--evidence", "ticket 4711")
    assert result.returncode == 0, result.stderr
    receipt = json.loads(result.stdout)
    assert receipt["deleted"]["suppression_entries"] == 2
    assert receipt["deleted"]["events"] == 3 and receipt["deleted"]["opens"] == 1
    assert receipt["deleted"]["sent_copies"] == 1  # the other recipient's copy stays
    assert receipt["deleted"]["counted_bounces"] == 1
    assert receipt["deleted"]["possible_opt_outs"] == 1
    assert receipt["deleted"]["held_recipients"] == 1  # taken off; the other stays
    assert receipt["kept"]["audit_rows"] > 0
    assert "person@" not in result.stdout.lower()  # the receipt names a digest only

    async with harness.gateway.engine.connect() as conn:
        rows = (await conn.execute(sa.select(suppressions))).all()
        (held,) = (await conn.execute(sa.select(held_messages))).all()
        left = (await conn.execute(sa.select(events))).all()
    assert (await harness.gateway.held.get(held.id)).recipients == [OTHER]
    names = harness.gateway.event_names
    assert {await names.recipient(e) for e in left} == {OTHER}
    erasures = [r for r in rows if r.reason == "erasure"]
    assert [(r.scope, r.target) for r in erasures] == [(GLOBAL, None)]
    assert all("person" not in (r.target or "") for r in rows)
    after = json.loads((await gw(harness, "subject", "export", PERSON)).stdout)
    assert [e["reason"] for e in after["suppression_entries"]] == ["erasure"]
    assert after["events"] == after["opens"] == after["held_messages"] == []
    assert after["sent_copies"] == after["counted_bounces"] == after["possible_opt_outs"] == []
    # never mailed again
    try:
        await harness.send(messages.simple(), [PERSON])
        raise AssertionError("an erased address was accepted")
    except smtplib.SMTPRecipientsRefused as exc:
        assert exc.recipients[PERSON][0] == 550
    verified = await gw(harness, "audit", "verify")
    assert verified.returncode == 0, verified.stdout


async def test_erase_leaves_a_tenant_under_legal_hold_alone(harness):
    await their_data(harness)
    await gw(harness, "tenant", "legal-hold", "acme", "--reason", "case 7")
    receipt = json.loads((await gw(harness, "subject", "erase", PERSON, "--evidence",
                                   "ticket 4712")).stdout)
    assert receipt["kept"]["suppression_entries_under_legal_hold"] == 1
    assert receipt["kept"]["held_messages_under_legal_hold"] == 1
    assert receipt["deleted"]["suppression_entries"] == 1  # the other tenant's
    async with harness.gateway.engine.connect() as conn:
        targets = (await conn.execute(sa.select(suppressions.c.target).where(
            suppressions.c.scope == 1))).scalars().all()
    assert "person@example.org" in targets  # held: not even turned into a digest


async def test_the_api_export_and_erase_are_compliance_only_and_tenant_bound(harness):
    await their_data(harness)
    ops = await key(harness, "ops")
    async with admin(harness, ops) as client:
        response = await client.post("/api/v1/subjects/export", json={"address": PERSON})
    assert response.status_code == 403
    bound = await key(harness, "compliance", "other")
    async with admin(harness, bound) as client:
        doc = (await client.post("/api/v1/subjects/export", json={"address": PERSON})).json()
        assert [e["list"] for e in doc["suppression_entries"]] == ["other"]
        assert doc["held_messages"] == [] and doc["opens"] == []  # acme's are not its own
        receipt = (await client.post("/api/v1/subjects/erase", json={
            "address": PERSON, "evidence": "ticket 9"})).json()
        assert receipt["deleted"]["suppression_entries"] == 1
        assert receipt["deleted"]["held_recipients"] == 0
        bad = await client.post("/api/v1/subjects/erase", json={"address": "not an address",
                                                                 "evidence": "x"})
        assert bad.status_code == 422 or bad.status_code == 400
    async with harness.gateway.engine.connect() as conn:
        acme = (await conn.execute(sa.select(suppressions.c.target).where(
            suppressions.c.scope == 1))).scalars().all()
    assert "person@example.org" in acme  # tenant other's erasure does not touch acme's


async def test_tenant_delete_removes_its_data_and_its_senders(harness):
    await their_data(harness)
    secrets = harness.gateway.credentials.secrets
    await secrets.put(1, "mailbox/1/refresh_token", b"a refresh token")
    async with harness.gateway.engine.connect() as conn:
        backup = (await conn.execute(sa.select(sealed_secrets))).all()  # e.g. last night's
    refused = await gw(harness, "tenant", "delete", "acme", "--confirm", "acm")
    assert refused.returncode != 0 and "--confirm" in refused.stderr
    result = await gw(harness, "tenant", "delete", "acme", "--confirm", "acme")
    assert result.returncode == 0, result.stderr
    receipt = json.loads(result.stdout)
    assert receipt["deleted"]["held_messages"] == 1 and receipt["deleted"]["mailboxes"] == 2
    assert receipt["deleted"]["sent_copies"] == 2  # both recipients of the delivered one
    assert receipt["deleted"]["feedback_marks"] == receipt["deleted"]["possible_opt_outs"] == 2
    async with harness.gateway.engine.connect() as conn:
        for table, column in ((held_messages, held_messages.c.tenant_id),
                              (events, events.c.tenant_id), (opens, opens.c.tenant_id),
                              (sent_messages, sent_messages.c.tenant_id),
                              (feedback_marks, feedback_marks.c.tenant_id),
                              (optout_reviews, optout_reviews.c.tenant_id),
                              (mailboxes, mailboxes.c.tenant_id),
                              (logins, logins.c.tenant_id), (domains, domains.c.tenant_id),
                              (suppressions, suppressions.c.scope)):
            count = (await conn.execute(sa.select(sa.func.count()).select_from(table)
                                        .where(column == 1))).scalar_one()
            assert count == 0, table.name
        status = (await conn.execute(sa.select(tenants.c.status).where(
            tenants.c.id == 1))).scalar_one()
        other = (await conn.execute(sa.select(sa.func.count()).select_from(suppressions)
                                    .where(suppressions.c.scope == 2))).scalar_one()
    assert status == "deleted" and other == 1
    assert receipt["tenant_key_shredded"] is True
    async with harness.gateway.engine.begin() as conn:  # the backup comes back ...
        await conn.execute(sealed_secrets.insert(), [dict(r._mapping) for r in backup])
    fresh = Parts(harness.gateway.config, harness.gateway.engine).credentials
    with pytest.raises(VaultError, match="shredded"):  # ... and opens nothing
        await fresh.secrets.get(1, "mailbox/1/refresh_token")
    await fresh.close()
    await harness.refresh()

    def login() -> int:
        with harness.client(login=False) as smtp:
            try:
                smtp.login("campaign", PASSWORD)
            except smtplib.SMTPAuthenticationError as exc:
                return exc.smtp_code
            return 235

    assert await asyncio.to_thread(login) == 535  # its login is gone
    again = await gw(harness, "tenant", "delete", "acme", "--confirm", "acme")
    assert again.returncode != 0 and "deleted already" in again.stderr
    assert (await gw(harness, "audit", "verify")).returncode == 0


async def test_tenant_delete_under_legal_hold_keeps_held_messages_and_suppressions(harness):
    await their_data(harness)
    await gw(harness, "tenant", "legal-hold", "acme", "--reason", "case 8")
    receipt = json.loads((await gw(harness, "tenant", "delete", "acme", "--confirm",
                                   "acme")).stdout)
    assert receipt["kept"] == {"held_messages_under_legal_hold": 1,
                               "suppression_entries_under_legal_hold": 2}
    assert receipt["legal_hold"] == "case 8"


async def test_a_deleted_tenants_unsubscribe_link_records_nothing(harness):
    token = await token_for(harness, "dora@example.org")
    assert (await gw(harness, "tenant", "delete", "acme", "--confirm", "acme")).returncode == 0
    async with public(harness) as client:
        response = await client.post(f"/u/{token}", content=b"List-Unsubscribe=One-Click")
    assert response.status_code == 200
    async with harness.gateway.engine.connect() as conn:
        count = (await conn.execute(sa.select(sa.func.count()).select_from(suppressions)
                                    .where(suppressions.c.scope == 1))).scalar_one()
    assert count == 0  # nothing brought back for a tenant that is gone
