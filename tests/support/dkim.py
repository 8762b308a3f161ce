"""Verifying a copy's DKIM signatures with dkimpy, keys read from a loopback DNS server."""

from __future__ import annotations

import dkim
import dns.resolver


def dkimpy_results(message: bytes, port: int) -> list[bool]:
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers, resolver.port = ["127.0.0.1"], port

    def txt(name: bytes, timeout: int = 5) -> bytes | None:
        answer = resolver.resolve(name.decode().rstrip("."), "TXT", lifetime=timeout)
        return b"".join(b"".join(r.strings) for r in answer)

    d = dkim.DKIM(message)
    count = len([1 for name, _ in d.headers if name.lower() == b"dkim-signature"])
    return [d.verify(idx=i, dnsfunc=txt) for i in range(count)]
