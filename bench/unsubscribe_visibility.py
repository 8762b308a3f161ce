"""From a one-click POST's answer to the next RCPT being refused, on one node.

An in-process gateway (SQLite or PostgreSQL) with its public listener and submission port.
For each of N recipients: RCPT is accepted (not yet suppressed), the one-click POST is sent
(httpx, a real socket), and the moment its 200 arrives the same SMTP session sends RCPT for
that recipient again. Prints how many of those RCPTs were refused, and the POST's latency.

    python bench/unsubscribe_visibility.py [--count 500] [--database sqlite|postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiosmtplib
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.relay_throughput import SENDER, free_port, prepare, wait_port, write_config  # noqa: E402
from gateway import config as config_module  # noqa: E402
from gateway.app.service import Gateway  # noqa: E402
from gateway.optout.token import Claims  # noqa: E402


async def run(config_path: Path, count: int) -> None:
    gateway = Gateway(config_module.load(config_path, {}), str(config_path))
    ports = await gateway.start(run_queue=False)
    mailbox = gateway.directory.mailbox(SENDER)
    assert mailbox is not None
    post_ms, refused, accepted_before = [], 0, 0
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=ports.submission, start_tls=False)
    await smtp.connect()
    await smtp.ehlo()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports.public}") as web:
            for i in range(count):
                recipient = f"visible-{i}@example.org"
                token = gateway.sealer.seal(Claims(mailbox.tenant_id, mailbox.id, "BENCH",
                                                   recipient))
                await smtp.mail(SENDER)
                before, _ = await smtp.rcpt(recipient)
                accepted_before += before == 250
                await smtp.rset()
                start = time.perf_counter()
                response = await web.post(f"/u/{token}",
                                          content=b"List-Unsubscribe=One-Click")
                post_ms.append(1000 * (time.perf_counter() - start))
                assert response.status_code == 200
                await smtp.mail(SENDER)
                try:
                    code, _ = await smtp.rcpt(recipient)
                except aiosmtplib.SMTPRecipientRefused as exc:
                    code = exc.code
                refused += code == 550
                await smtp.rset()
    finally:
        smtp.close()
        await gateway.stop(deadline=2)
    db = gateway.config.database.url.split(":")[0]
    print(f"{count} recipients, {db}, one node")
    print(f"  RCPT accepted before the POST         {accepted_before}/{count}")
    print(f"  RCPT refused right after the POST's 200  {refused}/{count}")
    print(f"  POST latency  median {statistics.median(post_ms):6.2f} ms   "
          f"p99 {statistics.quantiles(post_ms, n=100)[98]:6.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ocg-bench-") as tmp:
        work = Path(tmp)
        sink_port = free_port()
        path = write_config(work, sink_port, free_port(), args.database)
        path.write_text(path.read_text() + "[http]\npublic_port = 0\nadmin_port = 0\n")
        asyncio.run(prepare(path, args.database))
        sink = subprocess.Popen(["smtp-sink", "-u", "nobody", f"127.0.0.1:{sink_port}", "64"])
        try:
            wait_port(sink_port)
            asyncio.run(run(path, args.count))
        finally:
            sink.terminate()
            sink.wait(timeout=10)


if __name__ == "__main__":
    main()
