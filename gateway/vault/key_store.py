"""Where tenant keys live: apart from the data they seal (issue 21).

Crypto-shredding works only if a deleted tenant's key is gone from every copy that could
open its data. A key kept in the main database goes into every backup of that database, so
the keys live in a store of their own, backed up on their own (shorter) schedule:

- a directory (`dir:/var/lib/ocg/tenant-keys`, or a plain path) — one file per tenant,
  outside `data_dir` so a backup of the data does not carry it; single node only;
- Redis (`redis://...`), which must run with `appendonly yes` and `appendfsync always` (a
  key not on disk when power fails would leave its tenant's data unreadable), and is told to
  rewrite its append-only file after a destroy (the old file still holds the key);
- a separate PostgreSQL database (`postgresql://...`), not in the main database's backups.

Each entry is the tenant key sealed by the vault under the master key, with the master key's
id; the store never sees a key in clear. `put` returns only once the entry is durable (a
value sealed under a key that was lost would be lost too), and the first writer wins.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway.errors import ConfigError, VaultError
from gateway.vault.secrets import require_durable_redis

T = TypeVar("T")


class TenantKeyStore(Protocol):
    kind: str  # "directory" | "redis" | "postgresql"
    shared: bool  # can several nodes use it?

    async def check(self) -> None:
        """Raise ConfigError/VaultError if the store is unusable or not durable."""

    async def put(self, tenant_id: int, sealed: bytes, key_id: str,
                  replace: bool = False) -> bool:
        """Store durably. False if the tenant has a key already (and `replace` is off)."""

    async def get(self, tenant_id: int) -> tuple[bytes, str] | None: ...

    async def destroy(self, tenant_id: int) -> bool:
        """Remove the tenant's key for good. True if there was one."""

    async def tenants(self) -> list[int]:
        """Every tenant with a key here."""

    async def close(self) -> None: ...


def _entry(sealed: bytes, key_id: str) -> bytes:
    return json.dumps({"key_id": key_id,
                       "sealed": base64.b64encode(sealed).decode()}).encode()


def _parse(raw: bytes | str) -> tuple[bytes, str]:
    try:
        data = json.loads(raw)
        return base64.b64decode(data["sealed"]), str(data["key_id"])
    except (ValueError, KeyError, TypeError):
        raise VaultError("A tenant key entry is damaged.") from None


class DirectoryKeyStore:
    kind, shared = "directory", False

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        # its own thread: the default executor may be busy (or, in a test, full of clients)
        self._thread: ThreadPoolExecutor | None = None

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._thread is None:  # made on first use, again after close()
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="tenant-keys")
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    def _file(self, tenant_id: int) -> Path:
        return self.path / f"tenant-{int(tenant_id)}.key"

    async def check(self) -> None:
        await self._run(self._prepare)

    def _prepare(self) -> None:
        try:
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
            probe = self.path / f".probe.{secrets.token_hex(8)}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise ConfigError(f"The tenant key directory {self.path} is not writable: "
                              f"{exc.strerror or type(exc).__name__}.") from None

    async def put(self, tenant_id: int, sealed: bytes, key_id: str,
                  replace: bool = False) -> bool:
        return await self._run(self._put, tenant_id, _entry(sealed, key_id), replace)

    def _put(self, tenant_id: int, entry: bytes, replace: bool) -> bool:
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        final = self._file(tenant_id)
        temp = self.path / f".{final.name}.{secrets.token_hex(8)}.tmp"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, entry)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            if replace:
                os.replace(temp, final)
            else:
                os.link(temp, final)  # fails if the tenant has a key: first writer wins
        except FileExistsError:
            return False
        finally:
            temp.unlink(missing_ok=True)
            _fsync_dir(self.path)
        return True

    async def get(self, tenant_id: int) -> tuple[bytes, str] | None:
        try:
            raw = await self._run(self._file(tenant_id).read_bytes)
        except FileNotFoundError:
            return None
        return _parse(raw)

    async def destroy(self, tenant_id: int) -> bool:
        def remove() -> bool:
            try:
                self._file(tenant_id).unlink()
            except FileNotFoundError:
                return False
            _fsync_dir(self.path)
            return True
        return await self._run(remove)

    async def tenants(self) -> list[int]:
        if not self.path.is_dir():
            return []
        return sorted(int(p.stem.removeprefix("tenant-")) for p in self.path.glob("tenant-*.key")
                      if p.stem.removeprefix("tenant-").isdigit())

    async def close(self) -> None:
        if self._thread is not None:
            self._thread.shutdown(wait=False)
            self._thread = None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_HASH = "ocg:tenant-keys"


