"""Tenant keys live apart from the data (issue 21): each key store backend keeps a key
durably and forgets it on destroy; a database backup taken before `tenant delete` opens
nothing of that tenant with the live key store; a key store older than a tenant leaves it
reported as keyless, its mail deferred, nothing crashed."""

from __future__ import annotations

import asyncio
import base64
import secrets
import smtplib
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
import sqlalchemy as sa

from gateway import config as config_module
from gateway.app.parts import Parts
from gateway.app.service import Gateway
from gateway.delivery.queue import NewCopy, QueueStore, State
from gateway.delivery.queue import seal_context as queue_context
from gateway.directory.store import DirectoryStore
from gateway.dkim.keys import DkimKeys
from gateway.errors import ConfigError, VaultError
from gateway.events.names import EventNames
from gateway.events.webhook_store import WebhookStore
from gateway.events.webhook_store import seal_context as webhook_context
from gateway.feedback.reviews import OptOutReviews
from gateway.review.held import HeldStore
from gateway.store.engine import create_engine
from gateway.store.schema import (
    events,
    held_messages,
    pending_copies,
    sealed_secrets,
    webhooks,
)
from gateway.vault.credentials import access_name
from gateway.vault.key_store import (
    DirectoryKeyStore,
    PostgresKeyStore,
    RedisKeyStore,
    TenantKeyStore,
)
from gateway.vault.secrets import DatabaseSecrets
from gateway.vault.secrets import seal_context as secret_context
from gateway.vault.tenant_keys import MARKER, TenantKeys, TenantSealedSecrets, TenantSealer
from tests.conftest import PASSWORD, PG_DSN, Database, Harness, running_harness, write_config
from tests.support import messages
from tests.support.cli import gw
from tests.support.held import send_data
from tests.support.optout import possible_opt_out
from tests.support.redis import durable_redis
from tests.support.xoauth2 import SENDER as OAUTH_SENDER
from tests.support.xoauth2 import connect, oauth_gateway


async def exercise(store: TenantKeyStore) -> None:
    await store.check()
    assert await store.get(7) is None
    assert await store.put(7, b"sealed-one", "k1")
    assert not await store.put(7, b"sealed-two", "k1")  # the first writer wins
    assert await store.get(7) == (b"sealed-one", "k1")
    assert await store.put(7, b"rewrapped", "k2", replace=True)  # a master-key rotation
    assert await store.put(8, b"other", "k2")
    assert await store.tenants() == [7, 8]
    assert await store.destroy(7) and not await store.destroy(7)
    assert await store.get(7) is None and await store.tenants() == [8]


async def test_a_directory_store_keeps_one_private_file_per_tenant(tmp_path: Path):
    store = DirectoryKeyStore(str(tmp_path / "keys"))
    await exercise(store)
    (only,) = (tmp_path / "keys").iterdir()
    assert only.name == "tenant-8.key" and only.stat().st_mode & 0o777 == 0o600


async def test_a_redis_store_forgets_a_destroyed_key_in_its_append_only_file(tmp_path: Path):
    async with durable_redis(tmp_path) as url:
        store = RedisKeyStore(url)
        await exercise(store)
        await asyncio.sleep(0.5)  # the rewrite after the destroy
        aof = b"".join(p.read_bytes() for p in tmp_path.rglob("*.aof*") if p.is_file())
        assert base64.b64encode(b"rewrapped") not in aof  # tenant 7's key: gone
        assert base64.b64encode(b"other") in aof  # tenant 8's: kept
        await store.close()
    refused = RedisKeyStore("redis://127.0.0.1:6379/15")  # the machine's: appendonly no
    with pytest.raises(ConfigError) as info:
        await refused.check()
    assert "appendonly" in info.value.message
    await refused.close()


