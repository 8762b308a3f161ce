"""The one guarded fetcher every tenant-supplied URL goes through (pixel forwards, webhooks).

A tenant's URL is hostile input: without these rules it makes the gateway request things
inside the operator's network (SSRF). The rules:
- https only, unless the operator allows http; ports 80 and 443 only; no credentials;
- the name is resolved once, every address checked, and the connection pinned to the
  checked address (TLS still verifies the certificate for the name): DNS cannot answer a
  public address to the check and a private one to the connection;
- loopback, private, link-local, unique-local, multicast and reserved addresses are refused;
- no redirects; at most `max_response_bytes` of the answer are read.

`allow_hosts` lists `host` or `host:port` entries that pass anyway (the operator's own
receivers; the tests' loopback servers). A fetcher made with `allow_private` (webhooks with
the operator's `events.allow_private_targets`) may reach any address and port.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx

from gateway.config import FetchConfig

_PORTS = {"https": 443, "http": 80}


def _public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_loopback
                                 or ip.is_link_local or ip.is_private or ip.is_unspecified)


class FetchRefused(Exception):
    """The URL breaks a rule; nothing was sent."""


@dataclass(frozen=True, slots=True)
class Fetched:
    status: int
    body: bytes  # at most max_response_bytes
    headers: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class FetchTarget:
    url: str  # with the checked address in place of the name
    host: str  # the name, for Host and TLS
    scheme: str


class GuardedFetcher:
    def __init__(self, config: FetchConfig, *, allow_http: bool = False,
                 allow_private: bool = False) -> None:
        self._config = config
        self._allow_http = allow_http or config.allow_http
        self._allow_private = allow_private
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._config.timeout,
                                             follow_redirects=False, trust_env=False)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def check_syntax(self, url: str) -> tuple[str, str, int]:
        """(scheme, host, port) if the URL's form is allowed; raises FetchRefused."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise FetchRefused("not a URL") from None
        if parts.scheme != "https" and not (self._allow_http and parts.scheme == "http"):
            raise FetchRefused("must use https")
        if not parts.hostname:
            raise FetchRefused("has no host")
        if parts.username or parts.password:
            raise FetchRefused("must not carry credentials")
        port = port or _PORTS[parts.scheme]
        if port not in (80, 443) and not self._listed(parts.hostname, port) \
                and not self._allow_private:
            raise FetchRefused("port must be 80 or 443")
        return parts.scheme, parts.hostname.lower(), port

    def _listed(self, host: str, port: int) -> bool:
        allowed = self._config.allow_hosts
        return host in allowed or f"{host}:{port}" in allowed

    async def resolve(self, url: str) -> FetchTarget:
        """Check the URL and pin it to one checked address."""
        scheme, host, port = self.check_syntax(url)
        try:
            literal = ipaddress.ip_address(host.strip("[]"))
            addresses = [literal]
        except ValueError:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, port, type=socket.SOCK_STREAM)
            except OSError:
                raise FetchRefused("host does not resolve") from None
            addresses = [ipaddress.ip_address(i[4][0]) for i in infos]
        if not addresses:
            raise FetchRefused("host does not resolve")
        listed = self._listed(host, port)
        for ip in addresses:
            if not _public(ip) and not (listed or self._allow_private):
                raise FetchRefused("resolves to a non-public address")
        pinned = addresses[0]
        netloc = f"[{pinned}]" if pinned.version == 6 else str(pinned)
        parts = urlsplit(url)
        return FetchTarget(urlunsplit((scheme, f"{netloc}:{port}", parts.path or "/", parts.query,
                                  "")), host, scheme)

    async def request(self, method: str, url: str, *, content: bytes | None = None,
                      headers: Mapping[str, str] | None = None) -> Fetched:
        target = await self.resolve(url)
        sent = {**(headers or {}), "Host": target.host}
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        request = self._http().build_request(method, target.url, content=content,
                                             headers=sent, extensions=extensions)
        response = await self._http().send(request, stream=True)
        try:
            body = b""
            async for chunk in response.aiter_raw():
                body += chunk[:self._config.max_response_bytes - len(body)]
                if len(body) >= self._config.max_response_bytes:
                    break
        finally:
            await response.aclose()
        return Fetched(response.status_code, body, dict(response.headers))
