"""Kill a gateway while it drains its queue: nothing is lost; duplicates are counted."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from gateway import config as config_module
from gateway.delivery.queue import NewCopy, QueueStore, State
from gateway.directory.store import DirectoryStore
from gateway.store.engine import create_engine, upgrade
from gateway.vault.envelope import Vault
from gateway.vault.master_keys import provider_for
from tests.conftest import Pki, seed, write_config
from tests.support import messages
from tests.support.sink import RecordingSink

COPIES = 60


async def test_sigkill_mid_drain_loses_nothing_and_duplicates_are_counted(
        tmp_path: Path, pki: Pki, database):
    sink = await RecordingSink().start()
    sink.faults.delay = 0.05  # slow enough that the kill lands mid-drain
    path = write_config(tmp_path, pki, database, sink.port, extra=(
        "[queue]\npoll_interval = 0.05\nlease = 1\nbatch = 10\n"))
    config = config_module.load(path, {})
    engine = create_engine(config.database.url, schema=config.database.schema)
    await upgrade(engine)
    await seed(DirectoryStore(engine))
    (mailbox,) = [m for _, m in await DirectoryStore(engine).list_mailboxes("acme")
                  if m.address == "sales@acme.example"]
    store = QueueStore(engine, Vault(provider_for(config)), config.queue.lifetime)
    await store.add([NewCopy(f"K{i:04d}", mailbox.tenant_id, mailbox.id, "sales@acme.example",
                             f"r{i}@example.org", State.DEFERRED, 451, "4.2.1", "busy")
                     for i in range(COPIES)], messages.simple(), first_attempt=datetime.now(UTC))
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY")}
    # one process: SIGKILL hits the process that drains (a supervisor would pass a
    # graceful stop on to its workers, tests/e2e/test_workers.py)
    command = [sys.executable, "-m", "gateway", "--config", str(path), "serve", "--workers", "1"]
    try:
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        for _ in range(200):  # wait until the drain is under way
            if len(sink.received) >= COPIES // 4:
                break
            await asyncio.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        at_kill = len(sink.received)
        assert 0 < at_kill < COPIES
        await asyncio.sleep(1.2)  # the dead worker's leases run out
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        for _ in range(400):
            if len({r.recipients[0] for r in sink.received}) == COPIES:
                break
            await asyncio.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    finally:
        await sink.stop()
    delivered = [r.recipients[0] for r in sink.received]
    assert set(delivered) == {f"r{i}@example.org" for i in range(COPIES)}  # nothing lost
    duplicates = len(delivered) - COPIES
    # At most the copies in flight when the process died (one round of `batch`).
    assert 0 <= duplicates <= 10
    print(f"\nkill mid-drain: {COPIES} copies, {at_kill} delivered before the kill, "
          f"{duplicates} duplicates after restart")
    states = {c.state for c in await store.listing(list(State))}
    await engine.dispose()
    assert states == {State.DELIVERED}
