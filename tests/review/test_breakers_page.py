"""The reputation breakers page in Debian's chromium: a compliance reviewer sees the tripped
breaker and resumes it with a reason (audited, MAIL FROM answered 250 again); an ops
reviewer sees it without the form; a reviewer bound to another tenant sees nothing. The
page is axe-clean."""

from __future__ import annotations

import asyncio
import smtplib

import pytest
import sqlalchemy as sa

from gateway.store.schema import audit_events
from tests.conftest import running_harness
from tests.support import messages
from tests.support.browser import chromium, violations
from tests.support.review import add_reviewer, admin_base, sign_in


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_a_reviewer_resumes_a_tripped_breaker(tmp_path, pki, database):
    async with running_harness(tmp_path, pki, database) as h:
        h.sink.faults.rcpt["x@example.org"] = "550 5.7.515 Access denied"
        with pytest.raises(smtplib.SMTPDataError):
            await h.send(messages.simple(), ["x@example.org"])
        (breaker,) = await h.gateway.breakers.listing()
        secrets = {name: await add_reviewer(h, name, role, tenant) for name, role, tenant in (
            ("olaf", "compliance", "other"), ("opal", "ops", None),
            ("alice", "compliance", None))}
        async with chromium() as browser:
            page = await browser.new_page()
            await sign_in(page, h, "olaf", secrets["olaf"])
            await page.goto(f"{admin_base(h)}/review/breakers")
            assert "No breaker has warned or tripped." in await page.content()
            await page.context.clear_cookies()

            await sign_in(page, h, "opal", secrets["opal"])
            await page.get_by_role("link", name="Breakers").click()
            row = page.get_by_role("row").filter(has_text="domain acme.example")
            assert "open" in await row.inner_text()
            assert await row.get_by_role("button").count() == 0  # ops look, not resume
            await page.context.clear_cookies()

            await sign_in(page, h, "alice", secrets["alice"])
            await page.goto(f"{admin_base(h)}/review/breakers")
            assert await violations(page) == []
            row = page.get_by_role("row").filter(has_text="domain acme.example")
            await row.get_by_label("Why").fill("DKIM record published")
            await row.get_by_role("button", name=f"Resume breaker {breaker.id}").click()
            await page.wait_for_url("**/review/breakers?done=resumed")
            assert "closed" in await page.get_by_role("row").filter(
                has_text="domain acme.example").inner_text()
        async with h.gateway.engine.connect() as conn:
            (row_,) = (await conn.execute(sa.select(audit_events).where(
                audit_events.c.event == "breaker.resumed"))).all()
        assert row_.actor.endswith("alice") and row_.reason == "DKIM record published"

        def mail_from() -> int:
            with h.client() as smtp:
                return smtp.mail("sales@acme.example")[0]

        assert await asyncio.to_thread(mail_from) == 250
