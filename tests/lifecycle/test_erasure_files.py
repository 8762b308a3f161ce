"""Erasure as a DPO checks it: do the erasure, then search every file the gateway writes —
the database, its write-ahead log and shared memory, `var/`, the configuration directory —
right after the command returns (only the capture upstream's Maildir is left out: that is
the recipient's delivered mail, not ours). On PostgreSQL the server's files are not ours to
read: every row of every table in the gateway's schema is searched instead, and the touched
tables must have been vacuumed."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
import sqlalchemy as sa

from gateway.delivery.queue import NewCopy, State
from gateway.store.schema import events
from suppression.schema import suppressions
from tests.conftest import PG_DSN, Harness
from tests.support import messages
from tests.support.cli import gw
from tests.support.held import card_message, held_rows, send_data
from tests.support.subjects import PERSON, their_data
from tests.support.unsubscribe import public, token_for


def variants(address: str) -> list[bytes]:
    local, _, domain = address.lower().partition("@")
    return [f"{local}@{domain}".encode(), local.encode(),
            f"{local}%40{domain}".encode()]


def report(where: str, found: dict[str, int]) -> dict[str, int]:
    """With DPO_REPORT set, each search's hits are appended there (the closing note's
    before/after figures); returns them unchanged."""
    if os.environ.get("DPO_REPORT"):
        test = os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0]
        with open(os.environ["DPO_REPORT"], "a") as out:
            out.write(json.dumps({"test": test, "where": where, "hits": found}) + "\n")
    return found


def hits_in_files(root: Path, address: str) -> dict[str, int]:
    """Every gateway-owned file under `root` that holds the address (any case)."""
    found: dict[str, int] = {}
    for path in root.rglob("*"):
        if not path.is_file() or "outbox" in path.parts:
            continue
        data = path.read_bytes().lower()
        count = sum(data.count(v) for v in variants(address))
        if count:
            found[str(path.relative_to(root))] = count
    return report("files", found)


async def hits_in_postgres(schema: str, address: str) -> dict[str, int]:
    conn = await asyncpg.connect(PG_DSN)
    try:
        tables = [r["tablename"] for r in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = $1", schema)]
        found = {}
        for table in tables:
            text = " ".join(str(dict(r)) for r in await conn.fetch(
                f'SELECT * FROM "{schema}"."{table}"')).lower()
            count = sum(text.count(v.decode()) for v in variants(address)[:1])
            if count:
                found[table] = count
        return report("postgres rows", found)
    finally:
        await conn.close()


async def test_right_after_subject_erase_no_file_holds_the_address(harness: Harness, database,
                                                                   tmp_path: Path):
    await their_data(harness)
    await asyncio.sleep(0.2)  # the group commit is in
    if database.kind == "sqlite":
        before = hits_in_files(tmp_path, PERSON)
        assert before, "the test put the address nowhere"
    result = await gw(harness, "subject", "erase", PERSON, "--evidence", "ticket 4711")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["deleted"]["events"] >= 1
    if database.kind == "sqlite":
        assert hits_in_files(tmp_path, PERSON) == {}, before
    else:
        assert await hits_in_postgres(database.schema, PERSON) == {}
        conn = await asyncpg.connect(PG_DSN)
        try:
            vacuumed = {r["relname"] for r in await conn.fetch(
                "SELECT relname FROM pg_stat_user_tables WHERE schemaname = $1 "
                "AND last_vacuum IS NOT NULL", database.schema)}
        finally:
            await conn.close()
        assert {"events", "suppressions", "sent_messages", "held_messages"} <= vacuumed


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_right_after_tenant_delete_no_file_holds_its_recipients(harness: Harness,
                                                                      tmp_path: Path):
    await their_data(harness)
    await asyncio.sleep(0.2)
    result = await gw(harness, "tenant", "delete", "acme", "--confirm", "acme")
    assert result.returncode == 0, result.stderr
    # what is left is tenant `other`'s own suppression entry for the person (its list, which
    # its ops read by address): in the database file, nowhere else
    async with harness.gateway.engine.connect() as conn:
        left = (await conn.execute(sa.select(suppressions.c.scope, suppressions.c.target)
                                   .where(suppressions.c.target == PERSON.lower()))).all()
    assert left == [(2, PERSON.lower())]
    assert set(hits_in_files(tmp_path, PERSON)) == {"gateway.db"}


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_a_refused_attempt_after_erasure_stores_the_address_nowhere(harness: Harness,
                                                                         tmp_path: Path):
    await their_data(harness)
    assert (await gw(harness, "subject", "erase", PERSON, "--evidence", "t")).returncode == 0

    def attempt() -> int:
        with harness.client() as smtp:
            smtp.mail("sales@acme.example")
            return smtp.rcpt(PERSON)[0]

    for _ in range(2):  # the next campaign run tries again
        assert await asyncio.to_thread(attempt) == 550
    await asyncio.sleep(0.2)
    async with harness.gateway.engine.connect() as conn:
        refused = (await conn.execute(sa.select(events).where(
            events.c.kind == "refused"))).all()
    assert len(refused) == 2 and all(
        r.recipient is None and r.sealed_recipient is None and r.recipient_masked is None
        for r in refused)  # named by digest only: not even sealed under the tenant key
    assert all(r.recipient_digest == harness.gateway.handler.digest(PERSON)
               for r in refused)  # the tool can still tell the attempts apart
    assert hits_in_files(tmp_path, PERSON) == {}  # the WAL included: nothing was written


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_a_held_message_kept_for_others_is_released_without_the_erased_address(
        harness: Harness):
    other = "other@example.org"
    body = card_message().replace(b"To: alice@example.org\r\n",
                                  f"To: Person <{PERSON}>, {other}\r\nCc: {PERSON.upper()}\r\n"
                                  f"Delivered-To: {PERSON}\r\n".encode())

    def send() -> tuple[int, bytes]:
        with harness.client() as smtp:
            smtp.mail("sales@acme.example")
            smtp.rcpt(PERSON)
            smtp.rcpt(other)
            return smtp.data(body)

    code, _ = await asyncio.to_thread(send)
    assert code == 250  # held (a card number)
    assert (await gw(harness, "subject", "erase", PERSON, "--evidence", "t")).returncode == 0
    (row,) = await held_rows(harness)
    assert (await harness.gateway.held.get(row.id)).recipients == [other]
    assert row.recipient_digests == [harness.gateway.handler.digest(other)]
    await harness.gateway.held.request_release(row.id, "reviewer", "a false positive")
    assert await harness.gateway.review.run_once() == 1
    await harness.gateway.worker.run_once(datetime.now(UTC) + timedelta(seconds=1))
    (copy,) = [r for r in harness.sink.received if r.recipients != ["sales@acme.example"]]
    assert copy.recipients == [other]  # (the sender got a report about the erased one)
    assert b"person@example.org" not in copy.content.lower()
    assert f"To: {other}".encode() in copy.content and b"\r\nCc:" not in copy.content


GMAIL_PERSON = "Bob.Smith@gmail.com"
SPELLINGS = ["bob.smith@gmail.com", "BobSmith+news@googlemail.com", "b.o.b.smith+x@GMAIL.com"]


@pytest.mark.parametrize("database", ["sqlite", "postgres"], indirect=True)
async def test_export_and_erase_find_every_spelling_of_the_address(harness: Harness):
    """case, dots and +tags (canonical()): events, queued copies and held messages written
    with any of the person's spellings are exported, and erased."""
    gateway = harness.gateway
    (mailbox,) = [m for _, m in await harness.store().list_mailboxes("acme")
                  if m.address == "sales@acme.example"]
    now = datetime.now(UTC)
    async with gateway.engine.begin() as conn:
        for spelling in SPELLINGS:
            await conn.execute(events.insert().values(tenant_id=1, at=now, kind="delivered",
                                                      recipient=spelling, detail={}))
        await conn.execute(events.insert().values(tenant_id=1, at=now, kind="delivered",
                                                  recipient="bob.smith@example.org", detail={}))
    await gateway.queue.add([NewCopy(f"Q{i}", 1, mailbox.id, "sales@acme.example", spelling,
                                     State.DEFERRED, 451, "4.2.1", "busy")
                             for i, spelling in enumerate(SPELLINGS)], messages.simple(),
                            first_attempt=now)
    await asyncio.to_thread(send_data, harness, [SPELLINGS[1], "other@example.org"])
    exported = json.loads((await gw(harness, "subject", "export", GMAIL_PERSON)).stdout)
    assert len(exported["events"]) == 4  # 3 + the held one's; not the example.org namesake
    assert len(exported["queued_copies"]) == 3
    assert [m["role"] for m in exported["held_messages"]] == ["recipient"]
    receipt = json.loads((await gw(harness, "subject", "erase", GMAIL_PERSON,
                                   "--evidence", "t")).stdout)
    assert receipt["deleted"]["events"] == 4 and receipt["deleted"]["queued_copies"] == 3
    assert receipt["deleted"]["held_recipients"] == 1
    after = json.loads((await gw(harness, "subject", "export", GMAIL_PERSON)).stdout)
    assert after["events"] == after["queued_copies"] == after["held_messages"] == []
    async with gateway.engine.connect() as conn:
        left = (await conn.execute(sa.select(events.c.recipient))).scalars().all()
    assert "bob.smith@example.org" in left and not any("gmail" in (r or "") for r in left)