class RedisKeyStore:
    kind, shared = "redis", True

    def __init__(self, url: str) -> None:
        import redis.asyncio as aioredis

        self._redis: Any = aioredis.Redis.from_url(url)
        parts = urlsplit(url)
        self._where = f"{parts.hostname or 'localhost'}:{parts.port or 6379}{parts.path or ''}"

    async def check(self) -> None:
        await require_durable_redis(
            self._redis, self._where, "the tenant key store's Redis",
            "Config 'vault.tenant_key_store' names a Redis.",
            "a key can be lost with the data sealed under it")

    async def put(self, tenant_id: int, sealed: bytes, key_id: str,
                  replace: bool = False) -> bool:
        entry = _entry(sealed, key_id)
        if replace:
            await self._redis.hset(_HASH, str(tenant_id), entry)
            return True
        return bool(await self._redis.hsetnx(_HASH, str(tenant_id), entry))

    async def get(self, tenant_id: int) -> tuple[bytes, str] | None:
        raw = await self._redis.hget(_HASH, str(tenant_id))
        return None if raw is None else _parse(raw)

    async def destroy(self, tenant_id: int) -> bool:
        removed = bool(await self._redis.hdel(_HASH, str(tenant_id)))
        if removed:
            try:  # the append-only file still holds the key until it is rewritten
                await self._redis.bgrewriteaof()
            except Exception as exc:
                if "already in progress" not in str(exc):
                    raise
        return removed

    async def tenants(self) -> list[int]:
        return sorted(int(k) for k in await self._redis.hkeys(_HASH))

    async def close(self) -> None:
        await self._redis.aclose()


_metadata = sa.MetaData()
_keys = sa.Table(
    "ocg_tenant_keys", _metadata,
    sa.Column("tenant_id", sa.Integer, primary_key=True),
    sa.Column("entry", sa.LargeBinary, nullable=False),
)


class PostgresKeyStore:
    kind, shared = "postgresql", True

    def __init__(self, url: str) -> None:
        if url.startswith("postgresql://"):
            url = "postgresql+asyncpg://" + url.removeprefix("postgresql://")
        self._engine: AsyncEngine = create_async_engine(url, pool_size=2, max_overflow=2,
                                                        pool_pre_ping=True)

    async def check(self) -> None:
        try:
            async with self._engine.begin() as conn:
                await conn.run_sync(_metadata.create_all)
        except Exception as exc:
            raise VaultError("Cannot reach the tenant key store's database: "
                             f"{type(exc).__name__}.") from None

    async def put(self, tenant_id: int, sealed: bytes, key_id: str,
                  replace: bool = False) -> bool:
        from sqlalchemy.dialects.postgresql import insert

        statement = insert(_keys).values(tenant_id=tenant_id, entry=_entry(sealed, key_id))
        statement = (statement.on_conflict_do_update(index_elements=["tenant_id"],
                                                     set_={"entry": statement.excluded.entry})
                     if replace else statement.on_conflict_do_nothing())
        async with self._engine.begin() as conn:
            return bool((await conn.execute(statement)).rowcount)

    async def get(self, tenant_id: int) -> tuple[bytes, str] | None:
        async with self._engine.connect() as conn:
            raw = (await conn.execute(sa.select(_keys.c.entry).where(
                _keys.c.tenant_id == tenant_id))).scalar()
        return None if raw is None else _parse(raw)

    async def destroy(self, tenant_id: int) -> bool:
        async with self._engine.begin() as conn:
            removed = bool((await conn.execute(_keys.delete().where(
                _keys.c.tenant_id == tenant_id))).rowcount)
        if removed:  # dead tuples hold the entry until vacuumed
            async with self._engine.connect() as conn:
                raw = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await raw.execute(sa.text("VACUUM ocg_tenant_keys"))
        return removed

    async def tenants(self) -> list[int]:
        async with self._engine.connect() as conn:
            return sorted((await conn.execute(sa.select(_keys.c.tenant_id))).scalars())

    async def close(self) -> None:
        await self._engine.dispose()


class CheckedOnce:
    """A store checked before its first use, by whoever uses it first: `serve` at start, or
    a CLI command that seals a tenant's secret (a new PostgreSQL store gets its table then;
    a Redis one without durable writes is refused before a key is put in it)."""

    def __init__(self, inner: TenantKeyStore) -> None:
        self.inner = inner
        self.kind, self.shared = inner.kind, inner.shared
        self._checked = False
        self._lock = asyncio.Lock()

    async def check(self) -> None:
        if self._checked:  # every later call: no lock taken
            return
        async with self._lock:
            if not self._checked:
                await self.inner.check()
                self._checked = True

    async def put(self, tenant_id: int, sealed: bytes, key_id: str,
                  replace: bool = False) -> bool:
        await self.check()
        return await self.inner.put(tenant_id, sealed, key_id, replace)

    async def get(self, tenant_id: int) -> tuple[bytes, str] | None:
        await self.check()
        return await self.inner.get(tenant_id)

    async def destroy(self, tenant_id: int) -> bool:
        await self.check()
        return await self.inner.destroy(tenant_id)

    async def tenants(self) -> list[int]:
        await self.check()
        return await self.inner.tenants()

    async def close(self) -> None:
        await self.inner.close()


def key_store_for(location: str) -> TenantKeyStore:
    """The store `vault.tenant_key_store` names, checked before its first use."""
    if location.startswith(("redis://", "rediss://", "unix://")):
        return CheckedOnce(RedisKeyStore(location))
    if location.startswith(("postgresql://", "postgresql+asyncpg://")):
        return CheckedOnce(PostgresKeyStore(location))
    return CheckedOnce(DirectoryKeyStore(location.removeprefix("dir:")))
