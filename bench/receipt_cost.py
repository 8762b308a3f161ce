"""What a signed opt-out receipt costs: signing one (canonical JSON + Ed25519) and verifying
one offline (parse, canonical form, Ed25519), CPU per receipt (`time.process_time`).

    python bench/receipt_cost.py [--receipts 20000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.optout import receipts  # noqa: E402


class OneKey:
    """The purpose keys' interface with one `receipt-signing` version (a random seed)."""

    def __init__(self) -> None:
        self.seed = os.urandom(32)

    def current(self, purpose: str) -> tuple[int, bytes]:
        return 1, self.seed

    def version(self, purpose: str, version: int) -> bytes | None:
        return self.seed if version == 1 else None

    def versions(self, purpose: str) -> list[int]:
        return [1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receipts", type=int, default=20000)
    n = parser.parse_args().receipts
    signer = receipts.ReceiptSigner(OneKey())  # type: ignore[arg-type]
    now = datetime.now(UTC)
    start = time.process_time()
    made = [signer.sign(7, f"{i:064x}", "one-click", now, now, "ab" * 32) for i in range(n)]
    signed = time.process_time() - start
    keys = receipts.keys_from(signer.key_document())
    start = time.process_time()
    for text in made:
        receipts.verify(text, keys)
    verified = time.process_time() - start
    print(f"{n} receipts, {len(made[0])} bytes each")
    print(f"  sign    {1e6 * signed / n:7.1f} us a receipt")
    print(f"  verify  {1e6 * verified / n:7.1f} us a receipt")


if __name__ == "__main__":
    main()
