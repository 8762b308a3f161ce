"""Relay to the upstream: faults injected at the remote, never in our code."""

from __future__ import annotations

import asyncio
import re
import smtplib
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.protocol import replies
from tests.conftest import Harness, Pki, running_harness
from tests.support import messages
from tests.support.sink import RecordingSink


def code_status(exc: smtplib.SMTPResponseException) -> tuple[int, str]:
    return exc.smtp_code, exc.smtp_error.decode().split(" ", 1)[0]


async def test_upstream_4xx_is_passed_back_with_its_code_and_who_refused(harness: Harness):
    harness.sink.faults.rcpt["alice@example.org"] = "451 4.2.1 Mailbox busy"
    code, text = await harness.data_reply(["alice@example.org"])
    assert (code, text) == (451, "4.2.1 Upstream refused: Mailbox busy")
    assert harness.sink.received == []


async def test_upstream_5xx_is_passed_back(harness: Harness):
    harness.sink.faults.rcpt["alice@example.org"] = "550 5.1.1 No such user"
    code, text = await harness.data_reply(["alice@example.org"])
    assert (code, text) == (550, "5.1.1 Upstream refused: No such user")


async def test_upstream_reply_without_enhanced_code_gets_a_class_code(harness: Harness):
    harness.sink.faults.data = "554 Transaction failed"
    code, text = await harness.data_reply(["alice@example.org"])
    assert (code, text) == (554, "5.0.0 Upstream refused: Transaction failed")


async def test_upstream_unreachable_is_451_4_4_1(tmp_path: Path, pki: Pki, database):
    # A port bound but not listening: connections are refused, and while the socket stays
    # open no listener of this test (the gateway's own take port 0 too) can be given it.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
        upstream = (f'[upstreams.sink]\nkind = "smtp"\nhost = "127.0.0.1"\n'
                    f'port = {dead_port}\ntls = "none"\ntimeout = 2\n')
        async with running_harness(tmp_path, pki, database, upstream=upstream) as h:
            code, text = await h.data_reply(["alice@example.org"])
            assert (code, text.split(" ")[0]) == (451, "4.4.1")


async def test_upstream_disconnect_mid_data_is_451_4_4_2_and_nothing_is_half_sent(
        harness: Harness):
    harness.sink.faults.disconnect_at = "data"
    code, text = await harness.data_reply(["alice@example.org"])
    assert (code, text.split(" ")[0]) == (451, "4.4.2")
    assert harness.sink.received == []
    harness.sink.faults.disconnect_at = None  # the client retries: it is delivered once
    code, _ = await harness.data_reply(["alice@example.org"])
    assert code == 250 and len(harness.sink.received) == 1


async def test_slow_upstream_beyond_its_timeout_is_temporary(tmp_path: Path, pki: Pki, database):
    sink = await RecordingSink().start()
    upstream = (f'[upstreams.sink]\nkind = "smtp"\nhost = "127.0.0.1"\nport = {sink.port}\n'
                'tls = "none"\ntimeout = 0.5\n')
    async with running_harness(tmp_path, pki, database, sink=sink, upstream=upstream) as h:
        sink.faults.delay = 1.5
        code, text = await h.data_reply(["alice@example.org"])
        assert code == 451 and text.startswith("4.4.2")


async def test_pooled_connection_closed_by_upstream_is_replaced(harness: Harness):
    await harness.data_reply(["a@example.org"])
    # the upstream restarts: every pooled connection is now dead
    port = harness.sink.port
    await harness.sink.stop()
    loop = asyncio.get_running_loop()
    harness.sink._server = await loop.create_server(harness.sink._factory, "127.0.0.1", port)
    for _ in range(3):
        code, _ = await harness.data_reply(["b@example.org"])
        assert code == 250
    assert len(harness.sink.to("b@example.org")) == 3


async def test_no_copy_delivered_means_the_failure_and_nothing_kept(harness: Harness):
    harness.sink.faults.rcpt["a@example.org"] = "550 5.1.1 gone"
    harness.sink.faults.rcpt["b@example.org"] = "451 4.2.1 busy"
    code, text = await harness.data_reply(["a@example.org", "b@example.org"])
    assert (code, text.split(" ")[0]) == (451, "4.2.1")  # a 4xx wins: the client retries
    assert await harness.gateway.queue.listing() == []


async def test_mixed_outcome_is_250_and_failed_copies_are_kept_sealed(harness: Harness):
    harness.sink.faults.rcpt["b@example.org"] = "451 4.2.1 busy"
    harness.sink.faults.rcpt["c@example.org"] = "550 5.1.1 gone"
    code, text = await harness.data_reply(["a@example.org", "b@example.org", "c@example.org"])
    assert code == 250
    queue_id = text.rsplit(" ", 1)[1]
    assert [r.recipients for r in harness.sink.received] == [["a@example.org"]]
    kept = {c.recipient: c for c in await harness.gateway.queue.for_queue_id(queue_id)}
    assert kept["b@example.org"].state == "deferred"
    assert kept["c@example.org"].state == "refused"
    assert (kept["c@example.org"].reply_code, kept["c@example.org"].reply_status) == (
        550, "5.1.1")
    far = datetime.now(UTC) + timedelta(days=1)
    opened = {c.recipient: m for c, m in await harness.gateway.queue.claim(10, 60, far)}
    # Each kept copy opens to its own bytes: the message with that recipient's link.
    body = messages.simple().split(b"\r\n\r\n", 1)[1]
    links = set()
    for recipient in ("b@example.org", "c@example.org"):
        head, copy_body = opened[recipient].split(b"\r\n\r\n", 1)
        assert copy_body.startswith(body)
        (link,) = re.findall(rb"<(https://links.gw.test/u/[a-z2-7]+)>", head)
        assert link in copy_body
        links.add(link)
    assert len(links) == 2
    raw = await harness.gateway.queue.sealed_bytes(queue_id)
    assert all(b"A short note" not in row for row in raw)  # sealed at rest


