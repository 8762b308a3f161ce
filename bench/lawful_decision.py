"""The lawful-basis decision per recipient at RCPT, in process: the decider alone (digest,
index, table), for recipients without records and with them (both held in memory), on
SQLite and PostgreSQL. Issue 30's allowance: 0.05 ms a recipient.

    python bench/lawful_decision.py [--recipients 20000] [--database sqlite|postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.relay_throughput import free_port, prepare, write_config  # noqa: E402
from gateway import config as config_module  # noqa: E402
from gateway.app.parts import Parts  # noqa: E402
from gateway.lawful import records  # noqa: E402
from gateway.lawful.records import Basis, Consent  # noqa: E402
from gateway.lawful.signals import Attributes  # noqa: E402
from gateway.lawful.table import Kind  # noqa: E402

TLDS = ("de", "fr", "co.uk", "com", "io", "us", "ca", "it", "nl", "jp")


async def run(path: Path, count: int) -> None:
    parts = Parts(config_module.load(path, {}))
    await parts.open_keys()
    await parts.policies.start()
    lawful = parts.lawful
    people = [f"person{i}@company{i % 97}.{TLDS[i % len(TLDS)]}" for i in range(count)]
    recorded = people[: count // 10]
    async with parts.engine.begin() as conn:
        for i, address in enumerate(recorded):
            digest = parts.digest(address)
            await records.put_attributes(conn, 1, digest, Attributes("DE", Kind.NAMED),
                                         "bench", "bench")
            if i % 2:
                await records.add_consent(conn, Consent(1, digest, Basis.EXPRESS,
                                                        datetime.now(UTC), "bench"), "bench")
    await lawful.index.refresh()
    for label, group in (("no record (no query)", people[count // 10:]),
                         ("with records (in memory)", recorded)):
        for address in group[:200]:  # warm
            await lawful.decide(1, address)
        start = time.process_time()
        wall = time.perf_counter()
        sends = 0
        for address in group:
            sends += (await lawful.decide(1, address)).verdict.sends
        cpu = time.process_time() - start
        print(f"  {label:<26} {len(group):>6} recipients  "
              f"{1000 * cpu / len(group):.4f} CPU-ms each  "
              f"{1000 * (time.perf_counter() - wall) / len(group):.4f} ms wall  "
              f"({sends} with a basis)")
    await parts.policies.stop()
    await parts.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipients", type=int, default=20000)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ocg-bench-") as tmp:
        path = write_config(Path(tmp), free_port(), free_port(), args.database)
        asyncio.run(prepare(path, args.database))
        print(f"lawful-basis decision per recipient, {args.database}:")
        asyncio.run(run(path, args.recipients))


if __name__ == "__main__":
    main()
