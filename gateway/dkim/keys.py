"""DKIM keys per tenant domain: made here, stored sealed, loaded for signing.

RSA-2048 is what every receiver verifies; an Ed25519 key is an optional second signature
(RFC 8463). `generate` makes a new selector each time, so a key is rotated by generating a
new one, publishing its record, and retiring the old selector later.
"""

from __future__ import annotations

import base64
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.directory.store import audit_change
from gateway.dkim.signer import ED25519, RSA, SigningKey
from gateway.errors import InvalidValue, NotFound, VaultError
from gateway.store.schema import dkim_keys as t
from gateway.store.schema import domains, tenants
from gateway.vault.envelope import Vault
from gateway.vault.tenant_keys import TenantSealer

log = logging.getLogger("gateway.dkim")

ALGORITHMS = {"rsa": RSA, "ed25519": ED25519}
_SELECTOR = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def key_label(domain: str, selector: str) -> str:
    return f"dkim-key|{domain}|{selector}"


def seal_context(domain: str, selector: str) -> bytes:
    return f"dkim_keys|{domain}|{selector}".encode()


@dataclass(frozen=True, slots=True)
class KeyInfo:
    id: int
    tenant_id: int
    domain: str
    selector: str
    algorithm: str
    public_key: str
    created_at: datetime
    retired_at: datetime | None

    @property
    def dns_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"

    @property
    def dns_value(self) -> str:
        k = "rsa" if self.algorithm == RSA else "ed25519"
        return f"v=DKIM1; k={k}; p={self.public_key}"

    def dns_record(self) -> str:
        """The TXT record as a zone-file line, split in 255-octet strings (RFC 1035)."""
        value = self.dns_value
        chunks = " ".join(f'"{value[i:i + 255]}"' for i in range(0, len(value), 255))
        return f"{self.dns_name}. IN TXT ( {chunks} )"


def _info(row: sa.Row[tuple[object, ...]]) -> KeyInfo:
    def aware(v: datetime | None) -> datetime | None:
        return v.replace(tzinfo=UTC) if v is not None and v.tzinfo is None else v
    created = aware(row.created_at)
    assert created is not None
    return KeyInfo(row.id, row.tenant_id, row.domain, row.selector, row.algorithm,
                   row.public_key, created, aware(row.retired_at))


