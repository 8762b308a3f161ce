"""Who is sending: password checks for AUTH PLAIN/LOGIN, and IP credentials.

Password checks cost tens of milliseconds on purpose (scrypt), so they run in threads under
one global cap, a success is remembered briefly (keyed by an HMAC of login and password,
forgotten when the stored hash changes), and unknown logins cost a dummy check so timing
reveals nothing. Who may try at all is the throttle's call (auth_throttle.py). No AUTH
payload is ever logged.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import enum
import hashlib
import hmac
import ipaddress
import logging
import secrets
import time
from dataclasses import dataclass

from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from gateway.config import SmtpConfig
from gateway.directory.cache import DirectoryCache
from gateway.directory.passwords import DUMMY_HASH, verify_password
from gateway.directory.records import Login, Principal
from gateway.errors import StoreError
from gateway.smtp.auth_throttle import Admission, AuthThrottle

log = logging.getLogger("gateway.auth")
# The database's errors, or Redis's (which derive from Exception only): AUTH fails closed.
_COUNTERS_DOWN = (StoreError, SQLAlchemyError, OSError, RedisError)

_MAX_CACHED = 100_000  # successful checks remembered; beyond this the cache starts again


class AuthStatus(enum.Enum):
    OK = "ok"
    INVALID = "invalid"
    LOCKED = "locked"  # this network may not try this login now (auth_throttle.py)
    UNAVAILABLE = "unavailable"  # the shared counters cannot be read or written: fail closed


@dataclass(frozen=True, slots=True)
class AuthOutcome:
    status: AuthStatus
    principal: Principal | None = None


@dataclass(frozen=True, slots=True)
class _Cached:
    login_id: int
    password_hash: str
    expires: float


class Authenticator:
    def __init__(self, directory: DirectoryCache, config: SmtpConfig,
                 throttle: AuthThrottle) -> None:
        self._directory = directory
        self._throttle = throttle
        self._cache_key = secrets.token_bytes(32)  # per process: the cache never leaves memory
        self._cache: dict[bytes, _Cached] = {}
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self.reconfigure(config)

    def reconfigure(self, config: SmtpConfig) -> None:
        self._config = config.auth
        self._throttle.reconfigure(config.auth)
        # Password checks get threads of their own: queued behind other blocking work in
        # the loop's default executor, AUTH would stall whenever that pool is busy.
        old = self._executor
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=config.auth.concurrency, thread_name_prefix="password-check")
        if old is not None:
            old.shutdown(wait=False)
        self._networks = [
            (ipaddress.ip_network(net, strict=False), cred.login)
            for cred in config.ip_credentials for net in cred.networks
        ]
        self._balancers = [ipaddress.ip_network(n, strict=False) for n in config.load_balancers]

    def is_balancer(self, peer_ip: str) -> bool:
        try:
            ip = ipaddress.ip_address(peer_ip)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        return any(ip.version == lb.version and ip in lb for lb in self._balancers)

    # --- IP credentials --------------------------------------------------------------------
    def ip_principal(self, peer_ip: str) -> Principal | None:
        if not self._networks:
            return None
        try:
            ip = ipaddress.ip_address(peer_ip)
        except ValueError:
            return None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        if any(ip in lb for lb in self._balancers):
            return None  # the balancer's own address never stands for a client
        for network, username in self._networks:
            if ip.version == network.version and ip in network:
                login = self._directory.login(username)
                if login is not None:
                    return Principal(login.id, login.username, login.tenant_id, via="ip")
        return None

    # --- passwords -------------------------------------------------------------------------
    async def check_password(self, username: str, password: str, peer_ip: str) -> AuthOutcome:
        try:
            if await self._throttle.admit(username, peer_ip) is not Admission.OPEN:
                return AuthOutcome(AuthStatus.LOCKED)
        except _COUNTERS_DOWN as exc:
            log.warning("auth counters unavailable", extra={"error": type(exc).__name__})
            return AuthOutcome(AuthStatus.UNAVAILABLE)
        login = self._directory.login(username)
        now = time.monotonic()
        cache_id = hmac.new(self._cache_key, f"{username}\0{password}".encode(
            "utf-8", "surrogateescape"), hashlib.sha256).digest()
        cached = self._cache.get(cache_id)
        if (cached is not None and login is not None and cached.expires > now
                and cached.login_id == login.id and cached.password_hash == login.password_hash):
            return AuthOutcome(AuthStatus.OK, _principal(login))
        stored = login.password_hash if login is not None else DUMMY_HASH
        loop = asyncio.get_running_loop()
        ok = await loop.run_in_executor(self._executor, verify_password, password, stored)
        if ok and login is not None:
            self._cache[cache_id] = _Cached(login.id, login.password_hash,
                                            now + self._config.cache_seconds)
            if len(self._cache) > _MAX_CACHED:
                self._cache.clear()
            try:
                await self._throttle.succeeded(username, peer_ip)
            except _COUNTERS_DOWN as exc:
                # the login stands; only its network is not remembered as known this time
                log.warning("auth counters unavailable", extra={"error": type(exc).__name__})
            return AuthOutcome(AuthStatus.OK, _principal(login))
        try:
            after = await self._throttle.failed(username, peer_ip,
                                                login.id if login is not None else None)
        except _COUNTERS_DOWN as exc:
            log.warning("auth counters unavailable", extra={"error": type(exc).__name__})
            return AuthOutcome(AuthStatus.UNAVAILABLE)
        if after is not Admission.OPEN:
            return AuthOutcome(AuthStatus.LOCKED)
        return AuthOutcome(AuthStatus.INVALID)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False)


def _principal(login: Login) -> Principal:
    return Principal(login.id, login.username, login.tenant_id, via="password")
