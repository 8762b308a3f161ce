"""A store that cannot take writes stops new mail before it is relayed, tried the way it
happens: a file size limit (`prlimit --fsize`, no root needed), a full tmpfs (as root), a
PostgreSQL database turned read-only under the gateway. A campaign tool keeps sending and
retries every 4xx, as real ones do; the sink counts the copies: none lost, and duplicates only
for copies in flight when the store failed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import smtplib
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest

from gateway import config as config_module
from gateway.directory.store import DirectoryStore
from gateway.store.engine import create_engine, upgrade
from tests.conftest import PASSWORD, PG_DSN, Database, Pki, running_harness, seed, write_config
from tests.support import messages
from tests.support.sink import RecordingSink


@dataclass
class Tally:
    """What a retrying campaign tool saw: tags acknowledged, and 4xx replies by code."""

    acknowledged: set[str] = field(default_factory=set)
    temporary: Counter[str] = field(default_factory=Counter)
    gave_up: set[str] = field(default_factory=set)


def campaign(port: int, pki: Pki, tags: list[str], tally: Tally, retries: int = 3,
             pause: float = 0.2) -> None:
    """Send each tag's message in turn; a 4xx is retried (the same message, as a real
    client's queue would), up to `retries` times."""
    for tag in tags:
        for _ in range(retries + 1):
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=20) as smtp:
                    smtp.starttls(context=pki.client_context())
                    smtp.login("campaign", PASSWORD)
                    smtp.sendmail("sales@acme.example", [f"{tag}@example.org"],
                                  messages.simple(to=f"{tag}@example.org"))
                tally.acknowledged.add(tag)
                break
            except smtplib.SMTPResponseException as exc:
                tally.temporary[f"{exc.smtp_code} {exc.smtp_error[:5].decode()}"] += 1
                if exc.smtp_code >= 500:
                    break
            except (smtplib.SMTPException, OSError) as exc:
                tally.temporary[type(exc).__name__] += 1
            time.sleep(pause)
        else:
            tally.gave_up.add(tag)


def delivered(sink: RecordingSink) -> Counter[str]:
    return Counter(r.recipients[0].split("@")[0] for r in sink.received)


