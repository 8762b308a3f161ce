"""What every upstream does: take one copy (one sender, one recipient) and say what happened."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from gateway.protocol.replies import Reply


class CopyOutcome(enum.Enum):
    DELIVERED = "delivered"
    DEFERRED = "deferred"  # 4xx or connection trouble: try again later
    REFUSED = "refused"  # 5xx: permanent


@dataclass(frozen=True, slots=True)
class Copy:
    """One upstream transaction: the gateway sends one copy per recipient."""

    envelope_from: str
    recipient: str
    smtputf8: bool = False
    eightbit: bool = False
    mailbox_id: int = 0  # whose login to use, for upstreams that log in per mailbox
    tenant_id: int = 0
    queue_id: str = ""  # names the copy in a VERP return path


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    recipient: str
    outcome: CopyOutcome
    reply: Reply  # what the client may be told about this copy

    @classmethod
    def delivered(cls, recipient: str, reply: Reply) -> DeliveryResult:
        return cls(recipient, CopyOutcome.DELIVERED, reply)

    @classmethod
    def failed(cls, recipient: str, reply: Reply) -> DeliveryResult:
        outcome = CopyOutcome.REFUSED if reply.is_permanent else CopyOutcome.DEFERRED
        return cls(recipient, outcome, reply)


class Upstream(Protocol):
    name: str

    async def deliver(self, copy: Copy, message: bytes) -> DeliveryResult: ...

    async def close(self) -> None: ...
