"""The opt-out report from the audit trail: opt-outs by channel with their request-to-
enforcement time, 0 copies relayed after an opt-out — and, when an opt-out is lost (the
suppression entry gone from a restored backup), the copy that went after it, named by its
queue id. A copy on the wire when the opt-out landed is counted apart; an entry removed on
the person's request ends the opt-out. The CLI, the admin API and the review page agree."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from gateway.audit import chain as audit_chain
from gateway.reports.optouts import optout_report
from gateway.store.schema import suppressions
from tests.conftest import running_harness
from tests.support import messages
from tests.support.admin_api import admin, key
from tests.support.browser import chromium, violations
from tests.support.cli import gw
from tests.support.review import add_reviewer, admin_base, sign_in
from tests.support.unsubscribe import public, refused_at_rcpt, token_for

ALICE, BOB = "alice@example.org", "bob@example.org"


async def opt_out(h, recipient: str) -> None:
    token = await token_for(h, recipient)
    async with public(h) as client:
        assert (await client.post(f"/u/{token}")).status_code == 200


async def report_now(h):
    now = datetime.now(UTC)
    async with h.gateway.engine.connect() as conn:
        return await optout_report(conn, 1, now - timedelta(days=1), now + timedelta(seconds=1))


async def test_opt_outs_by_channel_and_no_copy_after_them(harness):
    h = harness
    await opt_out(h, ALICE)
    await opt_out(h, BOB)
    assert (await gw(h, "suppress", "add", "carol@example.org", "--tenant", "acme",
                     "--reason", "unsubscribe")).returncode == 0
    assert await refused_at_rcpt(h, ALICE) and await refused_at_rcpt(h, BOB)
    assert await h.send(messages.simple(), ["dave@example.org"]) == {}
    found = await report_now(h)
    assert found.opt_outs == 3 and found.by_channel == {"cli": 1, "one-click": 2}
    assert found.relayed_after == 0 and found.in_flight == 0
    assert found.latency.count == 3 and 0 <= found.latency.p50_ms <= found.latency.max_ms
    assert list(found.by_node) == [audit_chain.chain_name().split("/")[0]]
    earlier = datetime.now(UTC) - timedelta(days=3)
    async with h.gateway.engine.connect() as conn:  # a period before them: none
        before = await optout_report(conn, 1, earlier, earlier + timedelta(days=1))
    assert before.opt_outs == 0 and before.by_channel == {}


async def test_a_lost_opt_out_shows_the_copy_that_went_after_it(harness):
    """The entry vanished (a database restored from a backup older than the opt-out): the
    report, reading the audit trail alone, names the copy."""
    h = harness
    await opt_out(h, ALICE)
    async with h.gateway.engine.begin() as conn:
        await conn.execute(suppressions.delete())
    assert not await refused_at_rcpt(h, ALICE)  # sent: the store forgot
    found = await report_now(h)
    assert found.relayed_after == 1 and len(found.relayed_after_queue_ids) == 1
    (queue_id,) = found.relayed_after_queue_ids
    assert queue_id and queue_id in h.sink.received[-1].content.decode()
    assert found.opt_outs == 1


async def test_an_entry_removed_on_request_ends_the_opt_out(harness):
    h = harness
    await opt_out(h, ALICE)
    removed = await gw(h, "suppress", "remove", ALICE, "--tenant", "acme", "--reason",
                       "asked to hear again", "--evidence", "ticket 4711")
    assert removed.returncode == 0, removed.stderr
    assert not await refused_at_rcpt(h, ALICE)
    found = await report_now(h)
    assert found.relayed_after == 0 and found.opt_outs == 1


async def test_a_copy_on_the_wire_when_the_opt_out_lands_is_in_flight_not_after(harness):
    h = harness
    token = await token_for(h, ALICE)
    h.sink.faults.delay = 1.5  # the upstream takes its time answering DATA
    sending = asyncio.create_task(h.send(messages.simple(to=ALICE), [ALICE]))
    await asyncio.sleep(0.6)  # looked at, handed upstream, not yet answered
    async with public(h) as client:
        assert (await client.post(f"/u/{token}")).status_code == 200
    assert await sending == {}
    h.sink.faults.delay = 0
    found = await report_now(h)
    assert (found.relayed_after, found.in_flight) == (0, 1)


async def test_cli_api_and_review_page_show_the_same_report(harness):
    h = harness
    await opt_out(h, ALICE)
    day = datetime.now(UTC).date()
    start, end = (day - timedelta(days=1)).isoformat(), (day + timedelta(days=1)).isoformat()
    printed = await gw(h, "optouts", "report", "--tenant", "acme", "--from", start,
                       "--to", end, "--json")
    assert printed.returncode == 0, printed.stderr
    doc = json.loads(printed.stdout)
    assert doc["opt_outs"] == 1 and doc["relayed_after"] == 0 and doc["tenant"] == "acme"
    text = (await gw(h, "optouts", "report", "--tenant", "acme", "--from", start,
                     "--to", end)).stdout
    assert "copies relayed after an opt-out" in text and "one-click" in text
    bad = await gw(h, "optouts", "report", "--tenant", "acme", "--from", "yesterday")
    assert bad.returncode == 5 and "must be a date" in bad.stderr and "Traceback" not in bad.stderr
    async with admin(h, await key(h, "ops")) as client:
        api = await client.get("/api/v1/tenants/acme/optout-report",
                               params={"from": start, "to": end})
        assert api.status_code == 200
        assert api.json() == doc
        assert (await client.get("/api/v1/tenants/acme/optout-report",
                                 params={"from": end, "to": start})).status_code in (400, 422)
    async with admin(h, await key(h, "ops", tenant="other")) as client:  # not its tenant
        assert (await client.get("/api/v1/tenants/acme/optout-report")).status_code == 404


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_the_review_page_shows_the_report_and_is_axe_clean(tmp_path, pki, database):
    async with running_harness(tmp_path, pki, database) as h:
        await opt_out(h, ALICE)
        secrets = {name: await add_reviewer(h, name, "compliance", tenant) for name, tenant in (
            ("olaf", "other"), ("alice", None))}
        async with chromium() as browser:
            page = await browser.new_page()
            await sign_in(page, h, "olaf", secrets["olaf"])
            await page.goto(f"{admin_base(h)}/review/optout-report?tenant=acme")
            assert "No such tenant." in await page.content()  # another tenant's is absent
            await page.context.clear_cookies()

            await sign_in(page, h, "alice", secrets["alice"])
            await page.get_by_role("link", name="Opt-out report").click()
            await page.get_by_label("Tenant").select_option("acme")
            await page.get_by_role("button", name="Show").click()
            await page.wait_for_url("**/review/optout-report?tenant=acme*")
            relayed = page.get_by_role("row").filter(has_text="Relayed after the person")
            assert (await relayed.inner_text()).split()[-1] == "0"
            assert "one-click" in await page.get_by_role("table").nth(1).inner_text()
            assert await violations(page) == []
