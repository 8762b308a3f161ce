"""Reading the replies and bounces that land in connected Gmail and Microsoft 365 mailboxes.

Each round, for every mailbox on a gmail or microsoft upstream and every folder of
`[feedback] inbox_folders`, one node takes a lease on the folder (`inbox_state`), logs in
with the mailbox's access token (the token broker's, same refresh rules as sending) and
reads what arrived since the last round. Progress is the folder's UIDVALIDITY and the next
UID, stored after every message, so nothing is read twice across restarts or nodes, and a
crash re-reads at most the message it was on.

The first reading of a folder (or a folder whose UIDVALIDITY changed) starts at the day of
the oldest copy the sent index holds for that mailbox: older mail cannot match anything.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from datetime import UTC, date, datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.config import OAUTH_UPSTREAM_KINDS, Config
from gateway.directory.cache import DirectoryCache
from gateway.directory.records import Mailbox
from gateway.errors import StoreError, VaultError
from gateway.feedback import imap
from gateway.feedback.apply import Arrival, FeedbackApplier
from gateway.store.engine import aware
from gateway.store.schema import inbox_state, sent_messages
from gateway.vault.tokens import AccessToken, TokenBroker, TokenUnavailable

log = logging.getLogger("gateway.inbox")

LEASE_SECONDS = 300
MAX_BATCHES = 5  # per folder and round; the rest waits for the next round


def node_name() -> str:
    return f"{socket.gethostname()[:40]}/{os.getpid()}/{secrets.token_hex(3)}"


class InboxState:
    """Leases and progress per (mailbox, folder), shared by every node."""

    def __init__(self, engine: AsyncEngine, owner: str) -> None:
        self._engine = engine
        self.owner = owner

    async def lease(self, mailbox_id: int, folder: str) -> imap.Position | None:
        """Take the folder's lease; its position, or None if another node holds it."""
        now = int(time.time())
        s = inbox_state.c
        for _ in range(2):
            async with self._engine.begin() as conn:
                taken = (await conn.execute(inbox_state.update().where(
                    s.mailbox_id == mailbox_id, s.folder == folder,
                    sa.or_(s.lease_until < now, s.lease_owner == self.owner)).values(
                    lease_owner=self.owner, lease_until=now + LEASE_SECONDS).returning(
                    s.uidvalidity, s.next_uid))).first()
                if taken is not None:
                    return imap.Position(taken.uidvalidity, taken.next_uid)
                exists = (await conn.execute(sa.select(s.mailbox_id).where(
                    s.mailbox_id == mailbox_id, s.folder == folder))).first()
            if exists is not None:
                return None
            try:
                async with self._engine.begin() as conn:
                    await conn.execute(inbox_state.insert().values(
                        mailbox_id=mailbox_id, folder=folder, uidvalidity=0, next_uid=0,
                        lease_owner=self.owner, lease_until=now + LEASE_SECONDS,
                        updated_at=datetime.now(UTC)))
                return imap.Position(0, 0)
            except IntegrityError:
                continue  # another node made the row first: try its lease
        return None

    async def advance(self, mailbox_id: int, folder: str, position: imap.Position) -> bool:
        """Store progress while holding the lease; False if the lease was lost."""
        s = inbox_state.c
        async with self._engine.begin() as conn:
            done = await conn.execute(inbox_state.update().where(
                s.mailbox_id == mailbox_id, s.folder == folder,
                s.lease_owner == self.owner).values(
                uidvalidity=position.uidvalidity, next_uid=position.next_uid,
                lease_until=int(time.time()) + LEASE_SECONDS, updated_at=datetime.now(UTC)))
        return bool(done.rowcount)

    async def release(self, mailbox_id: int, folder: str) -> None:
        s = inbox_state.c
        async with self._engine.begin() as conn:
            await conn.execute(inbox_state.update().where(
                s.mailbox_id == mailbox_id, s.folder == folder,
                s.lease_owner == self.owner).values(lease_owner=None, lease_until=0))


