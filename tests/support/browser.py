"""Debian's chromium through Playwright, and axe-core's accessibility findings on a page."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import axe_playwright_python
import pytest
from playwright.async_api import Browser, async_playwright

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


# As the machine notes say: no background networking, so a closed network stays quiet.
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    if not shutil.which("chromium"):
        pytest.fail("Debian's chromium is required (scripts/install-system-packages.sh)")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


AXE = (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text()


async def violations(page) -> list[str]:
    await page.evaluate(AXE)
    result = await page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => v.id + ': ' + v.help);
    }""")
    return list(result)
