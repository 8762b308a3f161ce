"""Purpose keys: random keys for one job each, stored sealed, with versions.

- Digest keys (`audit-digest`, `suppression-digest`) are made once and never rotated, only
  re-wrapped with the master key: a person known only by digest (erased) would otherwise be
  silently forgotten. If one cannot be unsealed, lookups fail closed (451 4.3.5); it is
  never regenerated.
- Token keys (`unsubscribe-token`, `pixel-token`, `feedback-ref`) rotate: the newest
  version seals, older versions still open until retired (`gateway key retire`: links and
  complaint references made with a retired version stop working).
- The opt-out receipt key (`receipt-signing`, an Ed25519 seed) rotates and is never
  retired: every public key that signed a receipt stays published.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit import trail as audit
from gateway.errors import Conflict, InvalidValue, NotFound, VaultError
from gateway.store.schema import purpose_keys
from gateway.vault.envelope import Vault

NEVER_ROTATED = frozenset({"audit-digest", "suppression-digest", "audit-anchor"})
ROTATABLE = frozenset({"unsubscribe-token", "pixel-token", "feedback-ref", "receipt-signing"})
# rotated, never retired: every key that signed an opt-out receipt stays published
NEVER_RETIRED = frozenset({"receipt-signing"})
PURPOSES = NEVER_ROTATED | ROTATABLE


def seal_context(purpose: str, version: int) -> bytes:
    return f"purpose_keys|{purpose}|{version}".encode()


@dataclass(frozen=True, slots=True)
class KeyVersion:
    purpose: str
    version: int
    key_id: str  # the master key that wraps it
    created_at: datetime
    retired_at: datetime | None


class PurposeKeys:
    def __init__(self, engine: AsyncEngine, vault: Vault) -> None:
        self._engine = engine
        self._vault = vault
        self._keys: dict[tuple[str, int], bytes] = {}
        self._current: dict[str, int] = {}
        self._unavailable: set[str] = set()

    @property
    def vault(self) -> Vault:
        return self._vault

    async def load(self) -> None:
        """Open every active version. One that will not open makes its purpose unavailable."""
        keys: dict[tuple[str, int], bytes] = {}
        current: dict[str, int] = {}
        unavailable: set[str] = set()
        async with self._engine.connect() as conn:
            rows = (await conn.execute(sa.select(purpose_keys).where(
                purpose_keys.c.retired_at.is_(None)))).all()
        for row in rows:
            try:
                keys[(row.purpose, row.version)] = self._vault.open(
                    row.sealed_key, row.key_id, seal_context(row.purpose, row.version))
            except VaultError:
                unavailable.add(row.purpose)
                continue
            current[row.purpose] = max(current.get(row.purpose, 0), row.version)
        self._keys, self._current, self._unavailable = keys, current, unavailable

    async def ensure(self, purpose: str, seed: bytes | None = None) -> None:
        """Make version 1 of `purpose` if it has none. Never replaces one that exists."""
        await self.load()
        if purpose in self._current:
            return
        if purpose in self._unavailable:
            raise VaultError(f"The {purpose} key cannot be unsealed with the loaded master "
                             "keys; it is never regenerated. Load the master key it was "
                             "sealed with.")
        await self._insert(purpose, 1, seed or secrets.token_bytes(32))

    async def _insert(self, purpose: str, version: int, key: bytes) -> None:
        sealed, key_id = self._vault.seal(key, seal_context(purpose, version))
        now = datetime.now(UTC)
        try:
            async with self._engine.begin() as conn:
                await conn.execute(purpose_keys.insert().values(
                    purpose=purpose, version=version, sealed_key=sealed, key_id=key_id,
                    created_at=now))
                await audit.write(conn, [audit.row("key.created", actor="vault", purpose=purpose,
                                                      version=version)])
        except IntegrityError:
            pass  # another node made it first: use theirs
        await self.load()

    def current(self, purpose: str) -> tuple[int, bytes]:
        if purpose in self._unavailable or purpose not in self._current:
            raise VaultError(f"The {purpose} key is not available.")
        version = self._current[purpose]
        return version, self._keys[(purpose, version)]

    def version(self, purpose: str, version: int) -> bytes | None:
        return self._keys.get((purpose, version))

    def versions(self, purpose: str) -> list[int]:
        """The loaded (not retired) versions of `purpose`, oldest first."""
        return sorted(v for p, v in self._keys if p == purpose)

    async def rotate(self, purpose: str, actor: str) -> int:
        if purpose in NEVER_ROTATED:
            raise InvalidValue(f"The {purpose} key is never rotated: people known only by "
                               "digest would be forgotten. A master-key rotation re-wraps it.")
        if purpose not in ROTATABLE:
            raise InvalidValue(f"Unknown key purpose '{purpose}'.")
        await self.load()
        version = self._current.get(purpose, 0) + 1
        await self._insert(purpose, version, secrets.token_bytes(32))
        async with self._engine.begin() as conn:
            await audit.write(conn, [audit.row("key.rotated", actor=actor, purpose=purpose,
                                                  version=version)])
        return version

    async def retire(self, purpose: str, version: int, actor: str) -> None:
        if purpose in NEVER_ROTATED:
            raise InvalidValue(f"The {purpose} key cannot be retired.")
        if purpose in NEVER_RETIRED:
            raise InvalidValue(f"The {purpose} key is never retired: receipts it signed must "
                               "keep verifying. Rotate it instead.")
        await self.load()
        if self._current.get(purpose) == version:
            raise Conflict(f"Version {version} is the one sealing new {purpose}s; rotate first.")
        async with self._engine.begin() as conn:
            result = await conn.execute(purpose_keys.update().where(
                purpose_keys.c.purpose == purpose, purpose_keys.c.version == version,
                purpose_keys.c.retired_at.is_(None)).values(retired_at=datetime.now(UTC)))
            if result.rowcount == 0:
                raise NotFound(f"No active {purpose} key version {version}.")
            await audit.write(conn, [audit.row("key.retired", actor=actor, purpose=purpose,
                                                  version=version)])
        await self.load()

    async def listing(self) -> list[KeyVersion]:
        async with self._engine.connect() as conn:
            rows = await conn.execute(sa.select(purpose_keys).order_by(
                purpose_keys.c.purpose, purpose_keys.c.version))
            return [KeyVersion(r.purpose, r.version, r.key_id, r.created_at, r.retired_at)
                    for r in rows]


class AuditDigest:
    """How the audit trail names a person: the keyed digest under the `audit-digest` key.

    Built with the other parts and opened at start (`open`, which makes the key on first
    use, seeded so digests written before the key was stored still match). Once opened it
    keeps its key: a later reload of the purpose keys cannot take it away mid-run.
    """

    def __init__(self, keys: PurposeKeys) -> None:
        self._keys = keys
        self._key = b""

    async def open(self) -> None:
        await self._keys.ensure(audit.DIGEST_PURPOSE,
                                seed=self._keys.vault.derived_key(audit.LEGACY_DIGEST_INFO))
        self._key = self._keys.current(audit.DIGEST_PURPOSE)[1]

    @property
    def key(self) -> bytes:
        return self._key

    def __call__(self, value: str) -> str:
        return audit.recipient_digest(self._key, value)
