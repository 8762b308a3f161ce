"""Reputation circuit breakers: a tenant, a sending domain, a mailbox or a campaign whose
complaint, hard-bounce or policy-block rate passes its threshold stops sending (`451 4.7.1`
naming the breaker) until a compliance reviewer resumes it. The tenant, the envelope
sender's domain and the mailbox answer at MAIL FROM; the header-From domain (when it is
another of the tenant's domains) and the campaign (when the tool names one) after DATA.

Counting is cheap on the hot path: each node adds a message's outcomes to counts in memory
and, every `sync_seconds`, adds them to the shared counters the sending limits use (hour
and day buckets, in the database or Redis), evaluates the scopes that had a bad outcome
(rates over the last 24 hours and the last 7 days, each only above its minimum volume),
and reads every breaker's state — so a trip reaches every node within two rounds.

- complaint rate = complaints ÷ copies delivered to providers that send this deployment
  per-message complaint reports (`[breakers] feedback_providers`);
- hard-bounce rate (5.1.x) and policy-block rate (5.7.x) ÷ copies relayed (the gateway's
  own refusals and accept-and-report recipients never reach these counts);
- an authentication refusal (`5.7.515`, RFC 7372's 5.7.20-26) pauses the sending domain at
  once and suppresses nobody.

A resume starts a new generation: the counters are named by it, so the windows start at
the resume. Every transition is an audit row, a tenant event (and so a webhook) and, for
warn and trip, an ops alert.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway import background
from gateway.audit import trail as audit
from gateway.audit.trail import AuditTrail
from gateway.config import Config
from gateway.directory import address as addr
from gateway.directory.cache import DirectoryCache
from gateway.directory.records import Mailbox
from gateway.errors import Conflict, InvalidValue, NotFound
from gateway.limits.counters import Count, Counters
from gateway.protocol import replies
from gateway.protocol.replies import Reply
from gateway.store.schema import breakers as t

log = logging.getLogger("gateway.breakers")

CLOSED, WARN, OPEN = "closed", "warn", "open"
RELAYED, TO_FEEDBACK, COMPLAINTS, BOUNCES, BLOCKS = (
    "relayed", "fbl", "complaints", "bounces", "blocks")
METRICS = (RELAYED, TO_FEEDBACK, COMPLAINTS, BOUNCES, BLOCKS)
AUTHENTICATION = "authentication"
# RFC 7372 (5.7.20-26: DKIM, SPF, reverse DNS, several failed) and Microsoft's 5.7.515
# (the sending domain does not meet the required authentication level)
AUTH_FAILURES = frozenset({"5.7.20", "5.7.21", "5.7.22", "5.7.23", "5.7.24", "5.7.25",
                           "5.7.26", "5.7.515"})
HOUR, DAY = 3600, 86400
_WINDOWS = (("24h", HOUR, 24), ("7d", DAY, 7))  # (name, bucket, buckets)
SCOPE_KINDS = {"t": "tenant", "d": "domain", "m": "mailbox", "c": "campaign"}
NO_CAMPAIGN = bytes(8)


def campaign_key(campaign: str | None) -> bytes:
    """8 bytes naming a campaign the tool named (NO_CAMPAIGN for none): the campaign
    breaker's scope, and what a copy's complaint reference carries (feedback/cfbl.py)."""
    if not campaign:
        return NO_CAMPAIGN
    return hashlib.sha256(f"campaign|{campaign}".encode()).digest()[:8]


def campaign_scope(tenant_id: int, key: bytes) -> str | None:
    return f"c{tenant_id}.{key.hex()}" if key and key != NO_CAMPAIGN else None


@dataclass(frozen=True, slots=True)
class Breaker:
    """One scope's breaker as stored: `scope` is `t<tenant id>`, `d<domain id>`,
    `m<mailbox id>` or `c<tenant id>.<campaign key>` (`label`: the campaign's name)."""

    id: int
    tenant_id: int
    scope: str
    state: str
    metric: str
    rate: float  # a fraction: 0.004 is 0.4 %
    window: str
    generation: int
    changed_at: datetime
    changed_by: str
    label: str = ""

    @property
    def kind(self) -> str:
        return SCOPE_KINDS[self.scope[0]]


def _breaker(row: Any) -> Breaker:
    at = row.changed_at if row.changed_at.tzinfo else row.changed_at.replace(tzinfo=UTC)
    return Breaker(row.id, row.tenant_id, row.scope, row.state, row.metric, row.rate,
                   row.window, row.generation, at, row.changed_by, row.label or "")


@dataclass(frozen=True, slots=True)
class ScopeRates:
    """One scope's rates over one window, with its thresholds (fractions)."""

    scope: str
    name: str  # as describe() says it
    state: str  # closed, warn or open
    relayed: int
    to_feedback: int
    complaint_rate: float
    bounce_rate: float
    block_rate: float
    complaint_trip: float
    complaint_warn: float
    bounce_trip: float
    block_trip: float


@dataclass(frozen=True, slots=True)
class Outcome:
    """One copy handed upstream: its recipient's domain and the status upstream gave."""

    recipient_domain: str
    delivered: bool
    status: str  # the enhanced status code, "" if none


class Breakers:
    def __init__(self, config: Config, engine: AsyncEngine, counters: Counters,
                 directory: DirectoryCache, audit_trail: AuditTrail) -> None:
        self.config = config
        self._providers = frozenset(config.breakers.feedback_providers)
        self._engine = engine
        self._counters = counters
        self._directory = directory
        self._audit = audit_trail
        self._states: dict[str, Breaker] = {}  # every stored breaker, by scope
        self._pending: Counter[tuple[str, int, str]] = Counter()  # (scope, gen, metric)
        self._dirty: set[tuple[int, str]] = set()  # (tenant id, scope) with a bad outcome
        self._labels: dict[str, str] = {}  # campaign scope -> the campaign's name, seen here
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def reconfigure(self, config: Config) -> None:
        self.config = config
        self._providers = frozenset(config.breakers.feedback_providers)

    # --- the scopes of a mailbox ---------------------------------------------------------
    def scopes(self, tenant_id: int, mailbox: Mailbox | None) -> list[str]:
        """The tenant, the mailbox's domain and the mailbox: the scopes MAIL FROM answers."""
        scopes = [f"t{tenant_id}"]
        if mailbox is not None:
            domain_id = self._directory.domain_id(addr.domain_of(mailbox.address))
            if domain_id is not None:
                scopes.append(f"d{domain_id}")
            scopes.append(f"m{mailbox.id}")
        return scopes

    def message_scopes(self, tenant_id: int, from_domain: str, campaign: str | None
                       ) -> list[str]:
        """The scopes answered after DATA: the header-From domain (one of the tenant's)
        and the campaign the tool named."""
        scopes = []
        domain_id = self._directory.domain_id(from_domain) if from_domain else None
        if domain_id is not None:
            scopes.append(f"d{domain_id}")
        named = campaign_scope(tenant_id, campaign_key(campaign))
        if named is not None and campaign:
            if "@" not in campaign:  # a name that could be an address is never kept or shown
                self._labels.setdefault(named, campaign[:200])
            scopes.append(named)
        return scopes

    def describe(self, scope: str) -> str:
        """The scope as a person names it: no recipient, only the sender's own names."""
        if scope[0] == "c":
            found = self._states.get(scope)
            label = (found.label if found is not None else "") or self._labels.get(scope)
            return f"campaign {label}" if label and label.isprintable() \
                else f"campaign {scope.partition('.')[2]}"
        kind, ref = scope[0], int(scope[1:])
        if kind == "t":
            tenant = self._directory.tenant(ref)
            return f"tenant {tenant.name}" if tenant else f"tenant {ref}"
        if kind == "m":
            mailbox = self._directory.mailbox_by_id(ref)
            return f"mailbox {mailbox.address}" if mailbox and mailbox.address.isascii() \
                else f"mailbox {ref}"
        name = self._directory.domain_name(ref)
        return f"domain {name}" if name else f"domain {ref}"

    # --- the check at MAIL FROM ----------------------------------------------------------
    def tripped(self, tenant_id: int, mailbox: Mailbox | None) -> Reply | None:
        """`451 4.7.1` naming the first open breaker of the MAIL FROM scopes (from memory)."""
        return self.open_among(self.scopes(tenant_id, mailbox))

    def open_among(self, scopes: Sequence[str]) -> Reply | None:
        """`451 4.7.1` naming the first open breaker of `scopes` (from memory)."""
        if not self.config.breakers.enabled:
            return None
        for scope in scopes:
            found = self._states.get(scope)
            if found is not None and found.state == OPEN:
                return self.reply(found)
        return None

    def reply(self, breaker: Breaker) -> Reply:
        what = {COMPLAINTS: "complaint-rate", BOUNCES: "bounce-rate", BLOCKS: "block-rate",
                AUTHENTICATION: "authentication"}.get(breaker.metric, breaker.metric)
        rate = "" if breaker.metric == AUTHENTICATION else \
            f" ({breaker.rate * 100:.2f} % over {breaker.window})"
        return replies.BREAKER_OPEN.with_text(
            f"Sending paused: the {what} breaker of {self.describe(breaker.scope)} "
            f"tripped{rate}; a compliance reviewer must resume it (breaker {breaker.id})")

    # --- counting --------------------------------------------------------------------------
    async def answered(self, tenant_id: int, mailbox: Mailbox, outcomes: Sequence[Outcome],
                       message_scopes: Sequence[str] = ()) -> None:
        """Count copies upstream answered (delivered or refused), in memory, for the
        mailbox's scopes and the message's (`message_scopes`); an authentication refusal
        among them pauses the sending domain at once."""
        if not self.config.breakers.enabled or not outcomes:
            return
        counts: Counter[str] = Counter()
        auth = []
        for o in outcomes:
            counts[RELAYED] += 1
            if o.delivered:
                if o.recipient_domain.lower() in self._providers:
                    counts[TO_FEEDBACK] += 1
            elif o.status.startswith("5.1."):
                counts[BOUNCES] += 1
            elif o.status in AUTH_FAILURES:
                auth.append(o.status)
            elif o.status.startswith("5.7."):
                counts[BLOCKS] += 1
        self._add(tenant_id, _union(self.scopes(tenant_id, mailbox), message_scopes), counts)
        for status in auth:
            await self.authentication_failed(tenant_id, mailbox, status)

    def mailbox(self, mailbox_id: int) -> Mailbox | None:
        return self._directory.mailbox_by_id(mailbox_id)

    def feedback(self, tenant_id: int, mailbox_id: int, metric: str,
                 message_scopes: Sequence[str] = ()) -> None:
        """A complaint, or a bounce or block reported later by DSN, about a sent copy (and,
        when a complaint reference names them, its header-From domain and campaign)."""
        if self.config.breakers.enabled:
            mailbox = self._directory.mailbox_by_id(mailbox_id)
            self._add(tenant_id, _union(self.scopes(tenant_id, mailbox), message_scopes),
                      Counter({metric: 1}))

    def _add(self, tenant_id: int, scopes: list[str], counts: Counter[str]) -> None:
        bad = any(counts[m] for m in (COMPLAINTS, BOUNCES, BLOCKS))
        for scope in scopes:
            generation = self._generation(scope)
            for metric, n in counts.items():
                if n:
                    self._pending[(scope, generation, metric)] += n
            if bad:
                self._dirty.add((tenant_id, scope))

    def _generation(self, scope: str) -> int:
        found = self._states.get(scope)
        return found.generation if found is not None else 0

    # --- the round: flush, evaluate, read ------------------------------------------------
    async def run_once(self, now: float | None = None) -> None:
        """Add this node's counts to the shared ones, evaluate the scopes that had a bad
        outcome, and read every breaker's state."""
        async with self._lock:
            now = time.time() if now is None else now
            await self._flush(now)
            dirty, self._dirty = self._dirty, set()
            for tenant_id, scope in sorted(dirty):
                await self._evaluate(tenant_id, scope, now)
            await self.refresh()

    async def _flush(self, now: float) -> None:
        pending, self._pending = self._pending, Counter()
        counts = []
        for (scope, generation, metric), n in sorted(pending.items()):
            for _, bucket, buckets in _WINDOWS:
                start = int(now // bucket * bucket)
                counts.append(Count(_key(scope, generation, metric, bucket), start, bucket,
                                    n, 0, keep=bucket * buckets))
        try:
            await self._counters.hit(counts)
        except Exception:
            self._pending.update(pending)  # counted next round
            raise

    async def _rates(self, scope: str, generation: int, now: float
                     ) -> dict[str, dict[str, int]]:
        """Per window, each metric's total over its buckets."""
        counts: list[Count] = []
        where: list[tuple[str, str]] = []
        for window, bucket, buckets in _WINDOWS:
            first = int(now // bucket * bucket) - (buckets - 1) * bucket
            for metric in METRICS:
                for start in range(first, first + buckets * bucket, bucket):
                    counts.append(Count(_key(scope, generation, metric, bucket), start,
                                        bucket, 0, 0))
                    where.append((window, metric))
        totals: dict[str, dict[str, int]] = {w: dict.fromkeys(METRICS, 0) for w, _, _ in
                                             _WINDOWS}
        for (window, metric), used in zip(where, await self._counters.used(counts),
                                          strict=True):
            totals[window][metric] += used
        return totals

    def _thresholds(self, tenant_id: int) -> dict[str, float]:
        """Fractions; a tenant's own settings are stricter or equal (settings.py clamps)."""
        settings = self._directory.setting
        cfg = self.config.breakers
        return {COMPLAINTS: settings(tenant_id, "breaker_complaint_trip_percent") / 100,
                BOUNCES: settings(tenant_id, "breaker_bounce_trip_percent") / 100,
                BLOCKS: settings(tenant_id, "breaker_block_trip_percent") / 100,
                "warn": cfg.complaint_warn_percent / 100}

    async def _evaluate(self, tenant_id: int, scope: str, now: float) -> None:
        current = self._states.get(scope)
        if current is not None and current.state == OPEN:
            return
        if self._directory.tenant(tenant_id) is None:
            return
        generation = current.generation if current is not None else 0
        totals = await self._rates(scope, generation, now)
        limits = self._thresholds(tenant_id)
        cfg = self.config.breakers
        worst: tuple[str, str, float, str] | None = None  # (state, metric, rate, window)
        for window, n in totals.items():
            found = []
            if n[TO_FEEDBACK] >= cfg.complaint_min_volume:
                found.append((COMPLAINTS, n[COMPLAINTS] / n[TO_FEEDBACK]))
            if n[RELAYED] >= cfg.min_volume:
                found += [(BOUNCES, n[BOUNCES] / n[RELAYED]), (BLOCKS, n[BLOCKS] / n[RELAYED])]
            for metric, rate in found:
                if rate > limits[metric]:
                    worst = (OPEN, metric, rate, window)
                    break
                if metric == COMPLAINTS and rate > min(limits["warn"], limits[COMPLAINTS]) \
                        and worst is None:
                    worst = (WARN, metric, rate, window)
            if worst is not None and worst[0] == OPEN:
                break
        if worst is None:
            return
        state, metric, rate, window = worst
        if current is not None and current.state == state:
            return
        await self._transition(tenant_id, scope, state, metric, rate, window, "breakers",
                               expect=current)

    async def scope_rates(self, tenant_id: int, window: str = "24h",
                          now: float | None = None) -> list[ScopeRates]:
        """The current rates of the tenant, each of its domains and mailboxes, and the
        campaigns that have a breaker: what the review pages draw and /metrics exports."""
        now = time.time() if now is None else now
        if self._directory.tenant(tenant_id) is None:  # gone, or not yet in this node's view
            return []
        scopes = [f"t{tenant_id}"]
        scopes += [f"d{i}" for _, i in self._directory.tenant_domains(tenant_id)]
        scopes += sorted(f"m{m.id}" for m in self._directory.all_mailboxes()
                         if m.tenant_id == tenant_id)
        scopes += sorted(s for s, b in self._states.items()
                         if s[0] == "c" and b.tenant_id == tenant_id)
        limits = self._thresholds(tenant_id)
        found = []
        for scope in scopes:
            current = self._states.get(scope)
            n = (await self._rates(scope, current.generation if current else 0, now))[window]
            found.append(ScopeRates(
                scope, self.describe(scope), current.state if current else CLOSED,
                n[RELAYED], n[TO_FEEDBACK],
                n[COMPLAINTS] / n[TO_FEEDBACK] if n[TO_FEEDBACK] else 0.0,
                n[BOUNCES] / n[RELAYED] if n[RELAYED] else 0.0,
                n[BLOCKS] / n[RELAYED] if n[RELAYED] else 0.0,
                limits[COMPLAINTS], min(limits["warn"], limits[COMPLAINTS]),
                limits[BOUNCES], limits[BLOCKS]))
        return found

    def states(self) -> Counter[tuple[str, str]]:
        """How many stored breakers of each (kind, state): closed ones were resumed."""
        return Counter((b.kind, b.state) for b in self._states.values())

    # --- transitions -----------------------------------------------------------------------
    async def authentication_failed(self, tenant_id: int, mailbox: Mailbox,
                                    status: str) -> None:
        """A provider refused the sending domain's authentication: pause the domain."""
        domains = [s for s in self.scopes(tenant_id, mailbox) if s.startswith("d")]
        if self.config.breakers.enabled and domains:
            await self.trip_now(tenant_id, domains[0], AUTHENTICATION, status)

    async def trip_now(self, tenant_id: int, scope: str, metric: str, status: str) -> None:
        """An authentication refusal: pause the scope at once (no rate, no volume)."""
        async with self._lock:
            await self.refresh()
            current = self._states.get(scope)
            if current is not None and current.state == OPEN:
                return
            await self._transition(tenant_id, scope, OPEN, metric, 0.0, "now",
                                   f"upstream:{status}", expect=current)

    async def _transition(self, tenant_id: int, scope: str, state: str, metric: str,
                          rate: float, window: str, actor: str,
                          expect: Breaker | None) -> Breaker | None:
        """Move the scope's breaker to `state` if nobody (another node) did meanwhile;
        the audit row, event and alert are written only by the node that moved it."""
        now = datetime.now(UTC)
        values = {"state": state, "metric": metric, "rate": rate, "window": window,
                  "changed_at": now, "changed_by": actor[:200]}
        async with self._engine.begin() as conn:
            if expect is None:
                try:
                    async with conn.begin_nested():
                        await conn.execute(t.insert().values(
                            tenant_id=tenant_id, scope=scope, generation=0,
                            label=self._labels.get(scope), **values))
                except sa.exc.IntegrityError:
                    return None  # another node made it first
            else:
                done = await conn.execute(t.update().where(
                    t.c.id == expect.id, t.c.state == expect.state,
                    t.c.generation == expect.generation).values(**values))
                if done.rowcount != 1:
                    return None
            row = (await conn.execute(sa.select(t).where(t.c.scope == scope))).one()
        moved = _breaker(row)
        self._states[scope] = moved
        await self._announce(moved, actor)
        return moved

    async def _announce(self, breaker: Breaker, actor: str) -> None:
        name = self.describe(breaker.scope)
        detail: dict[str, Any] = {
            "breaker": breaker.id, "scope": breaker.kind, "name": name,
            "metric": breaker.metric, "rate": round(breaker.rate, 6), "window": breaker.window,
            "generation": breaker.generation}
        event = {OPEN: "breaker.tripped", WARN: "breaker.warned",
                 CLOSED: "breaker.resumed"}[breaker.state]
        await self._audit.record(
            [audit.row(event, actor=actor, tenant_id=breaker.tenant_id, **detail)],
            [audit.event(event.replace(".", "_"), tenant_id=breaker.tenant_id, **detail)])
        extra = {"tenant_id": breaker.tenant_id, "breaker": breaker.id,
                 "scope": breaker.kind, "metric": breaker.metric,
                 "rate_percent": round(breaker.rate * 100, 4), "window": breaker.window}
        if breaker.state == OPEN:
            log.warning("reputation breaker tripped", extra={**extra, "alert": "ops"})
        elif breaker.state == WARN:
            log.warning("reputation breaker warns", extra={**extra, "alert": "ops"})
        else:
            log.info("reputation breaker resumed", extra=extra)

    async def resume(self, breaker_id: int, actor: str, reason: str) -> Breaker:
        """Close an open (or warning) breaker; its windows start again from now."""
        if not reason.strip():
            raise InvalidValue("Say why (reason).")
        async with self._lock:
            current = await self.get(breaker_id)
            if current.state == CLOSED:
                raise Conflict(f"Breaker {breaker_id} is not open.")
            values = {"state": CLOSED, "metric": current.metric, "rate": 0.0,
                      "window": current.window, "generation": current.generation + 1,
                      "changed_at": datetime.now(UTC), "changed_by": actor[:200]}
            async with self._engine.begin() as conn:
                done = await conn.execute(t.update().where(
                    t.c.id == breaker_id, t.c.generation == current.generation,
                    t.c.state == current.state).values(**values))
                if done.rowcount != 1:
                    raise Conflict(f"Breaker {breaker_id} changed meanwhile; look again.")
            resumed = await self.get(breaker_id)
            self._states[resumed.scope] = resumed
            self._pending = Counter({k: n for k, n in self._pending.items()
                                     if k[0] != resumed.scope})  # the old generation's
            await self._audit.record([audit.row(
                "breaker.resumed", actor=actor, tenant_id=resumed.tenant_id, reason=reason,
                breaker=resumed.id, scope=resumed.kind, name=self.describe(resumed.scope),
                generation=resumed.generation, was=current.state, metric=current.metric)],
                [audit.event("breaker_resumed", tenant_id=resumed.tenant_id,
                             breaker=resumed.id, scope=resumed.kind,
                             name=self.describe(resumed.scope))])
            log.info("reputation breaker resumed", extra={
                "tenant_id": resumed.tenant_id, "breaker": resumed.id})
            return resumed

    # --- reading -----------------------------------------------------------------------
    async def refresh(self) -> None:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(sa.select(t))).all()
        self._states = {r.scope: _breaker(r) for r in rows}

    async def get(self, breaker_id: int) -> Breaker:
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(t).where(t.c.id == breaker_id))).first()
        if row is None:
            raise NotFound(f"Breaker {breaker_id} does not exist.")
        return _breaker(row)

    async def listing(self, tenant_id: int | None = None) -> list[Breaker]:
        query = sa.select(t).order_by(t.c.id)
        if tenant_id is not None:
            query = query.where(t.c.tenant_id == tenant_id)
        async with self._engine.connect() as conn:
            return [_breaker(r) for r in await conn.execute(query)]

    # --- the background round ----------------------------------------------------------
    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._forever(), name="breakers")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):  # what this node counted is not lost
            await self.run_once()

    async def _forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.breakers.sync_seconds)
            try:
                await self.run_once()
            except background.STORE_TROUBLE as exc:  # the store's trouble: no traceback
                log.error("breaker round failed: the store did not answer",
                          extra={"error": type(exc).__name__})
            except Exception:
                log.exception("breaker round failed")


def _union(first: Sequence[str], second: Sequence[str]) -> list[str]:
    return [*first, *(s for s in second if s not in first)]


def _key(scope: str, generation: int, metric: str, bucket: int) -> str:
    return f"brk:{scope}:g{generation}:{metric}:{'h' if bucket == HOUR else 'd'}"
