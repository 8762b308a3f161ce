"""Issue 31's figures: how long `gateway report` takes for a month of 1,000,000 messages, on
SQLite and on PostgreSQL, and the PDF's pages and size.

The month is written into the audit trail through the gateway's own writer (hash chain,
batches of 2,000 rows): per message a `message.received` row and one `copy.delivered` row
(provider class, upstream's answer, the lawful-basis detail), 1 % refused 5.1.1 and 0.3 %
5.7.x, 0.2 % bounce and complaint reports, 3,000 opt-outs with their enforcement, held and
decided messages, data-subject requests, a breaker, a key rotation and a new table version.
Then the CLI a DPO runs is timed, end to end (process start to both files written):

    gateway report --tenant bench --from 2026-10-01 --to 2026-11-01 --out DIR

and `gateway report verify` on what it wrote (which reads the month again).

    python bench/evidence_pack.py [--messages 1000000] [--database sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.relay_throughput import prepare, write_config  # noqa: E402
from gateway import config as config_module  # noqa: E402
from gateway.audit import trail as audit  # noqa: E402
from gateway.optout.receipts import iso  # noqa: E402
from gateway.store.engine import create_engine  # noqa: E402
from gateway.store.schema import audit_batches  # noqa: E402

START = datetime(2026, 10, 1, tzinfo=UTC)
END = datetime(2026, 11, 1, tzinfo=UTC)
BATCH = 2000
PROVIDERS = ["google"] * 45 + ["microsoft"] * 30 + ["yahoo"] * 8 + ["apple"] * 5 + \
    ["other"] * 12
LAWFUL = [("allow", "cctld"), ("allow-with-notice", "record"),
          ("allow-with-notice", "tenant-default"), ("require-consent", "record")]


def _row(event: str, at: datetime, **kw: Any) -> dict[str, Any]:
    row = audit.row(event, actor=kw.pop("actor", "relay"), tenant_id=kw.pop("tenant_id", 1),
                    **kw)
    row["at"] = at
    return row


def month(messages: int, rng: random.Random) -> Any:
    """The month's rows, in time order, a batch at a time."""
    step = (END - START).total_seconds() / (messages + 1)
    batch: list[dict[str, Any]] = []
    for n in range(messages):
        at = START + timedelta(seconds=step * (n + 1))
        queue_id = f"B{n:08d}"
        digest = f"{rng.getrandbits(256):064x}"
        batch.append(_row("message.received", at, queue_id=queue_id, actor="login:bench",
                          action="accept", recipients=1, size=4200, dkim=True,
                          reply="250 2.0.0 queued", footer_parts=1, pixels=1))
        roll = rng.random()
        reply = "550 5.1.1 No such user" if roll < 0.01 else (
            "550 5.7.1 Blocked" if roll < 0.013 else "250 2.0.0 OK")
        decision, source = LAWFUL[n % len(LAWFUL)]
        batch.append(_row("copy.delivered" if reply[0] == "2" else "copy.refused", at,
                          queue_id=queue_id, recipient_digest=digest, reply=reply,
                          provider=rng.choice(PROVIDERS), checked=iso(at),
                          lawful={"policy": "ocg-default v1", "decision": decision,
                                  "source": source}))
        if reply[0] == "2" and rng.random() < 0.002:
            batch.append(_row("optout.automatic", at + timedelta(hours=2), queue_id=queue_id,
                              recipient_digest=digest, actor="feedback:dsn",
                              entry_reason=rng.choice(["bounce", "complaint"]), source="dsn"))
        if n % 333 == 0:
            took = rng.uniform(0.005, 1.5)
            batch.append(_row("optout.effective", at + timedelta(seconds=took),
                              recipient_digest=digest, actor="receipts", channel="one-click",
                              received_at=iso(at),
                              effective_at=iso(at + timedelta(seconds=took))))
        if n % 5000 == 0:
            batch.append(_row("message.held", at, queue_id=f"H{n}", check_name="content",
                              kept=True))
            batch.append(_row("held.released", at + timedelta(hours=1), queue_id=f"H{n}",
                              actor="review:ann"))
        if n % 100000 == 0:
            batch.append(_row("subject.erased", at, recipient_digest=digest, actor="cli:dpo",
                              requested_at=(at - timedelta(days=3)).isoformat()))
        if len(batch) >= BATCH:
            yield batch
            batch = []
    batch.append(_row("breaker.tripped", END - timedelta(days=3), actor="breakers",
                      scope="domain", name="bench.example", metric="complaint", rate=0.0031,
                      window="24h", breaker=1, generation=0))
    batch.append(_row("key.rotated", END - timedelta(days=9), tenant_id=None, actor="cli:ops",
                      purpose="receipt-signing", version=2))
    batch.append(_row("retention.purged", END - timedelta(days=1), tenant_id=None,
                      actor="retention", counts={"opens": 120000, "queue": 40000}))
    yield batch