@pytest.mark.parametrize("database", ["sqlite", "postgres"], indirect=True)
async def test_held_and_queued_copies_to_an_erased_person_are_reported_without_naming_them(
        harness: Harness):
    """Accepted mail that now never leaves is owed a report (RFC 5321 s 6.1): one DSN per
    message to its sender, naming `erased-<digest>@invalid`, status 5.7.1, no returned
    headers (they name the person)."""
    for spelling in (PERSON, "Person@example.org", PERSON.lower()):  # it stays queued
        harness.sink.faults.rcpt[spelling] = "451 4.2.1 try later"

    def send_mixed() -> tuple[int, bytes]:
        with harness.client() as smtp:
            smtp.mail("sales@acme.example")
            smtp.rcpt(PERSON)
            smtp.rcpt("lead@example.org")
            return smtp.data(messages.simple(to=PERSON))

    assert (await asyncio.to_thread(send_mixed))[0] == 250  # one delivered, one queued
    assert (await asyncio.to_thread(send_data, harness, [PERSON]))[0] == 250  # held
    receipt = json.loads((await gw(harness, "subject", "erase", PERSON,
                                   "--evidence", "t")).stdout)
    assert receipt["deleted"]["queued_copies"] == 1 and receipt["deleted"]["held_messages"] == 1
    assert receipt["deleted"]["reports_to_senders"] == 2
    await harness.gateway.worker.run_once(datetime.now(UTC) + timedelta(seconds=1))
    reports = [r for r in harness.sink.received if r.recipients == ["sales@acme.example"]]
    assert len(reports) == 2 and all(r.envelope_from == "" for r in reports)
    name = f"erased-{harness.gateway.handler.digest(PERSON)[:16]}@invalid".encode()
    for report in reports:
        assert name in report.content and b"Status: 5.7.1" in report.content
        assert b"person@example.org" not in report.content.lower()
        assert b"rfc822-headers" not in report.content and b"message/rfc822" not in report.content
    assert [r.recipients for r in harness.sink.received
            if r.recipients != ["sales@acme.example"]] == [["lead@example.org"]]


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_an_old_unsubscribe_link_of_an_erased_person_stores_nothing(harness: Harness,
                                                                         tmp_path: Path):
    token = await token_for(harness, PERSON)
    assert (await gw(harness, "subject", "erase", PERSON, "--evidence", "t")).returncode == 0
    async with public(harness) as client:
        answer = await client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200  # they are unsubscribed: for good
    async with harness.gateway.engine.connect() as conn:
        targets = (await conn.execute(sa.select(suppressions.c.target))).scalars().all()
        named = (await conn.execute(sa.select(events.c.recipient))).scalars().all()
    assert PERSON.lower() not in [t for t in targets if t] and not [n for n in named if n]
    assert hits_in_files(tmp_path, PERSON) == {}
