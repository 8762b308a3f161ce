"""GatewayHandler: aiosmtpd's hooks, kept thin. Decisions come from the policy pipeline."""

from __future__ import annotations

import base64
import binascii
import logging
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime

from aiosmtpd.proxy_protocol import ProxyData
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from gateway.audit import trail as audit
from gateway.audit.trail import AuditTrail
from gateway.config import Config
from gateway.directory import address as addr
from gateway.directory.cache import DirectoryCache
from gateway.errors import StoreError, VaultError
from gateway.limits.sending import SendingLimits
from gateway.observability import log_context, metrics
from gateway.observability.logs import anonymize_ip
from gateway.optout.suppressions import refusal
from gateway.policy.check import Stage, Transaction
from gateway.policy.message import Message
from gateway.policy.pipeline import Outcome, Pipeline
from gateway.protocol import replies
from gateway.protocol.line_discipline import data_fault
from gateway.protocol.replies import Reply
from gateway.smtp.auth import Authenticator, AuthStatus
from gateway.smtp.server import GatewaySMTP, names_aiosmtpd_seeks
from gateway.smtp.session import GatewayEnvelope, GatewaySession, Suppressed
from gateway.smtp.suppressed import (
    ACCEPT_AND_REPORT,
    MODE_SETTING,
    REPORTABLE,
    SuppressedReports,
)
from gateway.store.health import WriteHealth
from gateway.submission.handoff import LAWFUL_CHECK, SUPPRESSED_CHECK, Handoff, Submitted
from suppression.entries import Reason

log = logging.getLogger("gateway.smtp")

_QUEUE_ID_ALPHABET = "0123456789BCDFGHJKLMNPQRSTVWXZ"


def new_queue_id() -> str:
    return "".join(secrets.choice(_QUEUE_ID_ALPHABET) for _ in range(12))


