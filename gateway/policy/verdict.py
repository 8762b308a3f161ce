"""The one result type every check returns."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.protocol.replies import Reply

if TYPE_CHECKING:
    from gateway.policy.message import Message


class Action(enum.Enum):
    PASS = "pass"  # nothing to say
    FIX = "fix"  # deliver after applying the edits
    HOLD = "hold"  # accept (250), keep durably for review, do not deliver
    REJECT = "reject"  # refuse with `reply` (5xx permanent, 4xx temporary)

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {Action.PASS: 0, Action.FIX: 1, Action.HOLD: 2, Action.REJECT: 3}


@dataclass(frozen=True, slots=True)
class Edit:
    summary: str  # for the audit trail; no personal data
    apply: Callable[[Message], None]  # applied by the pipeline, in order


@dataclass(frozen=True, slots=True)
class Verdict:
    check: str
    action: Action
    reason: str = ""  # for reviewers and the audit trail; never a value from the message
    reply: Reply | None = None  # REJECT only
    edits: tuple[Edit, ...] = ()  # FIX only
    # the recipient is under an erasure entry: whatever records this names them by digest
    # only, so a refused attempt never stores an erased address again
    erased: bool = False

    @classmethod
    def ok(cls, check: str) -> Verdict:
        return cls(check, Action.PASS)

    @classmethod
    def fix(cls, check: str, reason: str, *edits: Edit) -> Verdict:
        return cls(check, Action.FIX, reason, edits=edits)

    @classmethod
    def hold(cls, check: str, reason: str) -> Verdict:
        return cls(check, Action.HOLD, reason)

    @classmethod
    def reject(cls, check: str, reply: Reply, reason: str) -> Verdict:
        return cls(check, Action.REJECT, reason, reply=reply)
