"""Where a tenant's webhook may point: https to public addresses only.

A tenant's URL is hostile input; without this check a webhook is a way to make the gateway
send requests into the operator's private network (SSRF). Checked when the URL is set and
again before every delivery, since DNS can change in between.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from gateway.errors import InvalidValue


def check_syntax(url: str, allow_private: bool) -> str:
    parts = urlsplit(url)
    if parts.scheme != "https" and not (allow_private and parts.scheme == "http"):
        raise InvalidValue(f"Webhook URL {url!r} must use https.")
    if not parts.hostname:
        raise InvalidValue(f"Webhook URL {url!r} has no host.")
    if parts.username or parts.password:
        raise InvalidValue("Webhook URLs must not carry credentials; the request is signed.")
    return parts.hostname


async def check_target(url: str, allow_private: bool) -> None:
    host = check_syntax(url, allow_private)
    if allow_private:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, 443,
                                                              type=socket.SOCK_STREAM)
    except OSError:
        raise InvalidValue(f"Webhook host {host!r} does not resolve.") from None
    for info in infos:
        ip = ipaddress.ip_address(info[4][0])
        if not ip.is_global:
            raise InvalidValue(f"Webhook host {host!r} resolves to a non-public address.")
