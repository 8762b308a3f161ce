"""A gateway whose upstream speaks XOAUTH2 (Gmail / Microsoft 365 style), with a local token
endpoint, and a mailbox connected to it as a campaign tool would."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from tests.conftest import Database, Harness, Pki, running_harness
from tests.support.oauth_server import CLIENT_ID, CLIENT_SECRET, OAuthServer
from tests.support.sink import RecordingSink

SENDER = "sales@acme.example"


@contextlib.asynccontextmanager
async def oauth_gateway(tmp_path: Path, pki: Pki, database: Database, provider: str = "google",
                        kind: str = "gmail", upstream_extra: str = "",
                        oauth_server: OAuthServer | None = None, **server_kw: object
                        ) -> AsyncIterator[tuple[Harness, OAuthServer]]:
    """`oauth_server`: one the caller started and stops (else one for this gateway)."""
    server = oauth_server or await OAuthServer(**server_kw).start()  # type: ignore[arg-type]
    sink = await RecordingSink(xoauth2=server.valid).start()
    upstream = (f'[upstreams.sink]\nkind = "{kind}"\nhost = "127.0.0.1"\nport = {sink.port}\n'
                f'tls = "none"\ntimeout = 5\n{upstream_extra}')
    try:
        async with running_harness(tmp_path, pki, database, sink=sink, upstream=upstream,
                                   extra=server.toml(provider)) as h:
            await h.gateway.credentials.add_client(provider, CLIENT_ID, CLIENT_SECRET, None,
                                                   "test")
            yield h, server
    finally:
        if oauth_server is None:
            await server.stop()


async def connect(h: Harness, server: OAuthServer, address: str = SENDER,
                  expires_in: int = 3600, scope: str = "https://mail.google.com/") -> str:
    """Import tokens for `address` as a campaign tool would; returns the refresh token."""
    refresh, access = server.issue(address, scope, expires_in=expires_in)
    import time

    mailbox = h.gateway.directory.mailbox(address)
    assert mailbox is not None
    await h.gateway.credentials.import_tokens(mailbox, {
        "refresh_token": refresh, "access_token": access, "client_id": CLIENT_ID,
        "expires_at": int(time.time()) + expires_in, "scope": scope}, "test")
    await h.refresh()
    return refresh
