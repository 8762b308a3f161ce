"""Possible opt-outs wait for a person: on the review pages (a real browser) and with
`gateway optouts`. Confirming suppresses the recipient of the answered copy; dismissing
suppresses nobody; a reviewer bound to another tenant sees none of it."""

from __future__ import annotations

import smtplib

import pytest
import sqlalchemy as sa

from gateway.store.schema import audit_events, optout_reviews
from suppression.schema import suppressions
from tests.conftest import Harness, running_harness
from tests.support import messages
from tests.support.browser import chromium
from tests.support.cli import gw
from tests.support.optout import possible_opt_out
from tests.support.review import add_reviewer, admin_base, sign_in


async def entries(h: Harness) -> list:
    async with h.gateway.engine.connect() as conn:
        return (await conn.execute(sa.select(suppressions))).all()


async def audit(h: Harness) -> list[tuple[str, str]]:
    async with h.gateway.engine.connect() as conn:
        return [(r.event, r.actor) for r in await conn.execute(
            sa.select(audit_events).where(audit_events.c.event.like("optout.%")))]


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_a_reviewer_reads_and_confirms_a_possible_opt_out_in_the_browser(
        tmp_path, pki, database):
    async with running_harness(tmp_path, pki, database) as h:
        review_id = await possible_opt_out(h, "assistant@example.org", "wendy@example.net")
        secret = await add_reviewer(h, "alice")
        other_secret = await add_reviewer(h, "olaf", tenant="other")
        async with chromium() as browser:
            page = await browser.new_page()
            await sign_in(page, h, "olaf", other_secret)  # bound to the other tenant
            await page.goto(f"{admin_base(h)}/review/optouts")
            assert "Nothing waits for a decision." in await page.content()
            await page.context.clear_cookies()

            await sign_in(page, h, "alice", secret)
            await page.get_by_role("link", name="Possible opt-outs").click()
            item = page.get_by_role("region", name=f"Possible opt-out {review_id}")
            assert "Who gave you my address?" in await item.inner_text()
            assert "wendy@example.net" in await item.inner_text()
            await item.get_by_label("Why").fill("asks to be removed")
            await item.get_by_role("button", name="Confirm opt-out").click()
            await page.wait_for_url("**/review/optouts?done=confirmed")
            assert "Nothing waits for a decision." in await page.content()
        (entry,) = await entries(h)
        # written from another address: the copy's own recipient is suppressed, by digest
        assert (entry.scope, entry.reason, entry.source, entry.target) == (
            1, "unsubscribe", "reply", None)
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            await h.send(messages.simple(), ["assistant@example.org"])
        events = await audit(h)
        assert ("optout.review_read", "reviewer:alice") in events
        assert ("optout.review_confirmed", "reviewer:alice") in events
        assert ("optout.automatic", "reviewer:alice") in events


async def test_the_cli_lists_shows_confirms_and_dismisses(harness: Harness):
    first = await possible_opt_out(harness, "wendy@example.net", "wendy@example.net")
    listed = await gw(harness, "optouts", "list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith(f"{first}\tpending\t") and "request:en:" in listed.stdout
    shown = await gw(harness, "optouts", "show", str(first))
    assert "Who gave you my address?" in shown.stdout and "wendy@example.net" in shown.stdout
    assert (await gw(harness, "optouts", "confirm", str(first), "--reason", "yes")
            ).returncode == 0
    (entry,) = await entries(harness)
    assert (entry.target, entry.reason) == ("wendy@example.net", "unsubscribe")  # the writer
    again = await gw(harness, "optouts", "dismiss", str(first), "--reason", "no")
    assert again.returncode == 4 and "decided already" in again.stderr  # Conflict

    async with harness.gateway.engine.begin() as conn:  # a second reply to decide
        await conn.execute(optout_reviews.update().values(status="pending"))
    dismissed = await gw(harness, "optouts", "dismiss", str(first), "--reason", "a question")
    assert dismissed.returncode == 0
    assert (await gw(harness, "optouts", "list")).stdout == ""
    assert (await gw(harness, "optouts", "list", "--status", "dismissed")).stdout.startswith(
        f"{first}\tdismissed")
    missing = await gw(harness, "optouts", "confirm", "999", "--reason", "x")
    assert missing.returncode == 3 and "does not exist" in missing.stderr
