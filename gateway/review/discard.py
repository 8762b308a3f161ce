"""The delivery report a discarded (or expired) held message's sender gets.

A release goes on through the hand-off (`submission/releases.py`).
"""

from __future__ import annotations

from gateway.config import Config
from gateway.delivery import dsn
from gateway.delivery.queue import CopyKind, NewCopy, QueueStore, State
from gateway.review.held import HeldMessage


def discard_report(held: HeldMessage, message: bytes | None, config: Config,
                   why: str = "discarded after review") -> bytes:
    """The report a discarded (or expired) message's sender gets: which recipients, the
    category of the reason (the check), never the body."""
    return dsn.build(
        reporting_mta=config.smtp.hostname, queue_id=held.queue_id, sender=held.envelope_from,
        arrival=held.created_at,
        recipients=[dsn.RecipientStatus(r, "failed", "5.7.1",
                                        f"550 5.7.1 Held for review ({held.check_name}) "
                                        "and not released") for r in held.recipients],
        original=message, headers_only=True, reason=why)


async def queue_discard_report(queue: QueueStore, held: HeldMessage, message: bytes | None,
                               config: Config, why: str = "discarded after review") -> None:
    if not held.envelope_from:
        return
    await queue.add([NewCopy(held.queue_id, held.tenant_id, held.mailbox_id, "",
                             held.envelope_from, State.DEFERRED, 0, "2.0.0", "report queued",
                             kind=CopyKind.DSN)], discard_report(held, message, config, why))
