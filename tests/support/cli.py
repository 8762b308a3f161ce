"""The CLI as an operator runs it (a real process) against a running gateway's config."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from tests.conftest import Harness


async def gw(harness: Harness, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "gateway", "--config",
                         str(harness.config_path), *args],
        capture_output=True, text=True, timeout=60)
