"""Who is sending: password checks for AUTH PLAIN/LOGIN, and IP credentials.

Password checks cost tens of milliseconds on purpose (scrypt), so they run in threads under
one global cap, a success is remembered briefly (keyed by an HMAC of login and password,
forgotten when the stored hash changes), unknown logins cost a dummy check so timing reveals
nothing, and repeated failures per client IP or per login lock that source out for a while.
No AUTH payload is ever logged.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import enum
import hashlib
import hmac
import ipaddress
import secrets
import time
from collections import deque
from dataclasses import dataclass

from gateway.config import SmtpConfig
from gateway.directory.cache import Directory
from gateway.directory.passwords import DUMMY_HASH, verify_password
from gateway.directory.records import Login, Principal

_MAX_TRACKED = 100_000  # failure counters kept; beyond this the oldest are forgotten


class AuthStatus(enum.Enum):
    OK = "ok"
    INVALID = "invalid"
    LOCKED = "locked"  # too many failures from this IP or for this login


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
    def __init__(self, directory: Directory, config: SmtpConfig) -> None:
        self._directory = directory
        self._cache_key = secrets.token_bytes(32)  # per process: the cache never leaves memory
        self._cache: dict[bytes, _Cached] = {}
        self._failures: dict[str, deque[float]] = {}
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self.reconfigure(config)

    def reconfigure(self, config: SmtpConfig) -> None:
        self._config = config.auth
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
        now = time.monotonic()
        if self._locked(f"ip:{peer_ip}", now) or self._locked(f"login:{username}", now):
            return AuthOutcome(AuthStatus.LOCKED)
        login = self._directory.login(username)
        cache_id = hmac.new(self._cache_key, f"{username}\0{password}".encode(),
                            hashlib.sha256).digest()
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
            if len(self._cache) > _MAX_TRACKED:
                self._cache.clear()
            return AuthOutcome(AuthStatus.OK, _principal(login))
        self._fail(f"ip:{peer_ip}", now)
        self._fail(f"login:{username}", now)
        if self._locked(f"ip:{peer_ip}", now) or self._locked(f"login:{username}", now):
            return AuthOutcome(AuthStatus.LOCKED)
        return AuthOutcome(AuthStatus.INVALID)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False)

    def _window(self, key: str, now: float) -> deque[float]:
        stamps = self._failures.get(key)
        if stamps is None:
            return deque()
        while stamps and stamps[0] < now - self._config.failure_window:
            stamps.popleft()
        if not stamps:
            del self._failures[key]
        return stamps

    def _locked(self, key: str, now: float) -> bool:
        return len(self._window(key, now)) >= self._config.max_failures

    def _fail(self, key: str, now: float) -> None:
        if len(self._failures) > _MAX_TRACKED:
            for old in list(self._failures)[: _MAX_TRACKED // 10]:
                del self._failures[old]
        self._failures.setdefault(key, deque()).append(now)


def _principal(login: Login) -> Principal:
    return Principal(login.id, login.username, login.tenant_id, via="password")
