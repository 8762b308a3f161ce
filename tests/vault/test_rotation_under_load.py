"""A master-key rotation on a running gateway: messages keep flowing, and queued copies keep
being delivered, while `gateway vault rewrap` re-wraps the rows under them."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from gateway.delivery.queue import NewCopy, State
from gateway.store.schema import pending_copies
from tests.conftest import Database, Pki, running_harness
from tests.support import messages

SEEDED = 2000  # deferred copies sealed under the old key before the rotation


async def test_messages_flow_while_vault_rewrap_runs(tmp_path: Path, pki: Pki,
                                                     database: Database):
    async with running_harness(tmp_path, pki, database) as h:
        gateway = h.gateway
        mailbox = gateway.directory.mailbox("sales@acme.example")
        assert mailbox is not None
        for start in range(0, SEEDED, 500):
            await gateway.queue.add([
                NewCopy(f"Q{start + i}", mailbox.tenant_id, mailbox.id, "sales@acme.example",
                        f"queued{start + i}@example.org", State.DEFERRED, 451, "4.2.1", "busy")
                for i in range(500)], messages.simple())
        await gateway.credentials.secrets.put(0, "test/rotation", b"sealed before rotation")
        old_id = gateway.vault.primary_key_id

        # the operator's rotation: a new primary key, the old one listed, SIGHUP
        old_key, new_key = tmp_path / "master.key", tmp_path / "new.key"
        new_key.write_text(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
        new_key.chmod(0o600)
        h.config_path.write_text(h.config_path.read_text().replace(
            f'master_key_file = "{old_key}"',
            f'master_key_file = "{new_key}"\nprevious_key_files = ["{old_key}"]'))
        gateway.reload()
        new_id = gateway.vault.primary_key_id
        assert new_id != old_id and set(gateway.vault.key_ids) == {old_id, new_id}

        async def under_old_key() -> int:
            async with gateway.engine.connect() as conn:
                return (await conn.execute(sa.select(sa.func.count()).select_from(
                    pending_copies).where(pending_copies.c.key_id == old_id))).scalar_one()

        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY")}
        rewrap = subprocess.Popen(
            [sys.executable, "-m", "gateway", "--config", str(h.config_path), "vault", "rewrap",
             "--batch", "10", "--pause", "0.01"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        later = datetime.now(UTC) + timedelta(minutes=15)
        replies: list[int] = []
        mid_rotation: list[int] = []  # old-key rows left when a message was accepted

        async def send_until_rewrap_ends() -> None:
            n = 0
            while rewrap.poll() is None:
                h.sink.faults.rcpt[f"busy{n}@example.org"] = "451 4.2.1 busy"  # a new copy
                code, _ = await h.data_reply([f"live{n}@example.org", f"busy{n}@example.org"])
                del h.sink.faults.rcpt[f"busy{n}@example.org"]
                replies.append(code)
                mid_rotation.append(await under_old_key())
                n += 1

        async def drain_until_rewrap_ends() -> None:
            while rewrap.poll() is None:
                if await gateway.worker.run_once(later) == 0:
                    await asyncio.sleep(0.05)

        await asyncio.gather(send_until_rewrap_ends(), drain_until_rewrap_ends())
        out, err = rewrap.communicate(timeout=60)
        assert rewrap.returncode == 0, err
        assert "none remain under an older key" in out

        assert replies and all(code == 250 for code in replies)
        assert any(0 < left < SEEDED for left in mid_rotation), mid_rotation
        assert await under_old_key() == 0

        # the old key retired: everything left opens under the new key alone
        h.config_path.write_text(h.config_path.read_text().replace(
            f'previous_key_files = ["{old_key}"]', ""))
        gateway.reload()
        assert gateway.vault.key_ids == (new_id,)
        assert await gateway.credentials.secrets.get(0, "test/rotation") == (
            b"sealed before rotation")
        # past every back-off (retry_max is an hour), well inside the copies' lifetime
        while await gateway.worker.run_once(later + timedelta(hours=2)) > 0:
            pass
        async with gateway.engine.connect() as conn:
            waiting = (await conn.execute(sa.select(sa.func.count()).select_from(
                pending_copies).where(pending_copies.c.state == State.DEFERRED.value))
                       ).scalar_one()
        assert waiting == 0
        delivered = [r.recipients[0] for r in h.sink.received]
        assert len(delivered) == len(set(delivered))  # none twice
        expected = ({f"queued{i}@example.org" for i in range(SEEDED)}
                    | {f"live{i}@example.org" for i in range(len(replies))}
                    | {f"busy{i}@example.org" for i in range(len(replies))})
        assert set(delivered) == expected
