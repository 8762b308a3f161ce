"""Held and refused messages: sent as a campaign tool would send them, and found again."""

from __future__ import annotations

import sqlalchemy as sa

from gateway.store.schema import held_messages
from tests.support import messages

CARD = b"Your card 4111 1111 1111 1111 is on file."


def card_message() -> bytes:
    return messages.simple().split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n" + CARD + b"\r\n"


def send_data(h, recipients: list[str]) -> tuple[int, bytes]:
    with h.client() as smtp:
        smtp.mail("sales@acme.example")
        for r in recipients:
            smtp.rcpt(r)
        return smtp.data(card_message())


async def held_rows(h) -> list:
    async with h.gateway.engine.connect() as conn:
        return (await conn.execute(sa.select(held_messages))).all()
