"""Duplicates under SIGKILL at load: copies delivered twice per 1,000 acknowledged messages.

A gateway (`serve --workers 1`, shipped defaults) relays to a counting sink while client
threads send unique messages as campaign tools do (smtplib, a new session per message, every
4xx or dropped connection retried). Every `--every` seconds the gateway is SIGKILLed and
started again. A copy the upstream accepted before the kill, whose `250` the client never
got, is sent again: SMTP's at-least-once delivery. Nothing acknowledged may be missing.

    python bench/kill_duplicates.py [--messages 2000] [--database sqlite|postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.relay_throughput import (  # noqa: E402
    SENDER,
    free_port,
    prepare,
    wait_port,
    write_config,
)

BODY = (f"From: {SENDER}\r\nTo: {{to}}\r\nSubject: kill bench\r\n"
        "Message-ID: <{tag}@bench.example>\r\n\r\nHello.\r\n")


class Counting:
    def __init__(self) -> None:
        self.copies: Counter[str] = Counter()
        self._lock = threading.Lock()

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        with self._lock:
            for rcpt in envelope.rcpt_tos:  # type: ignore[attr-defined]
                self.copies[rcpt.split("@")[0]] += 1
        return "250 2.0.0 Ok"


def client(port: int, tags: list[str], acknowledged: set[str], lock: threading.Lock,
           stop: threading.Event) -> None:
    for tag in tags:
        while not stop.is_set():
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=15) as smtp:
                    smtp.sendmail(SENDER, [f"{tag}@example.org"],
                                  BODY.format(to=f"{tag}@example.org", tag=tag).encode())
                with lock:
                    acknowledged.add(tag)
                break
            except (smtplib.SMTPException, OSError):
                time.sleep(0.05)  # the gateway is restarting, or said 4xx: send again


def run(database: str, messages: int, every: float, clients: int) -> None:
    sink = Counting()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        port = free_port()
        path = write_config(work, controller.port, port, database)
        asyncio.run(prepare(path, database))
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY")}
        command = [sys.executable, "-m", "gateway", "--config", str(path), "serve",
                   "--workers", "1"]
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        wait_port(port)
        acknowledged: set[str] = set()
        lock, stop = threading.Lock(), threading.Event()
        tags = [f"k{i:05d}" for i in range(messages)]
        threads = [threading.Thread(target=client, args=(port, tags[n::clients], acknowledged,
                                                         lock, stop)) for n in range(clients)]
        for t in threads:
            t.start()
        kills = 0
        started = time.monotonic()
        try:
            while any(t.is_alive() for t in threads):
                time.sleep(every)
                if not any(t.is_alive() for t in threads):
                    break
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                kills += 1
                proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
                wait_port(port, timeout=60)
                if time.monotonic() - started > 900:
                    stop.set()
        finally:
            for t in threads:
                t.join()
            proc.terminate()
            proc.wait(timeout=30)
            controller.stop()
    copies = sink.copies
    lost = [t for t in acknowledged if copies[t] == 0]
    duplicates = sum(n - 1 for n in copies.values() if n > 1)
    print(f"{database:9} acknowledged {len(acknowledged):5}  kills {kills:3}  "
          f"delivered {sum(copies.values()):5}  lost {len(lost)}  duplicates {duplicates:3}  "
          f"= {1000 * duplicates / max(len(acknowledged), 1):.1f} per 1,000  "
          f"({1000 * duplicates / max(len(acknowledged), 1) / max(kills, 1):.2f} per 1,000 "
          "per kill)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--every", type=float, default=2.0, help="seconds between kills")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    for database in (["sqlite", "postgres"] if args.database == "both" else [args.database]):
        run(database, args.messages, args.every, args.clients)


if __name__ == "__main__":
    main()
