"""An SMTP upstream: a smarthost, Gmail or Microsoft 365. STARTTLS or implicit TLS,
certificates verified, and a login per connection: the operator's shared one, a mailbox's
own password, or a mailbox's OAuth access token (XOAUTH2, RFC 7628 style SASL).

Connections are pooled per login and reused across messages. A reused connection that
turns out to be closed is replaced once, but only before anything of the copy was accepted.
A refused login is tried once more with a fresh credential (an access token revoked early).
"""

from __future__ import annotations

import asyncio
import logging
import ssl

import aiosmtplib
from aiosmtplib import errors as smtp_errors

from gateway.config import UpstreamConfig
from gateway.delivery.upstream import pipelining
from gateway.delivery.upstream.base import Copy, DeliveryResult
from gateway.delivery.upstream.logins import LoginSource, LoginUnavailable, UpstreamLogin
from gateway.feedback.verp import ReturnPaths
from gateway.net.tls import certificate_failure, client_tls_context
from gateway.protocol import replies

log = logging.getLogger("gateway.delivery.upstream")


class _Unreachable(Exception):
    def __init__(self, reply: replies.Reply) -> None:
        self.reply = reply


class SmarthostUpstream:
    def __init__(self, name: str, config: UpstreamConfig, helo_name: str,
                 logins: LoginSource, return_paths: ReturnPaths | None = None) -> None:
        self.name = name
        # `return_path = "verp"`: each copy's own bounce address (feedback/verp.py)
        self._verp = return_paths if config.return_path == "verp" else None
        self._config = config
        self._helo = helo_name
        self._tls = client_tls_context(config.ca_file, config.tls_verify) \
            if config.tls != "none" else None
        if config.tls != "none" and not config.tls_verify:
            log.warning("upstream certificate not checked (tls_verify = false, loopback only)",
                        extra={"upstream": name})
        self._logins = logins
        self._idle: dict[str, list[aiosmtplib.SMTP]] = {}
        self._turns: dict[str, asyncio.Semaphore] = {}  # per login: pool_size at once
        self._closed = False  # after close(), a connection handed back is closed, not kept

    async def _connect(self, copy: Copy, login: UpstreamLogin | None) -> aiosmtplib.SMTP:
        cfg = self._config
        for attempt in (1, 2):
            client = aiosmtplib.SMTP(
                hostname=cfg.host, port=cfg.port, local_hostname=self._helo,
                timeout=cfg.timeout, use_tls=cfg.tls == "implicit",
                start_tls=cfg.tls == "starttls", tls_context=self._tls)
            try:
                await client.connect()
                if client.is_ehlo_or_helo_needed:  # what it offers, before the first copy
                    try:
                        await client.ehlo()
                    except smtp_errors.SMTPHeloError:
                        await client.helo()  # an upstream without ESMTP
                if login is not None:
                    await self._authenticate(client, login)
                return client
            except smtp_errors.SMTPAuthenticationError as exc:
                client.close()
                if attempt == 1 and login is not None and self._logins.retries_rejected:
                    log.warning("upstream refused the login; trying a fresh credential",
                                extra={"upstream": self.name, "mailbox_id": copy.mailbox_id,
                                       "code": exc.code})
                    login = await self._login(copy, rejected=login)
                    continue
                log.error("upstream refused our credentials", extra={
                    "upstream": self.name, "mailbox_id": copy.mailbox_id, "code": exc.code,
                    "alert": "ops"})
                raise _Unreachable(replies.UPSTREAM_AUTH_FAILED) from None
            except (smtp_errors.SMTPException, OSError, ssl.SSLError) as exc:
                client.close()
                if certificate_failure(exc):  # nothing was sent: no login, no message
                    log.error("upstream certificate not trusted", extra={
                        "upstream": self.name, "error": type(exc).__name__, "alert": "ops"})
                    raise _Unreachable(replies.UPSTREAM_TLS_UNTRUSTED) from None
                log.warning("upstream unreachable", extra={"upstream": self.name,
                                                           "error": type(exc).__name__})
                raise _Unreachable(replies.UPSTREAM_UNREACHABLE) from None
            except BaseException:  # cancelled mid-handshake (a stop): no socket left behind
                client.close()
                raise
        raise AssertionError("unreachable")

    @staticmethod
    async def _authenticate(client: aiosmtplib.SMTP, login: UpstreamLogin) -> None:
        if client.is_ehlo_or_helo_needed:
            await client.ehlo()
        if login.token is not None:
            if "xoauth2" not in client.server_auth_methods:
                raise smtp_errors.SMTPAuthenticationError(504, "XOAUTH2 not offered")
            await client.auth_xoauth2(login.username, login.token.token)
        elif login.password is not None:
            await client.login(login.username, login.password)

    async def _login(self, copy: Copy, rejected: UpstreamLogin | None = None
                     ) -> UpstreamLogin | None:
        try:
            return await self._logins.login(copy, rejected)
        except LoginUnavailable as exc:
            raise _Unreachable(exc.reply) from None

    async def _acquire(self, copy: Copy, login: UpstreamLogin | None, key: str
                       ) -> tuple[aiosmtplib.SMTP, bool]:
        idle = self._idle.get(key, [])
        while idle:
            client = idle.pop()
            if client.is_connected:
                return client, True
        return await self._connect(copy, login), False

    def _release(self, client: aiosmtplib.SMTP, key: str) -> None:
        idle = self._idle.setdefault(key, [])
        if client.is_connected and not self._closed and len(idle) < self._config.pool_size:
            idle.append(client)
        else:
            client.close()

    async def deliver(self, copy: Copy, message: bytes) -> DeliveryResult:
        """One copy, over a connection of its login: at most `pool_size` at once per login
        (a destination concurrency limit, as an MTA keeps); a copy beyond waits its turn
        and takes the connection the one before it leaves, instead of opening its own."""
        try:
            login = await self._login(copy)
        except _Unreachable as exc:
            return DeliveryResult.failed(copy.recipient, exc.reply)
        key = login.username if login is not None else ""
        if self._config.pool_size <= 0:
            return await self._deliver(copy, message, login, key)
        turns = self._turns.get(key)
        if turns is None:
            turns = self._turns[key] = asyncio.Semaphore(self._config.pool_size)
        async with turns:
            return await self._deliver(copy, message, login, key)

    async def _deliver(self, copy: Copy, message: bytes, login: UpstreamLogin | None,
                       key: str) -> DeliveryResult:
        try:
            client, reused = await self._acquire(copy, login, key)
        except _Unreachable as exc:
            return DeliveryResult.failed(copy.recipient, exc.reply)
        stage = "mail"
        try:
            if copy.smtputf8 and not client.supports_extension("smtputf8"):
                self._release(client, key)
                return DeliveryResult.failed(copy.recipient, replies.SMTPUTF8_UNSUPPORTED)
            if copy.eightbit and not client.supports_extension("8bitmime"):
                self._release(client, key)
                return DeliveryResult.failed(copy.recipient, replies.EIGHTBIT_UNSUPPORTED)
            sender = copy.envelope_from
            if self._verp is not None and sender and copy.queue_id:
                sender = self._verp.address(copy.queue_id, copy.recipient)  # <> stays <>
            options = []
            if copy.smtputf8:
                options.append("SMTPUTF8")
            if copy.eightbit:
                options.append("BODY=8BITMIME")
            if client.supports_extension("size"):
                options.append(f"SIZE={len(message)}")
            if client.supports_extension("pipelining"):  # RFC 2920: two round trips
                stage = "pipelined"
                if not await self._pipelined(client, reused, copy, sender, options, message):
                    client.close()  # a pooled connection the server had closed: replace it
                    client = await self._connect(copy, login)
                    await self._pipelined(client, False, copy, sender, options, message)
                self._release(client, key)
                return DeliveryResult.delivered(copy.recipient, replies.OK)
            encoding = "utf-8" if copy.smtputf8 else "ascii"  # RFC 6531 addresses
            try:
                await client.mail(sender, options=options, encoding=encoding)
            except smtp_errors.SMTPServerDisconnected:
                if not reused:
                    raise
                client.close()  # a pooled connection the server had closed: replace it once
                client = await self._connect(copy, login)
                await client.mail(sender, options=options, encoding=encoding)
            stage = "rcpt"
            await client.rcpt(copy.recipient, encoding=encoding)
            stage = "data"
            await client.data(message)
        except _Unreachable as exc:
            return DeliveryResult.failed(copy.recipient, exc.reply)
        except smtp_errors.SMTPResponseException as exc:
            if stage == "pipelined":  # which reply refused it
                stage = {smtp_errors.SMTPSenderRefused: "mail",
                         smtp_errors.SMTPRecipientRefused: "rcpt"}.get(type(exc), "data")
            await self._reset(client, key)
            status, text = replies.split_enhanced(exc.message)
            log.info("upstream refused copy", extra={"upstream": self.name, "stage": stage,
                                                     "code": exc.code, "status": status})
            reply = replies.upstream_said(exc.code, status, text)
            return DeliveryResult.failed(copy.recipient, reply)
        except (smtp_errors.SMTPException, OSError, ssl.SSLError) as exc:
            client.close()
            log.warning("upstream dropped the connection", extra={
                "upstream": self.name, "stage": stage, "error": type(exc).__name__})
            return DeliveryResult.failed(copy.recipient, replies.UPSTREAM_DROPPED)
        except BaseException:  # cancelled mid-copy: the connection's state is unknown
            client.close()
            raise
        self._release(client, key)
        return DeliveryResult.delivered(copy.recipient, replies.OK)

    async def _pipelined(self, client: aiosmtplib.SMTP, reused: bool, copy: Copy, sender: str,
                         options: list[str], message: bytes) -> bool:
        """One copy pipelined (pipelining.py); False: a pooled connection turned out closed
        before the upstream said a word, and may be replaced once."""
        sent = await pipelining.send(client, sender, options, copy.recipient, message,
                                     copy.smtputf8, self._config.timeout)
        if not sent and not reused:
            raise smtp_errors.SMTPServerDisconnected("Connection lost")
        return sent

    async def _reset(self, client: aiosmtplib.SMTP, key: str) -> None:
        if not client.is_connected:
            return
        try:
            await client.rset()
        except (smtp_errors.SMTPException, OSError):
            client.close()
            return
        self._release(client, key)

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, {}
        await asyncio.gather(*(self._quit(c) for clients in idle.values() for c in clients))

    @staticmethod
    async def _quit(client: aiosmtplib.SMTP) -> None:
        try:
            await client.quit(timeout=2)
        except (smtp_errors.SMTPException, OSError):
            client.close()
