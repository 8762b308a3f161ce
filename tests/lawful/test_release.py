"""A message held for review and released later is decided again as at DATA: a recipient
the table (or the tool's statement) leaves without a basis is not queued, one owed the
notice gets it — a reviewer's release is no way around the lawful basis."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from gateway.store.schema import audit_events
from tests.support.cli import gw
from tests.support.held import CARD, held_rows
from tests.support.lawful import give_notice
from tests.support.messages import simple


async def test_a_released_message_is_decided_again_and_carries_the_notice(harness):
    h = harness
    for name, value in (("lawful_basis", "enforce"), ("lawful_statements", "yes"),
                        ("lawful_default", "allow-with-notice")):
        assert (await gw(h, "tenant", "set", "acme", name, value)).returncode == 0
    await give_notice(h)
    held = simple(extra="X-Gateway-Recipient: <bob@company.us>; country=DE\r\n").split(
        b"\r\n\r\n", 1)[0] + b"\r\n\r\n" + CARD + b"\r\n"

    def send() -> tuple[int, bytes]:
        with h.client() as smtp:
            smtp.mail("sales@acme.example")
            for r in ("anna@firma.de", "bob@company.us", "ceo@startup.com"):
                assert smtp.rcpt(r)[0] == 250  # statements: decided once the message is in
            return smtp.data(held)

    code, _ = await asyncio.to_thread(send)
    assert code == 250  # held for review (the card number)
    (row,) = await held_rows(h)
    await h.gateway.held.request_release(row.id, "reviewer", "a false positive")
    assert await h.gateway.review.run_once() == 1
    await h.gateway.worker.run_once(datetime.now(UTC) + timedelta(seconds=1))
    delivered = {r.recipients[0]: r.content for r in h.sink.received}
    assert list(delivered) == ["ceo@startup.com"]  # .de and a stated German: no basis
    assert b"GDPR Art. 14" in delivered["ceo@startup.com"]
    assert b"X-Gateway-Recipient" not in delivered["ceo@startup.com"]
    async with h.gateway.engine.connect() as conn:
        refused = {r.recipient_digest: r.detail["lawful"] for r in await conn.execute(
            sa.select(audit_events).where(audit_events.c.event == "copy.refused"))}
    assert refused == {
        h.gateway.digest("anna@firma.de"): {"policy": "ocg-default v1",
                                            "decision": "require-consent", "source": "cctld"},
        h.gateway.digest("bob@company.us"): {"policy": "ocg-default v1",
                                             "decision": "require-consent",
                                             "source": "header"}}
