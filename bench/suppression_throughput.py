"""The gateway's messages per second with a 10,000,000-entry suppression list, against the
same gateway with an empty list (the ratio; the goal is at least 0.95).

Two installations, identical but for the list (SQLite, shipped defaults, smtp-sink
upstream). The list is loaded with `gateway suppress import`, as ops would. The load: 20
sessions, 10 KB messages, each to a new recipient at one of the list's 50,000 domains and
not on it, so every message is delivered and every check reads index pages of its own. Runs
alternate between the two installations; the ratio is of the medians.

    python bench/suppression_throughput.py [--entries 10000000] [--messages 3000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiosmtplib

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.relay_throughput import (  # noqa: E402
    SENDER,
    SESSIONS,
    free_port,
    message,
    prepare,
    wait_port,
    write_config,
)

DOMAINS = 50_000


def recipient(session: int, i: int) -> str:
    n = session * 1_000_003 + i
    return f"r{n}@d{n * 7919 % DOMAINS}.example.com"


async def load(port: int, count: int, offset: int) -> float:
    """Messages per second: SESSIONS connections, each sending one message after another."""
    per_session = count // SESSIONS

    async def session(s: int) -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
        await client.connect()
        for i in range(per_session):
            errors, _ = await client.sendmail(SENDER, [recipient(s, offset + i)], message(i))
            if errors:
                raise SystemExit(f"refused: {errors}")
        await client.quit()

    started = time.perf_counter()
    await asyncio.gather(*(session(s) for s in range(SESSIONS)))
    return per_session * SESSIONS / (time.perf_counter() - started)


def load_process(port: int, count: int, offset: int) -> float:
    """The load generator in its own process, off the gateway's core."""
    code = (f"import asyncio,sys; sys.path.insert(0,{str(ROOT)!r}); "
            "from bench.suppression_throughput import load; "
            f"print(asyncio.run(load({port}, {count}, {offset})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=900)
    return float(out.stdout.strip())


def gateway_cli(config: Path, *args: str, stdin: bytes | None = None) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY")}
    subprocess.run([sys.executable, "-m", "gateway", "--config", str(config), *args],
                   cwd=ROOT, env=env, input=stdin, check=True, stdout=subprocess.DEVNULL)


def fill(config: Path, work: Path, entries: int) -> None:
    listing = work / "list.txt"
    with listing.open("w") as out:
        for i in range(entries):
            out.write(f"user{i}@d{i % DOMAINS}.example.com\n")
    started = time.perf_counter()
    gateway_cli(config, "suppress", "import", str(listing), "--tenant", "bench")
    print(f"  imported {entries:,} entries in {time.perf_counter() - started:.0f} s")
    listing.unlink()


class Installation:
    def __init__(self, root: Path, name: str, sink_port: int) -> None:
        self.work = root / name
        self.work.mkdir()
        self.port = free_port()
        self.config = write_config(self.work, sink_port, self.port, "sqlite")
        asyncio.run(prepare(self.config, "sqlite"))
        gateway_cli(self.config, "suppress", "list", "--tenant", "bench")  # makes the key

    def run(self, count: int, offset: int) -> float:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY")}
        gateway = subprocess.Popen(
            [sys.executable, "-m", "gateway", "--config", str(self.config), "serve"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        try:
            wait_port(self.port)
            load_process(self.port, 400, offset + 10_000_000)  # warm-up
            return load_process(self.port, count, offset)
        finally:
            gateway.terminate()
            gateway.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=10_000_000)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ocg-bench-", dir=os.environ.get("BENCH_DIR")) as tmp:
        root = Path(tmp)
        sink_port = free_port()
        sink = subprocess.Popen(["smtp-sink", "-u", "nobody", f"127.0.0.1:{sink_port}", "1024"])
        try:
            wait_port(sink_port)
            empty = Installation(root, "empty", sink_port)
            full = Installation(root, "full", sink_port)
            fill(full.config, full.work, args.entries)
            os.sync()
            rates: dict[str, list[float]] = {"empty": [], "full": []}
            for r in range(args.rounds):
                for name, installation in (("empty", empty), ("full", full)):
                    rate = installation.run(args.messages, offset=r * args.messages)
                    rates[name].append(rate)
                    print(f"  round {r + 1} {name:5s} list: {rate:7.0f} msgs/s")
        finally:
            sink.terminate()
            sink.wait(timeout=10)
    median_empty, median_full = statistics.median(rates["empty"]), statistics.median(rates["full"])
    print(f"\n{SESSIONS} sessions, 10 KB messages, {args.messages} per run, SQLite")
    print(f"  empty list            {median_empty:7.0f} msgs/s (median of {args.rounds})")
    print(f"  {args.entries:,} entries  {median_full:7.0f} msgs/s")
    print(f"  ratio                 {median_full / median_empty:7.3f}")


if __name__ == "__main__":
    main()