class GatewayHandler:
    def __init__(self, config: Config, directory: DirectoryCache, pipeline: Pipeline,
                 authenticator: Authenticator, handoff: Handoff, audit_trail: AuditTrail,
                 digest: Callable[[str], str], limits: SendingLimits | None = None,
                 write_health: WriteHealth | None = None,
                 suppressed: SuppressedReports | None = None) -> None:
        self.config = config
        self._directory = directory
        self._pipeline = pipeline
        self._auth = authenticator
        self._handoff = handoff  # a message taken in whole goes on from here (submission/)
        self._audit = audit_trail
        self._digest = digest  # the audit trail's keyed digest (vault/purpose.AuditDigest)
        self._limits = limits
        self._write_health = write_health
        self._suppressed = suppressed  # accept-and-report (smtp/suppressed.py)
        self.closing = False
        self.in_flight = 0  # DATA transactions being relayed now

    def __dir__(self) -> list[str]:
        return names_aiosmtpd_seeks(self, ("handle_", "auth_"))

    def session_closed(self, session: Session) -> None:
        """The connection is gone: its place in the tenant's session cap is free again."""
        if isinstance(session, GatewaySession) and session.counted_tenant is not None \
                and self._limits is not None:
            self._limits.close_session(session.counted_tenant)
            session.counted_tenant = None

    def digest(self, recipient: str) -> str:
        """Keyed digest of a recipient: how the audit trail names people."""
        return self._digest(recipient)

    def _shutting_down(self, server: SMTP) -> str:
        assert server.transport is not None
        server.loop.call_soon(server.transport.close)
        return str(replies.SHUTTING_DOWN)

    # --- session ---------------------------------------------------------------------------
    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope,
                          hostname: str, responses: list[str]) -> list[str]:
        if self.closing:
            return [self._shutting_down(server)]
        session.host_name = hostname
        self._ip_login(session)
        # RFC 2034: advertise enhanced status codes; every reply after EHLO carries one.
        return [*responses[:-1], "250-ENHANCEDSTATUSCODES", responses[-1]]

    async def handle_HELO(self, server: SMTP, session: Session, envelope: Envelope,
                          hostname: str) -> str:
        if self.closing:
            return self._shutting_down(server)
        session.host_name = hostname
        self._ip_login(session)
        return f"250 {self.config.smtp.hostname}"

    def _ip_login(self, session: Session) -> None:
        assert isinstance(session, GatewaySession)
        if session.authenticated:
            return
        principal = self._auth.ip_principal(session.client_ip)
        if principal is not None:
            session.authenticated = True
            session.auth_data = principal  # type: ignore[assignment]  # annotated None upstream

    async def handle_PROXY(self, server: SMTP, session: Session, envelope: Envelope,
                           proxy_data: ProxyData) -> bool:
        """Believe a PROXY header only from a configured load balancer; anyone else who
        sends one (or a malformed one) is disconnected before the banner."""
        peer = session.peer[0] if isinstance(session.peer, tuple) else ""
        if not self._auth.is_balancer(peer) or not proxy_data.valid:
            log.warning("PROXY header refused", extra={"client": anonymize_ip(peer),
                                                       "trusted": self._auth.is_balancer(peer)})
            return False
        return not isinstance(server, GatewaySMTP) or server.admit_client()

    async def handle_NOOP(self, server: SMTP, session: Session, envelope: Envelope,
                          arg: str) -> str:
        return str(replies.OK)

    async def handle_RSET(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return str(replies.OK)

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return str(replies.BYE)

    async def handle_exception(self, error: Exception) -> str:
        incident = secrets.token_hex(4)
        if isinstance(error, StoreError):  # the store's trouble, not a bug: one line
            log.error("session error: the store failed", extra={
                "incident": incident, "error": type(error.__cause__ or error).__name__})
        elif isinstance(error, VaultError):  # e.g. a tenant's key missing from its store
            log.error("session error: a key is unavailable", extra={
                "incident": incident, "error": type(error).__name__, "alert": "ops"})
            return str(replies.VAULT_UNAVAILABLE)
        else:
            log.error("session error", exc_info=error, extra={"incident": incident})
        return str(replies.TEMPORARY_FAILURE)  # the default would leak "500 (ExcName) text"

    # --- AUTH (RFC 4954), off the event loop -----------------------------------------------
    async def auth_PLAIN(self, server: SMTP, args: list[str]) -> AuthResult:
        if len(args) == 1:
            blob = await server.challenge_auth("")
            if not isinstance(blob, bytes):
                return AuthResult(success=False, handled=True)
        else:
            try:
                blob = base64.b64decode(args[1], validate=True)
            except (binascii.Error, ValueError):
                await server.push(str(replies.AUTH_BAD_BASE64))
                return AuthResult(success=False, handled=True)
        parts = blob.split(b"\0")
        if len(parts) != 3:
            await server.push(str(replies.AUTH_MALFORMED))
            return AuthResult(success=False, handled=True)
        authzid, login, password = parts
        if authzid and authzid != login:  # acting as another user is not offered
            return await self._auth_result(server, b"", b"")
        return await self._auth_result(server, login, password)

    async def auth_LOGIN(self, server: SMTP, args: list[str]) -> AuthResult:
        if len(args) == 1:
            login = await server.challenge_auth("Username:")
            if not isinstance(login, bytes):
                return AuthResult(success=False, handled=True)
        else:
            try:
                login = base64.b64decode(args[1], validate=True)
            except (binascii.Error, ValueError):
                await server.push(str(replies.AUTH_BAD_BASE64))
                return AuthResult(success=False, handled=True)
        password = await server.challenge_auth("Password:")
        if not isinstance(password, bytes):
            return AuthResult(success=False, handled=True)
        return await self._auth_result(server, login, password)

    async def _auth_result(self, server: SMTP, login: bytes, password: bytes) -> AuthResult:
        session = server.session
        assert isinstance(session, GatewaySession)
        try:
            username, secret = login.decode(), password.decode()
        except UnicodeDecodeError:
            username, secret = "", ""
        outcome = await self._auth.check_password(username, secret, session.client_ip)
        if outcome.status is AuthStatus.OK:
            log.info("auth ok", extra={"via": "password",
                                       "client": anonymize_ip(session.client_ip)})
            return AuthResult(success=True, auth_data=outcome.principal,
                              message=str(replies.AUTH_OK))
        if outcome.status is AuthStatus.UNAVAILABLE:  # fail closed, and temporary
            return AuthResult(success=False, handled=False, message=str(replies.AUTH_TEMPORARY))
        log.warning("auth failed", extra={"client": anonymize_ip(session.client_ip),
                                          "locked": outcome.status is AuthStatus.LOCKED})
        if outcome.status is AuthStatus.LOCKED:
            await server.push(str(replies.TOO_MANY_AUTH_FAILURES))
            assert server.transport is not None
            server.transport.close()
            return AuthResult(success=False, handled=True)
        return AuthResult(success=False, handled=False, message=str(replies.AUTH_INVALID))

    # --- envelope --------------------------------------------------------------------------
    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, mail_options: list[str]) -> str:
        reply = await self._mail(server, session, envelope, address, mail_options)
        principal = getattr(session, "principal", None)
        _log_refusal("MAIL", reply, principal.tenant_id if principal else None)
        return reply

    async def _mail(self, server: SMTP, session: Session, envelope: Envelope,
                    address: str, mail_options: list[str]) -> str:
        if self.closing:
            return self._shutting_down(server)
        assert isinstance(session, GatewaySession) and isinstance(envelope, GatewayEnvelope)
        principal = session.principal
        tenant = self._directory.tenant(principal.tenant_id) if principal else None
        if principal is None or tenant is None:
            return str(replies.AUTH_REQUIRED)
        if self._write_health is not None and not self._write_health.writable():
            # nothing accepted now could be recorded: a relayed copy would go out twice
            return str(replies.STORE_UNAVAILABLE)
        smtputf8 = "SMTPUTF8" in mail_options
        size = next((o[5:] for o in mail_options if o.startswith("SIZE=")), "")
        limit = self._directory.setting(tenant.id, "max_message_size")
        if size.isdigit() and int(size) > limit:
            return str(replies.MESSAGE_TOO_BIG)
        tx = Transaction(principal, tenant, address, smtputf8=smtputf8)
        outcome = await self._pipeline.run(Stage.MAIL, tx)
        if outcome.reply is not None:
            await self._record_refusal("sender.refused", tx, outcome)
            return str(outcome.reply)
        mailbox = self._directory.mailbox(addr.normalize(address, smtputf8=smtputf8))
        if self._limits is not None and mailbox is not None:
            if session.counted_tenant is None:
                refused = self._limits.open_session(tenant)
                if refused is not None:
                    return str(refused)
                session.counted_tenant = tenant.id
            refused = await self._limits.check(tenant, mailbox)
            if refused is not None:
                log.info("sending limit", extra={"tenant_id": tenant.id,
                                                 "mailbox_id": mailbox.id, "stage": "MAIL"})
                return str(refused)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        envelope.smtp_utf8 = smtputf8
        envelope.tenant = tenant
        # the check validated this address; the mailbox was looked up by the same normal form
        envelope.mailbox = mailbox
        envelope.sender = envelope.mailbox.address if envelope.mailbox else address
        envelope.eightbit_declared = "BODY=8BITMIME" in mail_options
        return str(replies.SENDER_OK)

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        reply = await self._rcpt(server, session, envelope, address, rcpt_options)
        if reply[:1] in "45":
            tenant = getattr(envelope, "tenant", None)
            _log_refusal("RCPT", reply, tenant.id if tenant else None,
                         recipient_digest=self.digest(address))
        return reply

    async def _rcpt(self, server: SMTP, session: Session, envelope: Envelope,
                    address: str, rcpt_options: list[str]) -> str:
        if self.closing:
            return self._shutting_down(server)
        assert isinstance(session, GatewaySession) and isinstance(envelope, GatewayEnvelope)
        assert session.principal is not None and envelope.tenant is not None
        limit = self._directory.setting(envelope.tenant.id, "max_recipients")
        if len(envelope.recipients) + len(envelope.suppressed) >= limit:
            return str(replies.TOO_MANY_RECIPIENTS)
        tx = Transaction(session.principal, envelope.tenant, envelope.sender,
                         mailbox=envelope.mailbox, recipient=address,
                         smtputf8=envelope.smtp_utf8)
        outcome = await self._pipeline.run(Stage.RCPT, tx)
        if outcome.reply is not None and self._reports(envelope, outcome):
            # accept-and-report: 250 now, never relayed, reported once the message is in
            last = outcome.verdicts[-1]
            envelope.rcpt_tos.append(address)  # aiosmtpd wants one before DATA
            envelope.suppressed.append(Suppressed(
                addr.normalize(address, smtputf8=envelope.smtp_utf8), outcome.reply,
                last.check, last.erased))
            log.info("suppressed recipient accepted to be reported", extra={
                "tenant_id": envelope.tenant.id, "check": last.check,
                "recipient_digest": self.digest(address)})
            return str(replies.RECIPIENT_OK)
        if outcome.reply is not None:
            await self._record_refusal("recipient.refused", tx, outcome,
                                       recipient_digest=self.digest(address))
            return str(outcome.reply)
        envelope.rcpt_tos.append(address)  # aiosmtpd: an implemented hook must do this
        envelope.rcpt_options.extend(rcpt_options)
        envelope.recipients.append(addr.normalize(address, smtputf8=envelope.smtp_utf8))
        return str(replies.RECIPIENT_OK)

    def _reports(self, envelope: GatewayEnvelope, outcome: Outcome) -> bool:
        """Whether this refusal becomes a report: the tenant asked for it, and the check is
        one whose refusal may (a suppression, never syntax, identity or limits)."""
        assert envelope.tenant is not None
        return (self._suppressed is not None and outcome.verdicts[-1].check in REPORTABLE
                and self._directory.setting(envelope.tenant.id, MODE_SETTING)
                == ACCEPT_AND_REPORT)

    async def _record_refusal(self, event: str, tx: Transaction, outcome: Outcome,
                              recipient_digest: str | None = None) -> None:
        last = outcome.verdicts[-1]
        metrics.MESSAGES.labels("refused" if recipient_digest is None else "recipient-refused",
                                last.check).inc()
        reply = str(outcome.reply) if outcome.reply else None
        await self._audit.record([audit.row(
            event, actor=f"login:{tx.principal.username}", tenant_id=tx.tenant_id,
            check_name=last.check, action=last.action.value, reason=last.reason,
            recipient_digest=recipient_digest, reply=reply,
        )], [audit.event("refused", tenant_id=tx.tenant_id, recipient=tx.recipient or None,
                         # the suppression lookup at RCPT found an erasure entry: the
                         # event names them by digest only (events/names.py)
                         erased=last.erased, sender=tx.envelope_from, check=last.check,
                         reply=reply)])

    # --- DATA ------------------------------------------------------------------------------
    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.closing:
            return self._shutting_down(server)
        assert isinstance(session, GatewaySession) and isinstance(envelope, GatewayEnvelope)
        assert session.principal is not None and envelope.tenant is not None
        assert envelope.mailbox is not None
        self.in_flight += 1
        queue_id = new_queue_id()
        try:
            with log_context.bound(queue_id=queue_id):
                reply = await self._data(server, session, envelope, queue_id)
                _log_refusal("DATA", str(reply), envelope.tenant.id, recipient_digests=[
                    self.digest(r) for r in envelope.recipients] if reply.code >= 400 else [])
                if reply.code < 400 and envelope.suppressed:  # the message is in: report
                    await self._report_suppressed(session, envelope, queue_id)
                return str(reply)
        finally:
            self.in_flight -= 1

    async def _data(self, server: SMTP, session: GatewaySession,
                    envelope: GatewayEnvelope, queue_id: str) -> Reply:
        principal, tenant, mailbox = session.principal, envelope.tenant, envelope.mailbox
        assert principal is not None and tenant is not None and mailbox is not None
        raw = envelope.original_content or b""
        actor = f"login:{principal.username}"
        fault = data_fault(raw)
        if fault is not None:  # receivers disagree on where lines (and messages) end
            await self._audit.record([audit.row(
                "message.refused", actor=actor, tenant_id=tenant.id, queue_id=queue_id,
                action="reject", reason=fault.text, reply=str(fault))])
            return fault
        if len(raw) > self._directory.setting(tenant.id, "max_message_size"):
            return replies.MESSAGE_TOO_BIG
        if not envelope.recipients:  # every recipient suppressed: nothing to check or send
            return replies.accepted(queue_id)
        assert isinstance(server, GatewaySMTP)
        tls = server.tls_active
        handed = await self._handoff.submit(Submitted(
            queue_id, principal, tenant, mailbox, envelope.sender, envelope.recipients, raw,
            envelope.smtp_utf8, envelope.eightbit_declared,
            lambda: self._received(session, tls, queue_id)))
        envelope.message_id = handed.message_id
        envelope.suppressed.extend(  # an opt-out that came in during DATA: reported, unsent
            Suppressed(r, refusal(match), SUPPRESSED_CHECK, match.reason is Reason.ERASURE)
            for r, match in handed.late_suppressed)
        envelope.suppressed.extend(  # no lawful basis any more at send time: the same
            Suppressed(r, reply, LAWFUL_CHECK, False) for r, reply in handed.late_refused)
        return handed.reply

    async def _report_suppressed(self, session: GatewaySession, envelope: GatewayEnvelope,
                                 queue_id: str) -> None:
        assert self._suppressed is not None and envelope.tenant is not None
        assert envelope.mailbox is not None and session.principal is not None
        raw = envelope.original_content or b""
        # the relayed copies' Message-ID; parsed here only when nothing was relayed
        message_id = envelope.message_id or Message(raw).value("message-id") or None
        await self._suppressed.report(
            queue_id=queue_id, tenant_id=envelope.tenant.id, mailbox_id=envelope.mailbox.id,
            sender=envelope.sender, actor=f"login:{session.principal.username}",
            suppressed=envelope.suppressed, message=raw, message_id=message_id,
            digest=self.digest)

    def _received(self, session: GatewaySession, tls: bool, queue_id: str) -> str:
        """RFC 5321 s 4.4 trace field, without internal addresses or the client's IP.

        Protocol names per RFC 3848: ESMTP + S (TLS) + A (authenticated).
        """
        helo = "".join(c for c in (session.host_name or "unknown") if c.isalnum() or c in ".-[]:")
        authenticated = session.principal is not None and session.principal.via == "password"
        protocol = "ESMTP" + ("S" if tls else "") + ("A" if authenticated else "")
        return (f"from {helo[:100] or 'unknown'} by {self.config.smtp.hostname} with {protocol} "
                f"id {queue_id}; {format_datetime(datetime.now(UTC))}")

    def set_config(self, config: Config, pipeline: Pipeline) -> None:
        self.config = config
        self._pipeline = pipeline
        self._handoff.reconfigure(config, pipeline)


def _log_refusal(stage: str, reply: str, tenant_id: int | None, *,
                 recipient_digest: str | None = None,
                 recipient_digests: list[str] | None = None) -> None:
    """One info line per refused command (any 4xx or 5xx answer), with the reply code and
    the recipients' digests: how an operator answers "why was this refused?" from the logs
    alone, without an address in them."""
    if reply[:1] not in "45":
        return
    code, _, rest = reply.partition(" ")
    status = rest.split(" ", 1)[0] if rest[:1].isdigit() else ""
    extra: dict[str, object] = {"stage": stage, "code": int(code) if code.isdigit() else code,
                                "status": status, "tenant_id": tenant_id}
    if recipient_digest is not None:
        extra["recipient_digest"] = recipient_digest
    if recipient_digests:
        extra["recipient_digests"] = recipient_digests
    log.info(f"refused at {stage}", extra=extra)
