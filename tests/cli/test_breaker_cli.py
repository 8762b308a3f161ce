"""`gateway breaker list|resume` on the host, as an operator runs it (a real process) beside
a running gateway: the resume is audited under the operator's name and the running node
follows on its next round."""

from __future__ import annotations

import asyncio
import getpass

import sqlalchemy as sa

from gateway.store.schema import audit_events
from tests.conftest import Harness
from tests.support.cli import gw


async def test_the_host_lists_and_resumes_a_breaker(harness: Harness):
    acme = (await harness.store().tenant("acme")).id
    await harness.gateway.breakers.trip_now(acme, f"t{acme}", "authentication", "5.7.515")
    listed = await gw(harness, "breaker", "list", "--tenant", "acme")
    assert listed.returncode == 0, listed.stderr
    (line,) = listed.stdout.splitlines()
    breaker_id, state, scope = line.split("\t")[:3]
    assert (state, scope) == ("open", "tenant acme")
    assert (await gw(harness, "breaker", "list", "--tenant", "other")).stdout == ""
    no_reason = await gw(harness, "breaker", "resume", breaker_id)
    assert no_reason.returncode != 0 and "--reason" in no_reason.stderr
    resumed = await gw(harness, "breaker", "resume", breaker_id, "--reason", "SPF fixed")
    assert resumed.returncode == 0 and "\tclosed\t" in resumed.stdout, resumed.stderr
    again = await gw(harness, "breaker", "resume", breaker_id, "--reason", "again")
    assert again.returncode == 4 and "not open" in again.stderr  # Conflict's exit code
    await harness.gateway.breakers.run_once()  # the node's next round reads the state

    def mail_from() -> int:
        with harness.client() as smtp:
            return smtp.mail("sales@acme.example")[0]

    assert await asyncio.to_thread(mail_from) == 250
    async with harness.gateway.engine.connect() as conn:
        actor = (await conn.execute(sa.select(audit_events.c.actor).where(
            audit_events.c.event == "breaker.resumed"))).scalar_one()
    assert actor == f"cli:{getpass.getuser()}"
