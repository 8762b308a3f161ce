"""Vault figures: seal and open per token (µs), and rewrap of N records (seconds).

    python bench/vault.py [--records 100000] [--database postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import secrets
import sys
import tempfile
import time
import timeit
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.delivery.queue import seal_context  # noqa: E402
from gateway.lifecycle.rewrap import rewrap  # noqa: E402
from gateway.store.engine import create_engine, upgrade  # noqa: E402
from gateway.store.schema import pending_copies, tenants  # noqa: E402
from gateway.vault.envelope import Vault  # noqa: E402
from gateway.vault.master_keys import FileKeyProvider  # noqa: E402


def key_file(directory: Path, name: str) -> Path:
    path = directory / name
    path.write_text(base64.b64encode(secrets.token_bytes(32)).decode())
    path.chmod(0o600)
    return path


def per_token(vault: Vault) -> None:
    token = secrets.token_urlsafe(160).encode()  # an OAuth refresh token is ~100-200 bytes
    blob, key_id = vault.seal(token, b"mailboxes|1|refresh_token")
    n = 20000
    seal = timeit.timeit(lambda: vault.seal(token, b"mailboxes|1|refresh_token"), number=n)
    opened = timeit.timeit(lambda: vault.open(blob, key_id, b"mailboxes|1|refresh_token"),
                           number=n)
    print(f"seal  {1e6 * seal / n:6.1f} µs per token ({len(token)} bytes)")
    print(f"open  {1e6 * opened / n:6.1f} µs per token")


async def rewrap_run(work: Path, records: int, database: str) -> None:
    old, new = key_file(work, "old.key"), key_file(work, "new.key")
    if database == "postgres":
        import asyncpg

        conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/test")
        await conn.execute("DROP SCHEMA IF EXISTS bench_vault CASCADE; CREATE SCHEMA bench_vault")
        await conn.close()
        engine = create_engine("postgresql+asyncpg://postgres@127.0.0.1:5432/test",
                               schema="bench_vault")
    else:
        engine = create_engine(f"sqlite+aiosqlite:///{work}/vault.db")
    await upgrade(engine)
    before = Vault(FileKeyProvider(old))
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        await conn.execute(tenants.insert().values(id=1, name="t", status="active",
                                                   status_reason="", settings={},
                                                   created_at=now, updated_at=now))
        await conn.execute(sa.text("INSERT INTO mailboxes (id, tenant_id, address, upstream, "
                                   "status, status_reason, created_at, updated_at) VALUES "
                                   "(1, 1, 'a@t.example', 'x', 'active', '', "
                                   "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
    token = secrets.token_urlsafe(160).encode()
    for start in range(0, records, 5000):
        rows = []
        for i in range(start, min(records, start + 5000)):
            blob, key_id = before.seal(token, seal_context(1, f"Q{i}", f"r{i}@x.example"))
            rows.append({"queue_id": f"Q{i}", "tenant_id": 1, "mailbox_id": 1,
                         "envelope_from": "a@t.example", "recipient": f"r{i}@x.example",
                         "state": "deferred", "reply_code": 451, "reply_status": "4.0.0",
                         "reply_text": "", "sealed_message": blob, "key_id": key_id,
                         "created_at": datetime.now(UTC)})
        async with engine.begin() as conn:
            await conn.execute(pending_copies.insert(), rows)
    rotated = Vault(FileKeyProvider(new, (old,)))
    started = time.perf_counter()
    done = await rewrap(engine, rotated, batch=1000)
    elapsed = time.perf_counter() - started
    print(f"rewrap {done} records ({database}): {elapsed:.1f} s = {done / elapsed:.0f}/s")
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ocg-vault-") as tmp:
        work = Path(tmp)
        per_token(Vault(FileKeyProvider(key_file(work, "k"))))
        asyncio.run(rewrap_run(work, args.records, args.database))


if __name__ == "__main__":
    main()
