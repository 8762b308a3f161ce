"""Sending limits per mailbox and per tenant: messages per minute, hour and day, and
recipients per day, counted across every node; and a cap on one tenant's concurrent SMTP
sessions on a node.

At MAIL FROM a sender already at a limit gets `450 4.7.1` before sending any data; at the
end of DATA, the message is counted against every window at once, or, if it would go over
one, refused with `450 4.7.1` and counted nowhere. The reply names the window and when it
resets: the client keeps the message and tries again then; nothing is dropped.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from gateway.config import Config
from gateway.directory.records import Mailbox, Tenant
from gateway.limits.counters import Count, Counters
from gateway.protocol.replies import Reply

_WINDOWS = (("messages_per_minute", 60, "this minute"),
            ("messages_per_hour", 3600, "this hour"), ("messages_per_day", 86400, "today"))


class SendingLimits:
    def __init__(self, config: Config, counters: Counters,
                 upstream_kind: dict[str, str]) -> None:
        self._config = config
        self._counters = counters
        self._kinds = upstream_kind  # upstream name -> kind (gmail, microsoft, smtp, ...)
        self._sessions: Counter[int] = Counter()

    def _mailbox_limits(self, mailbox: Mailbox) -> Any:
        kind = self._kinds.get(mailbox.upstream, "smtp")
        return getattr(self._config.limits, kind, self._config.limits.smtp)

    def _counts(self, tenant: Tenant, mailbox: Mailbox, recipients: int,
                now: float) -> list[tuple[Count, str]]:
        counts = []
        shown = mailbox.address if mailbox.address.isascii() else "this mailbox"
        for who, key, limits in ((f"mailbox {shown}", f"m{mailbox.id}",
                                  self._mailbox_limits(mailbox)),
                                 (f"tenant {tenant.name}", f"t{tenant.id}",
                                  self._config.limits.tenant)):
            for field, seconds, name in _WINDOWS:
                limit = getattr(limits, field)
                if limit:
                    start = int(now // seconds * seconds)
                    counts.append((Count(f"{key}:msg:{seconds}", start, seconds, 1, limit),
                                   f"{who} sent its {limit} messages {name}"))
            if limits.recipients_per_day and recipients:
                start = int(now // 86400 * 86400)
                counts.append((Count(f"{key}:rcpt:86400", start, 86400, recipients,
                                     limits.recipients_per_day),
                               f"{who} reached its {limits.recipients_per_day} recipients "
                               "today"))
        return counts

    async def check(self, tenant: Tenant, mailbox: Mailbox,
                    now: float | None = None) -> Reply | None:
        """At MAIL FROM: refuse a sender already at a limit (nothing is counted)."""
        counts = self._counts(tenant, mailbox, 1, time.time() if now is None else now)
        over = await self._counters.peek([c for c, _ in counts])
        return _reply(over, counts)

    async def count(self, tenant: Tenant, mailbox: Mailbox, recipients: int,
                    now: float | None = None) -> Reply | None:
        """At the end of DATA: count the message everywhere, or refuse it (counted nowhere)."""
        counts = self._counts(tenant, mailbox, recipients, time.time() if now is None else now)
        over = await self._counters.hit([c for c, _ in counts])
        return _reply(over, counts)

    # --- sessions on this node ---------------------------------------------------------
    def open_session(self, tenant: Tenant) -> Reply | None:
        cap = self._config.limits.tenant_sessions
        if cap and self._sessions[tenant.id] >= cap:
            return Reply(450, "4.7.1", f"Too many concurrent sessions for tenant "
                                       f"{tenant.name} (at most {cap}); try again shortly")
        self._sessions[tenant.id] += 1
        return None

    def close_session(self, tenant_id: int) -> None:
        self._sessions[tenant_id] -= 1
        if self._sessions[tenant_id] <= 0:
            del self._sessions[tenant_id]

    async def close(self) -> None:
        await self._counters.close()


def _reply(over: Count | None, counts: list[tuple[Count, str]]) -> Reply | None:
    if over is None:
        return None
    why = next(text for c, text in counts if c is over)
    resets = datetime.fromtimestamp(over.resets_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Reply(450, "4.7.1", f"Sending limit reached: {why}; try again after {resets}")
