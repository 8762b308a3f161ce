"""Reads and changes of the directory tables; every change writes its audit row in the same
database transaction, naming who did it."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.audit import trail as audit
from gateway.directory import address as addr
from gateway.directory.passwords import hash_password
from gateway.directory.records import Domain, Login, Mailbox, Tenant
from gateway.errors import Conflict, InvalidValue, NotFound
from gateway.store import schema as t
from gateway.store.engine import aware

_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_.")


def now() -> datetime:
    return datetime.now(UTC)


def new_public_id(kind: str) -> str:
    """Ids the API shows: random, so they are neither sequential nor guessable."""
    return f"{kind}_{secrets.token_hex(10)}"


def _tenant(row: Any) -> Tenant:
    return Tenant(row.id, row.name, row.status, row.status_reason, dict(row.settings or {}))


def mailbox_from_row(row: Any) -> Mailbox:
    return Mailbox(row.id, row.tenant_id, row.address, row.upstream, row.status,
                   row.status_reason, dict(row.settings or {}), row.public_id or "")


async def audit_change(conn: AsyncConnection, actor: str, event: str, tenant_id: int | None,
                       reason: str = "", **detail: Any) -> str:
    """The audit row of a change, in the change's own database transaction; the chain's
    head after it."""
    return await audit.write(conn, [audit.row(event, actor=actor, tenant_id=tenant_id,
                                                reason=reason, **detail)])


class DirectoryStore:
    """Tenants, domains, logins and mailboxes in the database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    # --- reads -----------------------------------------------------------------------------
    async def snapshot(self) -> tuple[list[Tenant], list[Domain], list[Login], list[Mailbox]]:
        async with self.engine.connect() as conn:
            tenants = [_tenant(r) for r in await conn.execute(sa.select(t.tenants))]
            domains = [Domain(r.id, r.tenant_id, r.name, r.verified_at is not None)
                       for r in await conn.execute(sa.select(t.domains))]
            logins = [Login(r.id, r.tenant_id, r.username, r.password_hash)
                      for r in await conn.execute(sa.select(t.logins))]
            mailboxes = [mailbox_from_row(r) for r in await conn.execute(sa.select(t.mailboxes))]
        return tenants, domains, logins, mailboxes

    async def tenant(self, name: str) -> Tenant:
        async with self.engine.connect() as conn:
            return await self._tenant_by_name(conn, name)

    async def _tenant_by_name(self, conn: AsyncConnection, name: str) -> Tenant:
        row = (await conn.execute(sa.select(t.tenants).where(t.tenants.c.name == name))).first()
        if row is None:
            raise NotFound(f"Tenant '{name}' does not exist.")
        return _tenant(row)

    # --- tenants ---------------------------------------------------------------------------
    async def add_tenant(self, name: str, actor: str) -> Tenant:
        if not name or not set(name) <= _NAME_CHARS or len(name) > 100:
            raise InvalidValue(
                f"Tenant name {name!r} must be 1-100 characters of a-z, 0-9, '-', '_' or '.'."
            )
        async with self.engine.begin() as conn:
            try:
                result = await conn.execute(t.tenants.insert().values(
                    name=name, status="active", status_reason="", settings={},
                    created_at=now(), updated_at=now()))
            except IntegrityError:
                raise Conflict(f"Tenant '{name}' exists already.") from None
            assert result.inserted_primary_key is not None
            tenant_id = result.inserted_primary_key[0]
            await audit_change(conn, actor, "tenant.added", tenant_id, name=name)
        return Tenant(tenant_id, name, "active", "", {})

    async def list_tenants(self) -> list[Tenant]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(sa.select(t.tenants).order_by(t.tenants.c.name))
            return [_tenant(r) for r in rows]

    async def set_tenant_status(self, name: str, status: str, reason: str, actor: str) -> None:
        async with self.engine.begin() as conn:
            tenant = await self._tenant_by_name(conn, name)
            await conn.execute(t.tenants.update().where(t.tenants.c.id == tenant.id).values(
                status=status, status_reason=reason, updated_at=now()))
            await audit_change(conn, actor, f"tenant.{status}", tenant.id, reason)

    async def set_legal_hold(self, name: str, reason: str | None, actor: str) -> None:
        """Place (`reason`) or lift (None) the operator's legal hold on a tenant."""
        async with self.engine.begin() as conn:
            tenant = await self._tenant_by_name(conn, name)
            await conn.execute(t.tenants.update().where(t.tenants.c.id == tenant.id).values(
                legal_hold_since=now() if reason is not None else None,
                legal_hold_reason=reason or "", updated_at=now()))
            await audit_change(conn, actor, "tenant.legal-hold" if reason is not None
                               else "tenant.legal-hold-lifted", tenant.id, reason or "")

    async def legal_hold(self, name: str) -> tuple[datetime, str] | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(
                t.tenants.c.legal_hold_since, t.tenants.c.legal_hold_reason).where(
                t.tenants.c.name == name))).first()
        if row is None:
            raise NotFound(f"Tenant '{name}' does not exist.")
        since = aware(row.legal_hold_since)
        return None if since is None else (since, row.legal_hold_reason)

    async def set_tenant_setting(self, name: str, key: str, value: Any, actor: str) -> None:
        async with self.engine.begin() as conn:
            tenant = await self._tenant_by_name(conn, name)
            settings = dict(tenant.settings)
            old = settings.get(key)
            settings[key] = value
            await conn.execute(t.tenants.update().where(t.tenants.c.id == tenant.id).values(
                settings=settings, updated_at=now()))
            await audit_change(conn, actor, "tenant.setting", tenant.id, key=key, old=old,
                               new=value)

    # --- domains ---------------------------------------------------------------------------
    async def add_domain(self, tenant_name: str, domain: str, actor: str) -> str:
        name = addr.normalize_domain(domain)
        async with self.engine.begin() as conn:
            tenant = await self._tenant_by_name(conn, tenant_name)
            try:
                await conn.execute(t.domains.insert().values(
                    tenant_id=tenant.id, name=name, created_at=now()))
            except IntegrityError:
                raise Conflict(f"Domain '{name}' belongs to a tenant already.") from None
            await audit_change(conn, actor, "domain.added", tenant.id, domain=name)
        return name

    async def mark_verified(self, domain: str, actor: str, how: str) -> None:
        """Record a domain as proven (`gateway domain verify` does this after the TXT check;
        the development demo, whose domain has no DNS, says so in `how`)."""
        async with self.engine.begin() as conn:
            row = (await conn.execute(sa.select(t.domains).where(
                t.domains.c.name == domain))).first()
            if row is None:
                raise NotFound(f"Domain {domain} is not a sending domain of any tenant.")
            await conn.execute(t.domains.update().where(t.domains.c.id == row.id).values(
                verified_at=now()))
            await audit_change(conn, actor, "domain.verified", row.tenant_id, domain=domain,
                               how=how)

    async def list_domains(self, tenant_name: str | None = None) -> list[tuple[str, str]]:
        query = (sa.select(t.tenants.c.name, t.domains.c.name)
                 .join(t.tenants, t.tenants.c.id == t.domains.c.tenant_id)
                 .order_by(t.tenants.c.name, t.domains.c.name))
        if tenant_name:
            query = query.where(t.tenants.c.name == tenant_name)
        async with self.engine.connect() as conn:
            return [(r[0], r[1]) for r in await conn.execute(query)]

    # --- logins ----------------------------------------------------------------------------
    async def add_login(self, tenant_name: str, username: str, password: str,
                        actor: str, min_length: int = 12) -> None:
        if not username or len(username) > 200 or any(c.isspace() for c in username):
            raise InvalidValue(f"Login name {username!r} must be 1-200 characters, no spaces.")
        floor = max(min_length, 12)
        if len(password) < floor:
            raise InvalidValue(f"A login password must have at least {floor} characters (or "
                               "use --generate).")
        hashed = hash_password(password)
        async with self.engine.begin() as conn:
            tenant = await self._tenant_by_name(conn, tenant_name)
            try:
                await conn.execute(t.logins.insert().values(
                    tenant_id=tenant.id, username=username, password_hash=hashed,
                    created_at=now(), updated_at=now()))
            except IntegrityError:
                raise Conflict(f"Login '{username}' exists already.") from None
            await audit_change(conn, actor, "login.added", tenant.id, login=username)

    async def list_logins(self, tenant_name: str | None = None) -> list[tuple[str, str]]:
        query = (sa.select(t.tenants.c.name, t.logins.c.username)
                 .join(t.tenants, t.tenants.c.id == t.logins.c.tenant_id)
                 .order_by(t.tenants.c.name, t.logins.c.username))
        if tenant_name:
            query = query.where(t.tenants.c.name == tenant_name)
        async with self.engine.connect() as conn:
            return [(r[0], r[1]) for r in await conn.execute(query)]

    async def remove_login(self, username: str, actor: str) -> None:
        async with self.engine.begin() as conn:
            row = (await conn.execute(
                sa.select(t.logins).where(t.logins.c.username == username))).first()
            if row is None:
                raise NotFound(f"Login '{username}' does not exist.")
            await conn.execute(t.logins.delete().where(t.logins.c.id == row.id))
            await audit_change(conn, actor, "login.removed", row.tenant_id, login=username)

    # --- mailboxes -------------------------------------------------------------------------
    async def add_mailbox(self, tenant_name: str, address: str, upstream: str,
                          actor: str, status: str = "active", status_reason: str = "") -> str:
        normal = addr.normalize(address)
        async with self.engine.begin() as conn:
            tenant = await self._tenant_by_name(conn, tenant_name)
            owner = (await conn.execute(sa.select(t.domains.c.tenant_id).where(
                t.domains.c.name == addr.domain_of(normal)))).scalar()
            if owner != tenant.id:
                raise InvalidValue(
                    f"Mailbox '{normal}' is not on one of tenant '{tenant_name}''s domains; "
                    f"add the domain first ('gateway domain add {tenant_name} "
                    f"{addr.domain_of(normal)}')."
                )
            exists = (await conn.execute(sa.select(t.mailboxes.c.id).where(
                sa.func.lower(t.mailboxes.c.address) == addr.key(normal)))).first()
            if exists:
                raise Conflict(f"Mailbox '{normal}' exists already.")
            await conn.execute(t.mailboxes.insert().values(
                tenant_id=tenant.id, address=normal, upstream=upstream, status=status,
                status_reason=status_reason, settings={}, created_at=now(), updated_at=now(),
                public_id=new_public_id("mbx")))
            await audit_change(conn, actor, "mailbox.added", tenant.id, mailbox=normal,
                         upstream=upstream)
        return normal

    async def list_mailboxes(self, tenant_name: str | None = None) -> list[tuple[str, Mailbox]]:
        query = (sa.select(t.tenants.c.name, t.mailboxes)
                 .join(t.tenants, t.tenants.c.id == t.mailboxes.c.tenant_id)
                 .order_by(t.tenants.c.name, t.mailboxes.c.address))
        if tenant_name:
            query = query.where(t.tenants.c.name == tenant_name)
        async with self.engine.connect() as conn:
            return [(r[0], mailbox_from_row(r)) for r in await conn.execute(query)]

    async def mailbox_by_public_id(self, public_id: str,
                                   tenant_id: int | None = None) -> tuple[str, Mailbox]:
        """(tenant name, mailbox); NotFound also when it belongs to another tenant, so a
        tenant-bound caller cannot tell another tenant's mailbox from a missing one."""
        query = (sa.select(t.tenants.c.name, t.mailboxes)
                 .join(t.tenants, t.tenants.c.id == t.mailboxes.c.tenant_id)
                 .where(t.mailboxes.c.public_id == public_id))
        if tenant_id is not None:
            query = query.where(t.mailboxes.c.tenant_id == tenant_id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            raise NotFound(f"Mailbox {public_id} does not exist.")
        return row[0], mailbox_from_row(row)

    async def mailbox_by_address(self, address: str) -> Mailbox:
        async with self.engine.connect() as conn:
            return mailbox_from_row(await self._mailbox_row(conn, address))

    async def tenant_names(self) -> dict[int, str]:
        async with self.engine.connect() as conn:
            return {r.id: r.name for r in await conn.execute(
                sa.select(t.tenants.c.id, t.tenants.c.name))}

    async def _mailbox_row(self, conn: AsyncConnection, address: str) -> Any:
        row = (await conn.execute(sa.select(t.mailboxes).where(
            sa.func.lower(t.mailboxes.c.address) == addr.key(address.strip())))).first()
        if row is None:
            raise NotFound(f"Mailbox '{address}' does not exist.")
        return row

    async def set_mailbox_status(self, address: str, status: str, reason: str,
                                 actor: str) -> None:
        async with self.engine.begin() as conn:
            row = await self._mailbox_row(conn, address)
            await conn.execute(t.mailboxes.update().where(t.mailboxes.c.id == row.id).values(
                status=status, status_reason=reason, updated_at=now()))
            await audit_change(conn, actor, f"mailbox.{status}", row.tenant_id, reason,
                         mailbox=row.address)

    async def resume_mailbox(self, address: str, actor: str) -> None:
        """Let a paused mailbox send again; a disconnected one is connected, not resumed."""
        async with self.engine.connect() as conn:
            row = await self._mailbox_row(conn, address)
        if row.status != "paused":
            raise Conflict(f"Mailbox '{row.address}' is {row.status}, not paused"
                           + ("; connect it instead." if row.status == "disconnected" else "."))
        await self.set_mailbox_status(address, "active", "", actor)

    async def removable_mailbox(self, address: str) -> None:
        """Refuse (Conflict) removing a mailbox that still has undelivered copies."""
        async with self.engine.connect() as conn:
            await self._no_undelivered(conn, await self._mailbox_row(conn, address))

    async def _no_undelivered(self, conn: AsyncConnection, row: Any) -> None:
        pending = (await conn.execute(sa.select(sa.func.count()).select_from(
            t.pending_copies).where(
            t.pending_copies.c.mailbox_id == row.id,
            t.pending_copies.c.state.in_(t.PENDING_OPEN_STATES)))).scalar()
        if pending:
            raise Conflict(
                f"Mailbox '{row.address}' has {pending} undelivered copies; "
                "pause it instead until they are resolved."
            )

    async def remove_mailbox(self, address: str, actor: str) -> None:
        async with self.engine.begin() as conn:
            row = await self._mailbox_row(conn, address)
            await self._no_undelivered(conn, row)
            await conn.execute(t.mailbox_credentials.delete().where(
                t.mailbox_credentials.c.mailbox_id == row.id))
            await conn.execute(t.mailboxes.delete().where(t.mailboxes.c.id == row.id))
            await audit_change(conn, actor, "mailbox.removed", row.tenant_id, mailbox=row.address)
