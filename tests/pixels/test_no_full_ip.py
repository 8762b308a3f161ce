"""No full client address anywhere: a real gateway process with uvicorn's default logging
(its access log on), clients over IPv4 and IPv6 sockets behind a trusted proxy that passes
X-Forwarded-For; then its stdout and stderr, the database file and everything the tracker
received are searched for the addresses used."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import smtplib
import subprocess
import sys
from pathlib import Path

import httpx

from gateway import config as config_module
from gateway.directory.store import DirectoryStore
from gateway.store.engine import create_engine, upgrade
from tests.conftest import PASSWORD, Pki, seed, write_config
from tests.support.pixels import PIXEL, html_message
from tests.support.receiver import Receiver
from tests.support.sink import RecordingSink

CLIENTS = ["203.0.113.77", "2001:db8:1234:5678::99", "::ffff:198.51.100.7", "17.58.1.2"]
NEEDLES = ["203.0.113.77", "2001:db8:1234:5678::99", "2001:db8:1234:5678", "198.51.100.7",
           "17.58.1.2"]


async def test_no_full_client_address_in_logs_database_or_forwarded_requests(
        tmp_path: Path, pki: Pki, database):
    sink = await RecordingSink().start()
    tracker = await Receiver().start()
    path = write_config(tmp_path, pki, database, sink.port)
    config = config_module.load(path, {})
    engine = create_engine(config.database.url, schema=config.database.schema)
    await upgrade(engine)
    await seed(DirectoryStore(engine))
    await engine.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY")}
    env.update({
        "GATEWAY__HTTP__ACCESS_LOG": "true",  # uvicorn's default logging configuration
        "GATEWAY__HTTP__PUBLIC_LISTEN": "::",  # IPv6 and (mapped) IPv4 sockets
        "GATEWAY__HTTP__PUBLIC_BASE_URL": "https://links.gw.test",
        "GATEWAY__HTTP__TRUSTED_PROXIES": '["127.0.0.1/32", "::1/128"]',
        "GATEWAY__FETCH__ALLOW_HTTP": "true",
        "GATEWAY__FETCH__ALLOW_HOSTS": f'["127.0.0.1:{tracker.port}"]',
        "GATEWAY__PIXELS__FLUSH_INTERVAL": "0.1",
        # opened within milliseconds of sending; a "fast" fetch is a bot's, not forwarded
        "GATEWAY__PIXELS__MACHINE_OPEN_SECONDS": "0",
    })
    out_file, err_file = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with out_file.open("wb") as out, err_file.open("wb") as err:  # files: pipes could fill
        proc = subprocess.Popen([sys.executable, "-m", "gateway", "--config", str(path),
                                 "serve"], env=env, stdout=out, stderr=err)
    try:
        for _ in range(400):
            if b"HTTP admin API" in out_file.read_bytes() or proc.poll() is not None:
                break
            await asyncio.sleep(0.05)
        text = out_file.read_text()
        assert "HTTP admin API" in text, err_file.read_text()[-2000:]
        smtp_port = int(re.search(r"STARTTLS\): [\d.]+:(\d+)", text).group(1))
        public_port = int(re.search(r"listening on :::(\d+)", text).group(1))
        tracker_url = f"http://127.0.0.1:{tracker.port}/track/open?id=7"

        def send() -> None:
            with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as smtp:
                smtp.starttls(context=pki.client_context())
                smtp.login("campaign", PASSWORD)
                smtp.sendmail("sales@acme.example", ["alice@example.org"],
                              html_message(tracker_url))

        await asyncio.to_thread(send)
        (token,) = [m[1].decode() for m in PIXEL.findall(sink.received[0].content)]
        for host in ("127.0.0.1", "[::1]"):  # an IPv4 (mapped on this socket) and an IPv6 peer
            async with httpx.AsyncClient(base_url=f"http://{host}:{public_port}") as client:
                for address in CLIENTS:
                    headers = {"X-Forwarded-For": address, "User-Agent": "Mozilla/5.0 Chrome/1"}
                    assert (await client.get(f"/p/{token}", headers=headers)).status_code == 200
                    assert (await client.get("/p/not-a-token", headers=headers)
                            ).status_code == 200
                    assert (await client.post("/u/forged", headers=headers)).status_code == 400
                    assert (await client.get("/nowhere", headers=headers)).status_code == 404
        for _ in range(100):
            if len(tracker.requests) >= 2 * len(CLIENTS):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # the open events' flush
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 20)
        await tracker.stop()
        await sink.stop()
    output = out_file.read_text() + err_file.read_text()
    assert re.search(r'203\.0\.113\.0/24 - \\"GET /p/<token> ', output), \
        "uvicorn's access log must be on (and show only the network, and no token)"
    assert len(tracker.requests) == 2 * len(CLIENTS)
    forwarded = repr([(r.method, r.path, r.headers, r.body) for r in tracker.requests])
    stored = b""
    for file in tmp_path.rglob("*"):
        if file.is_file() and "gateway.db" in file.name:
            stored += file.read_bytes()
    if database.kind == "postgres":
        stored += await database_dump(database)
    for needle in NEEDLES:
        assert needle not in output, needle
        assert needle not in forwarded, needle
        assert needle.encode() not in stored, needle
    assert b"203.0.113.0/24" in stored or database.kind == "postgres"


async def database_dump(database) -> bytes:
    """Every row of the test's PostgreSQL schema, as text."""
    import asyncpg

    from tests.conftest import PG_DSN

    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(f"SET search_path TO {database.schema}")
        tables = [r[0] for r in await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1",
            database.schema)]
        out = []
        for table in tables:
            out.extend(repr(tuple(r)) for r in await conn.fetch(f'SELECT * FROM "{table}"'))
        return "\n".join(out).encode()
    finally:
        await conn.close()
