"""How long a master-key rotation takes to re-wrap the tenant key store (issue 21's figure).

Puts N tenant keys sealed under an old master key into each key store backend (a directory,
a durable Redis started here, a separate PostgreSQL database made here), then times
`TenantKeys.rewrap()` under a new primary key, and prints seconds and keys/s per backend.

    python bench/tenant_key_rewrap.py --tenants 10000
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.store.engine import create_engine
from gateway.vault.envelope import Vault
from gateway.vault.key_store import (
    DirectoryKeyStore,
    PostgresKeyStore,
    RedisKeyStore,
    TenantKeyStore,
)
from gateway.vault.master_keys import FileKeyProvider
from gateway.vault.tenant_keys import TenantKeys, seal_context

PG = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")


def key_file(directory: Path, name: str) -> Path:
    path = directory / name
    path.write_text(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
    path.chmod(0o600)
    return path


@contextlib.asynccontextmanager
async def redis_server(directory: Path) -> AsyncIterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", str(port),
                             "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
                             "--appendfsync", "always", "--dir", str(directory)],
                            stdout=subprocess.DEVNULL)
    await asyncio.sleep(0.5)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def one(name: str, store: TenantKeyStore, old: Vault, new: Vault, n: int) -> None:
    await store.check()
    for tenant_id in range(1, n + 1):
        sealed, key_id = old.seal(AESGCM.generate_key(256), seal_context(tenant_id))
        await store.put(tenant_id, sealed, key_id)
    engine = create_engine("sqlite+aiosqlite:///:memory:")
    keys = TenantKeys(engine, new, store)
    cpu, wall = time.process_time(), time.perf_counter()
    done = await keys.rewrap()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    assert done == n and await keys.remaining() == 0
    print(f"{name:<12} {n:>7} {wall:>9.2f} {n / wall:>9.0f} {cpu * 1000 / n:>12.3f}")
    await engine.dispose()
    await store.close()


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        old_file = key_file(directory, "old.key")
        old = Vault(FileKeyProvider(old_file))
        new = Vault(FileKeyProvider(key_file(directory, "new.key"), (old_file,)))
        print(f"{'store':<12} {'tenants':>7} {'seconds':>9} {'keys/s':>9} {'CPU-ms/key':>12}")
        await one("directory", DirectoryKeyStore(str(directory / "keys")), old, new, n)
        async with redis_server(directory) as url:
            await one("redis", RedisKeyStore(url), old, new, n)
        name = f"ocg_keys_bench_{secrets.token_hex(3)}"
        admin = await asyncpg.connect(PG)
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            await one("postgresql", PostgresKeyStore(PG.rsplit("/", 1)[0] + f"/{name}"),
                      old, new, n)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=10000)
    asyncio.run(main(parser.parse_args().tenants))