async def test_a_separate_postgresql_database_holds_the_keys():
    name = f"ocg_keys_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(PG_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        store = PostgresKeyStore(PG_DSN.rsplit("/", 1)[0] + f"/{name}")
        try:
            await exercise(store)
        finally:
            await store.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_a_backup_from_before_tenant_delete_opens_nothing_of_the_tenant(
        harness: Harness, tmp_path: Path):
    gateway = harness.gateway
    review_id = await possible_opt_out(harness, "wendy@example.net", "wendy@example.net")
    harness.sink.faults.rcpt["later@example.org"] = "451 4.2.1 try later"  # a queued copy
    assert await harness.send(messages.simple(), ["lead@example.org", "later@example.org"]) \
        == {}
    await asyncio.to_thread(send_data, harness, ["held@example.org"])  # held: sealed too
    mailbox = await harness.store().mailbox_by_address("sales@acme.example")
    await gateway.credentials.set_password(mailbox, "sales", "smarthost-secret", "test")
    # an access token, stored sealed so one refresh serves every node (docs/mailboxes.md)
    await gateway.credentials.secrets.put(1, access_name(mailbox.id), b"ya29.access-token")
    assert await gateway.credentials.secrets.get(1, access_name(mailbox.id)) == \
        b"ya29.access-token"
    await gateway.dkim.generate("acme.example", "rsa", actor="test")  # a DKIM private key
    await gateway.dkim.load()
    assert gateway.dkim.for_domain("acme.example")  # it signs on the live gateway
    await WebhookStore(gateway.engine, gateway.vault, gateway.tenant_sealer).set(
        1, "https://hooks.acme.example/ocg", "test")  # a webhook secret
    await asyncio.sleep(0.2)
    backup = tmp_path / "backup.db"  # the database backup, taken while it runs
    with sqlite3.connect(tmp_path / "gateway.db") as live, \
            sqlite3.connect(backup) as copy:
        live.backup(copy)
    assert (await gw(harness, "tenant", "delete", "acme", "--confirm", "acme")).returncode == 0

    # restored with the same master key and the live key store
    engine = create_engine(f"sqlite+aiosqlite:///{backup}")
    keys = TenantKeys(engine, gateway.vault, gateway.tenant_keys.store)
    try:
        assert await keys.missing() == [1]  # reported: acme is live in the backup
        secrets_ = TenantSealedSecrets(DatabaseSecrets(engine, gateway.vault), keys)
        for name in (f"mailbox/{mailbox.id}/password", access_name(mailbox.id)):
            with pytest.raises(VaultError):
                await secrets_.get(1, name)
        sealer = TenantSealer(keys)
        names = EventNames(sealer, gateway.handler.digest)
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.select(events).where(events.c.tenant_id == 1))).all()
            (held,) = (await conn.execute(sa.select(held_messages))).all()
        assert rows and all(r.sealed_recipient for r in rows)
        assert [await names.recipient(r) for r in rows] == [None] * len(rows)
        store = HeldStore(engine, gateway.vault, sealer, names, gateway.handler.digest)
        assert await store.names(held) == ([], "")
        with pytest.raises(VaultError):  # the held message's body
            await store.body(held.id, "restore-drill")
        reviews = OptOutReviews(engine, gateway.vault, gateway.suppressions, names, sealer)
        with pytest.raises(VaultError):  # the reply kept for review
            await reviews.reply(review_id, "restore-drill")
        dkim = DkimKeys(engine, gateway.vault, sealer)
        await dkim.load()  # the key does not open: nothing signs as acme.example
        assert dkim.for_domain("acme.example") == ()
        async with engine.connect() as conn:
            (hook_id,) = (await conn.execute(sa.select(webhooks.c.id))).scalars().all()
        with pytest.raises(VaultError):  # the webhook secret
            await WebhookStore(engine, gateway.vault, sealer).get(hook_id)
        queue = QueueStore(engine, gateway.vault, 3600, sealer)
        (queued,) = await queue.listing()
        with pytest.raises(VaultError):  # the queued copy
            await queue.claim_one(queued.id, 60)
        with pytest.raises(VaultError):  # and nothing new is sealed under a fresh key
            await sealer.seal(1, b"x", "probe")
    finally:
        await engine.dispose()


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_a_key_store_older_than_a_tenant_reports_it_and_defers_its_mail(
        tmp_path: Path, pki, database):
    async with running_harness(tmp_path, pki, database) as h:
        assert await h.send(messages.simple(), ["lead@example.org"]) == {}
        store = h.gateway.tenant_keys.store.inner  # checked once, then used as is
        assert isinstance(store, DirectoryKeyStore)
        assert 1 in await store.tenants()
    (Path(store.path) / "tenant-1.key").unlink()  # an older key store, restored
    config = config_module.load(h.config_path)
    gateway = Gateway(config, str(h.config_path))
    await gateway.start(run_queue=False)
    try:
        assert gateway.keyless_tenants == [1]
        async with httpx.AsyncClient() as client:
            ready = (await client.get(f"http://127.0.0.1:{gateway.ports.admin}/readyz")).json()
        assert ready["checks"]["tenant_keys"] == "missing for tenant ids 1"

        def send() -> tuple[int, bytes]:
            with smtplib.SMTP("127.0.0.1", gateway.ports.submission, timeout=10) as smtp:
                smtp.starttls(context=pki.client_context())
                smtp.login("campaign", PASSWORD)
                smtp.mail("sales@acme.example")
                smtp.rcpt("lead@example.org")
                return smtp.data(messages.simple())
        code, text = await asyncio.to_thread(send)
        assert (code, text[:5]) == (451, b"4.3.5")
    finally:
        await gateway.stop(deadline=1)