class InboxReader:
    def __init__(self, config: Config, engine: AsyncEngine, directory: DirectoryCache,
                 broker: TokenBroker, applier: FeedbackApplier,
                 owner: str | None = None) -> None:
        self._config = config
        self._engine = engine
        self._directory = directory
        self._broker = broker
        self._applier = applier
        self.state = InboxState(engine, owner or node_name())

    def mailboxes(self) -> list[Mailbox]:
        """Mailboxes whose replies land at a provider the gateway can read."""
        found = []
        for mailbox in self._directory.all_mailboxes():
            upstream = self._config.upstreams.get(mailbox.upstream)
            if upstream is not None and upstream.kind in OAUTH_UPSTREAM_KINDS \
                    and mailbox.status in ("active", "paused"):
                found.append(mailbox)
        return found

    async def run_once(self) -> int:
        """One round over every mailbox and folder; how many messages were read."""
        read = 0
        for mailbox in self.mailboxes():
            for folder in self._config.feedback.inbox_folders:
                try:
                    read += await self._folder(mailbox, folder)
                except (StoreError, SQLAlchemyError, VaultError, OSError) as exc:
                    log.warning("inbox not read", extra={
                        "mailbox_id": mailbox.id, "error": type(exc).__name__})
        return read

    async def _folder(self, mailbox: Mailbox, folder: str) -> int:
        position = await self.state.lease(mailbox.id, folder)
        if position is None:
            return 0  # another node reads it now
        try:
            return await self._read(mailbox, folder, position)
        finally:
            await self.state.release(mailbox.id, folder)

    async def _first_day(self, mailbox_id: int) -> date | None:
        """The day of the oldest copy sent through the mailbox: where a first reading
        starts. Asked only then (it scans the mailbox's part of the sent index)."""
        async with self._engine.connect() as conn:
            first = (await conn.execute(sa.select(sa.func.min(sent_messages.c.sent_at)).where(
                sent_messages.c.mailbox_id == mailbox_id))).scalar()
        return (aware(first) or first).date() if first is not None else None

    async def _read(self, mailbox: Mailbox, folder: str, position: imap.Position) -> int:
        upstream = self._config.upstreams[mailbox.upstream]
        target = imap.ImapTarget.of(upstream)
        token = await self._token(mailbox)
        if token is None:
            return 0
        read = 0
        since = await self._first_day(mailbox.id) if position.next_uid == 0 else None
        for _ in range(MAX_BATCHES):
            try:
                batch = await self._batch(mailbox, target, token, folder, position, since)
                if batch is not None and position.uidvalidity \
                        and batch.uidvalidity != position.uidvalidity:
                    log.warning("inbox folder rebuilt (UIDVALIDITY changed): reading it again "
                                "from the oldest sent copy", extra={"mailbox_id": mailbox.id})
                    position = imap.Position(0, 0)
                    since = await self._first_day(mailbox.id)
                    batch = await self._batch(mailbox, target, token, folder, position, since)
            except imap.ImapFailed as exc:
                log.warning("inbox unreachable", extra={"mailbox_id": mailbox.id,
                                                        "error": str(exc)})
                return read
            if batch is None:
                return read
            acted = []
            for uid, raw in batch.messages:
                arrival = Arrival.inbox(mailbox.tenant_id, mailbox.id)
                try:
                    applied = await self._applier.apply(raw, arrival)
                except (StoreError, SQLAlchemyError, VaultError, OSError):
                    raise  # not now: the message is read again next round
                except Exception as exc:
                    # a message nothing can read must not stop the mailbox behind it; only
                    # the error's type is logged (its text may quote the message)
                    log.error("inbox message not understood; skipped", extra={
                        "mailbox_id": mailbox.id, "uid": uid, "error": type(exc).__name__})
                else:
                    if applied.kind != "ignored":
                        acted.append(uid)
                position = imap.Position(batch.uidvalidity, uid + 1)
                if not await self.state.advance(mailbox.id, folder, position):
                    return read  # the lease passed to another node
                read += 1
            last = max([u for u, _ in batch.messages] + batch.skipped, default=0)
            if batch.skipped:
                log.warning("inbox messages too big to read", extra={
                    "mailbox_id": mailbox.id, "count": len(batch.skipped)})
            # nothing (more) to read: start after the last UID seen, or at UIDNEXT
            next_uid = max(position.next_uid if position.uidvalidity == batch.uidvalidity
                           else 0, last + 1, batch.uidnext if not batch.more else 0)
            position = imap.Position(batch.uidvalidity, next_uid)
            if not await self.state.advance(mailbox.id, folder, position):
                return read
            if acted and self._directory.setting(mailbox.tenant_id, "inbox_labelling") == "yes":
                await self._label(mailbox, target, token, folder, batch.uidvalidity, acted)
            if not batch.more:
                return read
        return read

    async def _token(self, mailbox: Mailbox, rejected: AccessToken | None = None
                     ) -> AccessToken | None:
        try:
            return await self._broker.access_token(mailbox.id, mailbox.tenant_id, rejected)
        except TokenUnavailable as exc:
            # a mailbox never connected is normal (debug); a lost connection is news
            log.log(logging.DEBUG if exc.state == "not-connected" else logging.INFO,
                    "inbox not read: no access token",
                    extra={"mailbox_id": mailbox.id, "state": exc.state})
            return None

    async def _batch(self, mailbox: Mailbox, target: imap.ImapTarget, token: AccessToken,
                     folder: str, position: imap.Position, since: date | None
                     ) -> imap.Batch | None:
        batch_size = self._config.feedback.inbox_batch
        for attempt in (1, 2):
            try:
                return await asyncio.to_thread(imap.read, target, token.username, token.token,
                                               folder, position, since, batch_size)
            except imap.LoginRefused:
                if attempt == 2:
                    break
                fresh = await self._token(mailbox, rejected=token)  # revoked early: once
                if fresh is None:
                    return None
                token = fresh
        log.warning("inbox login refused", extra={"mailbox_id": mailbox.id})
        return None

    async def _label(self, mailbox: Mailbox, target: imap.ImapTarget, token: AccessToken,
                     folder: str, uidvalidity: int, uids: list[int]) -> None:
        try:
            await asyncio.to_thread(imap.label, target, token.username, token.token, folder,
                                    uidvalidity, uids)
        except (imap.ImapFailed, imap.LoginRefused) as exc:
            log.warning("inbox messages not labelled", extra={
                "mailbox_id": mailbox.id, "error": type(exc).__name__})
