"""Every copy the gateway sends (or queues) is in the index of sent Message-IDs, named by
digests only, for its tenant; a refused copy is not; the index is purged on its schedule."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from gateway.feedback.sent import message_id_hash
from gateway.store.schema import mailboxes, sent_messages, tenants
from tests.conftest import Harness
from tests.support import messages


async def test_sent_and_queued_copies_are_indexed_refused_ones_not(harness: Harness):
    gateway = harness.gateway
    harness.sink.faults.rcpt["gone@example.org"] = "550 5.1.1 no such user"
    harness.sink.faults.rcpt["busy@example.org"] = "451 4.2.1 try later"
    code, text = await harness.data_reply(
        ["lead@example.org", "gone@example.org", "busy@example.org"])
    assert code == 250, text

    copies = await gateway.sent_index.find(["<m1@acme.example>"])
    async with gateway.engine.connect() as conn:
        acme = (await conn.execute(sa.select(tenants.c.id).where(
            tenants.c.name == "acme"))).scalar_one()
        sales = (await conn.execute(sa.select(mailboxes.c.id).where(
            mailboxes.c.address == "sales@acme.example"))).scalar_one()
        stored = (await conn.execute(sa.select(sent_messages))).all()
    by_digest = {c.recipient_digest: c for c in copies}
    assert set(by_digest) == {gateway.handler.digest("lead@example.org"),
                              gateway.handler.digest("busy@example.org")}  # not "gone"
    for address in ("lead@example.org", "busy@example.org"):
        copy = by_digest[gateway.handler.digest(address)]
        assert (copy.tenant_id, copy.mailbox_id) == (acme, sales)
        assert copy.queue_id in text  # the id the client was given
        assert copy.suppression_digest == gateway.suppressions.digest_of(address) is not None
    # the subject is a keyed digest: its plain SHA-256 (a dictionary away) is not stored
    assert {r.subject_hash for r in stored} == {gateway.handler.digest("subject|hello")}
    assert hashlib.sha256(b"hello").hexdigest() not in {r.subject_hash for r in stored}
    # no address and no Message-ID in clear: only their digests
    # (bytes are skipped: a digest byte may be 0x40, "@")
    assert all("@" not in value for row in stored for value in row if isinstance(value, str))
    assert stored[0].message_id_hash == message_id_hash("<m1@acme.example>")
    assert await gateway.sent_index.find(["<forged@elsewhere.example>"]) == []
    # a Message-ID written without its brackets finds the same copies
    assert len(await gateway.sent_index.find(["m1@acme.example"])) == 2


async def test_the_index_is_purged_after_its_retention(harness: Harness):
    gateway = harness.gateway
    await harness.send(messages.simple(), ["lead@example.org"])
    index = gateway.sent_index
    assert len(await index.find(["<m1@acme.example>"])) == 1
    days = gateway.config.retention.sent_index_days
    kept = await gateway.retention.run_once(datetime.now(UTC) + timedelta(days=days - 1))
    assert kept.counts["sent_messages"] == 0
    purged = await gateway.retention.run_once(datetime.now(UTC) + timedelta(days=days + 1))
    assert purged.counts["sent_messages"] == 1
    assert await index.find(["<m1@acme.example>"]) == []