async def test_serve_refuses_a_directory_store_with_a_shared_database(tmp_path: Path, pki):
    database = Database("postgres", "postgresql+asyncpg://x@127.0.0.1:1/none")
    text = write_config(tmp_path, pki, database, 25).read_text().replace(
        "tenant_key_store_single_node = true\n", "")
    (tmp_path / "gateway.toml").write_text(text)
    gateway = Gateway(config_module.load(tmp_path / "gateway.toml"))
    with pytest.raises(ConfigError) as info:
        await gateway._open_tenant_keys()
    assert "only this node" in info.value.message
    await gateway.engine.dispose()


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_vault_reseal_moves_older_values_under_the_tenant_key(harness: Harness):
    gateway = harness.gateway
    mailbox = await harness.store().mailbox_by_address("sales@acme.example")
    # written as before tenant keys: sealed by the vault only
    body = b"Subject: old\r\n\r\nqueued before the upgrade\r\n"
    await QueueStore(gateway.engine, gateway.vault, 3600).add([NewCopy(
        "OLDQ1", 1, mailbox.id, "sales@acme.example", "r@example.org", State.DEFERRED, 451,
        "4.2.1", "busy")], body)
    secret = secrets.token_bytes(32)
    sealed, key_id = gateway.vault.seal(secret, webhook_context(1))
    async with gateway.engine.begin() as conn:
        await conn.execute(webhooks.insert().values(
            tenant_id=1, url="https://hooks.acme.example/ocg", sealed_secret=sealed,
            key_id=key_id, created_at=datetime.now(UTC), event_cursor=0))
    password = gateway.vault.seal(b"old-smarthost-password",
                                  secret_context(1, f"mailbox/{mailbox.id}/password"))
    async with gateway.engine.begin() as conn:
        await conn.execute(sealed_secrets.insert().values(
            tenant_id=1, name=f"mailbox/{mailbox.id}/password", sealed=password[0],
            key_id=password[1], updated_at=datetime.now(UTC)))
    result = await gw(harness, "vault", "reseal")
    assert result.returncode == 0 and "re-sealed 3 " in result.stdout, result.stderr
    assert await gateway.credentials.secrets.get(1, f"mailbox/{mailbox.id}/password") == \
        b"old-smarthost-password"
    async with gateway.engine.connect() as conn:
        stored = (await conn.execute(sa.select(sealed_secrets))).one()
    assert gateway.vault.open(stored.sealed, stored.key_id, secret_context(
        1, stored.name)).startswith(MARKER)
    async with gateway.engine.connect() as conn:
        (copy,) = (await conn.execute(sa.select(pending_copies))).all()
        (hook,) = (await conn.execute(sa.select(webhooks))).all()
    assert gateway.vault.open(copy.sealed_message, copy.key_id, queue_context(
        1, "OLDQ1", "r@example.org")).startswith(MARKER)  # now under the tenant key
    assert (await gateway.queue.claim_one(copy.id, 60))[1] == body  # and it still opens
    assert (await WebhookStore(gateway.engine, gateway.vault, gateway.tenant_sealer)
            .get(hook.id)).secret == secret
    again = await gw(harness, "vault", "reseal")  # resumable: nothing left to do
    assert "re-sealed 0 " in again.stdout


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_a_deleted_tenants_held_message_under_legal_hold_expires_as_shredded(
        harness: Harness):
    gateway = harness.gateway
    await asyncio.to_thread(send_data, harness, ["held@example.org"])
    assert (await gw(harness, "tenant", "legal-hold", "acme", "--reason", "case 7")
            ).returncode == 0
    assert (await gw(harness, "tenant", "delete", "acme", "--confirm", "acme")).returncode == 0
    gateway.tenant_keys.cache_seconds = 0  # the running gateway re-reads the store (60 s)
    (kept,) = await gateway.held.listing(status="held")  # kept by the hold, names shredded
    assert (kept.recipients, kept.subject) == ([], "")
    later = datetime.now(UTC) + timedelta(days=gateway.config.review.held_days + 1)
    assert await gateway.review.run_once(later) == 1  # expired: no error, no report
    assert (await gateway.held.get(kept.id)).status == "expired"
    assert await gateway.queue.listing() == []


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_disconnect_on_a_restored_backup_sends_no_token_anywhere(
        tmp_path: Path, pki, database):
    async with oauth_gateway(tmp_path, pki, database) as (h, server):
        refresh = await connect(h, server)
        backup = tmp_path / "backup.db"
        with sqlite3.connect(tmp_path / "gateway.db") as live, \
                sqlite3.connect(backup) as copy:
            live.backup(copy)
        deleted = await gw(h, "tenant", "delete", "acme", "--confirm", "acme")
        assert deleted.returncode == 0, deleted.stderr
        assert server.revoked == [refresh]  # revoked once, by the deletion itself
        engine = create_engine(f"sqlite+aiosqlite:///{backup}")
        credentials = Parts(h.gateway.config, engine).credentials  # the restored backup's
        try:
            mailbox = await DirectoryStore(engine).mailbox_by_address(OAUTH_SENDER)
            revoked = await credentials.disconnect(mailbox, "restore-drill", "drill")
            assert not revoked and server.revoked == [refresh]  # nothing more was sent
        finally:
            await credentials.close()
            await engine.dispose()
