"""SMTP smuggling, tried as an attacker would: every end-of-data look-alike (bare CR, bare LF,
NUL before or after the dot, and their combinations), sent at once or pipelined, on every
listener. Nothing may split a submission in two, and nothing with a NUL may reach upstream."""

from __future__ import annotations

import asyncio
import mailbox
from pathlib import Path

import pytest

from gateway.protocol import replies
from tests.conftest import PASSWORD, Harness, Pki, running_harness
from tests.support import messages
from tests.support.raw_smtp import RawSession

# What a lenient receiver further along could take for <CR><LF>.<CR><LF>.
ENDINGS = [
    b"\n.\r\n", b"\n.\n", b"\r\n.\n", b"\r.\r", b"\r.\r\n", b"\n.\r",  # bare CR / LF
    b"\r\n\x00.\r\n", b"\r\n.\x00\r\n", b"\r\n\x00.\x00\r\n",  # NUL before / after the dot
    b"\x00\r\n.\x00\r\n", b"\r\n\x00\x00.\r\n",
    b"\n\x00.\r\n", b"\r\n\x00.\n", b"\r\x00.\r\n", b"\r\n.\x00\n",  # NUL with bare CR / LF
]
SMUGGLED = (b"MAIL FROM:<sales@acme.example>\r\nRCPT TO:<victim@example.org>\r\n"
            b"DATA\r\nFrom: sales@acme.example\r\nTo: victim@example.org\r\n\r\nsmuggled\r\n")
REFUSALS = {(r.code, r.status) for r in (replies.BARE_LINE_ENDING, replies.NUL_IN_DATA)}


def status_of(reply: str) -> tuple[int, str]:
    last = reply.split("\r\n")[-1]
    return int(last[:3]), last[4:].split(" ", 1)[0]


def submit(port: int, pki: Pki, implicit: bool, ending: bytes, pipelined: bool
           ) -> list[str]:
    """One submission with `ending` inside its data; the replies to DATA's end and a NOOP."""
    s = RawSession(port, pki.client_context(), implicit=implicit)
    s.cmd("EHLO client.test")
    if not implicit:
        s.starttls()
        s.cmd("EHLO client.test")
    assert s.login("campaign", PASSWORD).startswith("235 ")
    data = messages.simple(body="first") + ending + SMUGGLED + b".\r\n"
    with s:
        if pipelined:  # RFC 2920: the whole transaction in one write
            s.send(b"MAIL FROM:<sales@acme.example>\r\nRCPT TO:<alice@example.org>\r\n"
                   b"DATA\r\n" + data + b"NOOP\r\n")
            answers = [s.reply() for _ in range(5)]
            assert answers[2].startswith("354"), answers
            return [answers[3], answers[4]]
        s.cmd("MAIL FROM:<sales@acme.example>")
        s.cmd("RCPT TO:<alice@example.org>")
        s.cmd("DATA")
        s.send(data)
        return [s.reply(), s.cmd("NOOP")]


@pytest.mark.parametrize("pipelined", [False, True], ids=["stepwise", "pipelined"])
@pytest.mark.parametrize("listener", ["submission", "implicit-tls"])
async def test_no_end_of_data_look_alike_splits_a_submission_or_reaches_upstream(
        harness: Harness, listener: str, pipelined: bool):
    implicit = listener == "implicit-tls"
    port = harness.tls_port if implicit else harness.port

    def run() -> list[tuple[bytes, list[str]]]:
        return [(e, submit(port, harness.pki, implicit, e, pipelined)) for e in ENDINGS]

    for ending, (end_of_data, noop) in await asyncio.to_thread(run):
        assert status_of(end_of_data) in REFUSALS, (ending, end_of_data)
        assert status_of(noop) == (250, "2.0.0"), (ending, noop)  # no smuggled command ran
    assert harness.sink.received == []  # no first half, no second message, no NUL
    assert "MAIL" not in harness.sink.commands
    # and a clean message still goes through afterwards
    await harness.send(messages.simple(), ["alice@example.org"])
    assert len(harness.sink.received) == 1
    assert b"\x00" not in harness.sink.received[0].content


@pytest.mark.parametrize("command, expected", [
    (b"MAIL FROM:<sales@acme.example>\x00", replies.NUL_IN_COMMAND),
    (b"MAIL FROM:<sales\x00@acme.example>", replies.NUL_IN_COMMAND),
    (b"RCPT TO:<alice@example.org>\x00", replies.NUL_IN_COMMAND),
    (b"RCPT TO:<alice@example.org> NOTIFY=NEVER\x00", replies.NUL_IN_COMMAND),
    (b"NOOP \x00", replies.NUL_IN_COMMAND),
    (b"EHLO client\x00.test", replies.NUL_IN_COMMAND),
    (b"RC\x00PT TO:<alice@example.org>", replies.COMMAND_UNRECOGNIZED),
    (b"\x00", replies.COMMAND_UNRECOGNIZED),
])
async def test_a_nul_in_a_command_is_refused(harness: Harness, command: bytes,
                                             expected: replies.Reply):
    def run() -> tuple[str, str]:
        with RawSession(harness.port, harness.pki.client_context()) as s:
            s.ready("campaign", PASSWORD)
            if not command.startswith(b"MAIL"):
                assert s.cmd("MAIL FROM:<sales@acme.example>").startswith("250")
            answer = s.cmd(command)
            return answer, s.cmd("NOOP")

    answer, after = await asyncio.to_thread(run)
    assert status_of(answer) == (expected.code, expected.status), answer
    assert status_of(after) == (250, "2.0.0")
    assert harness.sink.received == []


@pytest.fixture
async def inbound(tmp_path: Path, pki: Pki, database, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GATEWAY__UNSUBSCRIBE__MAILTO_LISTEN", "127.0.0.1")
    monkeypatch.setenv("GATEWAY__UNSUBSCRIBE__MAILTO_PORT", "0")
    async with running_harness(tmp_path, pki, database) as h:
        yield h


async def test_the_inbound_listener_refuses_every_look_alike_and_keeps_nothing(
        inbound: Harness, tmp_path: Path):
    def run() -> list[tuple[bytes, str, str, str]]:
        out = []
        for ending in ENDINGS:
            with RawSession(inbound.gateway.ports.mailto) as s:
                s.cmd("EHLO mx.example.org")
                s.cmd("MAIL FROM:<someone@example.org>")
                s.cmd("RCPT TO:<postmaster@links.gw.test>")
                s.cmd("DATA")
                s.send(b"From: someone@example.org\r\n\r\nfirst" + ending
                       + SMUGGLED.replace(b"victim@example.org", b"abuse@links.gw.test")
                       + b".\r\n")
                answer = s.reply()
                out.append((ending, answer, s.cmd("NOOP"),
                            s.cmd(b"RCPT TO:<abuse@links.gw.test>\x00")))
        return out

    for ending, answer, noop, nul_rcpt in await asyncio.to_thread(run):
        assert status_of(answer) in REFUSALS, (ending, answer)
        assert noop.startswith("250"), (ending, noop)
        assert nul_rcpt.startswith("501 5.5.2"), (ending, nul_rcpt)
    kept = tmp_path / "var"
    boxes = [p for p in kept.rglob("cur") if p.is_dir()]
    assert all(len(mailbox.Maildir(b.parent, create=False)) == 0 for b in boxes)
    assert inbound.sink.received == []
