"""Per-tenant keys, so a tenant's data can be crypto-shredded.

Every mailbox token and password is sealed twice: first under its tenant's own key
(AES-256-GCM), then, like any secret, by the vault under the master key; event addresses and
held messages' names are sealed under it too (TenantSealer). The tenant key lives in a key
store apart from the data (key_store.py), sealed by the vault. `gateway tenant delete`
destroys the key first: every copy of that tenant's sealed data — in the database, in Redis,
in a backup of either — stops opening, whether or not the rows themselves were reached.

The main database records which tenants have a key (`tenant_key_refs`, with a fingerprint of
the key, not the key). A live tenant with a reference but no key in the store (a key store
restored from a backup older than the tenant) is reported, never given a new key silently:
sealing for it fails (VaultError: its mail gets 451 4.3.5), reading yields nothing.

Values sealed before tenant keys existed carry no marker and open as before (the vault layer
only).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.errors import VaultError
from gateway.store.schema import tenant_key_refs, tenant_keys, tenants
from gateway.vault.envelope import Vault
from gateway.vault.key_store import TenantKeyStore
from gateway.vault.secrets import SecretStore

log = logging.getLogger("gateway.vault")

MARKER = b"ocg-tk1:"  # a value sealed under its tenant's key
_NONCE = 12


def seal_context(tenant_id: int) -> bytes:
    return f"tenant_keys|{tenant_id}".encode()


def fingerprint(key: bytes) -> str:
    """Names a key without revealing it: tells a key from a different one."""
    return hashlib.sha256(b"ocg-tenant-key|" + key).hexdigest()[:32]


@contextlib.asynccontextmanager
async def _using(engine: AsyncEngine, conn: AsyncConnection | None
                 ) -> AsyncIterator[AsyncConnection]:
    if conn is not None:
        yield conn
    else:
        async with engine.connect() as own:
            yield own


class TenantKeyMissing(VaultError):
    """The database says the tenant has a key; the key store does not have it."""


class TenantKeys:
    def __init__(self, engine: AsyncEngine, vault: Vault, store: TenantKeyStore) -> None:
        self._engine = engine
        self._vault = vault
        self.store = store
        # tenant -> (key, when read): a key destroyed by another process (`gateway tenant
        # delete`, another node) stops opening here within `cache_seconds`
        self._cache: dict[int, tuple[bytes, float]] = {}
        self.cache_seconds = 60.0
        self._making: dict[int, asyncio.Lock] = {}
        self._missing: list[int] = []
        self._missing_at = float("-inf")

    async def key(self, tenant_id: int, create: bool = True,
                  conn: AsyncConnection | None = None) -> bytes | None:
        """The tenant's key, made (durably, in the store, before it is used) on first use.
        None: no key and `create` off, or the tenant was deleted (its data is shredded).
        `conn`: the caller's open transaction, which the key's reference is read and written
        in (a caller holding SQLite's write lock must not wait on itself)."""
        cached = self._cached(tenant_id)
        if cached is not None:
            return cached
        # one lookup (and one key made) per tenant at a time in this process; across nodes
        # the store's first writer wins
        async with self._making.setdefault(tenant_id, asyncio.Lock()):
            cached = self._cached(tenant_id)
            if cached is not None:
                return cached
            key = await self._stored(tenant_id)
            if key is not None:
                return key
            async with _using(self._engine, conn) as db:
                ref = (await db.execute(sa.select(tenant_key_refs.c.fingerprint).where(
                    tenant_key_refs.c.tenant_id == tenant_id))).first()
                status = (await db.execute(sa.select(tenants.c.status).where(
                    tenants.c.id == tenant_id))).scalar()
            if status == "deleted":
                return None
            if ref is not None:
                # another node may have stored it just now (keys go in before references)
                key = await self._stored(tenant_id)
                if key is not None:
                    return key
                raise TenantKeyMissing(
                    f"Tenant {tenant_id}'s key is not in the tenant key store (restored from "
                    "an older backup?); its sealed data cannot be opened and nothing new is "
                    "sealed.")
            if not create:
                return None
            return await self._make(tenant_id, conn)

    async def _stored(self, tenant_id: int) -> bytes | None:
        entry = await self.store.get(tenant_id)
        if entry is None:
            return None
        key: bytes = self._vault.open(entry[0], entry[1], seal_context(tenant_id))
        self._cache[tenant_id] = (key, time.monotonic())
        return key

    def _cached(self, tenant_id: int) -> bytes | None:
        hit = self._cache.get(tenant_id)
        if hit is None or time.monotonic() - hit[1] > self.cache_seconds:
            return None
        return hit[0]

    async def _make(self, tenant_id: int, conn: AsyncConnection | None) -> bytes | None:
        key = AESGCM.generate_key(256)
        sealed, key_id = self._vault.seal(key, seal_context(tenant_id))
        if not await self.store.put(tenant_id, sealed, key_id):
            return await self._stored(tenant_id)  # another node made it first
        ref_row = tenant_key_refs.insert().values(
            tenant_id=tenant_id, fingerprint=fingerprint(key), created_at=datetime.now(UTC))
        try:
            if conn is not None:
                async with conn.begin_nested():
                    await conn.execute(ref_row)
            else:
                async with self._engine.begin() as own:
                    await own.execute(ref_row)
        except IntegrityError:
            pass
        if conn is None:  # in a caller's transaction: cached once read after its commit
            self._cache[tenant_id] = (key, time.monotonic())
        return key

    async def shred(self, tenant_id: int) -> bool:
        """Destroy the tenant's key in the store (before its rows go). True if there was
        one."""
        self._cache.pop(tenant_id, None)
        return await self.store.destroy(tenant_id)

    async def start(self) -> list[int]:
        """Check the store, move keys kept in the main database before issue 21 into it,
        and return the live tenants whose key is missing (reported by the caller)."""
        await self.store.check()
        await self.adopt_table_keys()
        return await self.missing()

    async def adopt_table_keys(self) -> int:
        """Keys written to the `tenant_keys` table (before the key store) move to the store;
        the rows are then deleted, so the database and its backups stop carrying them."""
        async with self._engine.connect() as conn:
            rows = (await conn.execute(sa.select(tenant_keys))).all()
        moved = 0
        for row in rows:
            key = self._vault.open(row.sealed_key, row.key_id, seal_context(row.tenant_id))
            existing = await self.store.get(row.tenant_id)
            if existing is None:
                await self.store.put(row.tenant_id, row.sealed_key, row.key_id)
            elif self._vault.open(existing[0], existing[1],
                                  seal_context(row.tenant_id)) != key:
                log.error("a tenant has different keys in the database and the key store; "
                          "the database's is kept", extra={"tenant_id": row.tenant_id,
                                                           "alert": "ops"})
                continue
            async with self._engine.begin() as conn:
                try:
                    async with conn.begin_nested():
                        await conn.execute(tenant_key_refs.insert().values(
                            tenant_id=row.tenant_id, fingerprint=fingerprint(key),
                            created_at=datetime.now(UTC)))
                except IntegrityError:
                    pass
                await conn.execute(tenant_keys.delete().where(tenant_keys.c.id == row.id))
            moved += 1
        return moved

    async def remaining(self) -> int:
        """Keys in the store sealed under an older master key."""
        old = 0
        for tenant_id in await self.store.tenants():
            entry = await self.store.get(tenant_id)
            old += entry is not None and entry[1] != self._vault.primary_key_id
        return old

    async def rewrap(self, progress: Callable[[int], None] = lambda n: None) -> int:
        """Re-wrap the store's keys under the primary master key (a rotation): the tenant
        keys themselves, and so everything sealed under them, stay as they are."""
        done = 0
        for tenant_id in await self.store.tenants():
            entry = await self.store.get(tenant_id)
            if entry is None or entry[1] == self._vault.primary_key_id:
                continue
            blob, key_id = self._vault.rewrap(entry[0], entry[1], seal_context(tenant_id))
            await self.store.put(tenant_id, blob, key_id, replace=True)
            done += 1
            progress(1)
        return done

    async def missing(self, max_age: float = 0.0) -> list[int]:
        """Live tenants the database says have a key that the store does not hold
        (`max_age`: an answer up to that many seconds old will do)."""
        if max_age and time.monotonic() - self._missing_at < max_age:
            return self._missing
        async with self._engine.connect() as conn:
            refs = (await conn.execute(sa.select(tenant_key_refs.c.tenant_id).join(
                tenants, tenants.c.id == tenant_key_refs.c.tenant_id).where(
                tenants.c.status != "deleted"))).scalars().all()
        held = set(await self.store.tenants())
        self._missing = sorted(t for t in refs if t not in held)
        self._missing_at = time.monotonic()
        return self._missing


class TenantSealer:
    """Personal data a tenant keeps (event recipients, held messages' subjects and
    recipients) sealed under the tenant's own key: shredded with the tenant, never in clear
    beside the sealed bodies. `label` names the field and row and is bound in (AAD)."""

    def __init__(self, keys: TenantKeys) -> None:
        self.keys = keys

    async def seal(self, tenant_id: int, value: bytes, label: str,
                   conn: AsyncConnection | None = None) -> bytes:
        key = await self.keys.key(tenant_id, conn=conn)
        if key is None:
            raise VaultError("This tenant was deleted: nothing more is sealed for it.")
        nonce = os.urandom(_NONCE)
        return nonce + AESGCM(key).encrypt(nonce, value, _aad(tenant_id, label))

    async def open(self, tenant_id: int, blob: bytes, label: str) -> bytes | None:
        """The value, or None once the tenant's key is shredded (or, reported at start-up
        and by /readyz, missing from the key store)."""
        try:
            key = await self.keys.key(tenant_id, create=False)
        except TenantKeyMissing:
            return None
        return None if key is None else _decrypt(key, blob, tenant_id, label)

    async def wrap(self, tenant_id: int, value: bytes, label: str,
                   conn: AsyncConnection | None = None) -> bytes:
        """`value` sealed under the tenant's key and marked so: the caller then seals the
        result under the master key as before (so `vault rewrap` still works), and a
        shredded tenant key makes every copy unreadable, backups included."""
        return MARKER + await self.seal(tenant_id, value, label, conn)

    async def unwrap(self, tenant_id: int, blob: bytes, label: str) -> bytes:
        """What `wrap` sealed (a value sealed before it existed passes through). Raises
        VaultError when the tenant's key is shredded or missing."""
        if not blob.startswith(MARKER):
            return blob
        key = await self.keys.key(tenant_id, create=False)
        if key is None:
            raise VaultError("This tenant's key was shredded: its data is gone.")
        return _decrypt(key, blob[len(MARKER):], tenant_id, label)


def _decrypt(key: bytes, blob: bytes, tenant_id: int, label: str) -> bytes:
    try:
        return AESGCM(key).decrypt(blob[:_NONCE], blob[_NONCE:], _aad(tenant_id, label))
    except InvalidTag:
        raise VaultError("Sealed value cannot be opened (wrong key or context).") from None


def unwrap_unavailable(blob: bytes) -> bytes:
    """For a store built without tenant keys: refuse a value that needs one."""
    if blob.startswith(MARKER):
        raise VaultError("This value is sealed under its tenant's key; open it through the "
                         "gateway's tenant keys.")
    return blob


class TenantSealedSecrets:
    """A SecretStore whose values are sealed under their tenant's key first."""

    def __init__(self, inner: SecretStore, keys: TenantKeys) -> None:
        self.inner = inner
        self.keys = keys
        self._sealer = TenantSealer(keys)  # the secret's name is its label

    async def check(self) -> None:
        await self.inner.check()  # the key store is checked by whoever starts the gateway

    async def put(self, tenant_id: int, name: str, value: bytes) -> None:
        await self.inner.put(tenant_id, name, await self._sealer.wrap(tenant_id, value, name))

    async def get(self, tenant_id: int, name: str) -> bytes | None:
        value = await self.inner.get(tenant_id, name)
        return None if value is None else await self._sealer.unwrap(tenant_id, value, name)

    async def delete(self, tenant_id: int, names: Sequence[str]) -> None:
        await self.inner.delete(tenant_id, names)

    async def remaining(self) -> int:
        return await self.inner.remaining() + await self.keys.remaining()

    async def rewrap(self, batch: int, progress: Callable[[int], None]) -> int:
        return await self.inner.rewrap(batch, progress) + await self.keys.rewrap(progress)

    async def close(self) -> None:
        await self.inner.close()
        await self.keys.store.close()


def _aad(tenant_id: int, name: str) -> bytes:
    return f"tenant-sealed|{tenant_id}|{name}".encode()
