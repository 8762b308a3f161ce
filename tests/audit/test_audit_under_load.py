"""Issue 26: the running gateway's group commits extend their chain by compare-and-set while
CLI commands (an erasure, a suppression, a tenant resumed) write their own chain, as an
operator would run them during a campaign. Afterwards `audit verify` passes: no gap, no
fork, every row's hash, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import asyncpg
import pytest
import sqlalchemy as sa

from gateway.store.engine import create_engine
from gateway.store.schema import audit_chains
from tests.conftest import PG_DSN, Database, Harness
from tests.support import messages


def _cli(h: Harness, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", "--config", str(h.config_path),
                           *args], capture_output=True, text=True, timeout=120)


async def test_cli_writes_during_load_leave_a_trail_that_verifies(harness: Harness,
                                                                  database: Database):
    h = harness

    async def load() -> None:
        def send(n: int) -> None:
            with h.client() as smtp:
                for i in range(8):
                    smtp.sendmail("sales@acme.example", [f"r{n}-{i}@example.org"],
                                  messages.simple(to=f"r{n}-{i}@example.org"))

        await asyncio.gather(*(asyncio.to_thread(send, n) for n in range(4)))

    commands = [("suppress", "add", "gone@example.org", "--tenant", "acme"),
                ("subject", "erase", "r0-0@example.org", "--evidence", "ticket 26"),
                ("tenant", "suspend", "acme", "--reason", "audit test"),
                ("tenant", "resume", "acme")]

    async def operator() -> list[subprocess.CompletedProcess[str]]:
        done = []
        for command in commands:
            done.append(await asyncio.to_thread(_cli, h, *command))
        return done

    # a message refused while the tenant is suspended is the client's to send again
    _, done = await asyncio.gather(load(), operator(), return_exceptions=True)
    assert isinstance(done, list)
    assert [r.returncode for r in done] == [0] * len(commands), [r.stderr for r in done]
    await h.gateway.audit.stop()  # what was waiting is committed
    verified = await asyncio.to_thread(_cli, h, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    engine = create_engine(database.url, schema=database.schema)
    try:
        async with engine.connect() as conn:
            chains = set((await conn.execute(sa.select(audit_chains.c.chain))).scalars())
    finally:
        await engine.dispose()
    assert any(c.endswith("/cli") for c in chains) and any(
        not c.endswith("/cli") for c in chains), chains
    assert h.gateway.audit.head.swaps > 0


@pytest.mark.parametrize("database", ["postgres"], indirect=True)
async def test_a_group_commit_on_a_connection_the_server_closed_takes_a_new_one(
        harness: Harness, database: Database, caplog):
    """The group commits go without a ping before each transaction (a round trip per
    commit); a pooled connection PostgreSQL has closed (a restart, a failover, an idle
    timeout) is replaced and the batch tried once more: the client gets its 250."""
    h = harness
    assert await h.send(messages.simple(), ["first@example.org"]) == {}
    engine = h.gateway.commit_engine
    assert engine is not h.gateway.engine
    async with engine.connect() as one, engine.connect() as two:  # both pooled connections
        pids = [(await c.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one()
                for c in (one, two)]
    killer = await asyncpg.connect(PG_DSN)
    try:
        for pid in pids:
            await killer.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await killer.close()
    assert await h.send(messages.simple(), ["second@example.org"]) == {}
    assert any("pooled connection had been closed" in r.getMessage() for r in caplog.records)
    await h.gateway.audit.stop()
    verified = await asyncio.to_thread(_cli, h, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
