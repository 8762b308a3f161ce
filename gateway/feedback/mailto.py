"""The gateway's inbound listener: an unauthenticated SMTP listener that only takes mail for
`unsubscribe@`, `postmaster@`, `abuse@` and `fbl@` (complaint reports to a copy's
CFBL-Address, feedback/complaints.py) at the gateway's link domains, and for the VERP
return paths (`bounce+<handle>@`) of copies it sent (feedback/verp.py).

It is its own server class with no path to any upstream: nothing it receives is relayed,
and it never sends a bounce (a refusal is an SMTP reply, nothing more). A message to an
unsubscribe address carries the token in its subject (`?subject=unsubscribe%20<token>`);
the token names the recipient to suppress, so a forged From changes nothing. A bounce to a
return path is taken only if its handle names a copy in the sent index (checked at RCPT), and
acts only on that copy (feedback/apply.py).

Addresses are matched exactly after parsing: the percent hack (`a%b@`), source routes
(`@a:b@c`), bang paths (`a!b@`) and quoted local parts are refused. STARTTLS is offered;
message size, messages per minute per /24 or /48, and open connections have their own caps.
"""

from __future__ import annotations

import asyncio
import logging
import mailbox
import re
import ssl
import time
from collections.abc import Callable
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path
from typing import Any

from aiosmtpd.proxy_protocol import ProxyData
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.config import UnsubscribeConfig
from gateway.directory.address import FEEDBACK_LOCAL_PART
from gateway.errors import NetworkError, StoreError, VaultError
from gateway.feedback.apply import Arrival, FeedbackApplier
from gateway.feedback.complaints import ComplaintReports
from gateway.feedback.sent import SentCopy
from gateway.feedback.verp import PREFIX, ReturnPaths
from gateway.limits.attempts import InvalidAttempts
from gateway.observability.logs import anonymize_ip
from gateway.optout.record import OptOuts
from gateway.optout.token import InvalidToken, TokenSealer
from gateway.protocol.line_discipline import data_fault, guard_commands

log = logging.getLogger("gateway.mailto")

LOCAL_PARTS = ("unsubscribe", "postmaster", "abuse", FEEDBACK_LOCAL_PART)
_TOKEN = re.compile(r"\b([a-z2-7]{40,700})\b", re.IGNORECASE)
_HEADERS = BytesHeaderParser(policy=compat32)

OK = "250 2.0.0 Ok"
UNSUBSCRIBED = "250 2.0.0 Unsubscribed"
NO_SUCH_USER = "550 5.1.1 No such mailbox here"
NOT_OURS = "550 5.7.1 Not a domain of this server; relaying denied"
BAD_SYNTAX = "553 5.1.3 Address form not accepted (no %, !, source routes or quoted parts)"
BAD_TOKEN = "550 5.7.1 The unsubscribe request carries no valid token in its subject"
TOO_FAST = "421 4.7.0 Too many messages from your network, try again later"
TOO_MANY = "421 4.7.0 Too many connections, try again later"
BUSY = "451 4.3.0 Cannot record the request now, try again later"


def check_address(raw: str, domains: frozenset[str]) -> tuple[str, str | None]:
    """(local part, error reply or None) for a RCPT address as the client wrote it."""
    address = raw.strip()
    if address.startswith("<") and address.endswith(">"):
        address = address[1:-1].strip()
    if address.startswith("@") or ":" in address:
        return "", BAD_SYNTAX  # source route
    if address.startswith('"') or "%" in address or "!" in address:
        return "", BAD_SYNTAX
    if address.lower() == "postmaster":
        return "postmaster", None  # RFC 5321 s 4.5.1: <postmaster> with no domain
    local, at, domain = address.rpartition("@")
    if not at or not local or "@" in local or not domain:
        return "", BAD_SYNTAX
    if domain.lower() not in domains:
        return "", NOT_OURS
    if local.lower() not in LOCAL_PARTS and not ReturnPaths.looks_like(local):
        return "", NO_SUCH_USER
    return local.lower(), None


class Bounces:
    """The VERP and complaint side of the listener: which copy a return path names, and
    what its bounce says (handles are checked at RCPT so a forged one is refused before any
    data); what a complaint report to `fbl@` is about."""

    def __init__(self, paths: ReturnPaths, engine: AsyncEngine, applier: FeedbackApplier,
                 domain: Callable[[], str], complaints: ComplaintReports) -> None:
        self._paths = paths
        self._engine = engine
        self._applier = applier
        self._domain = domain
        self._complaints = complaints

    async def complaint(self, content: bytes) -> str:
        try:
            await self._complaints.read(content)
        except NetworkError:
            log.warning("complaint report not checked: DNS did not answer")
            return BUSY
        except (StoreError, VaultError, OSError, SQLAlchemyError):
            log.exception("complaint report not recorded")
            return BUSY
        return OK

    async def copy_for(self, local: str, domain: str) -> SentCopy | None:
        if domain.lower() != self._domain():
            return None
        return await self._paths.copy_for(self._engine, local)

    async def apply(self, content: bytes, copies: list[SentCopy]) -> str:
        try:
            for copy in copies:
                await self._applier.apply(content, Arrival.verp(copy))
        except (StoreError, VaultError, OSError, SQLAlchemyError):
            log.exception("bounce not recorded")
            return BUSY
        return OK


