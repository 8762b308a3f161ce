"""Import speed: N addresses from a CSV into the suppression store (SQLite and PostgreSQL),
through the same path as `gateway suppress import` (parse, canonical form, digest, upsert in
batches; a file this large is parsed in a second process while the first one writes).
Also prints the peak memory, which stays flat as N grows.

    python bench/suppression_import.py [--rows 1000000] [--database sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import secrets
import string
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.store.engine import create_engine, upgrade  # noqa: E402
from suppression.bulk import write_batches  # noqa: E402
from suppression.digest import Digester  # noqa: E402
from suppression.entries import Reason  # noqa: E402
from suppression.formats import Defaults  # noqa: E402
from suppression.parallel import batches_for  # noqa: E402
from suppression.store import SuppressionStore  # noqa: E402

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"


def write_csv(path: Path, rows: int) -> None:
    rng = random.Random(7)
    domains = [f"{''.join(rng.choices(string.ascii_lowercase, k=8))}.example.com"
               for _ in range(20_000)] + ["gmail.com", "outlook.com", "yahoo.com"]
    with path.open("w") as out:
        out.write("email,created\n")  # SendGrid's global unsubscribes layout
        for i in range(rows):
            local = "".join(rng.choices(string.ascii_letters, k=rng.randint(5, 12)))
            tag = f"+t{i % 7}" if i % 10 == 0 else ""
            out.write(f"{local}.{i}{tag}@{rng.choice(domains)},{1700000000 + i}\n")


async def run(url: str, schema: str, csv_path: Path) -> tuple[float, int]:
    engine = create_engine(url, schema=schema)
    await upgrade(engine)
    store = SuppressionStore(Digester(secrets.token_bytes(32), "bench"))
    now = int(time.time())
    defaults = Defaults(1, Reason.MANUAL, "import", now)
    with csv_path.open("rb") as f:
        batches = batches_for(iter(lambda: f.read(1 << 20), b""), defaults, None, store, now)
        report = await write_batches(engine, store, batches)
    async with engine.connect() as conn:
        count = (await conn.execute(sa.text("SELECT count(*) FROM suppressions"))).scalar_one()
    await engine.dispose()
    assert report.bad_count == 0, report.bad[:3]
    return report.rows / report.seconds, count


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        csv_path = Path(work) / "list.csv"
        write_csv(csv_path, args.rows)
        print(f"{args.rows:,} addresses, {csv_path.stat().st_size / 1e6:.0f} MB of CSV")
        if args.database in ("sqlite", "both"):
            rate, count = await run(f"sqlite+aiosqlite:///{work}/bench.db", "", csv_path)
            print(f"sqlite:     {rate:>9,.0f} rows/s  ({count:,} entries)")
        if args.database in ("postgres", "both"):
            schema = f"bench_{secrets.token_hex(4)}"
            conn = await asyncpg.connect(PG_DSN)
            await conn.execute(f"CREATE SCHEMA {schema}")
            try:
                rate, count = await run(
                    "postgresql+asyncpg://postgres@127.0.0.1:5432/test", schema, csv_path)
                print(f"postgresql: {rate:>9,.0f} rows/s  ({count:,} entries)")
            finally:
                await conn.execute(f"DROP SCHEMA {schema} CASCADE")
                await conn.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    parser = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak memory: {peak:.0f} MB (this process), {parser:.0f} MB (parser process)")


if __name__ == "__main__":
    asyncio.run(main())
