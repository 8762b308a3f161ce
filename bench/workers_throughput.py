"""Messages per second with `--workers 1` and `--workers 2`, and through two nodes behind
HAProxy, on PostgreSQL with the full policy on; gateway CPU-milliseconds per message.

The load generator (Postfix's smtp-source, 20 sessions, 10 KB messages), the upstream
(smtp-sink), PostgreSQL and the gateway share this machine's cores, as the issue says. CPU
is the sum over the worker processes (or both nodes), read from /proc.

    python bench/workers_throughput.py [--messages 4000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.relay_throughput import (  # noqa: E402
    cpu_seconds,
    free_port,
    prepare,
    smtp_source,
    wait_port,
    write_config,
)

BALANCER = "127.0.0.3"


class Gateway:
    """`gateway serve` with the given workers; knows its worker pids."""

    def __init__(self, config: Path, workers: int, extra_env: dict[str, str]) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY")}
        env.update({"GATEWAY__HTTP__PUBLIC_PORT": str(free_port()),
                    "GATEWAY__HTTP__ADMIN_PORT": str(free_port()),
                    "GATEWAY__HTTP__DRAIN_SECONDS": "0", **extra_env})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "--config", str(config), "serve",
             "--workers", str(workers)], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        self.pids = [self.proc.pid] if workers == 1 else []
        self._workers = workers
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            found = re.search(r"workers: \d+ \(pids ([\d ]+);", line)
            if found:  # printed once every worker serves
                self.pids.extend(int(pid) for pid in found.group(1).split())

    def cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids)

    def ready(self) -> None:
        while len(self.pids) < self._workers:
            time.sleep(0.05)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=120)


def commits() -> int:
    """Transactions PostgreSQL committed in the test database so far."""
    out = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-Atc",
                          "SELECT pg_stat_force_next_flush(); "
                          "SELECT xact_commit FROM pg_stat_database "
                          "WHERE datname = 'test'"], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1])


def measure(port: int, gateways: list[Gateway], messages: int) -> tuple[float, float, float]:
    """Messages per second, gateway CPU-ms per message, database commits per message."""
    smtp_source(port, 400)  # warm-up: pools, caches, every worker touched
    before, committed = sum(g.cpu() for g in gateways), commits()
    rate = smtp_source(port, messages)
    cpu_ms = 1000 * (sum(g.cpu() for g in gateways) - before) / messages
    return rate, cpu_ms, (commits() - committed) / messages


def haproxy(work: Path, ports: list[int]) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    servers = "\n".join(f"    server n{i} 127.0.0.1:{p} send-proxy-v2 source {BALANCER}"
                        for i, p in enumerate(ports))
    (work / "haproxy.cfg").write_text(f"""
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
listen smtp
    bind 127.0.0.1:{port}
    balance leastconn
{servers}
""")
    proc = subprocess.Popen(["haproxy", "-f", str(work / "haproxy.cfg"), "-db"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return proc, port


def one_gateway(config: Path, workers: int, port: int, messages: int
                ) -> tuple[float, float, float]:
    gateway = Gateway(config, workers, {})
    try:
        wait_port(port)
        gateway.ready()
        return measure(port, [gateway], messages)
    finally:
        gateway.stop()


def two_nodes(work: Path, config: Path, messages: int) -> tuple[float, float, float]:
    proxied = {"GATEWAY__SMTP__PROXY_PROTOCOL": "true",
               "GATEWAY__SMTP__LOAD_BALANCERS": f'["{BALANCER}/32"]'}
    ports = [free_port(), free_port()]
    nodes = [Gateway(config, 1, {**proxied, "GATEWAY__SMTP__SUBMISSION_PORT": str(p),
                                 "GATEWAY__AUDIT__CHAIN": f"node{i}"})
             for i, p in enumerate(ports)]
    balancer, port = haproxy(work, ports)
    try:
        for p in ports:
            wait_port(p)
        return measure(port, nodes, messages)
    finally:
        balancer.terminate()
        balancer.wait(timeout=10)
        for node in nodes:
            node.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3,
                        help="the configurations take turns this many times; medians shown")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ocg-bench-") as tmp:
        work = Path(tmp)
        sink_port, smtp_port = free_port(), free_port()
        config = write_config(work, sink_port, smtp_port, "postgres")
        asyncio.run(prepare(config, "postgres"))
        sink = subprocess.Popen(["smtp-sink", "-u", "nobody", f"127.0.0.1:{sink_port}",
                                 "1024"])
        wait_port(sink_port)
        runs: dict[str, list[tuple[float, float, float]]] = {}
        try:
            # Taking turns, not one configuration's rounds then the next's: this machine's
            # speed drifts (shared host), and a drift must not land on one configuration.
            for _ in range(args.rounds):
                for workers in (1, 2):
                    runs.setdefault(f"--workers {workers}", []).append(
                        one_gateway(config, workers, smtp_port, args.messages))
                runs.setdefault("2 nodes x 1 worker, HAProxy", []).append(
                    two_nodes(work, config, args.messages))
        finally:
            sink.terminate()
            sink.wait(timeout=10)
        results = {name: tuple(statistics.median(r[i] for r in rounds) for i in range(3))
                   for name, rounds in runs.items()}
        base_rate, base_cpu, _ = results["--workers 1"]
        print(f"\nsmtp-source -> gateway -> smtp-sink, 20 sessions, 10 KB, {args.messages} "
              f"messages, PostgreSQL, full policy, {os.cpu_count()} cores; median of "
              f"{args.rounds} rounds (each round: every configuration once)")
        for name, (rate, cpu_ms, per_msg) in results.items():
            print(f"  {name:30} {rate:7.0f} msgs/s ({rate / base_rate:4.2f}x)   "
                  f"CPU {cpu_ms:6.2f} ms/msg ({cpu_ms / base_cpu - 1:+5.0%})   "
                  f"{per_msg:4.2f} commits/msg")
        for name, rounds in runs.items():
            print(f"  rounds, {name}: " + ", ".join(f"{r[0]:.0f}/s {r[1]:.2f} ms"
                                                    for r in rounds))


if __name__ == "__main__":
    main()
