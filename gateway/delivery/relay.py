"""Deliver one accepted message as one upstream copy per recipient, and decide the reply.

The reply rule (synchronous relay, DESIGN.md):
- every copy delivered -> 250 with the queue id;
- no copy delivered -> upstream's answer: a 4xx if any copy got one (the client retries),
  else the 5xx; nothing is kept, because the client still owns the message;
- mixed -> 250; deferred copies go to the delivery queue, refused ones get a DSN;
- a copy still in flight at the DATA deadline is queued and counts as accepted: the client
  is answered 250 well within its patience (RFC 5321 s 4.5.3.2.6) rather than held open.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gateway.delivery.queue import NewCopy, QueueStore, State
from gateway.delivery.upstream.base import Copy, CopyOutcome, DeliveryResult, Upstream
from gateway.directory.records import Mailbox
from gateway.observability import metrics
from gateway.protocol import replies
from gateway.protocol.replies import Reply

log = logging.getLogger("gateway.relay")

_LATE = replies.Reply(451, "4.4.7", "Upstream slow: copy queued for delivery")


@dataclass(frozen=True, slots=True)
class RelayResult:
    reply: Reply
    copies: tuple[DeliveryResult, ...]
    kept: int  # copies queued for a later attempt or a delivery report


class Relay:
    def __init__(self, upstreams: Mapping[str, Upstream], queue: QueueStore,
                 deadline: float = 60.0, retry_first: float = 60.0) -> None:
        self._upstreams = upstreams
        self._queue = queue
        self.deadline = deadline
        self.retry_first = retry_first

    async def deliver(self, queue_id: str, mailbox: Mailbox, envelope_from: str,
                      recipients: Sequence[str], messages: Sequence[bytes], *, smtputf8: bool,
                      eightbit: bool, message_id: str | None = None) -> RelayResult:
        """`messages` holds each recipient's own copy (its unsubscribe token, signature)."""
        upstream = self._upstreams.get(mailbox.upstream)
        if upstream is None:
            log.error("mailbox names an unknown upstream",
                      extra={"queue_id": queue_id, "upstream": mailbox.upstream})
            return RelayResult(replies.TEMPORARY_FAILURE, (), 0)
        copies = [Copy(envelope_from, r, smtputf8, eightbit, mailbox.id, mailbox.tenant_id,
                       queue_id) for r in recipients]
        tasks = [asyncio.ensure_future(_timed(upstream, mailbox.upstream, c, m))
                 for c, m in zip(copies, messages, strict=True)]
        done, late = await asyncio.wait(tasks, timeout=self.deadline)
        results = tuple(
            t.result() if t in done else DeliveryResult.failed(c.recipient, _LATE)
            for t, c in zip(tasks, copies, strict=True)
        )
        for task in late:
            # The upstream may still accept this copy; the queue will send it again, and
            # that duplicate is the price of never losing an accepted message.
            task.cancel()
        delivered = [r for r in results if r.outcome is CopyOutcome.DELIVERED]
        failed = [r for r in results if r.outcome is not CopyOutcome.DELIVERED]
        if not failed:
            return RelayResult(replies.accepted(queue_id), results, 0)
        if not delivered and not late:
            deferred = [r for r in failed if r.outcome is CopyOutcome.DEFERRED]
            return RelayResult((deferred or failed)[0].reply, results, 0)
        kept = [(r, m) for r, m in zip(results, messages, strict=True)
                if r.outcome is not CopyOutcome.DELIVERED]
        await self._queue.add([
            NewCopy(queue_id, mailbox.tenant_id, mailbox.id, envelope_from, r.recipient,
                    State.REFUSED if r.outcome is CopyOutcome.REFUSED else State.DEFERRED,
                    r.reply.code, r.reply.status, r.reply.text, smtputf8,
                    message_id=message_id)
            for r, _ in kept
        ], [m for _, m in kept],
            first_attempt=datetime.now(UTC) + timedelta(seconds=self.retry_first))
        return RelayResult(replies.accepted(queue_id), results, len(failed))

    async def close(self) -> None:
        for upstream in self._upstreams.values():
            await upstream.close()


async def _timed(upstream: Upstream, name: str, copy: Copy, message: bytes) -> DeliveryResult:
    started = time.perf_counter()
    result = await upstream.deliver(copy, message)
    metrics.UPSTREAM_SECONDS.labels(name, result.outcome.value).observe(
        time.perf_counter() - started)
    return result
