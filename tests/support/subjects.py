"""A data subject with something in every store, for the export and erasure tests."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from gateway.feedback.apply import Arrival
from gateway.optout.suppressions import Actor
from gateway.store.schema import (
    events,
    opens,
)
from suppression.entries import Reason
from tests.support import messages
from tests.support.feedback import FEEDBACK
from tests.support.held import send_data
from tests.support.optout import question

PERSON, OTHER = "Person@Example.org", "other@example.org"


async def their_data(h) -> None:
    """The person (and someone else) in every store that can hold them."""
    await h.send(messages.simple(), [PERSON, OTHER])  # delivered: audit rows by digest
    await asyncio.to_thread(send_data, h, [PERSON, OTHER])  # held: card number
    s, ops = h.gateway.suppressions, Actor("test")
    await s.add(ops, 1, PERSON, Reason.UNSUBSCRIBE, "test")
    await s.add(ops, 2, PERSON, Reason.MANUAL, "test")
    await s.add(ops, 1, OTHER, Reason.MANUAL, "test")
    now = datetime.now(UTC)
    async with h.gateway.engine.begin() as conn:
        for who in (PERSON.lower(), OTHER):
            await conn.execute(events.insert().values(
                tenant_id=1, at=now, kind="unsubscribed", recipient=who, detail={}))
            await conn.execute(opens.insert().values(
                tenant_id=1, at=now, campaign="c", recipient_digest=h.gateway.handler.digest(who),
                network="192.0.2.0/24", ua_family="gmail", machine=False))
    # feedback about their copies: a soft bounce counted, a reply waiting for a person
    (copy, *_) = await h.gateway.sent_index.find(["<m1@acme.example>"])
    arrival = Arrival.inbox(copy.tenant_id, copy.mailbox_id)
    for who in (PERSON, OTHER):
        soft = (FEEDBACK / "postfix-delayed.eml").read_bytes().replace(
            b"giulia.rossi@fratelliconti.example", who.encode()).replace(
            b"<OCG.77EE88FF99.0@acme.example>", b"<m1@acme.example>")
        assert (await h.gateway.feedback.apply(soft, arrival)).marked == ["soft"]
        applied = await h.gateway.feedback.apply(question("<m1@acme.example>", who), arrival)
        assert applied.review_id is not None
