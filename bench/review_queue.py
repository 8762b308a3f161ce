"""Review queue page with 100,000 held messages: server time to render the first page.

The gateway's admin listener runs in this process on SQLite or PostgreSQL (the shipped
defaults otherwise); 100,000 held messages spread over 5 tenants, 4 checks, 5 statuses and
60 days are written straight to the table. A signed-in compliance reviewer then fetches the
first page of the queue with filters, over loopback HTTP, many times; the figure is the
median and 95th percentile per filter. Each request is the whole server path: session check,
the page query, the counts by reason, the template.

    python bench/review_queue.py [--database sqlite|postgres] [--messages 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.relay_throughput import free_port, prepare, write_config  # noqa: E402
from gateway import config as config_module  # noqa: E402
from gateway.app.service import Gateway  # noqa: E402
from gateway.directory.store import DirectoryStore  # noqa: E402
from gateway.review import totp  # noqa: E402
from gateway.store.schema import held_messages  # noqa: E402

CHECKS = ["sensitive-data", "identity-alignment", "misleading-subject", "unsubscribe-footer"]
STATUSES = ["held"] * 6 + ["refused", "released", "discarded", "expired"]
PASSWORD = "benchmark reviewer password"
REQUESTS = 200


async def fill(gateway: Gateway, count: int) -> list[int]:
    store = DirectoryStore(gateway.engine)
    tenants = [(await store.tenant("bench")).id]
    for i in range(4):
        tenants.append((await store.add_tenant(f"tenant{i}", "bench")).id)
    sealed, key_id = gateway.vault.seal(b"Subject: x\r\n\r\nbody\r\n", b"bench")
    rng = random.Random(7)
    now = datetime.now(UTC)
    rows = []
    for i in range(count):
        check = rng.choice(CHECKS)
        rows.append({
            "queue_id": f"B{i:09d}", "tenant_id": rng.choice(tenants), "login": "bench",
            "mailbox_id": 1, "envelope_from": "sales@bench.example",
            "recipients": [f"r{i}@example.org"], "subject": f"Campaign {i % 50}",
            "size": 2048, "smtputf8": False, "check_name": check,
            "reason": f"{check}: found in body", "verdicts": [[check, "hold", "x"]],
            "status": rng.choice(STATUSES), "notes": [], "sealed_message": sealed,
            "key_id": key_id,
            # arrival order: ids and times rise together, 60 days in all
            "created_at": now - timedelta(seconds=(count - i) * 60 * 86400 / count)})
    async with gateway.engine.begin() as conn:
        for start in range(0, count, 5000):
            await conn.execute(held_messages.insert(), rows[start:start + 5000])
    return tenants


async def maintain(gateway: Gateway, database: str) -> None:
    """What a running installation has done by the time 100,000 messages are held:
    PostgreSQL's autovacuum (statistics, visibility map), the gateway's own retention round
    (its SQLite statistics refresh)."""
    if database == "postgres":
        async with gateway.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql("VACUUM ANALYZE held_messages")
    else:
        await gateway.retention.refresh_statistics()


async def sign_in(base: str, secret: bytes) -> dict[str, str]:
    """The session cookie (sent by hand: it is Secure, and this is loopback http)."""
    async with httpx.AsyncClient(base_url=base) as client:
        page = await client.get("/review/login")
        csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        login_cookie = page.cookies.get("__Host-ocg-login") or \
            page.headers["set-cookie"].split(";", 1)[0].split("=", 1)[1]
        response = await client.post("/review/login", data={
            "csrf": csrf, "username": "reviewer", "password": PASSWORD,
            "code": totp.code_at(secret, totp.current_step())},
            headers={"Cookie": f"__Host-ocg-login={login_cookie}"})
        assert response.status_code == 303, response.text[:300]
        token = response.headers["set-cookie"].split(";", 1)[0]
    return {"Cookie": token}


async def measure(base: str, headers: dict[str, str], path: str) -> list[float]:
    times = []
    async with httpx.AsyncClient(base_url=base, headers=headers) as client:
        for _ in range(10):  # warm the caches
            (await client.get(path)).raise_for_status()
        for _ in range(REQUESTS):
            start = time.perf_counter()
            response = await client.get(path)
            times.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200 and "Review queue" in response.text
    return times


async def run(database: str, count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        config_path = write_config(work, free_port(), free_port(), database)
        await prepare(config_path, database)
        os.environ["GATEWAY__HTTP__ADMIN_PORT"] = str(free_port())
        config = config_module.load(config_path)
        gateway = Gateway(config, str(config_path))
        await gateway.start(run_queue=False, roles=("admin",))
        try:
            started = time.perf_counter()
            tenants = await fill(gateway, count)
            print(f"{count} held messages written in {time.perf_counter() - started:.1f} s "
                  f"({database})")
            await maintain(gateway, database)
            uri = await gateway.reviewers.add("reviewer", PASSWORD, "compliance", None,
                                              "bench")
            secret = parse_qs(urlsplit(uri).query)["secret"][0]
            key = base64.b32decode(secret + "=" * (-len(secret) % 8))
            base = f"http://127.0.0.1:{gateway.ports.admin}"
            headers = await sign_in(base, key)
            since = (datetime.now(UTC) - timedelta(days=7)).date().isoformat()
            cases = {
                "status=held (default)": "/review/",
                "tenant + status": "/review/?tenant=tenant0&status=held",
                "tenant + reason + status": "/review/?tenant=tenant1&check=sensitive-data"
                                            "&status=held",
                "reason + last 7 days": f"/review/?check=misleading-subject&since={since}",
                "any status, all tenants": "/review/?status=",
            }
            print(f"first page ({config.review.page_size} rows) with counts by reason, "
                  f"{REQUESTS} requests each, ms:")
            for name, path in cases.items():
                times = sorted(await measure(base, headers, path))
                p95 = times[int(len(times) * 0.95) - 1]
                print(f"  {name:28} median {statistics.median(times):6.1f}   p95 {p95:6.1f}")
            assert len(tenants) == 5
        finally:
            await gateway.stop(deadline=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--messages", type=int, default=100_000)
    args = parser.parse_args()
    asyncio.run(run(args.database, args.messages))


if __name__ == "__main__":
    main()
