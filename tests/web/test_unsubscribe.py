"""One-click unsubscribe end to end: a relayed copy's link, POSTed over a real socket,
refuses the next RCPT for that recipient at once."""

from __future__ import annotations

import re

import pytest

from tests.support import messages
from tests.support.unsubscribe import (
    LINK,
    entries,
    public,
    refused_at_rcpt,
    token_for,
    unsubscribed_events,
)

RFC8058_EXAMPLE = (b"---FormBoundaryjWmhtjORrn\r\n"
                   b'Content-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
                   b"One-Click\r\n---FormBoundaryjWmhtjORrn--\r\n")


async def test_every_copy_carries_exactly_one_pair_of_gateway_headers(harness):
    tool_made = messages.simple().replace(
        b"Subject: Hello\r\n",
        b"Subject: Hello\r\nList-Unsubscribe: <https://tool.example/u/1>\r\n"
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
        b"list-unsubscribe: <mailto:u@tool.example>\r\n")
    assert await harness.send(tool_made, ["a@example.org", "b@example.org"]) == {}
    tokens = set()
    for received in harness.sink.received:
        head, body = received.content.split(b"\r\n\r\n", 1)
        assert head.lower().count(b"\nlist-unsubscribe:") == 1
        assert head.lower().count(b"\nlist-unsubscribe-post:") == 1
        assert b"tool.example" not in head
        (match,) = LINK.findall(head)
        token = match[0]
        assert b"https://links.gw.test/u/" + token in body  # the footer's link is the same
        tokens.add(token)
    assert len(tokens) == 2  # one token per recipient


@pytest.mark.parametrize("content_type, body", [
    ("application/x-www-form-urlencoded", b"List-Unsubscribe=One-Click"),
    ("multipart/form-data; boundary=b1", b"--b1\r\nContent-Disposition: form-data; "
     b'name="List-Unsubscribe"\r\n\r\nOne-Click\r\n--b1--\r\n'),
    ("multipart/form-data; boundary=---FormBoundaryjWmhtjORrn", RFC8058_EXAMPLE),
    (None, b""),
], ids=["urlencoded", "multipart", "rfc8058-example", "empty"])
async def test_one_click_post_unsubscribes_before_it_answers(harness, content_type, body):
    token = await token_for(harness)
    headers = {"Content-Type": content_type} if content_type else {}
    async with public(harness) as client:
        response = await client.post(f"/u/{token}", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert "set-cookie" not in response.headers
    # The very next transaction is refused at RCPT: no delay between answer and effect.
    assert await refused_at_rcpt(harness, "alice@example.org")
    (entry,) = await entries(harness)
    assert (entry.reason, entry.source, entry.scope) == ("unsubscribe", "one-click", 1)
    (event,) = await unsubscribed_events(harness)
    assert await harness.gateway.event_names.recipient(event) == "alice@example.org"
    assert event.detail["source"] == "one-click"


async def test_post_is_idempotent(harness):
    token = await token_for(harness)
    async with public(harness) as client:
        for _ in range(3):
            assert (await client.post(f"/u/{token}")).status_code == 200
    assert len(await entries(harness)) == 1
    assert len(await unsubscribed_events(harness)) == 1


async def test_get_shows_a_button_and_never_unsubscribes(harness):
    token = await token_for(harness)
    async with public(harness) as client:
        page = await client.get(f"/u/{token}")
    assert page.status_code == 200
    assert '<form method="post"' in page.text and "<button" in page.text
    assert "a***@example.org" in page.text and "alice@" not in page.text
    assert await entries(harness) == []
    assert not await refused_at_rcpt(harness, "alice@example.org")


async def test_the_page_speaks_the_recipients_language(harness):
    token = await token_for(harness)
    async with public(harness) as client:
        german = await client.get(f"/u/{token}", headers={"Accept-Language": "de-CH, en;q=0.5"})
        dutch = await client.post(f"/u/{token}", headers={"Accept-Language": "nl"})
        unknown = await client.get(f"/u/{token}", headers={"Accept-Language": "fi"})
    assert '<html lang="de">' in german.text and "Abmelden" in german.text
    assert '<html lang="nl">' in dutch.text and "afgemeld" in dutch.text
    assert '<html lang="en">' in unknown.text


async def test_a_forged_token_gets_400_and_writes_nothing(harness):
    token = await token_for(harness)
    forged = token[:30] + ("a" if token[30] != "a" else "b") + token[31:]
    async with public(harness) as client:
        for bad in (forged, "a" * 120, "not-a-token"):
            response = await client.post(f"/u/{bad}")
            assert response.status_code == 400
    assert await entries(harness) == []
    assert await unsubscribed_events(harness) == []


async def test_only_invalid_tokens_are_rate_limited(tmp_path, pki, database):
    from tests.conftest import running_harness

    async with running_harness(tmp_path, pki, database) as h:
        h.gateway.web.invalid_attempts._limit = 3
        token = await token_for(h)
        async with public(h) as client:
            codes = [(await client.post(f"/u/{'b' * 100}")).status_code for _ in range(5)]
            assert codes == [400, 400, 400, 429, 429]
            # A valid token from the same network is never limited.
            for _ in range(5):
                assert (await client.post(f"/u/{token}")).status_code == 200
        assert len(await entries(h)) == 1


async def test_no_mailto_link_is_advertised_without_a_listener_to_take_it(
        tmp_path, pki, database, monkeypatch):
    from tests.conftest import running_harness

    monkeypatch.setenv("GATEWAY__UNSUBSCRIBE__MAILTO_LISTEN", "")
    async with running_harness(tmp_path, pki, database) as h:
        assert h.gateway.ports.mailto == 0
        assert await h.send(messages.simple(), ["a@example.org"]) == {}
        head = h.sink.received[0].content.split(b"\r\n\r\n", 1)[0]
        (field,) = re.findall(rb"List-Unsubscribe: [^\r]*", head)
        assert re.fullmatch(rb"List-Unsubscribe: <https://links\.gw\.test/u/[a-z2-7]+>", field)


async def test_a_tenants_link_domain_carries_its_links_and_mailto(harness):
    await harness.store().set_tenant_setting("acme", "link_domain", "links.acme.example", "t")
    await harness.refresh()
    assert await harness.send(messages.simple(), ["a@example.org"]) == {}
    head, body = harness.sink.received[0].content.split(b"\r\n\r\n", 1)
    (url, token), = re.findall(rb"<(https://links\.acme\.example/u/([a-z2-7]+))>", head)
    assert b"<mailto:unsubscribe@links.acme.example?subject=unsubscribe%20" + token in head
    assert url in body and b"links.gw.test" not in head + body
    async with public(harness) as client:  # the same listener answers for every host
        response = await client.post(f"/u/{token.decode()}",
                                     headers={"Host": "links.acme.example"})
    assert response.status_code == 200
    assert await refused_at_rcpt(harness, "a@example.org")
