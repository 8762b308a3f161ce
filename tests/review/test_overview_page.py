"""The overview page in Debian's chromium: breaker states, complaint and bounce rates per
scope, opens by verdict and the opt-out SLA as server-drawn SVG charts — the same figures
in words for a screen reader, nothing fetched from elsewhere, readable with JavaScript off,
axe-clean — and the same figures on /metrics."""

from __future__ import annotations

import re
import smtplib
from urllib.parse import urlsplit

import httpx
import pytest

from gateway.web import health
from tests.conftest import running_harness
from tests.support import messages
from tests.support.browser import chromium, violations
from tests.support.pixels import html_message, sent_pixels
from tests.support.review import add_reviewer, admin_base, sign_in
from tests.support.unsubscribe import public, token_for

BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) " \
          "Chrome/120.0.0.0 Safari/537.36"


def counted(before: str, after: str, series: str) -> float:
    """How much a counter grew between two scrapes (0 where it was absent)."""
    def value(text: str) -> float:
        found = re.search(re.escape(series) + r" ([0-9.e+]+)", text)
        return float(found.group(1)) if found else 0.0
    return value(after) - value(before)


async def titles(page) -> list[str]:
    return await page.locator("svg.chart title").all_text_contents()


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_the_overview_draws_breakers_rates_opens_and_the_opt_out_sla(
        tmp_path, pki, database, monkeypatch):
    monkeypatch.setenv("GATEWAY__HTTP__TRUSTED_PROXIES", '["127.0.0.1/32"]')
    monkeypatch.setenv("GATEWAY__PIXELS__MACHINE_OPEN_SECONDS", "0")
    async with running_harness(tmp_path, pki, database) as h:
        async with httpx.AsyncClient(base_url=admin_base(h)) as client:
            before = (await client.get("/metrics")).text
        pixels = await sent_pixels(h, html_message("https://t.example/open?i=1"),
                                   ["a@example.org", "b@example.org"])
        async with public(h) as client:
            for (_, token), ua in zip(pixels, (BROWSER, "curl/8.5.0"), strict=True):
                await client.get(f"/p/{token}", headers={"User-Agent": ua,
                                                         "X-Forwarded-For": "100.64.1.2"})
            unsubscribe = await token_for(h, "carol@example.org")
            assert (await client.post(f"/u/{unsubscribe}")).status_code == 200
        await h.gateway.opens.flush()
        h.sink.faults.rcpt["gone@example.org"] = "550 5.1.1 No such user"
        await h.send(messages.simple(), ["d@example.org", "e@example.org", "f@example.org",
                                         "gone@example.org"])  # 1 bounce in 8 relayed
        h.sink.faults.rcpt["x@example.org"] = "550 5.7.515 Access denied"
        with pytest.raises(smtplib.SMTPDataError):
            await h.send(messages.simple(), ["x@example.org"])  # the domain's breaker trips
        await h.gateway.breakers.run_once()
        secret = await add_reviewer(h, "rita", "compliance")
        async with chromium() as browser:
            context = await browser.new_context(java_script_enabled=False)
            page = await context.new_page()
            elsewhere = []
            page.on("request", lambda r: elsewhere.append(r.url) if urlsplit(r.url).netloc
                    != urlsplit(admin_base(h)).netloc else None)
            await sign_in(page, h, "rita", secret)
            await page.get_by_role("link", name="Overview").click()
            await page.get_by_label("Tenant").select_option("acme")
            await page.get_by_role("button", name="Show").click()
            await page.wait_for_url("**/review/overview?tenant=acme")
            found = await titles(page)
            assert len(found) == 6 and await page.get_by_role("img").count() == 6
            states, complaints, bounces, verdicts, sla, channels = found
            assert states.startswith("Breakers by state: open 1; warn 0; closed 0")
            assert "domain acme.example 0.00 %" in complaints
            assert "tenant acme 12.50 % (trips above 5.00 %, over 8 copies)" in bounces
            assert verdicts == "Opens by verdict, last 7 days: human 1; machine 0; bot 1"
            assert sla.startswith("Opt-out request to enforcement: all nodes p50 ")
            assert channels == "Opt-outs by channel: bounce 1; one-click 1"
            assert elsewhere == []  # no asset from anywhere else
            await context.close()
            page = await browser.new_page()  # axe runs as a script
            await sign_in(page, h, "rita", secret)
            await page.goto(f"{admin_base(h)}/review/overview?tenant=acme")
            assert await violations(page) == []
            await page.goto(f"{admin_base(h)}/review/optout-report?tenant=acme")
            assert len(await titles(page)) == 2 and await violations(page) == []
        monkeypatch.setattr(health, "_rates_read", 0.0)  # read at most once a minute
        async with httpx.AsyncClient(base_url=admin_base(h)) as client:
            scraped = (await client.get("/metrics")).text
        assert 'ocg_breakers{kind="domain",state="open"} 1.0' in scraped
        # counters are the process's: other tests in this worker may have counted too
        assert counted(before, scraped, 'ocg_pixel_opens_total{verdict="bot"}') == 1
        assert counted(before, scraped, 'ocg_pixel_opens_total{verdict="human"}') == 1
        assert 'ocg_breaker_rate_max{kind="tenant",metric="bounces"} 0.125' in scraped
        assert "acme" not in scraped  # no label names a tenant
        assert counted(before, scraped,
                       'ocg_optout_enforcement_seconds_count{channel="one-click"}') == 1


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_a_reviewer_bound_to_a_tenant_sees_only_theirs(tmp_path, pki, database):
    async with running_harness(tmp_path, pki, database) as h:
        secret = await add_reviewer(h, "olaf", "ops", "other")
        async with chromium() as browser:
            page = await browser.new_page()
            await sign_in(page, h, "olaf", secret)
            await page.goto(f"{admin_base(h)}/review/overview?tenant=acme")
            assert "No such tenant." in await page.content()
            await page.goto(f"{admin_base(h)}/review/overview")  # their one tenant, at once
            assert len(await titles(page)) == 6
            assert await violations(page) == []
