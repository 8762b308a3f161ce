"""The admin API's reference page in Debian's chromium: Swagger UI rendered from our own
OpenAPI document, every request it makes to the admin listener itself (no CDN), and no
other file of the bundle or the disk reachable through it."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from tests.conftest import Harness
from tests.support.browser import chromium


async def test_the_reference_page_renders_from_this_listener_only(harness: Harness):
    base = f"http://127.0.0.1:{harness.gateway.ports.admin}"
    async with chromium() as browser:
        page = await browser.new_page()
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        console: list[str] = []  # a policy violation or a failed load would show here
        page.on("console", lambda message: console.append(message.text))
        await page.goto(f"{base}/api/v1/reference")
        await page.get_by_text("Outreach Compliance Gateway admin API").first.wait_for()
        await page.get_by_role("button", name="Authorize").wait_for()
        text = await page.inner_text("#reference")
    assert "/api/v1/held/{held_id}/release" in text and "tenants" in text
    assert requested and {urlsplit(u).netloc for u in requested if not u.startswith("data:")} \
        == {urlsplit(base).netloc}
    assert console == []
    async with httpx.AsyncClient(base_url=base) as client:
        shown = await client.get("/api/v1/reference")
        assert "script-src 'self'" in shown.headers["content-security-policy"]
        for name in ("index.html", "swagger-ui.js.map", "..%2f..%2fpyproject.toml",
                     "%2e%2e%2fadmin.py"):
            assert (await client.get(f"/api/v1/reference/{name}")).status_code == 404, name
        assert (await client.get("/api/v1/reference/swagger-ui.css")).status_code == 200
