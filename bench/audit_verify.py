"""`gateway audit verify` over 1,000,000 audit rows.

The rows are written the way the gateway writes them (audit/chain.py: batches of a
node's hash chain), by two nodes' chains, in group commits of 1 to 200 rows, with an anchor
every 50 batches; then the whole trail is verified, as `gateway audit verify` does. Printed:
the time to write and the time to verify, in seconds and rows per second.

    python bench/audit_verify.py [--database sqlite|postgres] [--rows 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.audit import chain as audit_chain  # noqa: E402
from gateway.audit import trail as audit  # noqa: E402
from gateway.audit.verify import verify  # noqa: E402
from gateway.store.engine import create_engine, upgrade  # noqa: E402

EVENTS = ["message.received", "check", "message.relayed", "delivery.delivered",
          "message.held", "suppression.added"]


def rows_for(rng: random.Random, n: int, start: int) -> list[dict]:
    return [audit.row(rng.choice(EVENTS), actor="login:bench", tenant_id=rng.randint(1, 5),
                      queue_id=f"Q{(start + i) // 3:010d}", check_name="sensitive-data",
                      action="pass", reason="", recipient_digest=secrets.token_hex(32),
                      message_id=f"<{start + i}@bench.example>", size=2048 + i)
            for i in range(n)]


async def run(database: str, total: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if database == "postgres":
            import asyncpg

            conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/test")
            await conn.execute("DROP SCHEMA IF EXISTS bench CASCADE; CREATE SCHEMA bench")
            await conn.close()
            engine = create_engine("postgresql+asyncpg://postgres@127.0.0.1:5432/test",
                                   schema="bench")
        else:
            engine = create_engine(f"sqlite+aiosqlite:///{tmp}/audit.db")
        await upgrade(engine)
        key = secrets.token_bytes(32)
        rng = random.Random(3)
        written = batches = 0
        started = time.perf_counter()
        while written < total:
            audit_chain.set_chain_name(rng.choice(["node-a", "node-b"]))
            n = min(total - written, rng.randint(1, 200))
            async with engine.begin() as conn:
                await audit.write(conn, rows_for(rng, n, written))
            written += n
            batches += 1
            if batches % 50 == 0:
                await audit_chain.write_anchor(engine, key)
        await audit_chain.write_anchor(engine, key)
        write_seconds = time.perf_counter() - started
        print(f"wrote {written} rows in {batches} batches on 2 chains ({database}): "
              f"{write_seconds:.1f} s, {written / write_seconds:,.0f} rows/s")
        started = time.perf_counter()
        report = await verify(engine, key)
        seconds = time.perf_counter() - started
        assert report.ok and report.rows == total, report.problems
        print(f"audit verify: {report.rows} rows, {report.batches} batches, {report.anchors} "
              f"anchors in {seconds:.1f} s ({report.rows / seconds:,.0f} rows/s)")
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    asyncio.run(run(args.database, args.rows))


if __name__ == "__main__":
    main()
