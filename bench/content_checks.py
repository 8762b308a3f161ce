"""The content checks' CPU per message, each check alone, on the peers bench's messages
(bench/peers.py: 10 KB text, ~10 KB HTML campaign), and the sensitive-data finder per 10 KB
of text against the implementation before issue 25 (tests/support/sensitive_reference.py).

    .venv/bin/python bench/content_checks.py [--repeat 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.peers import html_message  # noqa: E402
from bench.relay_throughput import SIZE  # noqa: E402
from gateway.directory.records import Principal, Tenant  # noqa: E402
from gateway.policy import sensitive  # noqa: E402
from gateway.policy.check import PolicyContext, Transaction  # noqa: E402
from gateway.policy.message import Message  # noqa: E402
from gateway.policy.misleading_subject import MisleadingSubject  # noqa: E402
from gateway.policy.readable import text_parts  # noqa: E402
from gateway.policy.sensitive_data import SensitiveData  # noqa: E402
from tests.support import sensitive_reference  # noqa: E402
from tests.support.config import load  # noqa: E402

TENANT = Tenant(1, "bench", "active", "", {})
PRINCIPAL = Principal(1, "bench", 1, "password")


def text_message() -> bytes:
    body = ("X" * 76 + "\r\n") * (SIZE // 78)
    return (f"From: <sales@bench.example>\r\nTo: <rcpt@example.org>\r\nSubject: bench\r\n"
            f"Message-ID: <1@bench.example>\r\n\r\n{body}").encode()


def per_call(run, repeat: int) -> float:
    """Milliseconds of CPU per call."""
    start = time.process_time()
    for _ in range(repeat):
        run()
    return (time.process_time() - start) * 1000 / repeat


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()
    ctx = PolicyContext(load(), None, None)  # type: ignore[arg-type]  # these need neither
    messages = {"text": text_message(),
                "HTML": html_message().replace("\n", "\r\n").encode()}
    loop = asyncio.new_event_loop()
    print(f"CPU-ms per call, {args.repeat} calls (fresh Message each: nothing cached)")
    for name, raw in messages.items():
        report(name, raw, ctx, loop, args.repeat)


def report(name: str, raw: bytes, ctx: PolicyContext, loop: asyncio.AbstractEventLoop,
           repeat: int) -> None:
    texts = text_parts(Message(raw))
    size = sum(len(t) for _, t in texts)
    print(f"\n{name} message ({len(raw)} bytes; {size} characters of text in "
          f"{len(texts)} part(s))")
    checks = (SensitiveData(ctx), MisleadingSubject(ctx))

    def transaction() -> Transaction:
        return Transaction(PRINCIPAL, TENANT, "sales@bench.example", message=Message(raw),
                           recipients=("r@example.org",))

    for check in checks:
        ms = per_call(lambda c=check: loop.run_until_complete(c.check(transaction())), repeat)
        print(f"  {check.name:<22}{ms:8.3f}  (alone: reads the text itself)")

    def both() -> None:
        tx = transaction()  # one message: the second check reads the text the first read
        for check in checks:
            loop.run_until_complete(check.check(tx))

    print(f"  {'both, one message':<22}{per_call(both, repeat):8.3f}")
    parse = per_call(lambda: text_parts(Message(raw)), repeat)
    print(f"  {'(reading the text)':<22}{parse:8.3f}  (included above)")
    for label, find in (("sensitive.find", sensitive.find),
                        ("  before issue 25", sensitive_reference.find)):
        ms = per_call(lambda f=find: [f(t) for _, t in texts], repeat)
        print(f"  {label:<22}{ms:8.3f}  = {ms * 10240 / max(size, 1):.3f} per 10 KB")

if __name__ == "__main__":
    main()
