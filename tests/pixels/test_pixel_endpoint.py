"""The pixel end to end: rewritten in the relayed copy, fetched over real HTTP, the open
recorded with an anonymized network only, the tracker told without the client's address."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
import sqlalchemy as sa

from gateway.pixels import agents
from gateway.pixels.opens import open_row
from gateway.pixels.token import PixelClaims
from gateway.pixels.verdict import Verdict, verdict_of
from gateway.store.schema import events, opens
from gateway.web.pixel import GIF
from tests.conftest import running_harness
from tests.support.pixels import html_message, sent_pixels


@pytest.fixture
async def h(tmp_path, pki, database, pixel_settings):
    async with running_harness(tmp_path, pki, database) as harness:
        yield harness


def public(h) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{h.gateway.ports.public}",
                             follow_redirects=False, timeout=10)


async def stored_opens(h) -> list:
    await h.gateway.opens.flush()
    async with h.gateway.engine.connect() as conn:
        return (await conn.execute(sa.select(opens).order_by(opens.c.id))).all()


async def test_the_copy_carries_a_gateway_pixel_per_recipient_and_leaves_other_images(h, tracker):
    url = f"http://127.0.0.1:{tracker.port}/track/open?id=42"
    (a, token_a), (b, token_b) = await sent_pixels(h, html_message(url),
                                                   ["a@example.org", "b@example.org"])
    assert token_a != token_b
    for copy in (a, b):
        assert b'<img src="https://cdn.example/logo.png" width="120">' in copy
        assert url.encode() not in copy
    for copy, token in ((a, token_a), (b, token_b)):
        received = next(r for r in h.sink.received if r.content == copy)
        claims = h.gateway.pixel_sealer.open(token)
        assert claims.original_url == url
        assert claims.recipient_digest.hex() == h.gateway.handler.digest(received.recipients[0])
    assert b"a@example.org" not in token_a.encode()


async def test_a_pixel_fetch_answers_the_gif_records_the_open_and_tells_the_tracker(h, tracker):
    url = f"http://127.0.0.1:{tracker.port}/track/open?id=42"
    ((_, token),) = await sent_pixels(h, html_message(url), ["alice@example.org"])
    async with public(h) as client:
        response = await client.get(f"/p/{token}", headers={
            "User-Agent": "Mozilla/5.0 (Windows NT 10.0) Chrome/120.0 Safari/537.36",
            "X-Forwarded-For": "203.0.113.77"})
    assert response.status_code == 200 and response.content == GIF
    assert response.headers["content-type"] == "image/gif"
    assert "no-store" in response.headers["cache-control"]
    assert "set-cookie" not in response.headers and "location" not in response.headers
    await h.gateway.forwarder.drain()
    (row,) = await stored_opens(h)
    assert row.network == "203.0.113.0/24" and row.ua_family == "Chrome"
    assert row.recipient_digest == h.gateway.handler.digest("alice@example.org")
    assert row.campaign.startswith("mailbox-") and row.queue_id
    (forwarded,) = tracker.requests
    assert forwarded.path == "/track/open?id=42"
    assert "x-forwarded-for" not in forwarded.headers and "forwarded" not in forwarded.headers
    assert "203.0.113" not in str(forwarded.headers)
    assert forwarded.headers["user-agent"].startswith("Mozilla/5.0 (compatible; outreach")
    async with h.gateway.engine.connect() as conn:
        (event,) = (await conn.execute(sa.select(events).where(events.c.kind == "opened"))).all()
    assert event.recipient is None and event.detail["ua_family"] == "Chrome"


async def test_an_invalid_token_gets_the_same_gif_and_records_nothing(h, tracker):
    async with public(h) as client:
        for bad in ("x", "A" * 200, "not!base64"):
            response = await client.get(f"/p/{bad}")
            assert response.status_code == 200 and response.content == GIF
    assert await stored_opens(h) == []
    await h.gateway.forwarder.drain()
    assert tracker.requests == []


@pytest.mark.parametrize("peer_says, network", [
    ({"X-Forwarded-For": "198.51.100.7"}, "198.51.100.0/24"),
    ({"X-Forwarded-For": "2001:db8:1234:5678::99"}, "2001:db8:1234::/48"),
    ({"X-Forwarded-For": "::ffff:198.51.100.7"}, "198.51.100.0/24"),  # mapped: as IPv4
    ({"X-Forwarded-For": "192.0.2.1, 198.51.100.7, 127.0.0.1"}, "198.51.100.0/24"),
    ({}, "127.0.0.0/24"),  # no header: the socket's peer
])
async def test_the_client_network_through_a_trusted_proxy(h, tracker, peer_says, network):
    ((_, token),) = await sent_pixels(h, html_message("https://t.example/o.gif"),
                                      ["alice@example.org"])
    async with public(h) as client:
        await client.get(f"/p/{token}", headers=peer_says)
    (row,) = await stored_opens(h)
    assert row.network == network


async def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(tmp_path, pki, database):
    async with running_harness(tmp_path, pki, database) as h:  # no trusted proxies
        ((_, token),) = await sent_pixels(h, html_message("https://t.example/o.gif"),
                                          ["alice@example.org"])
        async with public(h) as client:
            await client.get(f"/p/{token}", headers={"X-Forwarded-For": "198.51.100.7"})
        (row,) = await stored_opens(h)
        assert row.network == "127.0.0.0/24"


async def test_aggregate_mode_gives_every_recipient_the_same_url_and_no_digest(h, tracker):
    await h.store().set_tenant_setting("acme", "pixels", "aggregate", "test")
    await h.refresh()
    copies = await sent_pixels(h, html_message(f"http://127.0.0.1:{tracker.port}/o?u=1"),
                               ["a@example.org", "b@example.org"])
    (_, first), (_, second) = copies
    assert first == second  # byte-identical: the URL cannot tell recipients apart
    async with public(h) as client:
        await client.get(f"/p/{first}")
    (row,) = await stored_opens(h)
    assert row.recipient_digest is None and row.queue_id is None
    await h.gateway.forwarder.drain()
    assert tracker.requests == []  # nothing per recipient to forward


async def test_strip_mode_removes_pixels_and_off_needs_the_operator(h):
    await h.store().set_tenant_setting("acme", "pixels", "strip", "test")
    await h.refresh()
    assert await h.send(html_message("https://t.example/o.gif"), ["a@example.org"]) == {}
    copy = h.sink.received[-1].content
    assert b"t.example/o.gif" not in copy and b"/p/" not in copy
    assert b"https://cdn.example/logo.png" in copy
    from gateway.directory import settings
    from gateway.errors import InvalidValue

    with pytest.raises(InvalidValue, match="allow_off"):
        settings.parse("pixels", "off", h.gateway.config)


async def test_the_gateway_adds_its_own_pixel_when_asked(h):
    await h.store().set_tenant_setting("acme", "add_pixel", "yes", "test")
    await h.refresh()
    no_pixel = html_message("https://cdn.example/banner.png").replace(
        b'width="1" height="1"', b'width="600"')
    ((copy, token),) = await sent_pixels(h, no_pixel, ["a@example.org"])
    assert h.gateway.pixel_sealer.open(token).original_url == ""
    assert b'width="1" height="1" alt=""' in copy


@pytest.mark.parametrize("ua, method, sent_ago, expect", [
    ("Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com "
     "GoogleImageProxy)", "GET", 3600, ("google-proxy",)),
    ("Mozilla/5.0 (X11) YahooMailProxy; https://help.yahoo.com", "GET", 3600, ("yahoo-proxy",)),
    ("Mozilla/5.0", "GET", 3600, ("apple-mpp",)),
    ("Mozilla/5.0 (compatible; Barracuda Sentinel)", "GET", 3600, ("scanner",)),
    ("python-requests/2.31", "GET", 3600, ("scanner",)),
    ("", "GET", 3600, ("scanner",)),
    ("Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15", "HEAD", 3600, ("scanner",)),
    ("Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15", "GET", 2, ("fast",)),
    ("Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15", "GET", 3600, ()),
])
def test_machine_open_signals(ua, method, sent_ago, expect):
    now = time.time()
    found = agents.signals(ua, method, "203.0.113.0/24", int(now - sent_ago), now, 10.0)
    assert found == expect
    machine = bool(set(expect) - {"google-proxy", "yahoo-proxy"})
    assert (verdict_of(found) is not Verdict.HUMAN) == machine


def test_apple_network_is_a_privacy_prefetch():
    assert agents.signals("Mozilla/5.0 (iPhone) AppleWebKit", "GET", "17.58.0.0/24", 0,
                          time.time(), 10) == ("apple-mpp",)


async def test_opens_are_readable_per_message_and_campaign_as_json_and_csv(h, tracker):
    from tests.support.admin_api import admin, key

    message = html_message("https://t.example/o.gif").replace(
        b"Subject: Hello", b"Subject: Hello\r\nX-Campaign-ID: spring-2026")
    copies = await sent_pixels(h, message, ["a@example.org", "b@example.org"])
    async with public(h) as client:
        for _, token in copies + copies[:1]:
            await client.get(f"/p/{token}", headers={"User-Agent": "Mozilla/5.0 Firefox/120"})
        await client.get(f"/p/{copies[1][1]}", headers={"User-Agent": "curl/8.0"})
    await h.gateway.opens.flush()
    claims: PixelClaims = h.gateway.pixel_sealer.open(copies[0][1])
    async with admin(h, await key(h, "ops", "acme")) as api:
        page = (await api.get("/api/v1/tenants/acme/opens",
                              params={"campaign": "spring-2026"})).json()
        assert len(page["opens"]) == 4 and page["next_after"] is None
        assert {o["queue_id"] for o in page["opens"]} == {claims.queue_id}
        summary = (await api.get("/api/v1/tenants/acme/opens/summary",
                                 params={"queue_id": claims.queue_id})).json()
        assert summary == {"opens": 4, "machine_opens": 1, "human_opens": 3,
                           "unique_recipients": 2, "unique_human_recipients": 2,
                           "by_verdict": {"human": 3, "machine": 0, "bot": 1}}
        csv_text = (await api.get("/api/v1/tenants/acme/opens",
                                  params={"format": "csv"})).text
        assert csv_text.splitlines()[0].startswith("id,at,queue_id,campaign,recipient_digest")
        assert len(csv_text.splitlines()) == 5 and "127.0.0.1" not in csv_text
        assert (await api.get("/api/v1/tenants/other/opens")).status_code == 404


async def test_a_flush_returns_only_once_every_open_recorded_before_it_is_stored(h):
    """The timer's flush takes the buffered opens and is still writing them when another
    flush (stop's, or a reader's) starts: that one waits, instead of finding the buffer
    empty and returning before the rows are stored (CI saw an aggregate-mode open missing
    for that reason)."""
    recorder = h.gateway.opens
    await recorder.flush()
    before = len(await stored_opens(h))
    recorder.record(open_row(1, None, "campaign", None, "192.0.2.0/24", "other", "human", ()))
    writing = asyncio.create_task(recorder.flush())  # as the timer would
    await asyncio.sleep(0)  # it has taken the row and waits on the database
    await recorder.flush()
    async with h.gateway.engine.connect() as conn:
        stored = (await conn.execute(sa.select(opens))).all()
    assert len(stored) == before + 1
    assert await writing == 1
