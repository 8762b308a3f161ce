"""The unsubscribe page in a real browser (Debian's chromium): accessible (axe-core finds
no violation) in each of its languages, and its one button unsubscribes."""

from __future__ import annotations

import pytest

from gateway.web import i18n
from tests.support.browser import chromium, violations
from tests.support.unsubscribe import entries, refused_at_rcpt, token_for


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_the_page_is_accessible_in_every_language_and_its_button_unsubscribes(harness):
    token = await token_for(harness)
    url = f"http://127.0.0.1:{harness.gateway.ports.public}/u/{token}"
    async with chromium() as browser:
        for lang in i18n.TEXTS:
            context = await browser.new_context(locale=lang)
            page = await context.new_page()
            response = await page.goto(url)
            assert response is not None and response.status == 200
            assert await page.get_attribute("html", "lang") == lang
            assert await violations(page) == [], lang
            await context.close()
        assert await entries(harness) == []  # looking at the page changed nothing
        context = await browser.new_context(locale="fr-FR")
        page = await context.new_page()
        await page.goto(url)
        await page.get_by_role("button", name=i18n.TEXTS["fr"]["button"]).click()
        await page.wait_for_load_state()
        assert await page.locator("h1").inner_text() == i18n.TEXTS["fr"]["done_title"]
        assert page.url == url  # answered in place: no redirect
        assert await violations(page) == []
        await context.close()
    assert await refused_at_rcpt(harness, "alice@example.org")


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_the_invalid_link_page_is_accessible_too(harness):
    url = f"http://127.0.0.1:{harness.gateway.ports.public}/u/{'a' * 100}"
    async with chromium() as browser:
        page = await browser.new_page()
        response = await page.goto(url)
        assert response is not None and response.status == 400
        assert await violations(page) == []
