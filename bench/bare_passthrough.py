"""Baseline: a bare aiosmtpd -> aiosmtplib pass-through in one process, no checks, no store.

The floor the gateway's own work sits on, measured with the same smtp-source/smtp-sink run:
    python bench/bare_passthrough.py [--messages 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time

import aiosmtplib
from aiosmtpd.smtp import SMTP

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relay_throughput import SENDER, SESSIONS, SIZE, free_port, wait_port  # noqa: E402


class PassThrough:
    def __init__(self, port: int) -> None:
        self.port = port
        self.idle: list[aiosmtplib.SMTP] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        client = self.idle.pop() if self.idle else None
        if client is None or not client.is_connected:
            client = aiosmtplib.SMTP(hostname="127.0.0.1", port=self.port, start_tls=False)
            await client.connect()
        await client.sendmail(envelope.mail_from, envelope.rcpt_tos, envelope.original_content)
        self.idle.append(client)
        return "250 2.0.0 Ok"


async def serve(listen_port: int, sink_port: int) -> None:
    handler = PassThrough(sink_port)
    loop = asyncio.get_running_loop()
    await loop.create_server(lambda: SMTP(handler, hostname="bare"), "127.0.0.1", listen_port)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--serve", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(*args.serve))
        return
    sink_port, port = free_port(), free_port()
    sink = subprocess.Popen(["smtp-sink", "-u", "nobody", f"127.0.0.1:{sink_port}", "1024"])
    relay = subprocess.Popen([sys.executable, __file__, "--serve", str(port), str(sink_port)])
    try:
        wait_port(sink_port)
        wait_port(port)
        command = ["smtp-source", "-s", str(SESSIONS), "-l", str(SIZE), "-f", SENDER,
                   "-t", "rcpt@example.org"]
        subprocess.run(command + ["-m", "500", f"127.0.0.1:{port}"], check=True)
        start = time.perf_counter()
        subprocess.run(command + ["-m", str(args.messages), f"127.0.0.1:{port}"], check=True)
        rate = args.messages / (time.perf_counter() - start)
        print(f"bare aiosmtpd -> aiosmtplib pass-through: {rate:.0f} msgs/s "
              f"({SIZE // 1024} KB, {SESSIONS} sessions, {args.messages} messages)")
    finally:
        relay.terminate()
        sink.terminate()
        relay.wait()
        sink.wait()


if __name__ == "__main__":
    main()
