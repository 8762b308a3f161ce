"""Typed per-session and per-transaction state, instead of ad-hoc attributes on aiosmtpd's."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiosmtpd.smtp import Envelope, Session

from gateway.directory.records import Mailbox, Principal, Tenant
from gateway.protocol.replies import Reply


class GatewaySession(Session):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.counted_tenant: int | None = None  # holds a place in this tenant's session cap

    @property
    def client_ip(self) -> str:
        """The client: the one a trusted load balancer's PROXY header names, else the peer.
        Behind a PROXY `LOCAL`/`UNKNOWN` header (the balancer's own health check) there is
        no client: "" matches no IP credential."""
        if self.proxy_data is not None:
            return str(self.proxy_data.src_addr) if self.proxy_data.src_addr else ""
        return self.peer[0] if isinstance(self.peer, tuple) else ""

    # aiosmtpd sets this deprecated attribute on AUTH and logs a warning each time; the
    # gateway reads `auth_data` only.
    @property
    def login_data(self) -> object:
        return self._login_data

    @login_data.setter
    def login_data(self, value: object) -> None:
        self._login_data = value  # type: ignore[assignment]  # aiosmtpd annotates it None

    @property
    def principal(self) -> Principal | None:
        data = self.auth_data
        return data if isinstance(data, Principal) else None


@dataclass(frozen=True, slots=True)
class Suppressed:
    """A recipient accepted at RCPT only to be reported (the tenant's accept-and-report):
    never relayed, listed in one delivery report and a `suppressed` event."""

    recipient: str  # the validated bare form
    reply: Reply  # what `refuse` would have answered, e.g. 550 5.7.1 ...
    check: str  # the check that refused it
    erased: bool  # an erasure entry: named by digest only, in the report and the event


class GatewayEnvelope(Envelope):
    def __init__(self) -> None:
        super().__init__()
        self.tenant: Tenant | None = None
        self.mailbox: Mailbox | None = None
        self.sender: str = ""  # validated bare form of MAIL FROM
        self.recipients: list[str] = []  # validated bare forms, in RCPT order
        self.suppressed: list[Suppressed] = []  # accepted to be reported, never relayed
        self.message_id: str | None = None  # as the relayed copies carry it (set at DATA)
        self.eightbit_declared = False  # BODY=8BITMIME
