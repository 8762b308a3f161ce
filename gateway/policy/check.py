"""The check interface: a stage, a stable name, and `check(tx) -> Verdict`."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar, Protocol

from gateway.config import Config
from gateway.directory.cache import DirectoryCache
from gateway.directory.records import Mailbox, Principal, Tenant
from gateway.lawful.decider import LawfulBasis
from gateway.limits.breakers import Breakers
from gateway.optout.suppressions import Suppressions
from gateway.policy.message import Message
from gateway.policy.verdict import Verdict


class Stage(enum.Enum):
    MAIL = "mail"  # once per transaction, at MAIL FROM
    RCPT = "rcpt"  # once per recipient, before DATA: refuse as early as the protocol allows
    DATA = "data"  # once per message


@dataclass(frozen=True, slots=True)
class Transaction:
    """A read-only view of the RFC 5321 mail transaction as far as it has got.

    Checks never change it; changes to the message go out as `Edit`s.
    """

    principal: Principal
    tenant: Tenant
    envelope_from: str
    mailbox: Mailbox | None = None  # known after MAIL
    recipient: str = ""  # RCPT stage: the recipient being checked, as the client sent it
    recipients: tuple[str, ...] = ()  # DATA stage: accepted recipients, validated bare form
    message: Message | None = None  # DATA stage
    smtputf8: bool = False

    @property
    def tenant_id(self) -> int:
        return self.tenant.id


class Check(Protocol):
    name: ClassVar[str]  # stable kebab-case id; it is in audit rows, so never rename it
    stage: ClassVar[Stage]
    # True when `check` awaits I/O: it runs under its timeout. A check that never awaits runs
    # without one (a timeout fires only at an await; arming it would cost, not protect).
    waits: ClassVar[bool]

    async def check(self, tx: Transaction) -> Verdict: ...


@dataclass(frozen=True, slots=True)
class PolicyContext:
    """What checks may use, handed to every check's constructor."""

    config: Config
    directory: DirectoryCache
    suppressions: Suppressions
    breakers: Breakers | None = None  # reputation breakers (limits/breakers.py)
    lawful: LawfulBasis | None = None  # the lawful-basis decision (lawful/decider.py)