def report(name: str, tally: Tally, copies: Counter[str]) -> tuple[int, int]:
    lost = sorted(t for t in tally.acknowledged if copies[t] == 0)
    duplicates = sum(n - 1 for n in copies.values() if n > 1)
    print(f"\n[{name}] acknowledged {len(tally.acknowledged)}, delivered {sum(copies.values())}"
          f", lost {len(lost)}, duplicates {duplicates}, 4xx {dict(tally.temporary)}")
    return len(lost), duplicates


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_a_file_size_limit_stops_new_mail_at_mail_from(tmp_path: Path, pki: Pki,
                                                            database: Database):
    """`gateway serve` under prlimit --fsize: once the database cannot grow, writes fail
    with EFBIG; the client gets 452 4.3.1 at MAIL FROM, not a relayed copy and a 4xx."""
    if not shutil.which("prlimit"):
        pytest.fail("prlimit (util-linux) is required")
    sink = await RecordingSink().start()
    port = free_port()
    path = write_config(tmp_path, pki, database, sink.port, extra="")
    config = config_module.load(path, {})
    engine = create_engine(config.database.url)
    await upgrade(engine)
    await seed(DirectoryStore(engine))
    await engine.dispose()
    limit = max(p.stat().st_size for p in tmp_path.glob("gateway.db*")) + 96 * 1024
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY")}
    env.update({"GATEWAY__SMTP__SUBMISSION_PORT": str(port),
                "GATEWAY__SMTP__IMPLICIT_TLS": "false"})
    log = tmp_path / "stderr.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen(["prlimit", f"--fsize={limit}", "--", sys.executable, "-m",
                                 "gateway", "--config", str(path), "serve", "--workers", "1"],
                                env=env, stdout=subprocess.DEVNULL, stderr=err)
    try:
        for _ in range(300):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port),
                                                                         0.2):
                break
            await asyncio.sleep(0.05)
        tally = Tally()
        await asyncio.to_thread(campaign, port, pki, [f"f{i:03d}" for i in range(120)], tally,
                                2, 0.05)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        await sink.stop()
    lost, duplicates = report("prlimit --fsize, SQLite", tally, delivered(sink))
    stderr = log.read_text()
    assert "store cannot take writes" in stderr, stderr[-3000:]  # the limit was reached
    assert tally.temporary["452 4.3.1"] > 0, tally.temporary
    assert lost == 0
    # one client: at most the copy in flight each time the store failed (a heartbeat write
    # may fit where a message's records do not, so it can fail more than once)
    assert duplicates <= stderr.count("store cannot take writes")
    assert "Traceback" not in stderr and "this is a bug" not in stderr, stderr[-3000:]


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_a_full_tmpfs_is_refused_at_mail_from_and_accepted_again_when_freed(
        tmp_path: Path, pki: Pki, database: Database, monkeypatch: pytest.MonkeyPatch):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (the prlimit test covers the rest)")
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(disk)], check=True)
    try:
        monkeypatch.setenv("GATEWAY__DATABASE__MIN_FREE_MB", "8")
        on_tmpfs = Database("sqlite", f"sqlite+aiosqlite:///{disk}/gateway.db")
        async with running_harness(tmp_path, pki, on_tmpfs) as h:
            first = await h.data_reply(["a@example.org"])
            filler = disk / "filler"
            with open(filler, "wb") as f:  # leave less than the floor
                while shutil.disk_usage(disk).free > 4 * 1024 * 1024:
                    f.write(b"\0" * (1024 * 1024))
            await asyncio.sleep(1.1)  # the floor is checked at most once a second
            tally = Tally()
            await asyncio.to_thread(campaign, h.port, pki, ["b"], tally, 0)
            refused = dict(tally.temporary)
            filler.unlink()
            await asyncio.sleep(1.1)
            again = await h.data_reply(["c@example.org"])
            copies = delivered(h.sink)
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
    assert first[0] == 250 and again[0] == 250
    assert refused == {"452 4.3.1": 1}
    assert copies == Counter({"a": 1, "c": 1})  # nothing of b was relayed


@pytest.fixture
async def pg_role():
    """A PostgreSQL role and schema of this test's own, so turning it read-only touches no
    other test's database."""
    role, schema = f"gw_{secrets.token_hex(4)}", f"t_{secrets.token_hex(6)}"
    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(f"CREATE ROLE {role} LOGIN")
        await conn.execute(f"CREATE SCHEMA {schema} AUTHORIZATION {role}")
        yield role, schema
    finally:
        await conn.execute(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           f"WHERE usename = '{role}'")
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        await conn.execute(f"DROP ROLE {role}")
        await conn.close()


async def _read_only(role: str, on: bool) -> None:
    conn = await asyncpg.connect(PG_DSN)
    try:
        setting = "SET default_transaction_read_only = on" if on else \
            "RESET default_transaction_read_only"
        await conn.execute(f"ALTER ROLE {role} {setting}")
        # settings apply to new sessions: end the gateway's, its pool reconnects
        await conn.execute(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           f"WHERE usename = '{role}'")
    finally:
        await conn.close()


async def test_a_read_only_postgresql_stops_new_mail_and_recovers(tmp_path: Path, pki: Pki,
                                                                   pg_role):
    role, schema = pg_role
    own = Database("postgres", f"postgresql+asyncpg://{role}@127.0.0.1:5432/test", schema)
    async with running_harness(tmp_path, pki, own) as h:
        tally = Tally()
        tags = [f"p{i:03d}" for i in range(40)]
        sender = asyncio.create_task(asyncio.to_thread(campaign, h.port, pki, tags, tally, 40,
                                                       0.1))
        while len(tally.acknowledged) < 10:
            await asyncio.sleep(0.05)
        await _read_only(role, True)
        await asyncio.sleep(2.5)  # a few rounds refused while it stays read-only
        refused_while_down = tally.temporary["452 4.3.1"]
        await _read_only(role, False)
        await sender
        copies = delivered(h.sink)
    lost, duplicates = report("read-only PostgreSQL", tally, copies)
    assert refused_while_down > 0, tally.temporary
    assert lost == 0 and not tally.gave_up
    assert duplicates <= 1
    assert set(copies) == set(tags)
