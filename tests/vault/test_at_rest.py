"""What is sealed is not readable in the raw database file."""

from __future__ import annotations

import base64
from pathlib import Path

from gateway.directory.store import DirectoryStore
from gateway.events.webhook_store import WebhookStore
from tests.conftest import Pki, running_harness
from tests.support import messages

BODY = "Quarterly numbers attached, confidential-marker-7f3a"


async def test_raw_sqlite_file_holds_no_secret_and_no_queued_body(tmp_path: Path, pki: Pki,
                                                                   monkeypatch):
    from tests.conftest import Database

    monkeypatch.setenv("GATEWAY__EVENTS__ALLOW_PRIVATE_TARGETS", "true")
    database = Database("sqlite", f"sqlite+aiosqlite:///{tmp_path}/gateway.db")
    async with running_harness(tmp_path, pki, database) as h:
        tenant = await DirectoryStore(h.gateway.engine).tenant("acme")
        secret = await WebhookStore(h.gateway.engine, h.gateway.vault, h.gateway.tenant_sealer).set(
            tenant.id, "http://127.0.0.1:9/hook", "test")
        h.sink.faults.rcpt["busy@example.org"] = "451 4.2.1 busy"
        await h.send(messages.simple(body=BODY + "\r\n"), ["ok@example.org",
                                                           "busy@example.org"])
        assert len(await h.gateway.queue.listing()) == 1  # the body is in the queue, sealed
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("gateway.db*"))
    raw_secret = base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))
    assert BODY.encode() not in raw
    assert raw_secret not in raw and secret.encode() not in raw
