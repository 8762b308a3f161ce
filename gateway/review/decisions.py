"""A reviewer's decision on a held message, the one place the CLI, the review pages and the
admin API carry it out: release (the running gateway queues the copies), discard (the sender
gets its report), or a note. Each is audited under the actor by the held store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gateway.config import Config
from gateway.delivery.queue import QueueStore
from gateway.errors import Conflict
from gateway.review.discard import queue_discard_report
from gateway.review.held import HELD, HeldMessage, HeldStore

Action = Literal["release", "discard", "note"]
ACTIONS: tuple[Action, ...] = ("release", "discard", "note")


def action_named(text: str, allowed: tuple[Action, ...] = ACTIONS) -> Action | None:
    """The action a form or request names, if it is one of `allowed`."""
    return next((a for a in allowed if a == text), None)


@dataclass(frozen=True)
class HeldDecisions:
    held: HeldStore
    queue: QueueStore  # where a discarded message's report to its sender goes
    config: Config

    async def decide(self, held_id: int, action: Action, actor: str,
                     reason: str) -> HeldMessage:
        """Carry out one decision; the held store refuses (Conflict) a message no longer
        held and (InvalidValue) an empty reason."""
        if action == "release":
            return await self.held.request_release(held_id, actor, reason)
        if action == "discard":
            decided = await self.held.discard(held_id, actor, reason)
            body = await self.held.body(held_id, "review:discard-report")
            await queue_discard_report(self.queue, decided, body, self.config)
            return decided
        return await self.held.note(held_id, actor, reason)

    async def decide_all(self, messages: list[HeldMessage], action: Action, actor: str,
                         reason: str) -> list[int]:
        """Release or discard each message still held; the ids decided, in order."""
        done = []
        for message in messages:
            if message.status != HELD:
                continue
            try:
                await self.decide(message.id, action, actor, reason)
            except Conflict:  # decided meanwhile by another reviewer: theirs stands
                continue
            done.append(message.id)
        return done

    async def still_held(self, tenant_id: int, check_name: str | None) -> list[HeldMessage]:
        """Every held message of a tenant (optionally of one check), oldest first."""
        chosen: list[HeldMessage] = []
        after = 0
        while page := await self.held.listing(tenant_id, HELD, check_name, 500, after):
            chosen.extend(page)
            after = page[-1].id
        return chosen
