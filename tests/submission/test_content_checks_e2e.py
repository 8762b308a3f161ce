"""Content checks over SMTP: held mail is accepted for review and not sent, rejected mail gets
550 5.7.1, and the audit row names the kind, never the value."""

from __future__ import annotations

import smtplib

import pytest
import sqlalchemy as sa

from gateway.store.schema import audit_events
from tests.support import messages

CARD = b"Your card 4111 1111 1111 1111 is on file."


def with_body(body: bytes) -> bytes:
    return messages.simple().split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n" + body + b"\r\n"


async def reply(h, message: bytes) -> tuple[int, bytes] | None:
    try:
        await h.send(message, ["a@example.org"])
    except smtplib.SMTPDataError as exc:
        return exc.smtp_code, exc.smtp_error
    return None


@pytest.mark.parametrize("setting, expected, event", [
    (None, None, "message.held"), ("reject", (550, b"5.7.1"), "message.refused")])
async def test_a_card_number_is_not_sent(harness, setting, expected, event):
    if setting:
        await harness.store().set_tenant_setting("acme", "sensitive_data", setting, "test")
        await harness.refresh()
    got = await reply(harness, with_body(CARD))
    assert (got if got is None else (got[0], got[1][:5])) == expected  # None: 250, held
    assert harness.sink.received == []
    async with harness.gateway.engine.connect() as conn:
        (row,) = (await conn.execute(sa.select(audit_events).where(
            audit_events.c.event == event))).all()
    assert row.check_name == "sensitive-data" and "payment card number" in row.reason
    assert "4111" not in repr(tuple(row))


async def test_off_lets_it_through(harness):
    await harness.store().set_tenant_setting("acme", "sensitive_data", "off", "test")
    await harness.refresh()
    assert await reply(harness, with_body(CARD)) is None
    assert len(harness.sink.received) == 1


@pytest.mark.parametrize("field", ["Sender", "Resent-From", "Resent-Sender", "Reply-To"])
async def test_a_foreign_identity_field_is_refused_like_a_foreign_from(harness, field):
    from gateway.protocol import replies

    got = await reply(harness, messages.simple(extra=f"{field}: ceo@paypal.example\r\n"))
    expected = replies.IDENTITY_MISALIGNED
    assert got is not None and (got[0], got[1][:5]) == (expected.code, expected.status.encode())
    assert harness.sink.received == []