def new_private_key(algorithm: str) -> tuple[bytes, str]:
    """(PKCS#8 DER private key, base64 public key for DNS)."""
    if algorithm == RSA:
        key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey = rsa.generate_private_key(
            65537, 2048)
        public = key.public_key().public_bytes(serialization.Encoding.DER,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    else:
        key = ed25519.Ed25519PrivateKey.generate()
        public = key.public_key().public_bytes(serialization.Encoding.Raw,
                                               serialization.PublicFormat.Raw)
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return der, base64.b64encode(public).decode("ascii")


class DkimKeys:
    def __init__(self, engine: AsyncEngine, vault: Vault, tenant: TenantSealer) -> None:
        self._engine = engine
        self._vault = vault
        self._tenant = tenant  # a private key goes with its tenant's key (issue 21)
        self._signing: dict[str, tuple[SigningKey, ...]] = {}

    # --- operators -----------------------------------------------------------------------
    async def generate(self, domain: str, algorithm: str = "rsa", selector: str = "",
                       actor: str = "cli") -> KeyInfo:
        domain = domain.strip().lower().rstrip(".")
        if algorithm not in ALGORITHMS:
            raise InvalidValue(f"Algorithm must be one of {', '.join(ALGORITHMS)}.")
        alg = ALGORITHMS[algorithm]
        now = datetime.now(UTC)
        selector = selector or f"ocg{now:%Y%m}{'e' if alg == ED25519 else 'r'}"
        if not _SELECTOR.match(selector):
            raise InvalidValue(f"Selector {selector!r} is not a DNS label (a-z, 0-9, -).")
        async with self._engine.begin() as conn:
            tenant_id = (await conn.execute(sa.select(domains.c.tenant_id).where(
                domains.c.name == domain))).scalar()
            if tenant_id is None:
                raise NotFound(f"Domain {domain} is not a sending domain of any tenant "
                               "(gateway domain add).")
            taken = (await conn.execute(sa.select(t.c.id).where(
                t.c.domain == domain, t.c.selector == selector))).first()
            if taken is not None:
                raise InvalidValue(f"Selector {selector} exists for {domain}; choose another "
                                   "with --selector.")
            der, public = new_private_key(alg)
            sealed, key_id = self._vault.seal(
                await self._tenant.wrap(tenant_id, der, key_label(domain, selector), conn),
                seal_context(domain, selector))
            result = await conn.execute(t.insert().values(
                tenant_id=tenant_id, domain=domain, selector=selector, algorithm=alg,
                public_key=public, sealed_key=sealed, key_id=key_id, created_at=now))
            key_pk = result.inserted_primary_key
            assert key_pk is not None
            await audit_change(conn, actor, "dkim.generated", tenant_id, domain=domain,
                               selector=selector, algorithm=alg)
            row = (await conn.execute(sa.select(t).where(t.c.id == key_pk[0]))).one()
        return _info(row)

    async def retire(self, domain: str, selector: str, actor: str = "cli") -> KeyInfo:
        domain = domain.strip().lower().rstrip(".")
        async with self._engine.begin() as conn:
            row = (await conn.execute(sa.select(t).where(
                t.c.domain == domain, t.c.selector == selector))).first()
            if row is None:
                raise NotFound(f"No DKIM key {selector} for {domain}.")
            await conn.execute(t.update().where(t.c.id == row.id).values(
                retired_at=datetime.now(UTC)))
            await audit_change(conn, actor, "dkim.retired", row.tenant_id, domain=domain,
                               selector=selector)
            row = (await conn.execute(sa.select(t).where(t.c.id == row.id))).one()
        return _info(row)

    async def listing(self, tenant: str | None = None, domain: str | None = None
                      ) -> list[KeyInfo]:
        query = sa.select(t).order_by(t.c.domain, t.c.created_at, t.c.id)
        if domain:
            query = query.where(t.c.domain == domain.strip().lower().rstrip("."))
        if tenant:
            query = query.join(tenants, tenants.c.id == t.c.tenant_id).where(
                tenants.c.name == tenant)
        async with self._engine.connect() as conn:
            return [_info(r) for r in await conn.execute(query)]

    # --- signing -------------------------------------------------------------------------
    async def load(self) -> None:
        """Open the active keys: for each domain, the newest key of each algorithm, RSA
        first. A key that will not open is skipped (logged), never used half-way."""
        async with self._engine.connect() as conn:
            rows = (await conn.execute(sa.select(t).where(t.c.retired_at.is_(None))
                                       .order_by(t.c.created_at.desc(), t.c.id.desc()))).all()
        signing: dict[str, dict[str, SigningKey]] = {}
        for row in rows:
            per_domain = signing.setdefault(row.domain, {})
            if row.algorithm in per_domain:
                continue  # an older key of the same algorithm
            try:
                der = await self._tenant.unwrap(row.tenant_id, self._vault.open(
                    row.sealed_key, row.key_id, seal_context(row.domain, row.selector)),
                    key_label(row.domain, row.selector))
            except VaultError:
                log.error("DKIM key cannot be unsealed", extra={
                    "domain": row.domain, "selector": row.selector, "alert": "ops"})
                continue
            private = serialization.load_der_private_key(der, password=None)
            assert isinstance(private, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey)
            per_domain[row.algorithm] = SigningKey(row.domain, row.selector, row.algorithm,
                                                   private)
        self._signing = {
            domain: tuple(keys[a] for a in (RSA, ED25519) if a in keys)
            for domain, keys in signing.items()
        }

    def for_domain(self, domain: str) -> tuple[SigningKey, ...]:
        """The keys that sign mail from `domain`: none, RSA, or RSA then Ed25519. An Ed25519
        key alone does not sign (most receivers cannot verify it yet)."""
        keys = self._signing.get(domain.lower(), ())
        return keys if keys and keys[0].algorithm == RSA else ()
