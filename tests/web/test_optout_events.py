"""Each opt-out reaches the tenant's campaign tool: the admin API's events (since a cursor,
paged) and the tenant's signed webhook, which never holds up the unsubscribe itself."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from gateway.directory.store import DirectoryStore
from gateway.events.webhook_store import WebhookStore
from tests.conftest import running_harness
from tests.support.admin_api import admin, key
from tests.support.receiver import Receiver
from tests.support.unsubscribe import public, token_for
from tests.support.webhooks import secret_bytes, verify


async def test_opt_outs_are_listed_since_a_cursor_for_the_tenant_only(harness):
    tokens = [await token_for(harness, f"r{i}@example.org") for i in range(3)]
    async with public(harness) as client:
        for token in tokens:
            assert (await client.post(f"/u/{token}")).status_code == 200
    async with admin(harness, await key(harness, "ops", "acme")) as api:
        first = (await api.get("/api/v1/tenants/acme/events",
                               params={"kind": "unsubscribed", "limit": 2})).json()
        assert [e["recipient"] for e in first["events"]] == ["r0@example.org", "r1@example.org"]
        assert first["events"][0]["detail"]["source"] == "one-click"
        rest = (await api.get("/api/v1/tenants/acme/events", params={
            "kind": "unsubscribed", "after": first["next_after"]})).json()
        assert [e["recipient"] for e in rest["events"]] == ["r2@example.org"]
        assert rest["next_after"] is None
        assert (await api.get("/api/v1/tenants/other/events")).status_code == 404
    async with admin(harness, await key(harness, "ops", "other")) as api:
        assert (await api.get("/api/v1/tenants/acme/events")).status_code == 404
        mine = (await api.get("/api/v1/tenants/other/events")).json()
        assert mine["events"] == []


async def test_the_webhook_gets_the_opt_out_signed_and_a_down_receiver_blocks_nothing(
        tmp_path, pki, database, monkeypatch):
    monkeypatch.setenv("GATEWAY__EVENTS__ALLOW_PRIVATE_TARGETS", "true")
    receiver = await Receiver(status=503).start()
    async with running_harness(tmp_path, pki, database) as h:
        tenant = await DirectoryStore(h.gateway.engine).tenant("acme")
        secret = await WebhookStore(h.gateway.engine, h.gateway.vault, h.gateway.tenant_sealer).set(
            tenant.id, receiver.url, "test")
        token = await token_for(h)
        async with public(h) as client:
            assert (await client.post(f"/u/{token}")).status_code == 200  # receiver is down
        assert await h.gateway.webhooks.run_once() == 2  # delivered + unsubscribed, tried
        receiver.status = 200
        assert await h.gateway.webhooks.run_once(datetime.now(UTC) + timedelta(seconds=15)) == 2
    await receiver.stop()
    request = receiver.requests[-1]
    assert verify(secret_bytes(secret), request.headers["x-ocg-signature"], request.body)
    kinds = [(e["kind"], e["recipient"]) for e in json.loads(request.body)["events"]]
    assert ("unsubscribed", "alice@example.org") in kinds
