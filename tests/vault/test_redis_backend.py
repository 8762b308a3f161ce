"""The vault's separate Redis backend, against real Redis servers: the machine's own on
127.0.0.1:6379 (which keeps nothing on disk, so start-up must refuse it) and one this test
starts with appendonly yes and appendfsync always."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import sqlalchemy as sa

from gateway import config as config_module
from gateway.app.service import Gateway
from gateway.errors import ConfigError
from gateway.lifecycle.rewrap import rewrap as rewrap_database
from gateway.store.engine import upgrade
from gateway.store.schema import sealed_secrets
from gateway.vault.envelope import Vault
from gateway.vault.master_keys import FileKeyProvider
from gateway.vault.secrets import RedisSecrets
from gateway.vault.tenant_keys import TenantKeys, TenantSealedSecrets
from tests.conftest import Pki, running_harness, write_config
from tests.support import messages
from tests.support.oauth_server import CLIENT_ID, CLIENT_SECRET, OAuthServer
from tests.support.redis import durable_redis
from tests.support.sink import RecordingSink
from tests.support.xoauth2 import SENDER, connect


async def test_a_redis_that_can_lose_writes_stops_start_up(tmp_path, pki: Pki, database,
                                                           monkeypatch):
    # The machine's Redis runs with appendonly no: a rotated refresh token could be lost.
    monkeypatch.setenv("GATEWAY__VAULT__BACKEND", "redis")
    monkeypatch.setenv("GATEWAY__VAULT__REDIS_URL", "redis://127.0.0.1:6379/15")
    config = config_module.load(write_config(tmp_path, pki, database, 25))
    gateway = Gateway(config)
    try:
        await upgrade(gateway.engine)
        with pytest.raises(ConfigError) as refused:
            await gateway.start(roles=("smtp",))
        assert "appendonly no" in refused.value.message
        assert "appendfsync always" in refused.value.message
    finally:
        await gateway.credentials.close()
        await gateway.engine.dispose()


async def test_tokens_live_in_the_separate_redis_and_rewrap_moves_them(
        tmp_path, pki, database, monkeypatch):
    server = await OAuthServer().start()
    sink = await RecordingSink(xoauth2=server.valid).start()
    upstream = (f'[upstreams.sink]\nkind = "gmail"\nhost = "127.0.0.1"\nport = {sink.port}\n'
                'tls = "none"\ntimeout = 5\n')
    try:
        async with durable_redis(tmp_path) as url:
            monkeypatch.setenv("GATEWAY__VAULT__BACKEND", "redis")
            monkeypatch.setenv("GATEWAY__VAULT__REDIS_URL", url)
            async with running_harness(tmp_path, pki, database, sink=sink, upstream=upstream,
                                       extra=server.toml()) as h:
                await h.gateway.credentials.add_client("google", CLIENT_ID, CLIENT_SECRET,
                                                       None, "test")
                refresh = await connect(h, server, expires_in=-60)
                assert await h.send(messages.simple(), ["alice@example.org"]) == {}
                assert server.refreshes == 1
                async with h.gateway.engine.connect() as conn:
                    in_database = (await conn.execute(sa.select(sa.func.count()).select_from(
                        sealed_secrets))).scalar()
                assert in_database == 0  # the secrets live apart, in Redis
                client = aioredis.Redis.from_url(url)
                keys = sorted(k.decode() for k in await client.keys("ocg:secret:*"))
                assert len(keys) == 3  # client secret, refresh token, access token
                dump = b"".join([b"".join((await client.hgetall(k)).values()) for k in keys])
                assert refresh.encode() not in dump and CLIENT_SECRET.encode() not in dump
                await client.aclose()
                old_key_file = Path(h.config_path).parent / "master.key"
            # Rotation: a new primary key, the old one still opens; rewrap moves Redis values.
            new_key = tmp_path / "new.key"
            new_key.write_text(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
            new_key.chmod(0o600)
            vault = Vault(FileKeyProvider(new_key, (old_key_file,)))
            store = RedisSecrets(url, vault)
            assert await store.remaining() == 3
            assert await store.rewrap(100, lambda n: None) == 3
            assert await store.remaining() == 0
            await rewrap_database(h.gateway.engine, vault)
            key_store = h.gateway.tenant_keys.store
            rotated = TenantKeys(h.gateway.engine, vault, key_store)
            old = await rotated.remaining()  # the tenant key store is re-wrapped too
            assert old == len(await key_store.tenants()) >= 1
            assert await rotated.rewrap() == old and await rotated.remaining() == 0
            new_only = Vault(FileKeyProvider(new_key))  # the old key retired
            alone = TenantSealedSecrets(RedisSecrets(url, new_only),
                                        TenantKeys(h.gateway.engine, new_only, key_store))
            mailbox_id = (await h.store().mailbox_by_address(SENDER)).id
            tenant_id = (await h.store().tenant("acme")).id
            assert await alone.get(tenant_id, f"mailbox/{mailbox_id}/refresh_token") in (
                refresh.encode(), *[t.encode() for t in server.refresh_tokens])
            await store.close()
            await alone.close()
    finally:
        await server.stop()
        await sink.stop()
