"""An SMTP smarthost: STARTTLS or implicit TLS, password AUTH, certificates verified.

Connections are pooled and reused across messages. A reused connection that turns out to be
closed is replaced once, but only before anything of the copy was accepted.
"""

from __future__ import annotations

import logging
import ssl

import aiosmtplib
from aiosmtplib import errors as smtp_errors

from gateway.config import UpstreamConfig
from gateway.smtp import replies
from gateway.smtp.upstream.base import Copy, DeliveryResult

log = logging.getLogger("gateway.upstream")


def client_tls_context(ca_file: str = "") -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_file or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class _Unreachable(Exception):
    def __init__(self, reply: replies.Reply) -> None:
        self.reply = reply


class SmarthostUpstream:
    def __init__(self, name: str, config: UpstreamConfig, helo_name: str) -> None:
        self.name = name
        self._config = config
        self._helo = helo_name
        self._tls = client_tls_context(config.ca_file) if config.tls != "none" else None
        self._idle: list[aiosmtplib.SMTP] = []

    async def _connect(self) -> aiosmtplib.SMTP:
        cfg = self._config
        client = aiosmtplib.SMTP(
            hostname=cfg.host, port=cfg.port, local_hostname=self._helo, timeout=cfg.timeout,
            use_tls=cfg.tls == "implicit", start_tls=cfg.tls == "starttls",
            tls_context=self._tls, username=cfg.username or None,
            password=cfg.password or None,
        )
        try:
            await client.connect()
        except smtp_errors.SMTPAuthenticationError:
            client.close()
            log.error("upstream refused our credentials", extra={"upstream": self.name})
            raise _Unreachable(replies.UPSTREAM_AUTH_FAILED) from None
        except (smtp_errors.SMTPException, OSError, ssl.SSLError) as exc:
            client.close()
            log.warning("upstream unreachable", extra={"upstream": self.name,
                                                       "error": type(exc).__name__})
            raise _Unreachable(replies.UPSTREAM_UNREACHABLE) from None
        return client

    async def _acquire(self) -> tuple[aiosmtplib.SMTP, bool]:
        while self._idle:
            client = self._idle.pop()
            if client.is_connected:
                return client, True
        return await self._connect(), False

    def _release(self, client: aiosmtplib.SMTP) -> None:
        if client.is_connected and len(self._idle) < self._config.pool_size:
            self._idle.append(client)
        else:
            client.close()

    async def deliver(self, copy: Copy, message: bytes) -> DeliveryResult:
        try:
            client, reused = await self._acquire()
        except _Unreachable as exc:
            return DeliveryResult.failed(copy.recipient, exc.reply)
        stage = "mail"
        try:
            if copy.smtputf8 and not client.supports_extension("smtputf8"):
                self._release(client)
                return DeliveryResult.failed(copy.recipient, replies.SMTPUTF8_UNSUPPORTED)
            if copy.eightbit and not client.supports_extension("8bitmime"):
                self._release(client)
                return DeliveryResult.failed(copy.recipient, replies.EIGHTBIT_UNSUPPORTED)
            options = []
            if copy.smtputf8:
                options.append("SMTPUTF8")
            if copy.eightbit:
                options.append("BODY=8BITMIME")
            if client.supports_extension("size"):
                options.append(f"SIZE={len(message)}")
            try:
                await client.mail(copy.envelope_from, options=options)
            except smtp_errors.SMTPServerDisconnected:
                if not reused:
                    raise
                client.close()  # a pooled connection the server had closed: replace it once
                client = await self._connect()
                await client.mail(copy.envelope_from, options=options)
            stage = "rcpt"
            await client.rcpt(copy.recipient)
            stage = "data"
            await client.data(message)
        except _Unreachable as exc:
            return DeliveryResult.failed(copy.recipient, exc.reply)
        except smtp_errors.SMTPResponseException as exc:
            await self._reset(client)
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
        self._release(client)
        return DeliveryResult.delivered(copy.recipient, replies.OK)

    async def _reset(self, client: aiosmtplib.SMTP) -> None:
        if not client.is_connected:
            return
        try:
            await client.rset()
        except (smtp_errors.SMTPException, OSError):
            client.close()
            return
        self._release(client)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for client in idle:
            try:
                await client.quit(timeout=2)
            except (smtp_errors.SMTPException, OSError):
                client.close()
