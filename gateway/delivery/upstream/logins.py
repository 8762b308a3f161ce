"""How an SMTP upstream connection logs in: the operator's shared smarthost login, a
mailbox's own smarthost password, or a mailbox's OAuth access token (XOAUTH2).

Connections are pooled per login name, so one mailbox's session never carries another
mailbox's mail.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from gateway.delivery.upstream.base import Copy
from gateway.protocol import replies
from gateway.protocol.replies import Reply
from gateway.vault.credentials import Credentials, password_name
from gateway.vault.tokens import AccessToken, TokenBroker, TokenUnavailable
from gateway.vault.upstream_passwords import UpstreamPasswords


class LoginUnavailable(Exception):
    def __init__(self, reply: Reply) -> None:
        self.reply = reply


@dataclass(frozen=True, slots=True)
class UpstreamLogin:
    username: str
    password: str | None = field(default=None, repr=False)
    token: AccessToken | None = None  # XOAUTH2


class LoginSource(Protocol):
    async def login(self, copy: Copy, rejected: UpstreamLogin | None = None
                    ) -> UpstreamLogin | None: ...

    @property
    def retries_rejected(self) -> bool:
        """Whether a refused login is worth one more try with a fresh credential."""
        ...


class SharedLogin:
    """The operator's smarthost login: the username from the configuration, the password
    sealed in the vault (`gateway upstream password`). Read at most every `ttl` seconds,
    and again after the smarthost refuses it, so a changed password needs no restart."""

    def __init__(self, upstream: str, username: str, passwords: UpstreamPasswords,
                 ttl: float = 30.0) -> None:
        self._upstream = upstream
        self._username = username
        self._passwords = passwords
        self._ttl = ttl
        self._cached: tuple[float, str | None] | None = None

    async def login(self, copy: Copy, rejected: UpstreamLogin | None = None
                    ) -> UpstreamLogin | None:
        if not self._username:
            return None
        if self._cached is None or rejected is not None or self._cached[0] < time.monotonic():
            password = await self._passwords.get(self._upstream)
            self._cached = (time.monotonic() + self._ttl, password)
        password = self._cached[1]
        if password is None:
            raise LoginUnavailable(replies.UPSTREAM_LOGIN_MISSING)
        return UpstreamLogin(self._username, password)

    @property
    def retries_rejected(self) -> bool:
        return True


_TOKEN_REPLIES = {
    "disconnected": replies.MAILBOX_DISCONNECTED,
    "needs-reconsent": replies.MAILBOX_NEEDS_RECONSENT,
    "not-connected": replies.MAILBOX_NOT_CONNECTED,
}


class XOAuth2Login:
    """Each mailbox logs in as itself with an access token from the token broker."""

    def __init__(self, broker: TokenBroker) -> None:
        self._broker = broker

    async def login(self, copy: Copy, rejected: UpstreamLogin | None = None
                    ) -> UpstreamLogin | None:
        try:
            token = await self._broker.access_token(
                copy.mailbox_id, copy.tenant_id, rejected.token if rejected else None)
        except TokenUnavailable as exc:
            raise LoginUnavailable(_TOKEN_REPLIES.get(exc.state,
                                                      replies.TOKEN_REFRESH_FAILED)) from None
        return UpstreamLogin(token.username, token=token)

    @property
    def retries_rejected(self) -> bool:
        return True


class MailboxPasswordLogin:
    """A mailbox's own smarthost password when it has one, else the shared login.

    Looked up at most every `ttl` seconds per mailbox (a DB read per copy would cost more
    than the send); a refused login drops the cached entry and reads again once.
    """

    def __init__(self, credentials: Credentials, shared: SharedLogin, ttl: float = 30.0) -> None:
        self._credentials = credentials
        self._shared = shared
        self._ttl = ttl
        self._cache: dict[int, tuple[float, UpstreamLogin | None]] = {}

    async def login(self, copy: Copy, rejected: UpstreamLogin | None = None
                    ) -> UpstreamLogin | None:
        entry = self._cache.get(copy.mailbox_id)
        if entry is None or rejected is not None or entry[0] < time.monotonic():
            own: UpstreamLogin | None = None
            row = await self._credentials.row(copy.mailbox_id)
            if row is not None and row.kind == "password":
                secret = await self._credentials.secrets.get(copy.tenant_id,
                                                             password_name(copy.mailbox_id))
                if secret is not None:
                    own = UpstreamLogin(row.username, secret.decode())
            entry = (time.monotonic() + self._ttl, own)
            self._cache[copy.mailbox_id] = entry
        return entry[1] or await self._shared.login(copy, rejected)

    @property
    def retries_rejected(self) -> bool:
        return True
