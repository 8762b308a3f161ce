"""Alerts for ops: a stuck delivery queue and a certificate near expiry are found by the
periodic checks and posted to the operator's webhook (a real HTTP server here), each at most
once per repeat window, with ids and counts but no address."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa

from gateway.store.schema import mailboxes, pending_copies
from tests.conftest import running_harness

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


class Receiver:
    def __init__(self) -> None:
        self.posts: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers["Content-Length"])
                outer.posts.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def wait_for(predicate, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


async def test_stuck_queue_and_certificate_alerts_reach_the_webhook_once(
        tmp_path, pki, database, monkeypatch):
    receiver = Receiver()
    monkeypatch.setenv("GATEWAY__ALERTS__WEBHOOK_URL", receiver.url)
    monkeypatch.setenv("GATEWAY__ALERTS__CERTIFICATE_DAYS", "1000000")  # the test CA: year 3000
    try:
        async with running_harness(tmp_path, pki, database) as h:
            old = datetime.now(UTC) - timedelta(hours=2)
            async with h.gateway.engine.begin() as conn:
                mailbox = (await conn.execute(sa.select(mailboxes.c.id))).scalars().first()
                await conn.execute(pending_copies.insert().values(
                    queue_id="STUCK1", tenant_id=1, mailbox_id=mailbox,
                    envelope_from="sales@acme.example", recipient="x@example.org",
                    state="deferred", reply_code=451, reply_status="4.4.1",
                    reply_text="unreachable", sealed_message=b"x", key_id="k",
                    created_at=old, next_attempt_at=old))
            assert await h.gateway.alerts.check_once() == 2
            await wait_for(lambda: len(receiver.posts) == 2)
            events = {p["event"]: p for p in receiver.posts}
            stuck = events["delivery queue stuck: copies deferred for too long"]
            assert stuck["copies"] == 1 and stuck["source"] == "ocg"
            assert "days_left" in events["SMTP TLS certificate expires soon"]
            await h.gateway.alerts.check_once()  # the same findings again: not re-sent
            logging.getLogger("gateway.vault").error(
                "token refresh failed", extra={"mailbox_id": 7, "alert": "ops"})
            await wait_for(lambda: len(receiver.posts) == 3)
            await asyncio.sleep(0.3)
            assert len(receiver.posts) == 3
            assert "@" not in json.dumps(receiver.posts)
    finally:
        receiver.close()
