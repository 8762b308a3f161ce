"""Upstream TLS fails closed: a smarthost, a Gmail/Microsoft 365 style XOAUTH2 upstream or an
IMAP server presenting a self-signed, expired or wrong-name certificate gets nothing — no
password, no bearer token, no message — and the client gets `451 4.7.5`. Only a configured
`ca_file`, or `tls_verify = false` for a loopback host (logged), changes that."""

from __future__ import annotations

import asyncio
import ssl
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway import config as config_module
from gateway.errors import ConfigError
from gateway.feedback import imap
from gateway.protocol import replies
from gateway.smtp.tls import ensure_self_signed
from tests.conftest import Pki, running_harness
from tests.support.oauth_server import CLIENT_ID, CLIENT_SECRET, OAuthServer
from tests.support.sink import RecordingSink
from tests.support.xoauth2 import connect

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)
BAD = ["self-signed", "expired", "wrong-name"]


def bad_context(pki: Pki, kind: str, tmp_path: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if kind == "self-signed":
        cert, key = ensure_self_signed(tmp_path / kind, "localhost")
        context.load_cert_chain(cert, key)
    elif kind == "expired":
        past = datetime.now(UTC) - timedelta(days=30)
        pki.ca.issue_cert("localhost", "127.0.0.1", not_before=past - timedelta(days=90),
                          not_after=past).configure_cert(context)
    else:
        pki.ca.issue_cert("smtp.elsewhere.example").configure_cert(context)
    return context


def ca_file(pki: Pki) -> Path:
    return Path(pki.cert_file).with_name("ca.pem")  # the test CA: trusted, as a private CA


@pytest.mark.parametrize("kind", BAD)
async def test_a_smarthost_with_a_bad_certificate_gets_no_password_and_no_message(
        tmp_path: Path, pki: Pki, database, kind: str):
    sink = await RecordingSink(tls=bad_context(pki, kind, tmp_path),
                               auth=("relay-user", "relay-pass")).start()
    upstream = (f'[upstreams.sink]\nkind = "smtp"\nhost = "localhost"\nport = {sink.port}\n'
                f'tls = "starttls"\nusername = "relay-user"\npassword = "relay-pass"\n'
                f'ca_file = "{ca_file(pki)}"\ntimeout = 5\n')
    async with running_harness(tmp_path, pki, database, sink=sink, upstream=upstream) as h:
        code, text = await h.data_reply(["alice@example.org"])
    expected = replies.UPSTREAM_TLS_UNTRUSTED
    assert (code, text.split(" ")[0]) == (expected.code, expected.status)
    assert sink.commands == [] and sink.received == []  # no AUTH, no MAIL, no message


@pytest.mark.parametrize("kind", BAD)
async def test_an_xoauth2_upstream_with_a_bad_certificate_never_sees_the_token(
        tmp_path: Path, pki: Pki, database, kind: str):
    server = await OAuthServer().start()
    sink = await RecordingSink(tls=bad_context(pki, kind, tmp_path),
                               xoauth2=server.valid).start()
    upstream = (f'[upstreams.sink]\nkind = "gmail"\nhost = "localhost"\nport = {sink.port}\n'
                f'tls = "starttls"\nca_file = "{ca_file(pki)}"\ntimeout = 5\n')
    try:
        async with running_harness(tmp_path, pki, database, sink=sink, upstream=upstream,
                                   extra=server.toml("google")) as h:
            await h.gateway.credentials.add_client("google", CLIENT_ID, CLIENT_SECRET, None,
                                                   "test")
            await connect(h, server)
            code, text = await h.data_reply(["alice@example.org"])
    finally:
        await server.stop()
    expected = replies.UPSTREAM_TLS_UNTRUSTED
    assert (code, text.split(" ")[0]) == (expected.code, expected.status)
    assert sink.logins == [] and sink.commands == [] and sink.received == []


@pytest.mark.parametrize("kind", BAD)
async def test_an_imap_server_with_a_bad_certificate_never_sees_the_token(
        tmp_path: Path, pki: Pki, database, kind: str):
    context = bad_context(pki, kind, tmp_path)
    heard: list[bytes] = []
    ready = threading.Event()

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"* OK IMAP ready\r\n")
        ready.set()
        try:
            heard.append(await asyncio.wait_for(reader.read(4096), 5))
        except (TimeoutError, OSError, ssl.SSLError):
            pass
        writer.close()

    server = await asyncio.start_server(client, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    target = imap.ImapTarget("localhost", port, True, str(ca_file(pki)), 5)
    try:
        with pytest.raises(imap.ImapFailed):
            await asyncio.to_thread(imap.read, target, "sales@acme.example", "SECRET-TOKEN",
                                    "INBOX", imap.Position(0, 0), None, 10)
    finally:
        server.close()
        await server.wait_closed()
    assert not any(b"SECRET-TOKEN" in h or h for h in heard)  # not one byte after TLS


async def test_tls_verify_false_is_for_a_loopback_host_only_and_logged(
        tmp_path: Path, pki: Pki, database, caplog: pytest.LogCaptureFixture):
    sink = await RecordingSink(tls=bad_context(pki, "self-signed", tmp_path)).start()
    upstream = (f'[upstreams.sink]\nkind = "smtp"\nhost = "127.0.0.1"\nport = {sink.port}\n'
                'tls = "starttls"\ntls_verify = false\ntimeout = 5\n')
    async with running_harness(tmp_path, pki, database, sink=sink, upstream=upstream) as h:
        code, _ = await h.data_reply(["alice@example.org"])
    assert code == 250 and len(sink.received) == 1
    assert any("certificate not checked" in r.getMessage() for r in caplog.records)
    remote = tmp_path / "remote.toml"
    remote.write_text((tmp_path / "gateway.toml").read_text().replace(
        'host = "127.0.0.1"\nport', 'host = "smtp.example.net"\nport'))
    with pytest.raises(ConfigError, match="tls_verify"):
        config_module.load(remote)


async def test_an_8bit_body_never_goes_raw_to_an_upstream_without_8bitmime(
        tmp_path: Path, pki: Pki, database):
    sink = await RecordingSink(eightbitmime=False).start()
    async with running_harness(tmp_path, pki, database, sink=sink) as h:
        body = ("From: Sales <sales@acme.example>\r\nTo: alice@example.org\r\nSubject: x\r\n"
                "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                "Content-Transfer-Encoding: 8bit\r\n\r\nCaf\u00e9 cr\u00e8me\r\n").encode()
        code, text = await h.data_reply(["alice@example.org"], body)  # BODY= not declared
        seven = await h.data_reply(["bob@example.org"])
    expected = replies.EIGHTBIT_UNSUPPORTED
    assert (code, text.split(" ")[0]) == (expected.code, expected.status)
    assert seven[0] == 250
    assert [r.recipients for r in sink.received] == [["bob@example.org"]]
    assert all(r.content.isascii() for r in sink.received)
