"""Events name their recipient three ways for the tools that read them (address, keyed
digest, masked form), and keep the address only sealed under the tenant's key; an erased
person is named by digest only (issue 20.2)."""

from __future__ import annotations

import asyncio
import smtplib
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from gateway.store.schema import events, held_messages
from tests.conftest import Harness
from tests.support import messages
from tests.support.admin_api import admin, key
from tests.support.cli import gw

LEAD = "Lead.Person+q4@Example.org"


async def stored(harness: Harness, kind: str) -> list:
    async with harness.gateway.engine.connect() as conn:
        return (await conn.execute(sa.select(events).where(events.c.kind == kind)
                                   .order_by(events.c.id))).all()


async def api_events(harness: Harness, kind: str) -> list[dict]:
    async with admin(harness, await key(harness, "ops", "acme")) as api:
        page = (await api.get("/api/v1/tenants/acme/events", params={"kind": kind})).json()
    return [e for e in page["events"]]


async def test_the_api_names_the_recipient_and_the_row_keeps_it_sealed(harness: Harness):
    assert await harness.send(messages.simple(to=LEAD), [LEAD]) == {}
    await asyncio.sleep(0.1)
    (row,) = await stored(harness, "delivered")
    assert row.recipient is None  # no address in clear
    assert b"lead" not in bytes(row.sealed_recipient).lower()
    # the digest of the canonical address (no +tag, lower case): one for every spelling
    assert row.recipient_digest == harness.gateway.handler.digest("lead.person@example.org")
    (event,) = await api_events(harness, "delivered")
    # as relayed (the domain lower-cased), so the tool can match its own list
    assert (event["recipient"], event["recipient_masked"]) == (
        "Lead.Person+q4@example.org", "L***@example.org")
    assert event["recipient_digest"] == row.recipient_digest


async def test_an_erased_person_is_named_by_digest_only_in_the_api(harness: Harness):
    assert await harness.send(messages.simple(to=LEAD), [LEAD]) == {}
    assert (await gw(harness, "subject", "erase", LEAD, "--evidence", "t")).returncode == 0
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        await harness.send(messages.simple(to=LEAD), [LEAD])
    await asyncio.sleep(0.1)
    (event,) = await api_events(harness, "refused")
    assert event["recipient"] is None and event["recipient_masked"] is None
    assert event["recipient_digest"] == harness.gateway.event_names.person_digest(LEAD)
    (row,) = await stored(harness, "refused")
    assert row.sealed_recipient is None  # not even sealed: nothing to open


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_rows_written_before_0020_are_sealed_when_the_gateway_starts(harness: Harness):
    now = datetime.now(UTC)
    async with harness.gateway.engine.begin() as conn:
        await conn.execute(events.insert().values(
            tenant_id=1, at=now, kind="delivered", queue_id="OLD1", recipient=LEAD, detail={}))
        await conn.execute(held_messages.insert().values(
            queue_id="OLD2", tenant_id=1, login="sales", mailbox_id=1,
            envelope_from="sales@acme.example", recipients=[LEAD], subject="Old subject",
            size=1, check_name="sensitive-data", reason="r", verdicts=[], status="held",
            notes=[], sealed_message=b"x", key_id="k", created_at=now))
    await harness.gateway._seal_legacy_names()
    (row,) = await stored(harness, "delivered")
    assert row.recipient is None and row.recipient_masked == "L***@example.org"
    assert await harness.gateway.event_names.recipient(row) == LEAD
    async with harness.gateway.engine.connect() as conn:
        (held,) = (await conn.execute(sa.select(held_messages))).all()
    assert (held.recipients, held.subject) == ([], "")
    opened = await harness.gateway.held.get(held.id)
    assert (opened.recipients, opened.subject) == ([LEAD], "Old subject")
    found, _ = await harness.gateway.held.page(
        tenant_id=1, status=None, check_name=None, since=None, until=None, before=None,
        limit=5, subject="Fwd: old SUBJECT")
    assert [m.id for m in found] == [held.id]
    exported = (await gw(harness, "subject", "export", LEAD)).stdout
    assert "OLD1" in exported and "OLD2" in exported  # found by digest once sealed
