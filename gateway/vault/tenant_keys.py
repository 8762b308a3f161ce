"""Per-tenant keys, so a tenant's secrets can be crypto-shredded.

Every mailbox token and password is sealed twice: first under its tenant's own key
(AES-256-GCM), then, like any secret, by the vault under the master key. The tenant key is
stored sealed by the vault too. `gateway tenant delete` deletes the tenant key: every copy of
that tenant's secrets, in the secret store, in Redis, in a backup of either, stops opening,
whether or not the rows themselves were reached.

Values sealed before tenant keys existed carry no marker and open as before (the vault layer
only).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.errors import VaultError
from gateway.store.schema import tenant_keys
from gateway.vault.envelope import Vault
from gateway.vault.secrets import SecretStore

MARKER = b"ocg-tk1:"  # a value sealed under its tenant's key
_NONCE = 12


def seal_context(tenant_id: int) -> bytes:
    return f"tenant_keys|{tenant_id}".encode()


class TenantKeys:
    def __init__(self, engine: AsyncEngine, vault: Vault) -> None:
        self._engine = engine
        self._vault = vault
        self._cache: dict[int, bytes] = {}

    async def key(self, tenant_id: int, create: bool = True,
                  conn: AsyncConnection | None = None) -> bytes | None:
        """The tenant's key, made on first use. `conn`: the caller's open transaction, read
        and (if need be) written in, so a caller holding SQLite's write lock does not wait
        on itself; a key made there is cached only once it is read again after commit."""
        if tenant_id in self._cache:
            return self._cache[tenant_id]
        if conn is not None:
            return await self._key_in(conn, tenant_id, create)
        async with self._engine.connect() as own:
            row = (await own.execute(sa.select(tenant_keys).where(
                tenant_keys.c.tenant_id == tenant_id))).first()
        if row is None:
            if not create:
                return None
            await self._create(tenant_id)
            return await self.key(tenant_id, create=False)
        key = self._vault.open(row.sealed_key, row.key_id, seal_context(tenant_id))
        self._cache[tenant_id] = key
        return key

    async def _key_in(self, conn: AsyncConnection, tenant_id: int, create: bool
                      ) -> bytes | None:
        row = (await conn.execute(sa.select(tenant_keys).where(
            tenant_keys.c.tenant_id == tenant_id))).first()
        if row is not None:
            key: bytes = self._vault.open(row.sealed_key, row.key_id, seal_context(tenant_id))
            self._cache[tenant_id] = key
            return key
        if not create:
            return None
        key = AESGCM.generate_key(256)
        sealed, key_id = self._vault.seal(key, seal_context(tenant_id))
        await conn.execute(tenant_keys.insert().values(
            tenant_id=tenant_id, sealed_key=sealed, key_id=key_id, created_at=datetime.now(UTC)))
        return key

    async def _create(self, tenant_id: int) -> None:
        sealed, key_id = self._vault.seal(AESGCM.generate_key(256), seal_context(tenant_id))
        try:
            async with self._engine.begin() as conn:
                await conn.execute(tenant_keys.insert().values(
                    tenant_id=tenant_id, sealed_key=sealed, key_id=key_id,
                    created_at=datetime.now(UTC)))
        except IntegrityError:
            pass  # another process made it first: use theirs

    async def shred(self, conn: AsyncConnection, tenant_id: int) -> bool:
        """Delete the tenant's key in the caller's transaction. True if there was one."""
        self._cache.pop(tenant_id, None)
        result = await conn.execute(tenant_keys.delete().where(
            tenant_keys.c.tenant_id == tenant_id))
        return bool(result.rowcount)


class TenantSealer:
    """Personal data a tenant keeps (event recipients, held messages' subjects and
    recipients) sealed under the tenant's own key: shredded with the tenant, never in clear
    beside the sealed bodies. `label` names the field and row and is bound in (AAD)."""

    def __init__(self, keys: TenantKeys) -> None:
        self.keys = keys

    async def seal(self, tenant_id: int, value: bytes, label: str,
                   conn: AsyncConnection | None = None) -> bytes:
        key = await self.keys.key(tenant_id, conn=conn)
        assert key is not None
        nonce = os.urandom(_NONCE)
        return nonce + AESGCM(key).encrypt(nonce, value, _aad(tenant_id, label))

    async def open(self, tenant_id: int, blob: bytes, label: str) -> bytes | None:
        """The value, or None once the tenant's key is shredded."""
        key = await self.keys.key(tenant_id, create=False)
        if key is None:
            return None
        try:
            return AESGCM(key).decrypt(blob[:_NONCE], blob[_NONCE:], _aad(tenant_id, label))
        except InvalidTag:
            raise VaultError("Sealed value cannot be opened (wrong key or context).") from None


class TenantSealedSecrets:
    """A SecretStore whose values are sealed under their tenant's key first."""

    def __init__(self, inner: SecretStore, keys: TenantKeys) -> None:
        self.inner = inner
        self.keys = keys

    async def check(self) -> None:
        await self.inner.check()

    async def put(self, tenant_id: int, name: str, value: bytes) -> None:
        key = await self.keys.key(tenant_id)
        assert key is not None
        nonce = os.urandom(_NONCE)
        sealed = AESGCM(key).encrypt(nonce, value, _aad(tenant_id, name))
        await self.inner.put(tenant_id, name, MARKER + nonce + sealed)

    async def get(self, tenant_id: int, name: str) -> bytes | None:
        value = await self.inner.get(tenant_id, name)
        if value is None or not value.startswith(MARKER):
            return value
        key = await self.keys.key(tenant_id, create=False)
        if key is None:
            raise VaultError("This tenant's key was shredded: its secrets are gone.")
        body = value[len(MARKER):]
        try:
            return AESGCM(key).decrypt(body[:_NONCE], body[_NONCE:], _aad(tenant_id, name))
        except InvalidTag:
            raise VaultError("Sealed value cannot be opened (wrong key or context).") from None

    async def delete(self, tenant_id: int, names: Sequence[str]) -> None:
        await self.inner.delete(tenant_id, names)

    async def remaining(self) -> int:
        return await self.inner.remaining()

    async def rewrap(self, batch: int, progress: Callable[[int], None]) -> int:
        return await self.inner.rewrap(batch, progress)

    async def close(self) -> None:
        await self.inner.close()


def _aad(tenant_id: int, name: str) -> bytes:
    return f"tenant-sealed|{tenant_id}|{name}".encode()