class MailtoSMTP(SMTP):
    """One session on the mailto listener."""

    def __init__(self, handler: MailtoHandler, hostname: str, config: UnsubscribeConfig,
                 tls_context: ssl.SSLContext | None) -> None:
        super().__init__(handler, hostname=hostname, ident="ESMTP",
                         data_size_limit=config.mailto_max_message_size, decode_data=False,
                         tls_context=tls_context, require_starttls=False, timeout=60,
                         auth_required=False,
                         # behind a balancer (port 25 -> this listener): the PROXY header first
                         proxy_protocol_timeout=5 if config.mailto_proxy_protocol else None)
        self._smtp_methods = guard_commands(self, 50)
        self._mailto = handler

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._mailto.connections += 1
        if self._mailto.connections > self._mailto.config.mailto_max_connections:
            transport.write(f"{TOO_MANY}\r\n".encode())  # type: ignore[attr-defined]
            transport.close()

    def connection_lost(self, error: Exception | None) -> None:
        self._mailto.connections -= 1
        super().connection_lost(error)

    async def smtp_RCPT(self, arg: str) -> None:
        # The raw argument, before aiosmtpd normalises it: routes and quoting are visible here.
        if arg and arg[:3].upper() == "TO:":
            rest = arg[3:].strip()
            end = rest.find(">")
            raw = rest[:end + 1] if rest.startswith("<") and end > 0 else rest.split(" ")[0]
            _, error = check_address(raw, self._mailto.domains())
            if error is not None and self.envelope is not None \
                    and self.envelope.mail_from is not None:
                await self.push(error)
                return
        await super().smtp_RCPT(arg)


class MailtoHandler:
    def __init__(self, config: UnsubscribeConfig, sealer: TokenSealer, optouts: OptOuts,
                 domains: Callable[[], frozenset[str]], postmaster_dir: Path,
                 bounces: Bounces | None = None,
                 is_balancer: Callable[[str], bool] = lambda peer: False) -> None:
        self.config = config
        self._bounces = bounces
        self._sealer = sealer
        self._optouts = optouts
        self.domains = domains
        self._postmaster_dir = postmaster_dir
        self._rate = InvalidAttempts(config.mailto_rate)
        self.connections = 0
        self.is_balancer = is_balancer  # may this peer send a PROXY header?

    async def handle_PROXY(self, server: SMTP, session: Session, envelope: Envelope,
                           proxy_data: ProxyData) -> bool:
        """A PROXY header is believed only from one of `smtp.load_balancers`."""
        peer = session.peer[0] if isinstance(session.peer, tuple) else ""
        if not self.is_balancer(peer) or not proxy_data.valid:
            log.warning("PROXY header refused", extra={"client": anonymize_ip(peer),
                                                       "listener": "mailto"})
            return False
        return True

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, mail_options: list[str]) -> str:
        proxied = session.proxy_data.src_addr if session.proxy_data else None
        network = anonymize_ip(str(proxied) if proxied else
                               session.peer[0] if session.peer else "")
        if self._rate.over(network, time.monotonic()):
            return TOO_FAST
        envelope.mail_from = address
        return OK

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        local, error = check_address(address, self.domains())
        if error is not None:
            return error
        if local.startswith(PREFIX):
            copy = None
            if self._bounces is not None:
                try:
                    copy = await self._bounces.copy_for(local, address.rpartition("@")[2])
                except (StoreError, SQLAlchemyError, OSError, VaultError):
                    log.exception("return path not checked")
                    return BUSY
            if copy is None:
                log.info("bounce to an unknown return path")
                return NO_SUCH_USER
            envelope.bounce_copies = [*getattr(envelope, "bounce_copies", []), copy]  # type: ignore[attr-defined]
            envelope.rcpt_tos.append("bounce@")
            return OK
        envelope.rcpt_tos.append(f"{local}@")
        return OK

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        fault = data_fault(content)
        if fault is not None:  # what a later hop could read as two messages is not read
            return str(fault)
        kinds = {r.split("@", 1)[0] for r in envelope.rcpt_tos}
        reply = OK
        if kinds & {"postmaster", "abuse"}:
            await asyncio.to_thread(self._keep_for_ops, content)
        if "unsubscribe" in kinds:
            reply = await self._unsubscribe(content)
        if FEEDBACK_LOCAL_PART in kinds and self._bounces is not None:
            reported = await self._bounces.complaint(content)
            if reported != OK:
                reply = reported
        copies = getattr(envelope, "bounce_copies", [])
        if copies and self._bounces is not None:
            bounced = await self._bounces.apply(content, copies)
            if bounced != OK:
                reply = bounced
        return reply

    def _keep_for_ops(self, content: bytes) -> None:
        """Postmaster and abuse mail: kept in a Maildir for ops (never relayed)."""
        self._postmaster_dir.parent.mkdir(parents=True, exist_ok=True)
        mailbox.Maildir(self._postmaster_dir, create=True).add(content)
        log.info("postmaster mail kept", extra={"size": len(content)})

    async def _unsubscribe(self, content: bytes) -> str:
        headers = _HEADERS.parsebytes(content)
        try:
            subject = str(make_header(decode_header(headers.get("subject", ""))))
        except (UnicodeError, LookupError, ValueError):
            subject = str(headers.get("subject", ""))
        for candidate in _TOKEN.findall(subject):
            try:
                claims = self._sealer.open(candidate)
            except InvalidToken:
                if not self._sealer.newer_version(candidate):
                    continue
                await self._sealer.refresh()
                try:
                    claims = self._sealer.open(candidate)
                except InvalidToken:
                    continue
            try:
                await self._optouts.record(claims, "mailto")
            except (StoreError, VaultError, OSError):
                log.exception("mailto opt-out not recorded")
                return BUSY
            return UNSUBSCRIBED
        log.info("mailto unsubscribe without a valid token")
        return BAD_TOKEN


def factory(handler: MailtoHandler, hostname: str, tls: ssl.SSLContext | None
            ) -> Callable[[], Any]:
    return lambda: MailtoSMTP(handler, hostname, handler.config, tls)
