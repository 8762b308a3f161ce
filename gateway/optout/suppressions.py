"""The gateway's use of the `suppression` library: who may change which list, the audit
row of every change, and the check the RCPT stage and the queue call.

Rules:
- A caller bound to a tenant works on that tenant's list only. It may ask whether an address
  is on the global list (yes or no, no reason), never list, export or change it: the global
  list holds other tenants' complainers and erasures.
- `unsubscribe`, `complaint` and `erasure` entries are removed only by a compliance (or
  admin) caller not bound to a tenant, or a CLI operator, with a reason and evidence.
- Audit rows name entries by id and digest, never by address.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.access.api_keys import Forbidden
from gateway.directory.store import audit_change
from gateway.errors import InvalidValue, NotFound, VaultError
from gateway.optout.receipts import ReceiptSigner
from gateway.protocol import replies
from gateway.protocol.replies import Reply
from suppression.bulk import Report, write_batches
from suppression.canonical import InvalidAddress, canonical
from suppression.digest import Digester
from suppression.entries import GLOBAL, PROTECTED, Entry, Kind, Match, NewEntry, Reason, Target
from suppression.formats import (
    Bad,
    Defaults,
    FileError,
    Format,
    decoded_lines,
    parse_target,
    read,
)
from suppression.lookup import Lookup, lookup_for
from suppression.parallel import batches_for
from suppression.store import Filters, SuppressionStore

SUPPRESSION_PURPOSE = "suppression-digest"
MAX_NOTE = 500


LAST_EXPIRY = 253402300799  # 9999-12-31T23:59:59Z: every store and datetime holds it


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asks: an API key (role, maybe a tenant) or a CLI operator (role None)."""

    name: str
    role: str | None = None
    tenant_id: int | None = None

    @property
    def is_operator(self) -> bool:
        return self.role is None

    def may_remove_protected(self) -> bool:
        return self.is_operator or (self.tenant_id is None
                                    and self.role in ("compliance", "admin"))


def key_id(key: bytes, version: int) -> str:
    """A public name of the digest key: exports carry it, so digest-only entries go back
    only into an installation holding the same key."""
    fingerprint = hmac.digest(key, b"ocg suppression key id", hashlib.sha256)[:6].hex()
    return f"{SUPPRESSION_PURPOSE}/v{version}/{fingerprint}"


def refusal(match: Match) -> Reply:
    """The 550 for a suppressed recipient: the kind of list, never whose or which entry."""
    if match.scope == GLOBAL:
        return replies.SUPPRESSED_GLOBAL
    return replies.SUPPRESSED[match.reason.value]


def target_of(text: str) -> Target:
    try:
        return parse_target(text)
    except InvalidAddress as exc:
        raise InvalidValue(f"Not an address or domain: {exc}") from None


PURGE_BATCH = 10_000  # entries deleted per transaction: the write lock is held briefly


