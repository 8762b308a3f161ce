"""Carrying out reviewers' decisions inside the running gateway.

A release goes on through the hand-off (`handoff.py`): each recipient's compliant copy
(unsubscribe headers, footer, pixels, DKIM: the same Composer as at DATA time) in the
delivery queue, due at once; the queue checks suppression again before sending. An
undecided message past `review.held_days` expires, and its sender gets a report.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from gateway.config import Config
from gateway.delivery.queue import QueueStore
from gateway.directory.cache import DirectoryCache
from gateway.errors import VaultError
from gateway.review.discard import queue_discard_report
from gateway.review.held import HeldStore
from gateway.submission.handoff import Handoff

log = logging.getLogger("gateway.review")  # the name its lines have always had


class ReviewWorker:
    def __init__(self, held: HeldStore, directory: DirectoryCache, handoff: Handoff,
                 queue: QueueStore, config: Config) -> None:
        self._config = config
        self._held = held
        self._directory = directory
        self._handoff = handoff
        self._queue = queue  # expiry reports

    async def run_once(self, now: datetime | None = None) -> int:
        """Releases asked for, then expiries of undecided messages (reported)."""
        done = await self._release()
        now = now or datetime.now(UTC)
        review = self._config.review
        for held, raw in await self._held.expire(now - timedelta(days=review.held_days)):
            try:
                await queue_discard_report(self._queue, held, raw, self._config,
                                           "expired without review")
            except VaultError:  # its tenant was deleted: no one is owed a report any more
                log.info("expired held message not reported: its tenant is gone",
                         extra={"queue_id": held.queue_id, "tenant_id": held.tenant_id})
            done += 1
        return done  # purging old copies is the retention round's (lifecycle/retention.py)

    async def _release(self) -> int:
        taken = await self._held.take_release_requests()
        for held, raw in taken:
            tenant = self._directory.tenant(held.tenant_id)
            mailbox = self._directory.mailbox_by_id(held.mailbox_id)
            if tenant is None or mailbox is None:
                log.error("released message has no tenant or mailbox any more",
                          extra={"queue_id": held.queue_id})
                await self._held.note(held.id, "review", "release failed: the tenant or "
                                      "mailbox no longer exists")
                continue
            await self._handoff.release(held, raw, tenant, mailbox)
        return len(taken)
