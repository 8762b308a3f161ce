"""Queue drain: N deferred copies delivered to a recovered sink, and new mail meanwhile.

    python bench/queue_drain.py [--copies 100000] [--database postgres] [--size 2048]

The copies are put in the queue directly (sealed, as the relay stores them), all due at
once; then one gateway process (shipped defaults: batch 100, 5 transactions per mailbox)
starts with smtp-sink as the upstream. We time until every copy is delivered, and run
smtp-source against the gateway at the same time to see the rate of new messages.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.relay_throughput import (  # noqa: E402
    SENDER,
    SESSIONS,
    free_port,
    prepare,
    wait_port,
    write_config,
)
from gateway import config as config_module  # noqa: E402
from gateway.delivery.queue import NewCopy, QueueStore, State  # noqa: E402
from gateway.store.engine import create_engine  # noqa: E402
from gateway.store.schema import pending_copies  # noqa: E402
from gateway.vault.envelope import Vault  # noqa: E402
from gateway.vault.master_keys import provider_for  # noqa: E402


async def fill(config_path: Path, copies: int, size: int) -> None:
    config = config_module.load(config_path, {})
    engine = create_engine(config.database.url, schema=config.database.schema)
    store = QueueStore(engine, Vault(provider_for(config)), config.queue.lifetime)
    body = ("x" * 76 + "\r\n") * (size // 78)
    message = (f"From: {SENDER}\r\nTo: r@example.org\r\nSubject: queued\r\n\r\n{body}").encode()
    async with engine.connect() as conn:
        mailbox_id = (await conn.execute(sa.text("SELECT id FROM mailboxes"))).scalar()
        tenant_id = (await conn.execute(sa.text("SELECT id FROM tenants"))).scalar()
    due = datetime.now(UTC)
    for start in range(0, copies, 1000):
        batch = [NewCopy(f"Q{(start + i) // 3:011d}", tenant_id, mailbox_id, SENDER,
                         f"r{start + i}@example.org", State.DEFERRED, 451, "4.2.1", "busy")
                 for i in range(min(1000, copies - start))]
        await store.add(batch, message, first_attempt=due)
    await engine.dispose()


async def delivered(config_path: Path) -> int:
    config = config_module.load(config_path, {})
    engine = create_engine(config.database.url, schema=config.database.schema)
    async with engine.connect() as conn:
        count = (await conn.execute(sa.select(sa.func.count()).select_from(pending_copies)
                                    .where(pending_copies.c.state == "delivered"))).scalar()
    await engine.dispose()
    return int(count or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--copies", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--no-load", action="store_true", help="drain without new mail")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ocg-drain-") as tmp:
        work = Path(tmp)
        sink_port, smtp_port = free_port(), free_port()
        config_path = write_config(work, sink_port, smtp_port, args.database)
        asyncio.run(prepare(config_path, args.database))
        started = time.perf_counter()
        asyncio.run(fill(config_path, args.copies, args.size))
        print(f"queued {args.copies} copies of {args.size} bytes in "
              f"{time.perf_counter() - started:.1f} s ({args.database})")
        sink = subprocess.Popen(["smtp-sink", "-u", "nobody", f"127.0.0.1:{sink_port}", "1024"])
        wait_port(sink_port)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY")}
        gateway = subprocess.Popen([sys.executable, "-m", "gateway", "--config",
                                    str(config_path), "serve"], cwd=ROOT, env=env,
                                   stdout=subprocess.DEVNULL)
        new_mail: list[float] = []
        stop = threading.Event()

        def load() -> None:  # new messages while the queue drains, in rounds of 500
            while not stop.is_set():
                t0 = time.perf_counter()
                subprocess.run(["smtp-source", "-s", str(SESSIONS), "-l", "10240", "-m", "500",
                                "-f", SENDER, "-t", "new@example.org",
                                f"127.0.0.1:{smtp_port}"], check=True, timeout=300)
                new_mail.append(500 / (time.perf_counter() - t0))

        try:
            wait_port(smtp_port)
            t0 = time.perf_counter()
            loader = threading.Thread(target=load)
            if not args.no_load:
                loader.start()
            done = 0
            while done < args.copies:
                time.sleep(2)
                done = asyncio.run(delivered(config_path))
                elapsed = time.perf_counter() - t0
                print(f"  {elapsed:6.1f} s  {done:7d} delivered  ({done / elapsed:6.0f}/s)")
            drain = time.perf_counter() - t0
            stop.set()
            if loader.is_alive():
                loader.join()
        finally:
            stop.set()
            gateway.send_signal(signal.SIGTERM)
            gateway.wait(timeout=60)
            sink.terminate()
            sink.wait()
        rate = sum(new_mail) / len(new_mail) if new_mail else 0.0
        print(f"\nqueue drain ({args.database}): {args.copies} copies in {drain:.1f} s = "
              f"{args.copies / drain:.0f} copies/s")
        print(f"new messages through the same gateway meanwhile: {rate:.0f} msgs/s "
              f"(smtp-source, 10 KB, {SESSIONS} sessions)")


if __name__ == "__main__":
    main()
