"""TLS as a client of the gateway's upstreams (SMTP smarthosts, Gmail and Microsoft 365, their
IMAP servers): certificates verified, or nothing is sent."""

from __future__ import annotations

import ssl


def client_tls_context(ca_file: str = "", verify: bool = True) -> ssl.SSLContext:
    """TLS 1.2+, the certificate checked against the system CAs (plus `ca_file`) and the
    host name. `verify=False` only for a loopback host (gateway.config enforces it)."""
    context = ssl.create_default_context(cafile=ca_file or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def certificate_failure(error: BaseException) -> bool:
    """Did this connection fail because the peer's certificate did not verify?"""
    seen: BaseException | None = error
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
