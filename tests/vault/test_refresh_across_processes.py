"""Two gateway processes on one PostgreSQL, 25 messages each at once, an expired token: the
token endpoint sees exactly one refresh (the lease on the credential row is the single
flight across processes and nodes)."""

from __future__ import annotations

import asyncio
import os
import re
import smtplib
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway import config as config_module
from gateway.app.parts import Parts
from gateway.directory.store import DirectoryStore
from gateway.store.engine import create_engine, upgrade
from tests.conftest import PASSWORD, Database, Pki, seed, write_config
from tests.support import messages
from tests.support.oauth_server import CLIENT_ID, CLIENT_SECRET, OAuthServer
from tests.support.sink import RecordingSink

SENDER = "sales@acme.example"


async def _port_of(proc: subprocess.Popen[bytes]) -> int:
    assert proc.stdout is not None
    while True:
        line = (await asyncio.to_thread(proc.stdout.readline)).decode()
        if not line:
            raise AssertionError(f"gateway exited: {proc.wait()}")
        found = re.match(r"SMTP submission \(STARTTLS\): [\d.]+:(\d+)", line)
        if found:
            return int(found.group(1))


def _send_25(port: int, pki: Pki, start: int) -> list[int]:
    context = pki.client_context()

    def one(i: int) -> int:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
            smtp.starttls(context=context)
            smtp.login("campaign", PASSWORD)
            smtp.sendmail(SENDER, [f"r{i}@example.org"], messages.simple())
        return i

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(25) as pool:
        return list(pool.map(one, range(start, start + 25)))


@pytest.mark.parametrize("database", ["postgres"], indirect=True)
async def test_two_processes_fifty_messages_expired_token_one_refresh(
        tmp_path: Path, pki: Pki, database: Database):
    server = await OAuthServer().start()
    sink = await RecordingSink(xoauth2=server.valid).start()
    upstream = (f'[upstreams.sink]\nkind = "gmail"\nhost = "127.0.0.1"\nport = {sink.port}\n'
                'tls = "none"\ntimeout = 10\n')
    path = write_config(tmp_path, pki, database, sink.port, upstream=upstream,
                        extra=server.toml())
    config = config_module.load(path, {})
    engine = create_engine(config.database.url, schema=config.database.schema)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        await upgrade(engine)
        await seed(DirectoryStore(engine))
        credentials = Parts(config, engine).credentials
        await credentials.add_client("google", CLIENT_ID, CLIENT_SECRET, None, "test")
        refresh, access = server.issue(SENDER, expires_in=-60)
        mailbox = await DirectoryStore(engine).mailbox_by_address(SENDER)
        await credentials.import_tokens(mailbox, {
            "refresh_token": refresh, "access_token": access,
            "expires_at": int(time.time()) - 60}, "test")
        await credentials.close()
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY")}
        for _ in range(2):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "gateway", "--config", str(path), "serve",
                 "--role", "smtp"], env=env, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL))
        ports = [await _port_of(p) for p in procs]
        sent = await asyncio.gather(*(asyncio.to_thread(_send_25, port, pki, 25 * n)
                                      for n, port in enumerate(ports)))
        assert sorted(sum(sent, [])) == list(range(50))
        assert server.refreshes == 1
        assert len({r.recipients[0] for r in sink.received}) == 50
    finally:
        for proc in procs:  # waited for in a thread: the sink in this loop must answer QUIT
            proc.terminate()
        for proc in procs:
            await asyncio.to_thread(proc.wait, 20)
            assert proc.stdout is not None
            proc.stdout.close()
        await engine.dispose()
        await sink.stop()
        await server.stop()
