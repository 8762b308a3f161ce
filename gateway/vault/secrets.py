"""Where sealed secrets live: the main database (default) or a separate Redis database.

A secret is named by what it belongs to and which field it is ("mailbox/17/refresh_token");
the name and the tenant are bound into the sealing context, so a sealed value copied to
another name or tenant fails to open. Both stores hold only sealed bytes and the id of the
master key that wrapped them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.errors import ConfigError, VaultError
from gateway.store.schema import sealed_secrets
from gateway.vault.envelope import Vault


def seal_context(tenant_id: int, name: str) -> bytes:
    return f"sealed_secrets|{tenant_id}|{name}".encode()


class SecretStore(Protocol):
    """Sealed secrets by (tenant, name). Values in and out are plaintext bytes."""

    async def check(self) -> None:
        """Refuse to start on a store that could lose a write."""
        ...

    async def put(self, tenant_id: int, name: str, value: bytes) -> None: ...

    async def get(self, tenant_id: int, name: str) -> bytes | None: ...

    async def delete(self, tenant_id: int, names: Sequence[str]) -> None: ...

    async def remaining(self) -> int:
        """How many values are not under the primary master key (for rewrap)."""
        ...

    async def rewrap(self, batch: int, progress: Callable[[int], None]) -> int: ...

    async def close(self) -> None: ...


class DatabaseSecrets:
    """Sealed secrets in the `sealed_secrets` table (SQLite runs with secure_delete)."""

    def __init__(self, engine: AsyncEngine, vault: Vault) -> None:
        self._engine = engine
        self._vault = vault

    async def check(self) -> None:
        return None

    async def put(self, tenant_id: int, name: str, value: bytes) -> None:
        blob, key_id = self._vault.seal(value, seal_context(tenant_id, name))
        now = datetime.now(UTC)
        async with self._engine.begin() as conn:
            updated = await conn.execute(sealed_secrets.update().where(
                sealed_secrets.c.name == name).values(
                tenant_id=tenant_id, sealed=blob, key_id=key_id, updated_at=now))
            if updated.rowcount == 0:
                await conn.execute(sealed_secrets.insert().values(
                    tenant_id=tenant_id, name=name, sealed=blob, key_id=key_id,
                    updated_at=now))

    async def get(self, tenant_id: int, name: str) -> bytes | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(sealed_secrets).where(
                sealed_secrets.c.name == name))).first()
        if row is None:
            return None
        return self._vault.open(row.sealed, row.key_id, seal_context(tenant_id, name))

    async def delete(self, tenant_id: int, names: Sequence[str]) -> None:
        if not names:
            return
        async with self._engine.begin() as conn:
            await conn.execute(sealed_secrets.delete().where(
                sealed_secrets.c.name.in_(list(names)), sealed_secrets.c.tenant_id == tenant_id))

    async def remaining(self) -> int:
        return 0  # counted with the other sealed columns by gateway.lifecycle.rewrap

    async def rewrap(self, batch: int, progress: Callable[[int], None]) -> int:
        return 0  # done by gateway.lifecycle.rewrap, with the other sealed columns

    async def close(self) -> None:
        return None


_PREFIX = "ocg:secret:"


class RedisSecrets:
    """Sealed secrets in a separate Redis database: one hash per secret.

    Redis forgets recent writes unless it fsyncs each one, and a refresh token that the
    provider has just rotated is not written anywhere else: losing it disconnects the mailbox.
    So `check()` refuses a server without `appendonly yes` and `appendfsync always`.
    """

    def __init__(self, url: str, vault: Vault) -> None:
        import redis.asyncio as aioredis

        self._redis: Any = aioredis.Redis.from_url(url)
        self._vault = vault
        self._where = _safe_location(url)

    async def check(self) -> None:
        await require_durable_redis(
            self._redis, self._where, "the vault's Redis",
            "Config 'vault.backend' has value 'redis'.", "a rotated refresh token can be lost")

    async def put(self, tenant_id: int, name: str, value: bytes) -> None:
        blob, key_id = self._vault.seal(value, seal_context(tenant_id, name))
        await self._redis.hset(_PREFIX + name, mapping={
            "tenant": str(tenant_id), "sealed": blob, "key_id": key_id})

    async def get(self, tenant_id: int, name: str) -> bytes | None:
        record = await self._redis.hgetall(_PREFIX + name)
        if not record:
            return None
        if _text(record.get(b"tenant")) != str(tenant_id):
            raise VaultError("Sealed value cannot be opened (wrong key or context).")
        return self._vault.open(record[b"sealed"], _text(record[b"key_id"]),
                                seal_context(tenant_id, name))

    async def delete(self, tenant_id: int, names: Sequence[str]) -> None:
        if names:
            await self._redis.delete(*[_PREFIX + n for n in names])

    async def _records(self) -> list[tuple[str, dict[bytes, bytes]]]:
        found = []
        async for raw in self._redis.scan_iter(match=_PREFIX + "*", count=500):
            found.append((_text(raw)[len(_PREFIX):], await self._redis.hgetall(raw)))
        return found

    async def remaining(self) -> int:
        primary = self._vault.primary_key_id
        return sum(1 for _, r in await self._records() if _text(r.get(b"key_id")) != primary)

    async def rewrap(self, batch: int, progress: Callable[[int], None]) -> int:
        """Re-wrap each value not under the primary key. A WATCHed transaction per key, so
        a value rewritten meanwhile (a token refresh) is left for the next run."""
        import redis.exceptions

        done = 0
        primary = self._vault.primary_key_id
        for name, record in await self._records():
            if not record or _text(record.get(b"key_id")) == primary:
                continue
            tenant_id = int(_text(record[b"tenant"]))
            blob, key_id = self._vault.rewrap(record[b"sealed"], _text(record[b"key_id"]),
                                              seal_context(tenant_id, name))
            async with self._redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(_PREFIX + name)
                    if await pipe.hget(_PREFIX + name, "sealed") != record[b"sealed"]:
                        continue
                    pipe.multi()
                    pipe.hset(_PREFIX + name, mapping={"sealed": blob, "key_id": key_id})
                    await pipe.execute()
                except redis.exceptions.WatchError:
                    continue
            done += 1
            progress(1)
        return done

    async def close(self) -> None:
        await self._redis.aclose()


async def require_durable_redis(client: Any, where: str, what: str, setting: str,
                                loss: str) -> None:
    """Refuse a Redis that can lose an acknowledged write: without `appendonly yes` and
    `appendfsync always`, a power cut forgets the last second of writes."""
    try:
        config = await client.config_get("append*")
    except Exception as exc:
        raise VaultError(f"Cannot reach {what} at {where}: {type(exc).__name__}.") from None
    appendonly = _text(config.get(b"appendonly", config.get("appendonly")))
    fsync = _text(config.get(b"appendfsync", config.get("appendfsync")))
    if appendonly != "yes" or fsync != "always":
        raise ConfigError(
            f"{setting} The Redis at {where} runs with appendonly {appendonly or '?'} and "
            f"appendfsync {fsync or '?'}; it needs appendonly yes and appendfsync always, or "
            f"{loss}.")


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)


def _safe_location(url: str) -> str:
    """host:port/db of a Redis URL, without a password."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}{parts.path or ''}"


def secret_store_for(backend: str, redis_url: str, engine: AsyncEngine,
                     vault: Vault) -> SecretStore:
    """The configured store; call `check()` before use."""
    if backend == "redis":
        return RedisSecrets(redis_url, vault)
    return DatabaseSecrets(engine, vault)
