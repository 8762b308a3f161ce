"""Connecting a mailbox in a real browser (Debian's chromium driven by Playwright): the
authorization-code flow with PKCE against a local authorization server, then a message sent
with the tokens that flow produced."""

from __future__ import annotations

import httpx
import sqlalchemy as sa

from gateway.store.schema import mailboxes, oauth_flows
from tests.support import messages
from tests.support.admin_api import admin, key
from tests.support.browser import chromium
from tests.support.xoauth2 import SENDER, oauth_gateway


async def start_link(h, mailbox_public_id: str) -> str:
    async with admin(h, await key(h, "ops", "acme")) as client:
        response = await client.post(f"/api/v1/mailboxes/{mailbox_public_id}/oauth")
    assert response.status_code == 201, response.text
    return response.json()["start_url"]


async def test_consent_in_the_browser_connects_the_mailbox_and_mail_flows(
        tmp_path, pki, database):
    async with oauth_gateway(tmp_path, pki, database) as (h, server), chromium() as browser:
        mailbox = h.gateway.directory.mailbox(SENDER)
        link = await start_link(h, mailbox.public_id)
        page = await browser.new_page()
        await page.goto(link)
        assert "Allow Outreach Gateway to send mail as sales@acme.example" in \
            await page.content()
        await page.get_by_role("button", name="Allow").click()
        await page.wait_for_url("**/oauth/google/callback?**")
        assert await page.locator("h1").inner_text() == "Mailbox connected"
        callback_url = page.url
        assert server.exchanges == 1
        await h.refresh()
        assert h.gateway.directory.mailbox(SENDER).status == "active"
        assert await h.send(messages.simple(), ["alice@example.org"]) == {}
        user, token = h.sink.logins[-1]
        assert user == SENDER and server.valid(SENDER, token)
        # The state is single use: replaying the callback connects nothing more.
        await page.goto(callback_url)
        assert await page.locator("h1").inner_text() == "Mailbox not connected"
        assert server.exchanges == 1  # the code was never presented again


async def test_a_callback_from_another_browser_is_refused(tmp_path, pki, database):
    async with oauth_gateway(tmp_path, pki, database) as (h, server), chromium() as browser:
        mailbox = h.gateway.directory.mailbox(SENDER)
        victim = await browser.new_context()
        page = await victim.new_page()
        await page.goto(await start_link(h, mailbox.public_id))
        # The attacker captures the consent redirect and replays it in another browser.
        async with httpx.AsyncClient() as other_browser:
            form = {k: await page.locator(f"input[name={k}]").get_attribute("value")
                    for k in ("client_id", "redirect_uri", "code_challenge", "scope", "state",
                              "user")}
            consent = await other_browser.post(f"{server.base}/authorize", data=form)
            replay = await other_browser.get(consent.headers["location"])
        assert replay.status_code == 400 and "another browser" in replay.text
        assert server.exchanges == 0
        async with h.gateway.engine.connect() as conn:
            status = (await conn.execute(sa.select(mailboxes.c.status).where(
                mailboxes.c.id == mailbox.id))).scalar()
        assert status == "active"  # untouched: the seeded mailbox had no tokens yet
        assert await h.gateway.credentials.row(mailbox.id) is None


async def test_the_consenting_account_must_be_the_mailbox(tmp_path, pki, database):
    async with oauth_gateway(tmp_path, pki, database,
                             consent_user="intruder@gmail.example") as (h, server), \
            chromium() as browser:
        mailbox = h.gateway.directory.mailbox(SENDER)
        page = await browser.new_page()
        await page.goto(await start_link(h, mailbox.public_id))
        await page.get_by_role("button", name="Allow").click()
        await page.wait_for_url("**/oauth/google/callback?**")
        assert await page.locator("h1").inner_text() == "Mailbox not connected"
        assert "sign in as sales@acme.example" in await page.content()
        assert len(server.revoked) == 1  # the wrong account's tokens were given back
        assert await h.gateway.credentials.row(mailbox.id) is None


async def test_a_start_link_works_once_and_expires(tmp_path, pki, database):
    async with oauth_gateway(tmp_path, pki, database) as (h, server):
        mailbox = h.gateway.directory.mailbox(SENDER)
        link = await start_link(h, mailbox.public_id)
        async with httpx.AsyncClient() as browser:
            first = await browser.get(link)
            assert first.status_code == 302
            assert first.headers["location"].startswith(f"{server.base}/authorize?")
            assert "code_challenge_method=S256" in first.headers["location"]
            cookie = first.headers["set-cookie"].lower()
            assert "httponly" in cookie and "samesite=lax" in cookie
            second = await browser.get(link)
            assert second.status_code == 400 and "already used" in second.text
            link2 = await start_link(h, mailbox.public_id)
            async with h.gateway.engine.begin() as conn:
                # ten minutes later, as far as the flow is concerned
                await conn.execute(oauth_flows.update().values(
                    expires_at=oauth_flows.c.created_at))
            expired = await browser.get(link2)
            assert expired.status_code == 400 and "expired" in expired.text
