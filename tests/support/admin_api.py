"""The admin API: keys of each role and tenant binding, a client on the admin listener,
and another tenant's objects to try isolation with."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import httpx

from gateway.access.api_keys import ApiKeys
from gateway.audit import trail as audit
from gateway.delivery.queue import NewCopy, State
from gateway.store.schema import optout_reviews
from tests.conftest import Harness
from tests.support.oauth_server import CLIENT_ID, CLIENT_SECRET


async def key(h: Harness, role: str, tenant: str | None = None) -> str:
    tenant_id = (await h.store().tenant(tenant)).id if tenant else None
    return (await ApiKeys(h.gateway.engine).create("test", role, tenant_id, "test"))[1]


def admin(h: Harness, api_key: str | None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{h.gateway.ports.admin}",
                             headers=headers)


async def held_message(h: Harness, tenant: str, mailbox: str, queue_id: str | None = None,
                       recipients: tuple[str, ...] = ("lead@example.org",),
                       status: str = "held") -> int:
    """A held message of `tenant`, as the sensitive-data check would have kept it."""
    parts = h.gateway
    await parts.digest.open()
    tenant_id = (await h.store().tenant(tenant)).id
    queue_id = queue_id or os.urandom(6).hex().upper()
    message = (f"From: {mailbox}\r\nTo: {', '.join(recipients)}\r\nSubject: Offer\r\n\r\n"
               "My IBAN is NL91ABNA0417164300.\r\n").encode()
    await parts.held.add(
        queue_id=queue_id, tenant_id=tenant_id, login="tool",
        mailbox_id=h.gateway.directory.mailbox(mailbox).id, envelope_from=mailbox,
        recipients=list(recipients), subject="Offer", message=message, smtputf8=False,
        check_name="sensitive-data", reason="an IBAN", verdicts=[["sensitive-data", "hold",
                                                                  "an IBAN"]],
        status=status)
    listed = await parts.held.listing(tenant_id, status, None, 1000)
    return next(m.id for m in listed if m.queue_id == queue_id)


async def queued_copy(h: Harness, tenant: str, mailbox: str,
                      recipient: str = "lead@example.org") -> tuple[int, str]:
    """A deferred copy of `tenant` with its audit row: (copy id, queue id)."""
    parts = h.gateway
    tenant_id = (await h.store().tenant(tenant)).id
    queue_id = os.urandom(6).hex().upper()
    await parts.queue.add([NewCopy(queue_id, tenant_id, h.gateway.directory.mailbox(mailbox).id,
                                   mailbox, recipient, State.DEFERRED, 451, "4.3.0", "later")],
                          b"Subject: x\r\n\r\nbody\r\n")
    async with h.gateway.engine.begin() as conn:
        await audit.write(conn, [audit.row("message.accepted", actor="smtp",
                                           tenant_id=tenant_id, queue_id=queue_id)])
    (copy,) = await parts.queue.for_queue_id(queue_id)
    return copy.id, queue_id


async def optout_review(h: Harness, tenant: str, mailbox: str) -> int:
    tenant_id = (await h.store().tenant(tenant)).id
    async with h.gateway.engine.begin() as conn:
        result = await conn.execute(optout_reviews.insert().values(
            tenant_id=tenant_id, mailbox_id=h.gateway.directory.mailbox(mailbox).id,
            queue_id="Q", recipient_digest="r", rule="remove me", sealed_reply=b"x",
            key_id="k", status="pending", created_at=datetime.now(UTC)))
    return int(result.inserted_primary_key[0])


async def objects_of_other(h: Harness) -> dict[str, str]:
    """An id of tenant `other`'s object for every path parameter the API has."""
    other = (await h.store().tenant("other")).id
    client_id = await h.gateway.credentials.add_client("google", CLIENT_ID, CLIENT_SECRET,
                                                       other, "test")
    key_id, _ = await ApiKeys(h.gateway.engine).create("b", "ops", other, "test")
    dkim = await h.gateway.dkim.generate("other.example", "rsa", "", "test")
    copy_id, queue_id = await queued_copy(h, "other", "ceo@other.example")
    await h.gateway.breakers.trip_now(other, f"t{other}", "authentication", "5.7.515")
    (breaker,) = await h.gateway.breakers.listing(other)
    return {"mailbox_id": h.gateway.directory.mailbox("ceo@other.example").public_id,
            "key_id": key_id, "client_id": client_id, "list_name": "other",
            "tenant_name": "other", "domain": "other.example", "selector": dkim.selector,
            "username": "other-tool", "copy_id": str(copy_id), "reference": queue_id,
            "held_id": str(await held_message(h, "other", "ceo@other.example")),
            "review_id": str(await optout_review(h, "other", "ceo@other.example")),
            "breaker_id": str(breaker.id)}
