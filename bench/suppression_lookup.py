"""RCPT-time suppression lookup latency with a large list: p50/p99 of the check as the
handler calls it (canonical form, digests, the fast lookup), 20 concurrent sessions.

    python bench/suppression_lookup.py [--entries 10000000] [--database sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.store.engine import create_engine, upgrade  # noqa: E402
from suppression.canonical import canonical  # noqa: E402
from suppression.digest import Digester  # noqa: E402
from suppression.entries import Kind, Target  # noqa: E402
from suppression.lookup import lookup_for  # noqa: E402
from suppression.store import SuppressionStore  # noqa: E402

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
SESSIONS, CHECKS = 20, 500
PACED_RATE = 5000  # checks/s offered in the paced pass: 8 times the gateway's msgs/s


async def fill(url: str, schema: str, store: SuppressionStore, entries: int) -> None:
    engine = create_engine(url, schema=schema)
    await upgrade(engine)
    now = int(time.time())
    started = time.perf_counter()
    for start in range(0, entries, 50_000):
        rows = [store.row_for(Target(Kind.ADDRESS, f"user{i}@d{i % 50_000}.example.com"),
                              1 + i % 100, now)
                for i in range(start, min(start + 50_000, entries))]
        async with engine.begin() as conn:
            await store.add_rows(conn, rows)
    if engine.dialect.name == "postgresql":
        # A list loaded long ago: planner statistics and the visibility map are current
        # (otherwise autovacuum runs through the measurement).
        async with engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            await raw.execute("VACUUM ANALYZE suppressions")
            await raw.execute("CHECKPOINT")
    await engine.dispose()
    print(f"  filled {entries:,} entries in {time.perf_counter() - started:.0f} s")
    # Measure a list at rest, not the kernel writing a gigabyte of fresh pages to disk.
    os.sync()


async def measure(url: str, schema: str, digester: Digester, entries: int) -> None:
    """Passes of 10,000 checks, each on addresses not checked before: the first mostly on
    domains never seen (each validated once, then cached), the second on the same domains
    (new recipients at known domains: a campaign's usual traffic); both back to back, which
    is saturation. The third is paced: each session pauses about 4 ms between checks, as
    an SMTP client's next RCPT would, offering 5,000 checks a second in all."""
    lookup = lookup_for(url, schema, digester)
    latencies: list[float] = []

    async def session(n: int, shift: int, pause: float = 0.0) -> None:
        rng = random.Random(n)
        for i in range(CHECKS):
            # half hits (tenant 1..100 as filled), half misses
            k = ((n * CHECKS + i) * 7919 + shift) % entries
            address = f"user{k}@d{k % 50_000}.example.com" if i % 2 else f"nobody{k}@x.example"
            t = time.perf_counter()
            await lookup.check(1 + k % 100, canonical(address), int(time.time()))
            latencies.append(time.perf_counter() - t)
            # back to back (saturation), or a client's turn-around between RCPTs
            await asyncio.sleep(rng.uniform(0.5, 1.5) * pause if pause else 0)

    await session(-1, 0)  # the event loop, the connections, the top of the index
    passes = (("first sight", 0, 0.0), ("known domains", 50_000, 0.0),
              ("paced", 100_000, SESSIONS / PACED_RATE))
    for label, shift, pause in passes:
        latencies.clear()
        started = time.perf_counter()
        await asyncio.gather(*(session(n, shift, pause) for n in range(SESSIONS)))
        rate = len(latencies) / (time.perf_counter() - started)
        latencies.sort()
        p50 = statistics.median(latencies) * 1e6
        p99 = latencies[int(len(latencies) * 0.99)] * 1e6
        print(f"  {label:13s} {len(latencies):,} checks, {SESSIONS} sessions, "
              f"{rate:,.0f} checks/s: p50 {p50:.0f} µs, p99 {p99:.0f} µs")
    await lookup.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=10_000_000)
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    digester = Digester(secrets.token_bytes(32), "bench")
    store = SuppressionStore(digester)
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as work:
        if args.database in ("sqlite", "both"):
            url = f"sqlite+aiosqlite:///{work}/bench.db"
            print("sqlite")
            await fill(url, "", store, args.entries)
            await measure(url, "", digester, args.entries)
        if args.database in ("postgres", "both"):
            schema = f"bench_{secrets.token_hex(4)}"
            conn = await asyncpg.connect(PG_DSN)
            await conn.execute(f"CREATE SCHEMA {schema}")
            try:
                url = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
                print("postgresql")
                await fill(url, schema, store, args.entries)
                await measure(url, schema, digester, args.entries)
            finally:
                await conn.execute(f"DROP SCHEMA {schema} CASCADE")
                await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
