"""Opt-outs landing on two nodes while both send: enforcement latency across nodes, and the
sends after an opt-out took effect (issue 29's figures).

Two `gateway serve` processes (node-a, node-b: their own ports and audit chains) share one
PostgreSQL database and relay to an aiosmtpd sink in this process that records each copy's
recipient and List-Unsubscribe link. `--sends` one-recipient messages go to a pool of
`2 x --opt-outs` recipients, alternating nodes, `--sessions` at once. Meanwhile, for
`--opt-outs` of those recipients, as the sink receives their first copy, the link's
one-click POST goes to one node's public listener (as a mailbox provider sends it) and, the
moment its 200 arrives, RCPT for that person is tried on the *other* node until it is
refused (`--opt-out-workers` people at once).

Printed: the POST latency, the time from sending the POST to the other node's refusal
(p50/p99), the sends whose transaction began after an opt-out's 200 and still went
(client-observed: must be 0), and `gateway optouts report` for the run (from the audit
trail: opt-outs by node, request to enforcement, copies relayed after — 0 — and in flight).

    python bench/optout_run.py [--sends 10000] [--opt-outs 1000] [--sessions 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiosmtplib
import httpx
from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.relay_throughput import SENDER, free_port, prepare, wait_port, write_config  # noqa: E402

PER_CONNECTION = 100
LINK = re.compile(rb"List-Unsubscribe: <https://links\.bench\.example(/u/[a-z2-7]+)>")


@dataclass
class Sink:
    """The upstream: each copy's recipient and when its DATA ended; the first copy of each
    person in `watched` hands their one-click path to `arrived`."""

    watched: set[str] = field(default_factory=set)
    links: dict[str, str] = field(default_factory=dict)
    copies: list[tuple[str, float]] = field(default_factory=list)
    arrived: asyncio.Queue[str] | None = None
    loop: asyncio.AbstractEventLoop | None = None

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        content: bytes = envelope.content  # type: ignore[attr-defined]
        (recipient,) = envelope.rcpt_tos  # type: ignore[attr-defined]
        self.copies.append((recipient, time.time()))
        match = LINK.search(content)
        if match and recipient in self.watched and recipient not in self.links:
            self.links[recipient] = match.group(1).decode()
            assert self.loop is not None and self.arrived is not None
            self.loop.call_soon_threadsafe(self.arrived.put_nowait, recipient)
        return "250 OK"


@dataclass
class Node:
    name: str
    smtp: int
    public: int
    admin: int
    config: Path
    process: subprocess.Popen[bytes] | None = None


def node_config(base: Path, node: Node) -> None:
    text = re.sub(r"submission_port = \d+", f"submission_port = {node.smtp}", base.read_text())
    # both nodes run on this machine, so they share the tenant-key directory prepare() wrote
    text = text.replace("[vault]\n", "[vault]\ntenant_key_store_single_node = true\n")
    text += (f'[audit]\nchain = "{node.name}"\n'
             f"[http]\npublic_port = {node.public}\nadmin_port = {node.admin}\n")
    node.config.write_text(text)


async def send_all(nodes: list[Node], recipients: list[str], sends: int, sessions: int,
                   opted: dict[str, float], late: list[str]) -> float:
    """One-recipient messages, alternating nodes; returns msgs/s. A send to someone whose
    opt-out answered 200 before the transaction began, and that still went, is `late`."""
    work = iter(range(sends))

    async def session(n: int) -> None:
        node = nodes[n % len(nodes)]
        while True:  # a campaign tool's connection: some messages, then a new one
            smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=node.smtp, start_tls=False)
            await smtp.connect()
            await smtp.ehlo()
            sent = 0
            for i in work:
                # everyone once (so each watched person gets a copy early), then at random
                to = recipients[i] if i < len(recipients) else random.choice(recipients)
                began = time.time()
                body = (f"From: {SENDER}\r\nTo: {to}\r\nSubject: run {i}\r\n"
                        f"Message-ID: <run.{i}@bench.example>\r\n\r\nHello {i}\r\n").encode()
                try:
                    await smtp.sendmail(SENDER, [to], body)
                except aiosmtplib.SMTPRecipientsRefused:
                    await smtp.rset()
                else:
                    if to in opted and opted[to] <= began:
                        late.append(to)
                sent += 1
                if sent == PER_CONNECTION:
                    break
            await smtp.quit()
            if sent < PER_CONNECTION:
                return

    start = time.perf_counter()
    await asyncio.gather(*(session(n) for n in range(sessions)))
    return sends / (time.perf_counter() - start)


async def opt_out_all(nodes: list[Node], sink: Sink, workers: int, opted: dict[str, float],
                      post_ms: list[float], cross_ms: list[float]) -> None:
    """Each watched person, as their first copy arrives: POST on one node, then RCPT on the
    other until refused; `workers` at once, until cancelled."""
    assert sink.arrived is not None
    arrived = sink.arrived

    async def worker(k: int) -> None:
        here, there = nodes[k % 2], nodes[1 - k % 2]
        probe = aiosmtplib.SMTP(hostname="127.0.0.1", port=there.smtp, start_tls=False)
        await probe.connect()
        await probe.ehlo()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{here.public}") as web:
            try:
                while True:
                    person = await arrived.get()
                    sent = time.perf_counter()
                    answer = await web.post(sink.links[person],
                                            content=b"List-Unsubscribe=One-Click")
                    assert answer.status_code == 200, answer.text[:200]
                    post_ms.append(1000 * (time.perf_counter() - sent))
                    opted[person] = time.time()
                    while True:
                        await probe.mail(SENDER)
                        try:
                            code, _ = await probe.rcpt(person)
                        except aiosmtplib.SMTPRecipientRefused as exc:
                            code = exc.code
                        await probe.rset()
                        if code == 550:
                            cross_ms.append(1000 * (time.perf_counter() - sent))
                            break
                        await asyncio.sleep(0.001)
            finally:
                probe.close()

    await asyncio.gather(*(worker(k) for k in range(workers)))


def pct(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100)[p - 1] if len(values) > 1 else values[0]


async def run(args: argparse.Namespace, nodes: list[Node], sink: Sink) -> None:
    sink.loop = asyncio.get_running_loop()
    sink.arrived = asyncio.Queue()
    pool = [f"person{i}@example.org" for i in range(2 * args.opt_outs)]
    random.shuffle(pool)
    sink.watched = set(random.sample(pool, args.opt_outs))
    opted: dict[str, float] = {}
    late: list[str] = []
    post_ms: list[float] = []
    cross_ms: list[float] = []
    started = time.time()
    opt_outs = asyncio.create_task(
        opt_out_all(nodes, sink, args.opt_out_workers, opted, post_ms, cross_ms))
    rate = await send_all(nodes, pool, args.sends, args.sessions, opted, late)
    opt_outs.cancel()
    await asyncio.gather(opt_outs, return_exceptions=True)
    finished = time.time()
    print(f"{args.sends} sends over 2 nodes ({args.sessions} sessions, {rate:.0f} msgs/s), "
          f"{len(opted)} one-click opt-outs during them, PostgreSQL")
    print(f"  POST latency (request to 200)         p50 {pct(post_ms, 50):6.2f} ms   "
          f"p99 {pct(post_ms, 99):6.2f} ms")
    print(f"  POST on one node to 550 on the other   p50 {pct(cross_ms, 50):6.2f} ms   "
          f"p99 {pct(cross_ms, 99):6.2f} ms   max {max(cross_ms):6.2f} ms")
    print(f"  sends begun after an opt-out's 200 that still went: {len(late)}")
    at_sink = sum(1 for to, at in sink.copies if to in opted and at > opted[to])
    print(f"  copies the sink took after the person's opt-out answered 200: {at_sink} "
          "(in flight: looked at before it)")
    report = subprocess.run(
        [sys.executable, "-m", "gateway", "--config", str(nodes[0].config), "optouts",
         "report", "--tenant", "bench", "--from",
         time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started - 1)), "--to",
         time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(finished + 2)), "--json"],
        capture_output=True, text=True, check=True, env=env())
    found = json.loads(report.stdout)
    print("  gateway optouts report (from the audit trail):")
    print(f"    opt-outs {found['opt_outs']} {found['by_channel']}")
    for node, lat in {"every node": found["latency"], **found["by_node"]}.items():
        print(f"    request to enforcement, {node:<10} n={lat['count']:<5} "
              f"p50 {lat['p50_ms']:.1f} ms   p99 {lat['p99_ms']:.1f} ms   "
              f"max {lat['max_ms']:.1f} ms")
    print(f"    copies relayed after an opt-out: {found['relayed_after']}   "
          f"in flight when it took effect: {found['in_flight']}")


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sends", type=int, default=10000)
    parser.add_argument("--opt-outs", type=int, default=1000)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--opt-out-workers", type=int, default=6)
    args = parser.parse_args()
    random.seed(29)
    with tempfile.TemporaryDirectory(prefix="ocg-bench-") as tmp:
        work = Path(tmp)
        sink = Sink()
        controller = Controller(sink, hostname="127.0.0.1", port=free_port())
        controller.start()
        base = write_config(work, controller.port, 0, "postgres")
        asyncio.run(prepare(base, "postgres"))
        nodes = [Node(name, free_port(), free_port(), free_port(), work / f"{name}.toml")
                 for name in ("node-a", "node-b")]
        try:
            for node in nodes:
                node_config(base, node)
                node.process = subprocess.Popen(
                    [sys.executable, "-m", "gateway", "--config", str(node.config), "serve",
                     "--workers", "1"], env=env(), stderr=(work / f"{node.name}.log").open("wb"))
            for node in nodes:
                if node.process is not None and node.process.poll() is not None:
                    raise SystemExit((work / f"{node.name}.log").read_text()[-3000:])
                try:
                    wait_port(node.smtp, 60)
                    wait_port(node.public, 60)
                except SystemExit:
                    raise SystemExit((work / f"{node.name}.log").read_text()[-3000:]) from None
            asyncio.run(run(args, nodes, sink))
        finally:
            for node in nodes:
                if node.process is not None:
                    node.process.terminate()
                    node.process.wait(timeout=30)
            controller.stop()


if __name__ == "__main__":
    main()
