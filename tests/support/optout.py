"""Possible opt-outs: a reply that may ask to stop, sent the way a person would answer."""

from __future__ import annotations

from gateway.feedback.apply import Arrival
from tests.conftest import Harness
from tests.support import messages


def question(message_id: str, sender: str = "wendy@example.net") -> bytes:
    """A reply that asks to stop and asks something: the classifier leaves it to a person."""
    return (f"From: Wendy West <{sender}>\r\nTo: sales@acme.example\r\nSubject: Re: Hello\r\n"
            f"In-Reply-To: {message_id}\r\nMessage-ID: <r1@example.net>\r\n\r\n"
            "Please remove me from your list. Who gave you my address?\r\n").encode()


async def possible_opt_out(h: Harness, recipient: str, sender: str) -> int:
    await h.send(messages.simple().replace(b"<m1@acme.example>", b"<q1@acme.example>"),
                 [recipient])
    copy = (await h.gateway.sent_index.find(["<q1@acme.example>"]))[-1]
    applied = await h.gateway.feedback.apply(question("<q1@acme.example>", sender),
                                             Arrival.inbox(copy.tenant_id, copy.mailbox_id))
    assert applied.review_id is not None and not applied.suppressed
    return applied.review_id
