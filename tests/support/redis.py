"""A Redis started with the durability the vault's Redis backend requires."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis


@contextlib.asynccontextmanager
async def durable_redis(tmp_path: Path) -> AsyncIterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is required (scripts/install-system-packages.sh)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "yes", "--appendfsync", "always",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = aioredis.Redis.from_url(url)
        for _ in range(100):
            with contextlib.suppress(Exception):
                await client.ping()
                break
            await asyncio.sleep(0.05)
        await client.aclose()
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
