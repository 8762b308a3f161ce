"""Admin API keys: 256 random bits with a public prefix id, stored as SHA-256 only.

A key is shown once, at creation: `ocg_<prefix>_<secret>`. It carries a role (`ops`,
`compliance`, `admin`), optionally one tenant, and optionally an expiry; its last use is
recorded. A key creates keys only within its own role and tenant binding.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit import trail as audit
from gateway.errors import InvalidValue, NotFound
from gateway.store.engine import aware
from gateway.store.schema import api_keys

ROLES = ("ops", "compliance", "admin")
_LAST_USE_PRECISION = timedelta(minutes=1)  # at most one write per key per minute


class Unauthorized(Exception):
    """No key, a malformed key, or an unknown, revoked or expired one (answered 401)."""


class Forbidden(Exception):
    """A valid key asking for more than its role or tenant allows (answered 403)."""


@dataclass(frozen=True, slots=True)
class ApiCaller:
    key_id: str  # the public prefix
    role: str
    tenant_id: int | None  # None: not bound to a tenant

    @property
    def actor(self) -> str:
        return f"apikey:{self.key_id}"

    def may_grant(self, role: str, tenant_id: int | None) -> bool:
        """A key may create a key with at most its own role and the same tenant binding."""
        role_ok = self.role == "admin" or role == self.role
        tenant_ok = self.tenant_id is None or tenant_id == self.tenant_id
        return role_ok and tenant_ok


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    key_id: str
    name: str
    role: str
    tenant_id: int | None
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _info(r: Any) -> ApiKeyInfo:
    created = aware(r.created_at)
    assert created is not None
    return ApiKeyInfo(r.prefix, r.name, r.role, r.tenant_id, r.created_by, created,
                      aware(r.expires_at), aware(r.last_used_at), aware(r.revoked_at))


class ApiKeys:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(self, name: str, role: str, tenant_id: int | None, actor: str,
                     expires_at: datetime | None = None) -> tuple[str, str]:
        """Returns (key id, the key itself). The key is never stored or shown again."""
        if role not in ROLES:
            raise InvalidValue(f"Role {role!r} must be one of {', '.join(ROLES)}.")
        if len(name) > 200:
            raise InvalidValue("A key name has at most 200 characters.")
        if expires_at is not None and expires_at <= datetime.now(UTC):
            raise InvalidValue("'expires_at' must be in the future.")
        prefix = secrets.token_hex(6)
        key = f"ocg_{prefix}_{secrets.token_urlsafe(32)}"  # 256 random bits
        now = datetime.now(UTC)
        async with self._engine.begin() as conn:
            await conn.execute(api_keys.insert().values(
                prefix=prefix, key_hash=_hash(key), name=name, role=role, tenant_id=tenant_id,
                created_by=actor, created_at=now, expires_at=expires_at))
            await audit.write(conn, [audit.row("apikey.created", actor=actor, tenant_id=tenant_id,
                                                  key_id=prefix, role=role)])
        return prefix, key

    async def authenticate(self, key: str) -> ApiCaller:
        parts = key.split("_")
        if len(parts) < 3 or parts[0] != "ocg" or len(parts[1]) != 12:
            raise Unauthorized("malformed key")
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(api_keys).where(
                api_keys.c.prefix == parts[1]))).first()
        if row is None or not hmac.compare_digest(row.key_hash, _hash(key)):
            raise Unauthorized("unknown key")
        now = datetime.now(UTC)
        expires = aware(row.expires_at)
        if row.revoked_at is not None or (expires is not None and expires <= now):
            raise Unauthorized("revoked or expired key")
        last = aware(row.last_used_at)
        if last is None or now - last > _LAST_USE_PRECISION:
            async with self._engine.begin() as conn:
                await conn.execute(api_keys.update().where(api_keys.c.id == row.id).values(
                    last_used_at=now))
        return ApiCaller(row.prefix, row.role, row.tenant_id)

    async def listing(self, tenant_id: int | None = None,
                      only_tenant: bool = False) -> list[ApiKeyInfo]:
        query = sa.select(api_keys).order_by(api_keys.c.id)
        if only_tenant:
            query = query.where(api_keys.c.tenant_id == tenant_id)
        async with self._engine.connect() as conn:
            return [_info(r) for r in await conn.execute(query)]

    async def get(self, key_id: str) -> ApiKeyInfo:
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(api_keys).where(
                api_keys.c.prefix == key_id))).first()
        if row is None:
            raise NotFound(f"API key {key_id} does not exist.")
        return _info(row)

    async def revoke(self, key_id: str, actor: str) -> None:
        info = await self.get(key_id)
        now = datetime.now(UTC)
        async with self._engine.begin() as conn:
            await conn.execute(api_keys.update().where(
                api_keys.c.prefix == key_id, api_keys.c.revoked_at.is_(None)).values(
                revoked_at=now))
            await audit.write(conn, [audit.row("apikey.revoked", actor=actor,
                                                  tenant_id=info.tenant_id, key_id=key_id)])
