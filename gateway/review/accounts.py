"""Reviewer accounts and their sessions, for the review pages on the admin listener.

A sign-in needs the password (scrypt) and a TOTP code (the secret sealed by the vault; a code
works once). After `lockout_failures` wrong tries in a row the account is locked for
`lockout_minutes`, whoever is trying, and `gateway user unlock` lifts it. A session is a
random cookie token of which only the SHA-256 is stored, with its own CSRF token; it ends
after `idle_minutes` without a request or `session_hours` in all.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit import trail as audit
from gateway.config import ReviewConfig
from gateway.directory.passwords import DUMMY_HASH, hash_password, verify_password
from gateway.errors import Conflict, InvalidValue, NotFound
from gateway.review import totp
from gateway.store.engine import aware
from gateway.store.schema import review_sessions, reviewers
from gateway.vault.envelope import Vault

ROLES = ("ops", "compliance", "admin")
MIN_PASSWORD = 12
_TOUCH_EVERY = timedelta(seconds=15)  # last_seen_at is written at most this often


def seal_context(username: str) -> bytes:
    return f"reviewers|{username}".encode()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Reviewer:
    id: int
    username: str
    role: str
    tenant_id: int | None  # None: every tenant

    @property
    def actor(self) -> str:
        return f"reviewer:{self.username}"

    @property
    def decides(self) -> bool:
        """Release, discard, read bodies, remove opt-outs: compliance and admin."""
        return self.role in ("compliance", "admin")


@dataclass(frozen=True, slots=True)
class Session:
    reviewer: Reviewer
    csrf: str


class SignInRefused(Exception):
    """Wrong username, password or code, or a locked account; `locked` says which."""

    def __init__(self, locked: bool = False) -> None:
        super().__init__("locked" if locked else "refused")
        self.locked = locked


def _reviewer(row: Any) -> Reviewer:
    return Reviewer(row.id, row.username, row.role, row.tenant_id)


class Reviewers:
    def __init__(self, engine: AsyncEngine, vault: Vault, config: ReviewConfig) -> None:
        self._engine = engine
        self._vault = vault
        self._config = config

    # --- accounts (the CLI) ---------------------------------------------------------------
    async def add(self, username: str, password: str, role: str, tenant_id: int | None,
                  actor: str) -> str:
        """Create an account; returns the otpauth:// URI of its TOTP secret (shown once)."""
        if role not in ROLES:
            raise InvalidValue(f"Role must be one of {', '.join(ROLES)}.")
        if not username or len(username) > 200 or any(c.isspace() for c in username):
            raise InvalidValue("A username is 1-200 characters without spaces.")
        if len(password) < MIN_PASSWORD:
            raise InvalidValue(f"A reviewer's password has at least {MIN_PASSWORD} "
                               "characters.")
        secret = totp.new_secret()
        sealed, key_id = self._vault.seal(secret, seal_context(username))
        try:
            async with self._engine.begin() as conn:
                await conn.execute(reviewers.insert().values(
                    username=username, password_hash=hash_password(password), role=role,
                    tenant_id=tenant_id, sealed_totp=sealed, key_id=key_id, created_by=actor,
                    created_at=datetime.now(UTC)))
                await audit.write(conn, [audit.row("reviewer.added", actor=actor,
                                                   tenant_id=tenant_id, username=username,
                                                   role=role)])
        except IntegrityError:
            raise Conflict(f"Reviewer '{username}' exists already.") from None
        return totp.provisioning_uri(secret, username)

    async def listing(self) -> list[Any]:
        async with self._engine.connect() as conn:
            return list((await conn.execute(sa.select(
                reviewers.c.username, reviewers.c.role, reviewers.c.tenant_id,
                reviewers.c.locked_until, reviewers.c.last_login_at).order_by(
                reviewers.c.username))).all())

    async def remove(self, username: str, actor: str) -> None:
        async with self._engine.begin() as conn:
            row = await self._row(conn, username)
            await conn.execute(review_sessions.delete().where(
                review_sessions.c.reviewer_id == row.id))
            await conn.execute(reviewers.delete().where(reviewers.c.id == row.id))
            await audit.write(conn, [audit.row("reviewer.removed", actor=actor,
                                               tenant_id=row.tenant_id, username=username)])

    async def unlock(self, username: str, actor: str) -> None:
        async with self._engine.begin() as conn:
            row = await self._row(conn, username)
            await conn.execute(reviewers.update().where(reviewers.c.id == row.id).values(
                failed_logins=0, locked_until=None))
            await audit.write(conn, [audit.row("reviewer.unlocked", actor=actor,
                                               tenant_id=row.tenant_id, username=username)])

    async def current_code(self, username: str) -> str:
        """The code of this moment (for `gateway user code`, development only)."""
        async with self._engine.connect() as conn:
            row = await self._row(conn, username)
        secret = self._vault.open(row.sealed_totp, row.key_id, seal_context(username))
        return totp.code_at(secret, totp.current_step())

    async def _row(self, conn: Any, username: str) -> Any:
        row = (await conn.execute(sa.select(reviewers).where(
            reviewers.c.username == username))).first()
        if row is None:
            raise NotFound(f"Reviewer '{username}' does not exist.")
        return row

    # --- signing in -----------------------------------------------------------------------
    async def sign_in(self, username: str, password: str, code: str,
                      now: datetime | None = None) -> tuple[str, Session]:
        """A new session's cookie token and the session, or SignInRefused (the failure is
        counted and audited first: it is committed, not rolled back with the refusal)."""
        now = now or datetime.now(UTC)
        refused: SignInRefused | None = None
        async with self._engine.begin() as conn:
            row = (await conn.execute(sa.select(reviewers).where(
                reviewers.c.username == username))).first()
            if row is None:
                verify_password(password, DUMMY_HASH)  # the same time as a known name
                raise SignInRefused()
            actor = f"reviewer:{username}"
            locked = aware(row.locked_until)
            if locked is not None and locked > now:
                await audit.write(conn, [audit.row("reviewer.sign-in-locked", actor=actor,
                                                   tenant_id=row.tenant_id)])
                refused = SignInRefused(locked=True)
            else:
                secret = self._vault.open(row.sealed_totp, row.key_id, seal_context(username))
                step = totp.matching_step(secret, code, row.totp_last_step, now.timestamp())
                if not verify_password(password, row.password_hash) or step is None:
                    refused = await self._failed(conn, row, now)
                else:
                    token, session = await self._open(conn, row, step, now)
        if refused is not None:
            raise refused
        return token, session

    async def _failed(self, conn: Any, row: Any, now: datetime) -> SignInRefused:
        failures = row.failed_logins + 1
        lock = failures >= self._config.lockout_failures
        await conn.execute(reviewers.update().where(reviewers.c.id == row.id).values(
            failed_logins=0 if lock else failures,
            locked_until=now + timedelta(minutes=self._config.lockout_minutes) if lock
            else None))
        await audit.write(conn, [audit.row(
            "reviewer.locked" if lock else "reviewer.sign-in-failed",
            actor=f"reviewer:{row.username}", tenant_id=row.tenant_id, failures=failures)])
        return SignInRefused(locked=lock)

    async def _open(self, conn: Any, row: Any, step: int, now: datetime
                    ) -> tuple[str, Session]:
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        await conn.execute(reviewers.update().where(reviewers.c.id == row.id).values(
            failed_logins=0, locked_until=None, totp_last_step=step, last_login_at=now))
        await conn.execute(review_sessions.insert().values(
            token_hash=_digest(token), reviewer_id=row.id, csrf=csrf, created_at=now,
            last_seen_at=now, expires_at=now + timedelta(hours=self._config.session_hours)))
        await audit.write(conn, [audit.row("reviewer.signed-in",
                                           actor=f"reviewer:{row.username}",
                                           tenant_id=row.tenant_id)])
        return token, Session(_reviewer(row), csrf)

    async def session(self, token: str, now: datetime | None = None) -> Session | None:
        """The live session of a cookie token (its idle clock restarted), or None."""
        if not token or len(token) > 100:
            return None
        now = now or datetime.now(UTC)
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(
                review_sessions.c.id, review_sessions.c.csrf, review_sessions.c.last_seen_at,
                review_sessions.c.expires_at, reviewers.c.id.label("rid"),
                reviewers.c.username, reviewers.c.role, reviewers.c.tenant_id).join(
                reviewers, reviewers.c.id == review_sessions.c.reviewer_id).where(
                review_sessions.c.token_hash == _digest(token)))).first()
        if row is None:
            return None
        last_seen, expires = aware(row.last_seen_at), aware(row.expires_at)
        assert last_seen is not None and expires is not None
        idle = timedelta(minutes=self._config.idle_minutes)
        if now >= expires or now - last_seen >= idle:
            await self.sign_out(token)
            return None
        if now - last_seen >= _TOUCH_EVERY:
            async with self._engine.begin() as conn:
                await conn.execute(review_sessions.update().where(
                    review_sessions.c.id == row.id).values(last_seen_at=now))
        return Session(Reviewer(row.rid, row.username, row.role, row.tenant_id), row.csrf)

    async def sign_out(self, token: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(review_sessions.delete().where(
                review_sessions.c.token_hash == _digest(token)))
