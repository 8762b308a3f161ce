"""Unsubscribe links of relayed copies: their tokens, the public listener, refusals at RCPT
and the suppression entries and events an opt-out leaves."""

from __future__ import annotations

import re
import smtplib

import httpx
import sqlalchemy as sa

from gateway.store.schema import events, suppressions
from tests.support import messages

LINK = re.compile(rb"List-Unsubscribe: <https://links\.gw\.test/u/([a-z2-7]+)>,\r\n "
                  rb"<mailto:unsubscribe@links\.gw\.test\?subject=unsubscribe%20([a-z2-7]+)>")


async def token_for(h, recipient: str = "alice@example.org", message: bytes | None = None
                    ) -> str:
    before = len(h.sink.received)
    assert await h.send(message or messages.simple(to=recipient), [recipient]) == {}
    (copy,) = [r.content for r in h.sink.received[before:]]
    (match,) = LINK.findall(copy)
    assert match[0] == match[1]  # the mailto subject carries the same token
    return match[0].decode()


def public(h) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{h.gateway.ports.public}",
                             follow_redirects=False, timeout=10)


async def refused_at_rcpt(h, recipient: str) -> bool:
    try:
        await h.send(messages.simple(to=recipient), [recipient])
    except smtplib.SMTPRecipientsRefused as exc:
        code, text = exc.recipients[recipient]
        assert (code, text[:5]) == (550, b"5.7.1")
        return True
    return False


async def entries(h) -> list:
    async with h.gateway.engine.connect() as conn:
        return (await conn.execute(sa.select(suppressions))).all()


async def unsubscribed_events(h) -> list:
    async with h.gateway.engine.connect() as conn:
        return (await conn.execute(sa.select(events).where(
            events.c.kind == "unsubscribed"))).all()
