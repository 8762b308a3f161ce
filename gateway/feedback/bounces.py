"""Hard bounces become suppression entries: an upstream that refuses a recipient with
`5.1.x` (no such mailbox, no such domain) has said the address does not exist, and mailing
it again hurts the sending mailbox's reputation.

A synchronous refusal comes from the gateway's own upstream session, so it needs no
matching against the sent index: the gateway saw it. Only `5.1.x` counts; `5.7.x` is a
refusal of the sender (policy, reputation) and says nothing about the recipient.
"""

from __future__ import annotations

import logging

from gateway.errors import GatewayError
from gateway.feedback.reports import BounceKind, kind_of
from gateway.observability import metrics
from gateway.optout.suppressions import Actor, Suppressions
from suppression.entries import Reason

log = logging.getLogger("gateway.optout")

UPSTREAM = Actor("upstream")


class HardBounces:
    def __init__(self, suppressions: Suppressions) -> None:
        self._suppressions = suppressions

    async def upstream_refused(self, tenant_id: int, recipient: str, status: str,
                               queue_id: str) -> bool:
        """Suppress `recipient` for the tenant if `status` is a hard bounce; True if so.
        A failure is logged, never raised: the message's own outcome stands."""
        if kind_of(status) is not BounceKind.HARD:
            return False
        try:
            await self._suppressions.add(UPSTREAM, tenant_id, recipient, Reason.BOUNCE,
                                         "upstream", note=f"{status} for queue {queue_id}")
        except GatewayError as exc:  # no digest key yet, an address the lists cannot hold
            log.warning("hard bounce not recorded", extra={"queue_id": queue_id,
                                                           "error": type(exc).__name__})
            return False
        metrics.OPT_OUTS.labels("bounce").inc()
        log.info("hard bounce recorded", extra={"tenant_id": tenant_id, "queue_id": queue_id,
                                                "status": status})
        return True
