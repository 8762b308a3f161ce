"""VERP: each copy to a smarthost leaves with its own return path, and a bounce mailed to
that return path on the gateway's inbound listener suppresses that copy's recipient."""

from __future__ import annotations

import asyncio
import smtplib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from suppression.schema import suppressions
from tests.conftest import Harness, running_harness
from tests.support import messages

BOUNCE = (Path(__file__).resolve().parents[1] / "fixtures" / "feedback"
          / "postfix-user-unknown.eml").read_bytes().replace(b"\n", b"\r\n")


@pytest.fixture
async def h(tmp_path, pki, database, monkeypatch):
    monkeypatch.setenv("GATEWAY__UNSUBSCRIBE__MAILTO_LISTEN", "127.0.0.1")
    monkeypatch.setenv("GATEWAY__UNSUBSCRIBE__MAILTO_PORT", "0")
    monkeypatch.setenv("GATEWAY__UPSTREAMS__SINK__RETURN_PATH", "verp")
    async with running_harness(tmp_path, pki, database) as harness:
        yield harness


def without_message_id(raw: bytes) -> bytes:
    return raw.replace(b"Message-ID: <m1@acme.example>\r\n", b"")


async def mail_bounce(h: Harness, return_path: str, content: bytes) -> tuple[int, bytes]:
    """An MX sends a delivery report to the return path, from the null sender."""
    def run() -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", h.gateway.ports.mailto, timeout=10) as smtp:
            smtp.ehlo("mx.nordlicht.example")
            smtp.mail("<>")
            code, text = smtp.rcpt(return_path)
            if code != 250:
                return code, text
            return smtp.data(content)
    return await asyncio.to_thread(run)


async def entries(h: Harness) -> list:
    async with h.gateway.engine.connect() as conn:
        return (await conn.execute(sa.select(suppressions))).all()


async def test_a_bounce_to_a_copys_return_path_suppresses_its_recipient(h: Harness):
    gone = "lukas.weber@nordlicht.example"
    await h.send(without_message_id(messages.simple()), [gone, "lead@example.org"])
    paths = {r.recipients[0]: r.envelope_from for r in h.sink.received}
    assert paths[gone] != paths["lead@example.org"]  # one return path per copy
    for path in paths.values():
        local, _, domain = path.partition("@")
        assert local.startswith("bounce+") and len(local) <= 64 and domain == "links.gw.test"
        assert "lukas" not in local and "lead" not in local  # names nobody
    copy = next(r for r in h.sink.received if r.recipients == [gone])
    assert b"\r\nMessage-ID: <" in copy.content  # added: the client's message had none

    code, text = await mail_bounce(h, paths[gone], BOUNCE)
    assert code == 250, text
    (entry,) = await entries(h)
    assert (entry.target, entry.reason, entry.source) == (gone, "bounce", "verp")
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        await h.send(messages.simple(), [gone])
    assert refused.value.recipients[gone][0] == 550


async def test_a_forged_or_unknown_return_path_is_refused_at_rcpt(h: Harness):
    await h.send(messages.simple(), ["lukas.weber@nordlicht.example"])
    path = h.sink.received[0].envelope_from
    local, _, domain = path.partition("@")
    forged = f"{local[:-1]}{'a' if local[-1] != 'a' else 'b'}@{domain}"
    code, text = await mail_bounce(h, forged, BOUNCE)
    assert code == 550 and b"5.1.1" in text
    code, text = await mail_bounce(h, f"bounce+{'2' * 12}-{'a' * 16}@{domain}", BOUNCE)
    assert code == 550
    code, text = await mail_bounce(h, f"{local}@elsewhere.example", BOUNCE)
    assert code == 550 and b"relaying denied" in text  # never a relay
    assert await entries(h) == []


async def test_a_report_the_gateway_sends_keeps_the_null_return_path(h: Harness):
    """The gateway's own delivery reports go out from <>: never a VERP address."""
    h.sink.faults.rcpt["gone@example.org"] = "550 5.1.1 no such user"
    await h.data_reply(["lead@example.org", "gone@example.org"])
    await h.gateway.worker.run_once()  # the refused copy: a report is made
    await h.gateway.worker.run_once(datetime.now(UTC) + timedelta(minutes=2))  # and sent
    reports = [r for r in h.sink.received if r.recipients == ["sales@acme.example"]]
    assert reports and all(r.envelope_from == "" for r in reports)


async def test_a_dsn_to_a_real_return_path_naming_someone_else_suppresses_nobody(h: Harness):
    """docs/feedback.md: forged feedback suppresses nobody. A stranger who learned a copy's
    return path (it is in every copy's Return-Path) cannot use it to suppress the copy's
    recipient by naming another address; a report that hides the address still counts."""
    gone = "lukas.weber@nordlicht.example"
    await h.send(without_message_id(messages.simple()), [gone])
    path = h.sink.received[0].envelope_from
    other = BOUNCE.replace(b"rfc822; lukas.weber@nordlicht.example",
                           b"rfc822; someone.else@nordlicht.example").replace(
        b"rfc822;lukas.weber@nordlicht.example", b"rfc822;someone.else@nordlicht.example")
    assert b"lukas.weber@nordlicht.example\r\nOriginal" not in other
    code, _ = await mail_bounce(h, path, other)
    assert code == 250  # taken (an SMTP refusal would tell the forger what we know)
    assert await entries(h) == []
    forwarded = BOUNCE.replace(b"Final-Recipient: rfc822; lukas.weber@nordlicht.example",
                               b"Final-Recipient: rfc822; lukas@forwarded.example")
    code, _ = await mail_bounce(h, path, forwarded)  # Original-Recipient is the copy's
    (entry,) = await entries(h)
    assert (entry.target, entry.reason) == (gone, "bounce")


async def test_a_bounce_that_arrives_after_erasure_brings_nobody_back(h: Harness):
    """The copy's index row went with the erasure: its return path names no copy now, so the
    late bounce is refused at RCPT and nothing about the person is written again."""
    from gateway.store.schema import events
    from tests.support.cli import gw

    gone = "lukas.weber@nordlicht.example"
    await h.send(without_message_id(messages.simple()), [gone])
    path = h.sink.received[0].envelope_from
    assert (await gw(h, "subject", "erase", gone, "--evidence", "ticket")).returncode == 0
    code, _ = await mail_bounce(h, path, BOUNCE)
    assert code == 550
    rows = await entries(h)
    assert [(r.reason, r.target) for r in rows] == [("erasure", None)]
    async with h.gateway.engine.connect() as conn:
        named = (await conn.execute(sa.select(events.c.recipient))).scalars().all()
    assert gone not in named