async def seed(config_path: Path, messages: int) -> tuple[int, float]:
    config = config_module.load(config_path, {})
    engine = create_engine(config.database.url, schema=config.database.schema)
    rows = 0
    started = time.perf_counter()
    try:
        for batch in month(messages, random.Random(31)):
            async with engine.begin() as conn:
                await audit.write(conn, batch)
                newest = (await conn.execute(sa.select(sa.func.max(audit_batches.c.id))))\
                    .scalar()  # the batch was written when its rows were
                await conn.execute(audit_batches.update().where(
                    audit_batches.c.id == newest).values(at=batch[-1]["at"]))
            rows += len(batch)
    finally:
        await engine.dispose()
    return rows, time.perf_counter() - started


def gateway(config: Path, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "gateway", "--config", str(config), *args],
                          capture_output=True, text=True)
    return time.perf_counter() - started, done


def pdf_pages(path: Path) -> str:
    try:
        info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True).stdout
    except FileNotFoundError:
        return "?"
    return next((line.split()[-1] for line in info.splitlines()
                 if line.startswith("Pages:")), "?")


def run(database: str, messages: int) -> None:
    with tempfile.TemporaryDirectory(prefix="ocg-bench-") as tmp:
        work = Path(tmp)
        config = write_config(work, 25, 0, database, "bench_evidence")
        asyncio.run(prepare(config, database))
        rows, seconds = asyncio.run(seed(config, messages))
        print(f"{database}: seeded {rows:,} audit rows for {messages:,} messages "
              f"in {seconds:.0f} s", flush=True)
        out = work / "out"
        took, done = gateway(config, "report", "--tenant", "bench", "--from", "2026-10-01",
                             "--to", "2026-11-01", "--out", str(out))
        if done.returncode != 0:
            raise SystemExit(done.stderr[-3000:])
        pack_path = next(out.glob("*.json"))
        pdf = pack_path.with_suffix(".pdf")
        pack = json.loads(pack_path.read_text())
        checked, verify = gateway(config, "report", "verify", str(pack_path))
        if verify.returncode != 0:
            raise SystemExit(verify.stdout[-3000:] + verify.stderr[-3000:])
        relayed = sum(p["relayed"] for p in pack["document"]["figures"]["delivery"].values())
        print(f"{database}: gateway report {took:.1f} s (rows read "
              f"{pack['document']['audit']['rows_read']:,}, copies relayed {relayed:,}); "
              f"verify {checked:.1f} s; PDF {pdf_pages(pdf)} pages, "
              f"{pdf.stat().st_size / 1024:.0f} KiB; JSON {pack_path.stat().st_size / 1024:.0f}"
              f" KiB", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--database", choices=("sqlite", "postgres", "both"), default="both")
    args = parser.parse_args()
    for database in (("sqlite", "postgres") if args.database == "both" else (args.database,)):
        run(database, args.messages)


if __name__ == "__main__":
    main()