async def test_smtputf8_message_refused_when_upstream_lacks_it(tmp_path: Path, pki: Pki, database):
    sink = await RecordingSink(smtputf8=False).start()
    async with running_harness(tmp_path, pki, database, sink=sink) as h:
        code, text = await messages.send_to_utf8_recipient(h)
        assert (code, text.decode().split(" ")[0]) == (
            replies.SMTPUTF8_UNSUPPORTED.code, replies.SMTPUTF8_UNSUPPORTED.status)
        assert sink.received == []


async def test_smarthost_with_starttls_auth_and_verified_certificate(
        tmp_path: Path, pki: Pki, database):
    ca_file = Path(pki.cert_file).with_name("ca.pem")
    sink = await RecordingSink(tls=pki.server_context(), auth=("relay-user", "relay-pass")).start()
    upstream = (f'[upstreams.sink]\nkind = "smtp"\nhost = "localhost"\nport = {sink.port}\n'
                f'tls = "starttls"\nusername = "relay-user"\npassword = "relay-pass"\n'
                f'ca_file = "{ca_file}"\n')
    async with running_harness(tmp_path, pki, database, sink=sink, upstream=upstream) as h:
        code, _ = await h.data_reply(["alice@example.org"])
        assert code == 250 and len(sink.received) == 1


async def test_smarthost_certificate_not_trusted_is_temporary_failure(
        tmp_path: Path, pki: Pki, database):
    sink = await RecordingSink(tls=pki.server_context()).start()
    upstream = (f'[upstreams.sink]\nkind = "smtp"\nhost = "localhost"\nport = {sink.port}\n'
                'tls = "starttls"\n')  # system CAs only: the test CA is not trusted
    async with running_harness(tmp_path, pki, database, sink=sink, upstream=upstream) as h:
        code, text = await h.data_reply(["alice@example.org"])
        assert (code, text.split(" ")[0]) == (451, "4.7.5")
        assert sink.received == []


async def test_smarthost_refusing_our_credentials_is_451_4_7_0(
        tmp_path: Path, pki: Pki, database):
    ca_file = Path(pki.cert_file).with_name("ca.pem")
    sink = await RecordingSink(tls=pki.server_context(), auth=("relay-user", "right")).start()
    upstream = (f'[upstreams.sink]\nkind = "smtp"\nhost = "localhost"\nport = {sink.port}\n'
                f'tls = "starttls"\nusername = "relay-user"\npassword = "wrong"\n'
                f'ca_file = "{ca_file}"\n')
    async with running_harness(tmp_path, pki, database, sink=sink, upstream=upstream) as h:
        code, text = await h.data_reply(["alice@example.org"])
        assert (code, text.split(" ")[0]) == (451, "4.7.0")


@pytest.mark.parametrize("count", [20])
async def test_concurrent_clients_every_250_is_at_the_upstream(harness: Harness, count: int):
    harness.sink.faults.rcpt["flaky@example.org"] = "451 4.3.0 try later"

    async def one(i: int):
        rcpt = "flaky@example.org" if i % 5 == 0 else f"user{i}@example.org"
        try:
            code, _ = await harness.data_reply([rcpt])
        except smtplib.SMTPException:
            code = 0
        return rcpt, code

    results = await asyncio.gather(*(one(i) for i in range(count)))
    accepted = {r for r, code in results if code == 250}
    at_sink = {r.recipients[0] for r in harness.sink.received}
    assert accepted == at_sink
    assert len(accepted) == count - count // 5


async def test_copies_beyond_the_pool_wait_their_turn_on_the_logins_connections(
        tmp_path: Path, pki: Pki, database):
    """Issue 26: ten recipients' copies over `pool_size = 2` take turns on two connections
    (an MTA's destination concurrency) instead of opening ten and closing eight."""
    sink = await RecordingSink(pipelining=True).start()
    upstream = (f'[upstreams.sink]\nkind = "smtp"\nhost = "127.0.0.1"\nport = {sink.port}\n'
                'tls = "none"\npool_size = 2\n')
    async with running_harness(tmp_path, pki, database, sink=sink, upstream=upstream) as h:
        recipients = [f"r{i}@example.org" for i in range(10)]
        code, _ = await h.data_reply(recipients)
        assert code == 250
        assert sorted(r.recipients[0] for r in sink.received) == sorted(recipients)
        assert sink.connections == 2