class Suppressions:
    def __init__(self, engine: AsyncEngine, url: str, schema: str,
                 audit_digest: Callable[[str], str] | None = None,
                 receipts: ReceiptSigner | None = None) -> None:
        self._engine = engine
        self._url = url
        self._schema = schema
        self._store: SuppressionStore | None = None
        self._lookup: Lookup | None = None
        # the audit trail's keyed digest of an address: a search names a person, and the
        # data subject's export finds it by this digest
        self.audit_digest = audit_digest
        self.receipts = receipts  # signs the receipt of an opt-out added here

    def open(self, key: bytes, version: int) -> None:
        """Start with the digest key (from the purpose keys; never rotated)."""
        digester = Digester(key, key_id(key, version))
        self._store = SuppressionStore(digester)
        self._lookup = lookup_for(self._url, self._schema, digester)

    async def close(self) -> None:
        if self._lookup is not None:
            await self._lookup.close()

    @property
    def ready(self) -> bool:
        """Whether the digest key is loaded (else every check fails closed)."""
        return self._store is not None

    @property
    def store(self) -> SuppressionStore:
        if self._store is None:
            raise VaultError("The suppression digest key is not loaded.")
        return self._store

    @property
    def key_id(self) -> str:
        return self.store.digester.key_id

    # --- the check ---------------------------------------------------------------------------
    def digest_of(self, address: str) -> bytes | None:
        """The digest an entry for this address would carry (None: no key loaded yet, or
        not an address the lists can hold)."""
        try:
            return self.store.digester.target(Target(Kind.ADDRESS, canonical(address)))
        except (VaultError, InvalidAddress):
            return None

    async def check(self, tenant_id: int, address: str) -> Match | None:
        """Fails closed: without the key there is no answer (the caller replies 451)."""
        if self._lookup is None:
            raise VaultError("The suppression digest key is not loaded.")
        return await self._lookup.check(tenant_id, canonical(address), int(time.time()))

    async def check_many(self, tenant_id: int, addresses: Sequence[str]) -> list[Match | None]:
        """Every recipient of a message in one lookup (the last check before sending);
        fails closed like `check`."""
        if self._lookup is None:
            raise VaultError("The suppression digest key is not loaded.")
        return await self._lookup.check_many(tenant_id, [canonical(a) for a in addresses],
                                             int(time.time()))

    # --- scopes --------------------------------------------------------------------------
    @staticmethod
    def scope_for(actor: Actor, scope: int) -> int:
        if actor.tenant_id is not None and scope != actor.tenant_id:
            raise Forbidden("A key bound to a tenant works on that tenant's list only.")
        return scope

    # --- changes -------------------------------------------------------------------------
    async def add(self, actor: Actor, scope: int, target_text: str, reason: Reason,
                  source: str, expires_at: int | None = None, note: str = "") -> Entry:
        scope = self.scope_for(actor, scope)
        target = target_of(target_text)
        now = int(time.time())
        if expires_at is not None and expires_at <= now:
            raise InvalidValue("The expiry is in the past.")
        if expires_at is not None and expires_at > LAST_EXPIRY:
            raise InvalidValue("The expiry is after the year 9999.")
        if len(note) > MAX_NOTE:
            raise InvalidValue(f"A note has at most {MAX_NOTE} characters.")
        entry = NewEntry(scope, target, reason, source, now, expires_at, note, actor.name)
        received = datetime.now(UTC)
        async with self._engine.begin() as conn:
            before = await self.store.find(conn, scope, target)
            await self.store.add(conn, [entry], now)
            stored = await self.store.find(conn, scope, target)
            assert stored is not None
            head = await audit_change(conn, actor.name, "suppression.added", scope or None,
                                      entry=stored.id, kind=target.kind.value,
                                      entry_reason=reason.value,
                                      digest=stored.digest.hex(), scope=scope)
            pending: list[int] = []
            if self._receipted(scope, target, reason, before, now):
                assert self.receipts is not None and self.audit_digest is not None
                channel = source if reason is Reason.UNSUBSCRIBE else reason.value
                pending.append(await self.receipts.pend(
                    conn, scope, self.audit_digest(target_text.strip()), channel, received,
                    head, expires_at))
        if pending:
            assert self.receipts is not None
            await self.receipts.complete(self._engine, pending)
        return stored

    def _receipted(self, scope: int, target: Target, reason: Reason, before: Entry | None,
                   now: int) -> bool:
        """Whether adding this entry is an opt-out that gets a signed receipt: one person,
        one tenant, an unsubscribe, bounce or complaint they were not already under."""
        return (self.receipts is not None and self.audit_digest is not None
                and scope != GLOBAL and target.kind is Kind.ADDRESS
                and reason in (Reason.UNSUBSCRIBE, Reason.BOUNCE, Reason.COMPLAINT)
                and not (before is not None and before.reason is reason
                         and before.active(now)))

    async def remove(self, actor: Actor, scope: int, target_text: str, why: str,
                     evidence: str = "") -> Entry:
        scope = self.scope_for(actor, scope)
        target = target_of(target_text)
        async with self._engine.begin() as conn:
            entry = await self.store.find(conn, scope, target)
            if entry is None:
                raise NotFound("No such entry on this list.")
            if not why.strip():
                raise InvalidValue("Say why the entry is removed (--reason).")
            if entry.reason in PROTECTED:
                if not actor.may_remove_protected():
                    raise Forbidden(f"A {entry.reason.value} entry is removed only by a "
                                    "compliance key not bound to a tenant.")
                if not evidence.strip():
                    raise InvalidValue(f"Removing a {entry.reason.value} entry needs evidence "
                                       "(e.g. the ticket of the person's request).")
            await self.store.delete(conn, entry.id)
            # a person's entry names them by audit digest too: the opt-out report ends
            # their opt-out here
            person = self.audit_digest(target_text.strip()) \
                if self.audit_digest is not None and target.kind is Kind.ADDRESS else None
            await audit_change(conn, actor.name, "suppression.removed", scope or None, why,
                               entry=entry.id, kind=entry.kind.value,
                               entry_reason=entry.reason.value, digest=entry.digest.hex(),
                               scope=scope, evidence=evidence, recipient_digest=person)
        return entry

    async def purge_expired(self, actor: Actor, keep_days: float,
                            limit: int = PURGE_BATCH, keep_scopes: Collection[int] = (),
                            now: float | None = None) -> int:
        """Delete up to `limit` entries that expired more than `keep_days` ago (all lists
        but those of `keep_scopes`, tenants under legal hold; an expired entry no longer
        suppresses, this only tidies). Audited with the count."""
        before = int((now if now is not None else time.time()) - keep_days * 86400)
        async with self._engine.begin() as conn:
            removed = await self.store.purge_expired(conn, before, limit, keep_scopes)
            if removed:
                await audit_change(conn, actor.name, "suppression.purged", None,
                                   f"expired before {before}", count=removed,
                                   keep_days=keep_days)
        return removed

    async def import_file(self, actor: Actor, scope: int, open_file: Callable[[], BinaryIO],
                          reason: Reason, fmt: Format | None = None, strict: bool = False,
                          from_line: int = 0,
                          progress: Callable[[Report], None] | None = None) -> Report:
        """Import a file (read twice with `strict`: nothing is written if a row is bad).
        A large file is parsed in a child process while this one writes."""
        scope = self.scope_for(actor, scope)
        now = int(time.time())
        defaults = Defaults(scope, reason, "import", now, actor.name)

        def chunks() -> Iterator[bytes]:
            with open_file() as stream:
                yield from iter(lambda: stream.read(1 << 20), b"")

        try:
            if strict:
                bad = [item for item in read(decoded_lines(chunks()), defaults, fmt)
                       if isinstance(item, Bad)]
                if bad:
                    listed = "; ".join(f"line {b.line}: {b.message}" for b in bad[:20])
                    raise InvalidValue(f"{len(bad)} bad rows; nothing imported (strict): "
                                       f"{listed}")
            batches = batches_for(chunks(), defaults, fmt, self.store, now, from_line)
            report = await write_batches(self._engine, self.store, batches, progress)
        except FileError as exc:
            raise InvalidValue(str(exc)) from None
        async with self._engine.begin() as conn:
            await audit_change(conn, actor.name, "suppression.imported", scope or None,
                               scope=scope, rows=report.rows, written=report.written,
                               bad=report.bad_count, skipped=report.skipped)
        return report

    # --- reads ---------------------------------------------------------------------------
    async def lookup(self, actor: Actor, scope: int, address: str) -> list[Entry]:
        """The entries of one list that match an address (ops' `check`)."""
        scope = self.scope_for(actor, scope)
        try:
            canon = canonical(address)
        except InvalidAddress as exc:
            raise InvalidValue(f"Not an address: {exc}") from None
        async with self._engine.begin() as conn:
            entries = await self.store.matches(conn, [scope], canon)
            now = int(time.time())
            found = [e for e in entries if e.active(now)]
            # a search names a person: audited, by digest
            await audit_change(conn, actor.name, "suppression.searched", scope or None,
                               recipient_digest=self.audit_digest(address.strip())
                               if self.audit_digest else None, scope=scope, found=len(found))
        return found

    async def page(self, actor: Actor, scope: int, filters: Filters, after: int,
                   limit: int) -> list[Entry]:
        scope = self.scope_for(actor, scope)
        async with self._engine.connect() as conn:
            return await self.store.page(conn, [scope], filters, after, limit)

    async def browse(self, actor: Actor, scope: int, filters: Filters, after: int,
                     limit: int) -> list[Entry]:
        """One page of a list for a person (the review pages): like `page`, and audited,
        as a search is; a prefix typed is recorded by its digest, never as written."""
        scope = self.scope_for(actor, scope)
        async with self._engine.begin() as conn:
            entries = await self.store.page(conn, [scope], filters, after, limit)
            await audit_change(
                conn, actor.name, "suppression.browsed", scope or None, scope=scope,
                after=after, shown=len(entries),
                reason_filter=filters.reason.value if filters.reason else None,
                source_filter=filters.source, prefix_digest=self.audit_digest(
                    filters.prefix) if filters.prefix and self.audit_digest else None,
                created_from=filters.created_from, created_until=filters.created_until)
        return entries

    async def stream(self, actor: Actor, scope: int, filters: Filters) -> AsyncIterator[Entry]:
        """Every entry of one list (an export: audited before the first entry)."""
        scope = self.scope_for(actor, scope)
        async with self._engine.begin() as conn:
            await audit_change(conn, actor.name, "suppression.exported", scope or None,
                               scope=scope, reason_filter=filters.reason.value
                               if filters.reason else None)
        async with self._engine.connect() as conn:
            async for entry in self.store.stream(conn, [scope], filters):
                yield entry


def scope_of(tenant_id: int | None) -> int:
    return GLOBAL if tenant_id is None else tenant_id

