"""SMTP submission end to end: a real client, the gateway on port 0, a recording upstream."""

from __future__ import annotations

import asyncio
import base64
import smtplib
import socket
import ssl
import warnings

import pytest
import sqlalchemy as sa

from gateway.protocol import replies
from gateway.store.schema import audit_events
from tests.conftest import PASSWORD, Harness
from tests.support import messages


def assert_reply(error: smtplib.SMTPResponseException | tuple, reply: replies.Reply) -> None:
    code, text = (error.smtp_code, error.smtp_error) if isinstance(
        error, smtplib.SMTPResponseException) else error
    if isinstance(text, bytes):
        text = text.decode()
    assert (code, text.split(" ", 1)[0]) == (reply.code, reply.status), (code, text)


async def test_message_reaches_upstream_with_only_added_headers(harness: Harness):
    sent = messages.simple()
    refused = await harness.send(sent, ["alice@example.org"])
    assert refused == {}
    await harness.gateway.audit.stop()  # flush nothing pending; rows were committed before 250
    (got,) = harness.sink.received
    assert got.envelope_from == "sales@acme.example"
    assert got.recipients == ["alice@example.org"]
    first, rest = got.content.split(b"\r\n", 1)
    assert first.startswith(b"Received: from client.test by gw.test with ESMTPSA id ")
    # Byte for byte, apart from the trace field, the unsubscribe fields and the footer.
    sent_head, sent_body = sent.split(b"\r\n\r\n", 1)
    head, body = rest.split(b"\r\n\r\n", 1)
    assert head.startswith(sent_head + b"\r\nList-Unsubscribe: <https://links.gw.test/u/")
    assert head.endswith(b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click")
    assert head.count(b"\r\n") == sent_head.count(b"\r\n") + 3  # two fields, one folded
    assert body.startswith(sent_body)
    assert body.endswith(b"\r\nAcme Corp, 1 Main Street, Springfield\r\n")


async def test_reply_carries_queue_id_and_audit_rows_exist_before_it(harness: Harness):
    def run():
        with harness.client() as smtp:
            smtp.mail("sales@acme.example")
            smtp.rcpt("alice@example.org")
            return smtp.data(messages.simple())

    code, text = await asyncio.to_thread(run)
    assert code == 250 and text.startswith(b"2.0.0 Ok: queued as ")
    queue_id = text.decode().rsplit(" ", 1)[1]
    async with harness.gateway.engine.connect() as conn:
        rows = (await conn.execute(sa.select(audit_events).where(
            audit_events.c.queue_id == queue_id))).all()
    events = sorted(r.event for r in rows)
    assert events == ["copy.delivered", "message.received"]
    copy_row = next(r for r in rows if r.event == "copy.delivered")
    assert len(copy_row.recipient_digest) == 64
    dumped = repr([tuple(r) for r in rows])
    assert "alice@example.org" not in dumped  # recipients only as keyed digests


async def test_one_upstream_transaction_per_recipient(harness: Harness):
    rcpts = ["a@example.org", "b@example.net", "c@example.com"]
    assert await harness.send(messages.simple(), rcpts) == {}
    assert sorted(r.recipients[0] for r in harness.sink.received) == sorted(rcpts)
    assert all(len(r.recipients) == 1 for r in harness.sink.received)


async def test_upstream_connections_are_reused(harness: Harness):
    for _ in range(5):
        await harness.send(messages.simple(), ["alice@example.org"])
    assert len(harness.sink.received) == 5
    assert harness.sink.connections == 1


async def test_bcc_removed_and_message_id_and_date_added(harness: Harness):
    bare = (b"From: sales@acme.example\r\nTo: alice@example.org\r\nBcc: hidden@example.org\r\n"
            b"Subject: x\r\n\r\nbody\r\n")
    await harness.send(bare, ["alice@example.org", "hidden@example.org"])
    for got in harness.sink.received:
        assert b"\r\nBcc:" not in got.content and b"hidden@" not in got.content.split(
            b"\r\n\r\n")[0].split(b"Delivered-To")[0]
        assert b"\r\nMessage-ID: <" in got.content
        assert b"\r\nDate: " in got.content


async def test_banner_names_host_and_no_software(harness: Harness):
    reader, writer = await asyncio.open_connection("127.0.0.1", harness.port)
    banner = await reader.readline()
    writer.close()
    assert banner == b"220 gw.test ESMTP\r\n"


async def test_ehlo_advertises_what_the_gateway_does(harness: Harness):
    def run():
        with smtplib.SMTP("127.0.0.1", harness.port, timeout=5) as smtp:
            before = smtp.ehlo("c")[1].decode()
            smtp.starttls(context=harness.pki.client_context())
            after = smtp.ehlo("c")[1].decode()
            return before, after

    before, after = await asyncio.to_thread(run)
    assert "STARTTLS" in before and "AUTH" not in before  # AUTH only inside TLS
    for ext in ("ENHANCEDSTATUSCODES", "8BITMIME", "SMTPUTF8", "SIZE 200000", "AUTH LOGIN PLAIN"):
        assert ext in after
    assert "STARTTLS" not in after


async def test_auth_before_tls_is_refused(harness: Harness):
    def run():
        with smtplib.SMTP("127.0.0.1", harness.port, timeout=5) as smtp:
            smtp.ehlo("c")
            return smtp.docmd("AUTH", "PLAIN AGNhbXBhaWduAHg=")

    assert_reply(await asyncio.to_thread(run), replies.AUTH_ENCRYPTION_REQUIRED)


async def test_mail_before_auth_is_refused_so_no_open_relay(harness: Harness):
    def run():
        with smtplib.SMTP("127.0.0.1", harness.port, timeout=5) as smtp:
            smtp.ehlo("c")
            plain = smtp.docmd("MAIL", "FROM:<sales@acme.example>")
            smtp.starttls(context=harness.pki.client_context())
            smtp.ehlo("c")
            tls = smtp.docmd("MAIL", "FROM:<sales@acme.example>")
            rcpt = smtp.docmd("RCPT", "TO:<victim@example.org>")
            return plain, tls, rcpt

    plain, tls, rcpt = await asyncio.to_thread(run)
    assert_reply(plain, replies.AUTH_REQUIRED)
    assert_reply(tls, replies.AUTH_REQUIRED)
    assert_reply(rcpt, replies.AUTH_REQUIRED)
    assert harness.sink.received == []


async def test_wrong_password_then_lockout_disconnects(harness: Harness):
    wrong = base64.b64encode(b"\0campaign\0wrong password").decode()

    def attempt():
        smtp = harness.client(login=False)
        try:
            reply = smtp.docmd("AUTH", f"PLAIN {wrong}")
            try:
                after = smtp.noop()
            except smtplib.SMTPServerDisconnected:
                after = "disconnected"
            return reply, after
        finally:
            smtp.close()

    first, second, third = [await asyncio.to_thread(attempt) for _ in range(3)]
    assert_reply(first[0], replies.AUTH_INVALID)
    assert_reply(second[0], replies.AUTH_INVALID)
    # the third failure reaches max_failures (3): 421 and the connection is closed
    assert_reply(third[0], replies.TOO_MANY_AUTH_FAILURES)
    assert third[1] == "disconnected"
    # locked out even with the right password, for this login
    def locked():
        smtp = harness.client(login=False)
        try:
            smtp.login("campaign", PASSWORD)
        finally:
            smtp.close()

    with pytest.raises((smtplib.SMTPResponseException, smtplib.SMTPServerDisconnected)):
        await asyncio.to_thread(locked)


async def test_unknown_login_is_refused_like_a_wrong_password(harness: Harness):
    def run():
        smtp = harness.client(login=False)
        try:
            smtp.login("nobody", "x" * 20)
        finally:
            smtp.close()

    with pytest.raises(smtplib.SMTPAuthenticationError) as info:
        await asyncio.to_thread(run)
    assert_reply(info.value, replies.AUTH_INVALID)


async def test_auth_plain_works_too(harness: Harness):
    def run():
        smtp = harness.client(login=False)
        smtp.user, smtp.password = "campaign", PASSWORD
        code, text = smtp.auth("PLAIN", smtp.auth_plain)
        smtp.quit()
        return code, text

    assert_reply(await asyncio.to_thread(run), replies.AUTH_OK)


async def test_sender_of_another_tenant_is_refused(harness: Harness):
    with pytest.raises(smtplib.SMTPSenderRefused) as info:
        await harness.send(messages.simple(sender="ceo@other.example"), ["a@example.org"],
                           sender="ceo@other.example")
    assert_reply(info.value, replies.SENDER_NOT_ALLOWED)
    assert harness.sink.received == []


async def test_malformed_sender_and_recipient_have_their_own_codes(harness: Harness):
    def run():
        with harness.client() as smtp:
            bad_from = smtp.docmd("MAIL", "FROM:<not an address>")
            bad_from2 = smtp.docmd("MAIL", "FROM:<sales@@acme.example>")
            smtp.docmd("MAIL", "FROM:<sales@acme.example>")
            bad_rcpt = smtp.docmd("RCPT", "TO:<nobody@>")
            bad_rcpt2 = smtp.docmd("RCPT", "TO:<a..b@example.org>")
            return bad_from, bad_from2, bad_rcpt, bad_rcpt2

    bad_from, bad_from2, bad_rcpt, bad_rcpt2 = await asyncio.to_thread(run)
    assert_reply(bad_from, replies.SENDER_MALFORMED)
    assert_reply(bad_from2, replies.SENDER_MALFORMED)
    assert_reply(bad_rcpt, replies.RECIPIENT_MALFORMED)
    assert_reply(bad_rcpt2, replies.RECIPIENT_MALFORMED)


async def test_too_many_recipients_gets_452(harness: Harness):
    def run():
        with harness.client() as smtp:
            smtp.mail("sales@acme.example")
            codes = [smtp.rcpt(f"r{i}@example.org") for i in range(11)]
            return codes

    codes = await asyncio.to_thread(run)
    assert all(c[0] == 250 for c in codes[:10])  # the tenant default: 10
    assert_reply(codes[10], replies.TOO_MANY_RECIPIENTS)


async def test_tenant_setting_change_is_seen_without_restart(harness: Harness):
    await harness.store().set_tenant_setting("acme", "max_recipients", 2, "test")
    await harness.refresh()  # what the refresh task does every `settings_refresh` seconds

    def run():
        with harness.client() as smtp:
            smtp.mail("sales@acme.example")
            return [smtp.rcpt(f"r{i}@example.org") for i in range(3)]

    codes = await asyncio.to_thread(run)
    assert [c[0] for c in codes] == [250, 250, 452]


async def test_size_over_limit_refused_at_mail_and_at_data(harness: Harness):
    def run():
        with harness.client() as smtp:
            at_mail = smtp.docmd("MAIL", "FROM:<sales@acme.example> SIZE=150000")
            smtp.rset()
            smtp.mail("sales@acme.example")
            smtp.rcpt("a@example.org")
            return at_mail, smtp.data(messages.of_size(150_000))

    at_mail, at_data = await asyncio.to_thread(run)
    assert_reply(at_mail, replies.MESSAGE_TOO_BIG)  # tenant limit 100000 < operator 200000
    assert_reply(at_data, replies.MESSAGE_TOO_BIG)
    assert harness.sink.received == []


async def test_over_operator_size_limit_is_552(harness: Harness):
    def run():
        with harness.client() as smtp:
            smtp.mail("sales@acme.example")
            smtp.rcpt("a@example.org")
            return smtp.data(messages.of_size(250_000))

    assert_reply(await asyncio.to_thread(run), replies.MESSAGE_TOO_BIG)


async def test_suspended_tenant_and_paused_mailbox_get_451_with_reason(harness: Harness):
    with pytest.raises(smtplib.SMTPSenderRefused) as paused:
        await harness.send(messages.simple(sender="paused@acme.example"), ["a@example.org"],
                           sender="paused@acme.example")
    assert_reply(paused.value, replies.MAILBOX_PAUSED)
    assert b"warming up" in paused.value.smtp_error
    await harness.store().set_tenant_status("acme", "suspended", "invoice overdue", "test")
    await harness.refresh()
    with pytest.raises(smtplib.SMTPSenderRefused) as suspended:
        await harness.send(messages.simple(), ["a@example.org"])
    assert_reply(suspended.value, replies.TENANT_SUSPENDED)
    assert b"invoice overdue" in suspended.value.smtp_error


async def test_header_from_outside_tenant_domains_is_refused(harness: Harness):
    msg = messages.simple().replace(b"From: Sales <sales@acme.example>",
                                    b"From: Sales <sales@bank.example>")
    with pytest.raises(smtplib.SMTPDataError) as info:
        await harness.send(msg, ["a@example.org"])
    assert_reply(info.value, replies.HEADER_FROM_NOT_ALLOWED)
    assert harness.sink.received == []


async def test_implicit_tls_port_accepts_auth(harness: Harness):
    def run():
        with smtplib.SMTP_SSL("127.0.0.1", harness.tls_port, timeout=5,
                              context=harness.pki.client_context()) as smtp:
            ehlo = smtp.ehlo("c")[1].decode()
            smtp.login("campaign", PASSWORD)
            starttls = smtp.docmd("STARTTLS")
            smtp.sendmail("sales@acme.example", ["a@example.org"], messages.simple())
            return ehlo, starttls

    ehlo, starttls = await asyncio.to_thread(run)
    assert "AUTH" in ehlo and "STARTTLS" not in ehlo
    assert_reply(starttls, replies.ALREADY_TLS)
    assert len(harness.sink.received) == 1


async def test_tls_below_1_2_is_refused(harness: Harness):
    context = harness.pki.client_context()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # old TLS on purpose
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("ALL:@SECLEVEL=0")

    def run():
        with socket.create_connection(("127.0.0.1", harness.tls_port), timeout=5) as sock:
            with context.wrap_socket(sock, server_hostname="localhost"):
                pass

    with pytest.raises((ssl.SSLError, ConnectionError)):
        await asyncio.to_thread(run)
