"""RFC 2920 toward the upstream (issue 26): with PIPELINING offered, a copy is MAIL, RCPT and
DATA in one write and the message in a second. Differential: the same copies sent pipelined
and through aiosmtplib's own calls arrive byte for byte alike, and each refusal reads the
same; a server that answers only once the whole batch is in proves the batching; through
the gateway, a refusal at each stage gives the client the same reply either way."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiosmtplib
import pytest
from aiosmtplib import errors as smtp_errors

from gateway.delivery.upstream import pipelining
from tests.conftest import Pki, running_harness
from tests.support import messages
from tests.support.sink import Faults, RecordingSink

COPIES = [
    messages.simple(),
    messages.multipart(),
    b"Subject: dots\r\n\r\n.leading dot\r\n..two\r\n.\r\nend\r\n",  # dot-stuffing
    b"Subject: no final line break\r\n\r\nlast line",
    b"Subject: bare\nline feeds\r\n\r\nbody\rwith a bare CR\n",  # not the gateway's form
]


async def _client(sink: RecordingSink) -> aiosmtplib.SMTP:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=sink.port, start_tls=False,
                             timeout=5)
    await client.connect()
    await client.ehlo()
    return client


async def _plain(client: aiosmtplib.SMTP, sender: str, recipient: str, copy: bytes) -> None:
    await client.mail(sender, options=[f"SIZE={len(copy)}"])
    await client.rcpt(recipient)
    await client.data(copy)


async def _pipelined(client: aiosmtplib.SMTP, sender: str, recipient: str,
                     copy: bytes) -> None:
    assert await pipelining.send(client, sender, [f"SIZE={len(copy)}"], recipient, copy,
                                 False, 5)


async def test_copies_arrive_alike_pipelined_or_not():
    arrived = []
    for send in (_plain, _pipelined):
        sink = await RecordingSink(pipelining=True).start()
        client = await _client(sink)
        assert client.supports_extension("pipelining")
        for n, copy in enumerate(COPIES):  # one connection, one copy after another
            await send(client, "sales@acme.example", f"r{n}@example.org", copy)
        await client.quit()
        await sink.stop()
        arrived.append([(r.envelope_from, r.recipients, r.content, r.mail_options)
                        for r in sink.received])
    assert arrived[0] == arrived[1]
    assert len(arrived[1]) == len(COPIES)


FAULTS = {
    "mail refused": Faults(mail="550 5.7.1 Sender not allowed"),
    "recipient refused": Faults(rcpt={"r@example.org": "550 5.1.1 No such user"}),
    "recipient deferred": Faults(rcpt={"r@example.org": "451 4.2.1 Mailbox busy"}),
    "message refused": Faults(data="554 5.6.0 Content rejected"),
    "closing at mail": Faults(mail="421 4.3.2 Shutting down"),
    "gone at rcpt": Faults(disconnect_at="rcpt"),
    "gone at data": Faults(disconnect_at="data"),
}


@pytest.mark.parametrize("fault", FAULTS, ids=list(FAULTS))
async def test_each_refusal_reads_the_same_pipelined_or_not(fault: str):
    outcomes = []
    for send in (_plain, _pipelined):
        sink = await RecordingSink(pipelining=True).start()
        sink.faults = FAULTS[fault]
        client = await _client(sink)
        try:
            await send(client, "sales@acme.example", "r@example.org", messages.simple())
            outcome: tuple[object, ...] = ("delivered",)
        except smtp_errors.SMTPResponseException as exc:
            outcome = (type(exc).__name__, exc.code, exc.message)
        except smtp_errors.SMTPServerDisconnected:
            outcome = ("disconnected",)
        usable = client.is_connected
        if usable:  # the session goes on in step: the next command gets its own reply
            usable = (await client.rset()).code == 250
        outcomes.append((outcome, usable, len(sink.received)))
        client.close()
        await sink.stop()
    assert outcomes[0] == outcomes[1]


async def test_a_server_that_answers_only_the_whole_batch_gets_one():
    """It reads MAIL, RCPT and DATA before it says a word, and answers all three in one
    segment: an unpipelined client would wait for the MAIL reply forever."""
    seen: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 batch.test ESMTP\r\n")
        await reader.readline()  # EHLO
        writer.write(b"250-batch.test\r\n250-PIPELINING\r\n250 SIZE 1000000\r\n")
        batch = [await reader.readline() for _ in range(3)]
        seen.extend(batch)
        writer.write(b"250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go on\r\n")
        data = await reader.readuntil(b"\r\n.\r\n")
        seen.append(data)
        writer.write(b"250 2.0.0 queued\r\n")
        await reader.readline()  # QUIT
        writer.write(b"221 bye\r\n")
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=5)
    await client.connect()
    await client.ehlo()
    assert await pipelining.send(client, "a@acme.example", [], "b@example.org",
                                 b"Subject: x\r\n\r\n.hi\r\n", False, 5)
    await client.quit()
    server.close()
    assert seen[:3] == [b"MAIL FROM:<a@acme.example>\r\n", b"RCPT TO:<b@example.org>\r\n",
                        b"DATA\r\n"]
    assert seen[3] == b"Subject: x\r\n\r\n..hi\r\n.\r\n"


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
@pytest.mark.parametrize("offered", [True, False], ids=["pipelined", "unpipelined"])
async def test_through_the_gateway_an_smtputf8_copy_reaches_an_upstream_that_takes_it(
        tmp_path: Path, pki: Pki, database, offered: bool):
    """A fresh upstream connection says what it offers before the first copy: an SMTPUTF8
    message was refused as 'upstream lacks SMTPUTF8' on every new connection."""
    sink = await RecordingSink(pipelining=offered).start()
    async with running_harness(tmp_path, pki, database, sink=sink) as h:
        code, _ = await messages.send_to_utf8_recipient(h)
        assert code == 250
        assert [r.recipients for r in sink.received] == [["jöe@example.org"]]
        assert "SMTPUTF8" in sink.received[0].mail_options
