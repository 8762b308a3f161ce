"""Deliver one accepted message as one upstream copy per recipient, and decide the reply.

The reply rule (synchronous relay, DESIGN.md):
- every copy delivered -> 250 with the queue id;
- no copy delivered -> upstream's answer: a 4xx if any copy got one (the client retries),
  else the 5xx; nothing is kept, because the client still owns the message;
- mixed -> 250; the failed copies are kept durably (sealed) for the delivery queue.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gateway.directory.records import Mailbox
from gateway.smtp import replies
from gateway.smtp.replies import Reply
from gateway.smtp.upstream.base import Copy, DeliveryResult, Outcome, Upstream
from gateway.store.pending import PendingCopy, PendingStore

log = logging.getLogger("gateway.relay")


@dataclass(frozen=True, slots=True)
class RelayResult:
    reply: Reply
    copies: tuple[DeliveryResult, ...]
    kept: int  # failed copies kept for later delivery or a delivery report


class Relay:
    def __init__(self, upstreams: Mapping[str, Upstream], pending: PendingStore) -> None:
        self._upstreams = upstreams
        self._pending = pending

    async def deliver(self, queue_id: str, mailbox: Mailbox, envelope_from: str,
                      recipients: Sequence[str], message: bytes, *, smtputf8: bool,
                      eightbit: bool) -> RelayResult:
        upstream = self._upstreams.get(mailbox.upstream)
        if upstream is None:
            log.error("mailbox names an unknown upstream",
                      extra={"queue_id": queue_id, "upstream": mailbox.upstream})
            return RelayResult(replies.TEMPORARY_FAILURE, (), 0)
        copies = [Copy(envelope_from, r, smtputf8, eightbit) for r in recipients]
        if len(copies) == 1:
            results: tuple[DeliveryResult, ...] = (await upstream.deliver(copies[0], message),)
        else:
            results = tuple(await asyncio.gather(*(upstream.deliver(c, message) for c in copies)))
        delivered = [r for r in results if r.outcome is Outcome.DELIVERED]
        failed = [r for r in results if r.outcome is not Outcome.DELIVERED]
        if not failed:
            return RelayResult(replies.accepted(queue_id), results, 0)
        if not delivered:
            deferred = [r for r in failed if r.outcome is Outcome.DEFERRED]
            return RelayResult((deferred or failed)[0].reply, results, 0)
        await self._pending.add([
            PendingCopy(queue_id, mailbox.tenant_id, mailbox.id, envelope_from, r.recipient,
                        r.outcome.value, r.reply.code, r.reply.status, r.reply.text, smtputf8)
            for r in failed
        ], message)
        return RelayResult(replies.accepted(queue_id), results, len(failed))

    async def close(self) -> None:
        for upstream in self._upstreams.values():
            await upstream.close()
