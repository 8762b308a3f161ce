"""`gateway vault rewrap`: killed at half-way and run again, every value opens."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from gateway import config as config_module
from gateway.delivery.queue import NewCopy, QueueStore, State, seal_context
from gateway.directory.store import DirectoryStore
from gateway.store.engine import create_engine, upgrade
from gateway.store.schema import pending_copies
from gateway.vault.envelope import Vault
from gateway.vault.master_keys import provider_for
from tests.conftest import Database, Pki, seed, write_config
from tests.support import messages

ROWS = 3000


async def test_rewrap_killed_at_half_way_then_rerun_opens_everything(
        tmp_path: Path, pki: Pki, database: Database):
    path = write_config(tmp_path, pki, database, sink_port=2525)
    config = config_module.load(path, {})
    engine = create_engine(config.database.url, schema=config.database.schema)
    await upgrade(engine)
    await seed(DirectoryStore(engine))
    (mailbox,) = [m for _, m in await DirectoryStore(engine).list_mailboxes("acme")
                  if m.address == "sales@acme.example"]
    old_vault = Vault(provider_for(config))
    store = QueueStore(engine, old_vault, 3600)
    for start in range(0, ROWS, 500):
        await store.add([NewCopy(f"R{start + i}", mailbox.tenant_id, mailbox.id,
                                 "sales@acme.example", f"r{start + i}@example.org",
                                 State.DEFERRED, 451, "4.2.1", "busy")
                         for i in range(500)], messages.simple())

    # rotation: a new primary key; the old one still opens
    new_key = tmp_path / "new.key"
    new_key.write_text(base64.b64encode(secrets.token_bytes(32)).decode())
    new_key.chmod(0o600)
    old_key = tmp_path / "master.key"
    text = path.read_text().replace(f'master_key_file = "{old_key}"',
                                    f'master_key_file = "{new_key}"\n'
                                    f'previous_key_files = ["{old_key}"]')
    path.write_text(text)
    rotated = Vault(provider_for(config_module.load(path, {})))

    async def under_new_key() -> int:
        async with engine.connect() as conn:
            return (await conn.execute(sa.select(sa.func.count()).select_from(pending_copies)
                                       .where(pending_copies.c.key_id ==
                                              rotated.primary_key_id))).scalar()

    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY")}
    command = [sys.executable, "-m", "gateway", "--config", str(path), "vault", "rewrap",
               "--batch", "25"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            if await under_new_key() >= ROWS // 2:
                break
            await asyncio.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    half = await under_new_key()
    assert 0 < half < ROWS
    finished = await asyncio.to_thread(subprocess.run, command, env=env, capture_output=True,
                                       text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert "none remain under an older key" in finished.stdout
    assert await under_new_key() == ROWS
    # every value opens with the new key alone: the old key can be retired
    path.write_text(path.read_text().replace(f'previous_key_files = ["{old_key}"]', ""))
    retired = Vault(provider_for(config_module.load(path, {})))
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(pending_copies))).all()
    for row in rows:
        assert retired.open(row.sealed_message, row.key_id,
                            seal_context(row.tenant_id, row.queue_id, row.recipient)
                            ).endswith(messages.simple())
    await engine.dispose()
