"""Messages per second through an XOAUTH2 upstream vs a password smarthost, in one run.

One gateway process, two local aiosmtpd upstreams (one accepting XOAUTH2 tokens issued by a
local OAuth token endpoint, one accepting a password), two mailboxes of one tenant. Clients
keep 20 STARTTLS+AUTH sessions open and send 2 KB messages; each upstream gets the same load,
twice, alternating. The mailbox is imported without an access token, so the first XOAUTH2
round starts with the one refresh; after that the token comes from memory.

    python bench/xoauth2_vs_password.py [--messages 2000] [--database postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import ssl
import sys
import tempfile
import time
import warnings
from pathlib import Path

import aiosmtplib
import trustme

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway import config as config_module  # noqa: E402
from gateway.app.service import Gateway  # noqa: E402
from gateway.directory.store import DirectoryStore  # noqa: E402
from gateway.store.engine import create_engine, upgrade  # noqa: E402
from tests.conftest import PG_URL, Database, Pki, write_config  # noqa: E402
from tests.support.oauth_server import CLIENT_ID, CLIENT_SECRET, OAuthServer  # noqa: E402
from tests.support.sink import RecordingSink  # noqa: E402

PASSWORD = "bench password long enough"
SESSIONS = 20
BODY = (b"From: Sales <%s>\r\nTo: r@example.org\r\nSubject: bench\r\n"
        b"Message-ID: <%d@bench>\r\nDate: Sun, 22 Nov 2026 10:00:00 +0000\r\n\r\n"
        + (b"x" * 78 + b"\r\n") * 25)


async def clients(port: int, tls: ssl.SSLContext, sender: str, count: int) -> float:
    async def session(n: int) -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, tls_context=tls,
                               start_tls=True, username="bench", password=PASSWORD)
        await smtp.connect()
        for i in range(n):
            await smtp.sendmail(sender, [f"r{i}@example.org"], BODY % (sender.encode(), i))
        await smtp.quit()

    started = time.perf_counter()
    await asyncio.gather(*(session(count // SESSIONS) for _ in range(SESSIONS)))
    return time.perf_counter() - started


async def main(messages: int, database: str) -> None:
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")  # loopback sink
    work = Path(tempfile.mkdtemp(prefix="bench-xoauth2-"))
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(work / "cert.pem"))
    cert.private_key_pem.write_to_path(str(work / "key.pem"))
    pki = Pki(ca, str(work / "cert.pem"), str(work / "key.pem"))
    server = await OAuthServer(expires_in=3600).start()
    oauth_sink = await RecordingSink(xoauth2=server.valid).start()
    password_sink = await RecordingSink(auth=("relay", "smarthost secret")).start()
    if database == "postgres":
        import asyncpg

        conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/test")
        await conn.execute("DROP SCHEMA IF EXISTS bench_x CASCADE; CREATE SCHEMA bench_x")
        await conn.close()
        db = Database("postgres", PG_URL, "bench_x")
    else:
        db = Database("sqlite", f"sqlite+aiosqlite:///{work}/gateway.db")
    upstreams = (
        f'[upstreams.gmail]\nkind = "gmail"\nhost = "127.0.0.1"\nport = {oauth_sink.port}\n'
        f'tls = "none"\n\n[upstreams.relay]\nkind = "smtp"\nhost = "127.0.0.1"\n'
        f'port = {password_sink.port}\ntls = "none"\nusername = "relay"\n')
    path = write_config(work, pki, db, 0, upstream=upstreams,
                        extra=server.toml())
    config = config_module.load(path, {})
    engine = create_engine(config.database.url, schema=config.database.schema)
    await upgrade(engine)
    store = DirectoryStore(engine)
    await store.add_tenant("bench", "bench")
    await store.add_domain("bench", "bench.example", "bench")
    await store.mark_verified("bench.example", "bench", "benchmark")
    await store.set_tenant_setting("bench", "postal_address", "Bench Ltd, 1 Example Street",
                                   "bench")
    await store.add_login("bench", "bench", PASSWORD, "bench")
    await store.add_mailbox("bench", "oauth@bench.example", "gmail", "bench")
    await store.add_mailbox("bench", "password@bench.example", "relay", "bench")
    await engine.dispose()
    gateway = Gateway(config)
    await gateway.upstream_passwords.set("relay", "smarthost secret", "bench")
    ports = await gateway.start(roles=("smtp",))
    await gateway.credentials.add_client("google", CLIENT_ID, CLIENT_SECRET, None, "bench")
    mailbox = gateway.directory.mailbox("oauth@bench.example")
    assert mailbox is not None
    refresh, _ = server.issue("oauth@bench.example")
    await gateway.credentials.import_tokens(mailbox, {"refresh_token": refresh}, "bench")
    tls = ssl.create_default_context()
    ca.configure_trust(tls)
    print(f"{messages} messages of 2 KB per round, {SESSIONS} sessions, database {database}")
    rates: dict[str, list[float]] = {"xoauth2 (gmail kind)": [], "password smarthost": []}
    for _ in range(2):
        seconds = await clients(ports.submission, tls, "oauth@bench.example", messages)
        rates["xoauth2 (gmail kind)"].append(messages / seconds)
        seconds = await clients(ports.submission, tls, "password@bench.example", messages)
        rates["password smarthost"].append(messages / seconds)
    for name, values in rates.items():
        print(f"{name:22s} " + "  ".join(f"{v:7.0f} msgs/s" for v in values))
    print(f"refreshes at the token endpoint: {server.refreshes}; delivered: "
          f"{len(oauth_sink.received)} xoauth2, {len(password_sink.received)} password")
    await gateway.stop(deadline=2)
    await oauth_sink.stop()
    await password_sink.stop()
    await server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    asyncio.run(main(args.messages, args.database))
