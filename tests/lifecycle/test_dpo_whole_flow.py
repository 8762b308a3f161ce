"""The DPO's check of issue 20.5: one message with a unique subject to unique recipients goes
through everything the gateway does with mail — held, viewed and searched by a reviewer,
released and delivered, sent again, opted out by one click, refused at RCPT, bounced by the
upstream — and then every gateway-owned file (database, WAL, SHM, `var/`, the log the gateway
wrote) and every row of every table is searched.

The subject is in clear nowhere. A recipient's address is in clear only where
docs/retention.md says it is: suppression entries (ops read their lists by address) and
queued or finished copies (the delivery queue and `gateway trace`). Events and held
messages name them sealed under the tenant's key, or by keyed digest."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import sqlalchemy as sa

from gateway.observability import logs
from gateway.store.schema import metadata
from tests.conftest import PG_DSN, Harness
from tests.support.unsubscribe import public, refused_at_rcpt, token_for

SUBJECT = "Zelda Quintero, Vexcorp's 7f3a9 plan"
PERSON = "zelda.quintero@vexcorp.example"
BOUNCER = "olaf.bramwell@vexcorp.example"
CARD = b"Card 4111 1111 1111 1111 exp 12/29"

# Where a plain address may be, by table and column (docs/retention.md).
DOCUMENTED = {("suppressions", "target"), ("pending_copies", "recipient")}


def _message(to: str, body: bytes = b"Hello from the plan.") -> bytes:
    return (f"From: sales@acme.example\r\nTo: {to}\r\nSubject: {SUBJECT}\r\n"
            f"Message-ID: <{abs(hash(to + body.decode()))}@acme.example>\r\n\r\n").encode() \
        + body + b"\r\n"


async def rows_holding(harness: Harness, database, needle: str) -> Counter[tuple[str, str]]:
    """(table, column) -> how many stored values hold `needle` (any case), in every table."""
    found: Counter[tuple[str, str]] = Counter()
    needle = needle.lower()
    if database.kind == "postgres":
        conn = await asyncpg.connect(PG_DSN)
        try:
            tables = [r["tablename"] for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = $1", database.schema)]
            for table in tables:
                for row in await conn.fetch(f'SELECT * FROM "{database.schema}"."{table}"'):
                    for column, value in dict(row).items():
                        if needle in str(value).lower():
                            found[(table, column)] += 1
        finally:
            await conn.close()
        return found
    async with harness.gateway.engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in await conn.execute(sa.select(table)):
                for column, value in row._mapping.items():
                    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
                    if needle in text.lower():
                        found[(table.name, column)] += 1
    return found


def files_holding(root: Path, needle: str) -> set[str]:
    found = set()
    for path in root.rglob("*"):
        if path.is_file() and needle.lower().encode() in path.read_bytes().lower():
            found.add(str(path.relative_to(root)))
    return found


async def test_the_subject_and_recipients_are_in_clear_only_where_documented(
        harness: Harness, database, tmp_path: Path):
    gateway = harness.gateway
    log_file = tmp_path / "var" / "gateway.log"  # what the gateway logs, as a file
    log_file.parent.mkdir(exist_ok=True)
    handler = logging.FileHandler(log_file)
    root = logging.getLogger()
    saved = root.handlers[:], root.level, {n: logging.getLogger(n).level for n in logs._CHATTY}
    logs.setup("debug", handler)  # as `serve` sets logging up, at the chattiest level
    try:
        # held (a card number), seen in the queue, found by subject, opened, released
        assert await harness.send(_message(PERSON, CARD), [PERSON, BOUNCER]) == {}
        (held,), _ = await gateway.held.page(
            tenant_id=None, status="held", check_name=None, since=None, until=None,
            before=None, limit=10, subject=f"RE:  {SUBJECT.upper()}", viewer="reviewer:dpo")
        assert held.subject == SUBJECT and held.recipients == [PERSON, BOUNCER]
        harness.sink.faults.rcpt[BOUNCER] = "550 5.1.1 no such user"  # bounced on release
        await gateway.held.request_release(held.id, "reviewer:dpo", "a test card")
        assert await gateway.review.run_once() == 1
        await gateway.worker.run_once(datetime.now(UTC) + timedelta(seconds=1))
        assert [r.recipients for r in harness.sink.received] == [[PERSON]]
        # sent again, then opted out by one click, then refused at RCPT
        token = await token_for(harness, PERSON, _message(PERSON))
        async with public(harness) as client:
            response = await client.post(f"/u/{token}", content=b"List-Unsubscribe=One-Click",
                                         headers={"Content-Type":
                                                  "application/x-www-form-urlencoded"})
        assert response.status_code == 200
        assert await refused_at_rcpt(harness, PERSON)
        await asyncio.sleep(0.3)  # the group commit and the pixel/event writers are in
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        for name, level in saved[2].items():
            logging.getLogger(name).setLevel(level)
        handler.close()

    # the tenant still reads its events by address, through the API
    async with gateway.engine.connect() as conn:
        kinds = {r.kind for r in await conn.execute(sa.select(metadata.tables["events"]))}
    assert {"delivered", "unsubscribed", "refused", "bounced"} <= kinds, kinds
    audited = json.dumps([r.detail for r in await _audit(harness)])
    assert "held.viewed" in {r.event for r in await _audit(harness)} and PERSON not in audited

    # the stores: the subject nowhere, the addresses only where documented
    report = {needle: await rows_holding(harness, database, needle)
              for needle in (SUBJECT, "7f3a9", PERSON, BOUNCER)}
    if os.environ.get("DPO_REPORT"):  # the figures of the closing note
        with open(os.environ["DPO_REPORT"], "a") as out:
            out.write(json.dumps({"database": database.kind, "hits": {
                n: {f"{t}.{c}": k for (t, c), k in hits.items()}
                for n, hits in report.items()}, "files": {
                n: sorted(files_holding(tmp_path, n)) for n in report}}) + "\n")
    assert not report[SUBJECT] and not report["7f3a9"], report
    for address in (PERSON, BOUNCER):
        assert report[address] and set(report[address]) <= DOCUMENTED, report[address]
    # the files: the log and var/ hold neither; on SQLite not even the database's pages
    # hold the subject (it was sealed before it was first written)
    files = files_holding(tmp_path, SUBJECT) | files_holding(tmp_path, "7f3a9")
    assert files == set(), files
    for address in (PERSON, BOUNCER):
        outside_db = {f for f in files_holding(tmp_path, address)
                      if not f.startswith("gateway.db")}
        assert outside_db == set(), (address, outside_db)
    assert log_file.stat().st_size > 0  # the gateway did log


async def _audit(harness: Harness) -> list:
    async with harness.gateway.engine.connect() as conn:
        return (await conn.execute(sa.select(metadata.tables["audit_events"]))).all()

