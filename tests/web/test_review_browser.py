"""The review pages in a real browser (Debian's chromium driven by Playwright): sign in,
filter the queue, open a held message, release it, see it arrive at the upstream sink and
the decision in the audit trail. A held message's HTML is shown sandboxed: its script never
runs and its image pointing at a loopback canary is never fetched."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import running_harness
from tests.support import messages
from tests.support.browser import chromium, violations
from tests.support.held import held_rows, send_data
from tests.support.review import add_reviewer, admin_base, sign_in


class Canary:
    """A loopback HTTP server that counts every connection made to it."""

    def __init__(self) -> None:
        self.hits = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Canary:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.hits += 1
            writer.write(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            await writer.drain()
            writer.close()

        self._server = await asyncio.start_server(handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


def html_with_canary(port: int) -> bytes:
    head = messages.simple().split(b"\r\n\r\n", 1)[0].replace(
        b"Content-Type: text/plain; charset=utf-8", b"Content-Type: text/html; charset=utf-8")
    html = (f'<html><body><p>Your card 4111 1111 1111 1111 is on file.</p>'
            f'<img src="http://127.0.0.1:{port}/pixel.gif" alt="">'
            f'<link rel="stylesheet" href="http://127.0.0.1:{port}/style.css">'
            f"<script>document.write('<p id=\"ran\">script ran</p>');"
            f"fetch('http://127.0.0.1:{port}/script');</script></body></html>")
    return head + b"\r\n\r\n" + html.encode() + b"\r\n"


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_a_reviewer_signs_in_filters_opens_and_releases_a_held_message(
        tmp_path, pki, database):
    async with running_harness(tmp_path, pki, database, run_queue=True) as h:
        secret = await add_reviewer(h, "alice")
        await asyncio.to_thread(send_data, h, ["a@example.org"])  # held: sensitive-data
        subject_hold = messages.simple().replace(b"Subject: Hello", b"Subject: Re: Hello")
        await h.send(subject_hold, ["c@example.org"])  # held: misleading-subject
        card = next(r for r in await held_rows(h) if r.check_name == "sensitive-data")
        async with chromium() as browser:
            page = await browser.new_page()
            await sign_in(page, h, "alice", secret)
            assert await violations(page) == []
            table = page.get_by_role("table", name="Held and refused messages")
            assert await table.locator("tbody tr").count() == 2
            await page.locator("select[name=check]").select_option("sensitive-data")
            await page.get_by_role("button", name="Filter").click()
            await page.wait_for_url("**check=sensitive-data**")
            assert await table.locator("tbody tr").count() == 1
            await page.get_by_role("link", name=str(card.id), exact=True).click()
            await page.wait_for_url(f"**/review/messages/{card.id}")
            assert await page.get_by_role("heading", name=f"Message {card.id}").is_visible()
            assert "sensitive-data" in await page.get_by_role("table", name="Verdicts") \
                .inner_text()
            assert await violations(page) == []
            await page.get_by_role("textbox", name="Reason").fill("a test card number, approved")
            await page.get_by_role("button", name="Release", exact=True).click()
            await page.wait_for_url("**done=released")
            assert "Released" in await page.get_by_role("status").inner_text()

            for _ in range(100):  # the running gateway queues and delivers it
                if any(r.recipients == ["a@example.org"] for r in h.sink.received):
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the released message never reached the sink")
            delivered = next(r for r in h.sink.received if r.recipients == ["a@example.org"])
            assert b"List-Unsubscribe:" in delivered.content

            await page.get_by_role("link", name="Audit trail").click()
            audit = await page.get_by_role("table", name="Audit trail").inner_text()
            assert "reviewer:alice" in audit and "held.release-requested" in audit
            assert "a test card number, approved" in audit
            assert await violations(page) == []


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_a_held_messages_html_runs_no_script_and_fetches_nothing(harness):
    secret = await add_reviewer(harness, "alice")
    async with Canary() as canary:
        await harness.send(html_with_canary(canary.port), ["a@example.org"])
        (row,) = await held_rows(harness)
        assert row.check_name == "sensitive-data"
        async with chromium() as browser:
            page = await browser.new_page()
            await sign_in(page, harness, "alice", secret)
            body_responses = []
            page.on("response", lambda r: body_responses.append(r)
                    if r.url.endswith(f"/review/messages/{row.id}/body") else None)
            await page.goto(f"{admin_base(harness)}/review/messages/{row.id}")
            frame_element = await page.wait_for_selector("iframe")
            frame = await frame_element.content_frame()
            assert frame is not None
            await frame.wait_for_load_state("load")
            assert "4111 1111 1111 1111" in await frame.inner_text("body")
            assert await frame.locator("#ran").count() == 0  # the script never ran
            await asyncio.sleep(0.5)  # anything the page might still fetch
            assert canary.hits == 0
            (response,) = body_responses
            assert response.headers["content-security-policy"] == (
                "default-src 'none'; img-src data: cid:; style-src 'unsafe-inline'; sandbox")
            assert await frame_element.get_attribute("sandbox") == ""
            text = await browser.new_page()
            await text.context.add_cookies(await page.context.cookies())
            await text.goto(f"{admin_base(harness)}/review/messages/{row.id}/body?as=text")
            assert "<script>" in await text.inner_text("body")  # shown, not run
        assert canary.hits == 0
