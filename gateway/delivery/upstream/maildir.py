"""Local capture into a Maildir: the embedded default and dry runs. Nothing leaves the host."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import secrets
import socket
import time
from pathlib import Path

from gateway.delivery.upstream.base import Copy, DeliveryResult
from gateway.protocol import replies


class MaildirUpstream:
    """Writes each copy to `path/new/` via `path/tmp/` (the Maildir delivery protocol)."""

    def __init__(self, name: str, path: str, fsync: bool = True) -> None:
        self.name = name
        self._root = Path(path)
        self._fsync = fsync
        for sub in ("tmp", "new", "cur"):
            (self._root / sub).mkdir(parents=True, exist_ok=True)
        self._host = socket.gethostname().replace("/", "_").replace(":", "_")
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=8, thread_name_prefix=f"maildir-{name}")

    async def deliver(self, copy: Copy, message: bytes) -> DeliveryResult:
        envelope = (
            f"Return-Path: <{copy.envelope_from}>\r\nDelivered-To: {copy.recipient}\r\n"
        ).encode()
        try:
            loop = asyncio.get_running_loop()
            name = await loop.run_in_executor(self._executor, self._write, envelope + message)
        except OSError:
            return DeliveryResult.failed(copy.recipient, replies.UPSTREAM_UNREACHABLE)
        return DeliveryResult.delivered(copy.recipient, replies.OK.with_text(f"Ok: {name}"))

    def _write(self, data: bytes) -> str:
        name = f"{time.time_ns()}.{secrets.token_hex(6)}.{self._host}"
        tmp = self._root / "tmp" / name
        with open(tmp, "wb") as fh:
            fh.write(data)
            if self._fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.rename(tmp, self._root / "new" / name)
        return name

    async def close(self) -> None:
        self._executor.shutdown(wait=True)
