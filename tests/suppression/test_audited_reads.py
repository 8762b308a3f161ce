"""Searching a suppression list names a person, and exporting one hands over many: both are
audit rows (the search by the person's digest, so their data-subject export shows it)."""

from __future__ import annotations

import sqlalchemy as sa

from gateway.optout.suppressions import Actor
from gateway.store.schema import audit_events
from suppression.entries import Reason
from suppression.store import Filters
from tests.conftest import Harness

OPS = Actor("cli:ops")


async def rows(h: Harness, event: str) -> list:
    async with h.gateway.engine.connect() as conn:
        return (await conn.execute(sa.select(audit_events).where(
            audit_events.c.event == event))).all()


async def test_a_search_and_an_export_are_audited_without_the_address(harness: Harness):
    lists = harness.gateway.suppressions
    await lists.add(OPS, 1, "Bob@Example.org", Reason.MANUAL, "test")
    assert [e.target for e in await lists.lookup(OPS, 1, "bob@example.org")] == [
        "bob@example.org"]
    (searched,) = await rows(harness, "suppression.searched")
    assert searched.actor == "cli:ops" and searched.detail["found"] == 1
    assert searched.recipient_digest == harness.gateway.handler.digest("bob@example.org")
    assert "bob" not in str(searched.detail)

    exported = [e async for e in lists.stream(OPS, 1, Filters())]
    assert len(exported) == 1
    (export,) = await rows(harness, "suppression.exported")
    assert (export.actor, export.tenant_id, export.detail["scope"]) == ("cli:ops", 1, 1)
