"""Tenant events and webhooks: signed, retried, and surviving a killed gateway."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import smtplib
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway import config as config_module
from gateway.config import tenant_key_location
from gateway.directory.store import DirectoryStore
from gateway.errors import InvalidValue
from gateway.events.targets import check_target
from gateway.events.webhook_store import WebhookStore
from gateway.events.webhooks import sign
from gateway.store.engine import create_engine, upgrade
from gateway.vault.envelope import Vault
from gateway.vault.key_store import key_store_for
from gateway.vault.master_keys import provider_for
from gateway.vault.tenant_keys import TenantKeys, TenantSealer
from tests.conftest import PASSWORD, Pki, running_harness, seed, write_config
from tests.support import messages
from tests.support.receiver import Receiver
from tests.support.sink import RecordingSink
from tests.support.webhooks import secret_bytes, verify


def test_signature_is_hmac_over_timestamp_and_body():
    header = sign(b"k" * 32, 1700000000, b'{"events":[]}')
    assert header.startswith("t=1700000000,v1=")
    assert verify(b"k" * 32, header, b'{"events":[]}')
    assert not verify(b"k" * 32, header, b'{"events":[1]}')


@pytest.mark.parametrize("url, problem", [
    ("http://hooks.example.com/x", "must use https"),
    ("https://user:pw@hooks.example.com/x", "must not carry credentials"),
    ("https://127.0.0.1/x", "non-public address"),
    ("https://10.1.2.3/x", "non-public address"),
    ("https://[::1]/x", "non-public address"),
    ("https://169.254.169.254/latest/meta-data", "non-public address"),
])
async def test_webhook_targets_inside_the_operators_network_are_refused(url, problem):
    with pytest.raises(InvalidValue, match=problem):
        await check_target(url, allow_private=False)


@pytest.fixture
def private_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY__EVENTS__ALLOW_PRIVATE_TARGETS", "true")


async def test_events_reach_the_webhook_signed_and_after_an_outage(
        tmp_path: Path, pki: Pki, database, private_targets):
    receiver = await Receiver(status=503).start()  # the tenant's endpoint is failing
    async with running_harness(tmp_path, pki, database) as h:
        tenant = await DirectoryStore(h.gateway.engine).tenant("acme")
        secret = await WebhookStore(h.gateway.engine, h.gateway.vault, h.gateway.tenant_sealer).set(
            tenant.id, receiver.url, "test")
        h.sink.faults.rcpt["gone@example.org"] = "550 5.1.1 No such user"
        await h.send(messages.simple(), ["ok@example.org"])
        with pytest.raises(smtplib.SMTPDataError):
            await h.send(messages.simple(), ["gone@example.org"])
        dispatcher = h.gateway.webhooks  # driven by hand: not started in tests
        assert await dispatcher.run_once() == 2
        assert len(receiver.requests) == 1  # tried, refused with 503: kept
        receiver.status = 200
        assert await dispatcher.run_once() == 0  # backing off
        later = datetime.now(UTC) + timedelta(seconds=15)
        assert await dispatcher.run_once(later) == 2
    await receiver.stop()
    request = receiver.requests[-1]
    assert verify(secret_bytes(secret), request.headers["x-ocg-signature"], request.body)
    payload = json.loads(request.body)["events"]
    kinds = {(e["kind"], e["recipient"]) for e in payload}
    assert kinds == {("delivered", "ok@example.org"), ("refused", "gone@example.org")}
    assert {e["recipient_masked"] for e in payload} == {"o***@example.org", "g***@example.org"}
    assert all(len(e["recipient_digest"]) == 64 for e in payload)
    assert payload[0]["id"] < payload[1]["id"]  # the cursor order


async def test_event_survives_a_killed_gateway_while_the_receiver_is_down(
        tmp_path: Path, pki: Pki, database):
    """The issue's test: kill -9 while the receiver is down; the event arrives after."""
    sink = await RecordingSink().start()
    receiver_port = Receiver()
    await receiver_port.start()
    port = receiver_port.port
    await receiver_port.stop()  # the receiver is down; we know its port
    path = write_config(tmp_path, pki, database, sink.port, extra=(
        "[events]\nallow_private_targets = true\npoll_interval = 0.1\nretry_first = 0.2\n"))
    config = config_module.load(path, {})
    engine = create_engine(config.database.url, schema=config.database.schema)
    await upgrade(engine)
    await seed(DirectoryStore(engine))
    tenant = await DirectoryStore(engine).tenant("acme")
    vault = Vault(provider_for(config))
    tenant_keys = TenantKeys(engine, vault, key_store_for(tenant_key_location(config)))
    await WebhookStore(engine, vault, TenantSealer(tenant_keys)).set(
        tenant.id, f"http://127.0.0.1:{port}/hook", "test")
    await engine.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY")}
    command = [sys.executable, "-m", "gateway", "--config", str(path), "serve"]

    async def start_gateway() -> tuple[subprocess.Popen, int]:
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        line = await asyncio.to_thread(proc.stdout.readline)
        return proc, int(line.rsplit(":", 1)[1])

    proc, smtp_port = await start_gateway()
    try:
        def send() -> None:
            with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as smtp:
                smtp.starttls(context=pki.client_context())
                smtp.login("campaign", PASSWORD)
                smtp.sendmail("sales@acme.example", ["ok@example.org"], messages.simple())

        await asyncio.to_thread(send)
        await asyncio.sleep(0.5)  # the dispatcher tries and fails at least once
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    receiver = await Receiver().start(port)
    proc, _ = await start_gateway()
    try:
        for _ in range(100):
            if receiver.requests:
                break
            await asyncio.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
        proc.stdout.close()
        await receiver.stop()
        await sink.stop()
    events = [e for r in receiver.requests for e in json.loads(r.body)["events"]]
    assert [(e["kind"], e["recipient"]) for e in events] == [("delivered", "ok@example.org")]
