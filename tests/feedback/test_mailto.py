"""mailto: unsubscribes over a real SMTP session on the gateway's separate listener."""

from __future__ import annotations

import asyncio
import mailbox
import smtplib

import pytest

from tests.conftest import running_harness
from tests.support import messages
from tests.support.unsubscribe import entries, refused_at_rcpt, token_for, unsubscribed_events


@pytest.fixture
async def h(tmp_path, pki, database, monkeypatch):
    monkeypatch.setenv("GATEWAY__UNSUBSCRIBE__MAILTO_LISTEN", "127.0.0.1")
    monkeypatch.setenv("GATEWAY__UNSUBSCRIBE__MAILTO_PORT", "0")
    monkeypatch.setenv("GATEWAY__UNSUBSCRIBE__MAILTO_MAX_MESSAGE_SIZE", "20000")
    async with running_harness(tmp_path, pki, database) as harness:
        yield harness


def session(h) -> smtplib.SMTP:
    smtp = smtplib.SMTP("127.0.0.1", h.gateway.ports.mailto, timeout=10)
    smtp.ehlo("mx.recipient.example")
    return smtp


def unsubscribe_mail(subject: str) -> bytes:
    return (f"From: alice@example.org\r\nTo: unsubscribe@links.gw.test\r\n"
            f"Subject: {subject}\r\n\r\nPlease remove me.\r\n").encode()


async def send(h, rcpt: str, content: bytes) -> tuple[int, bytes]:
    def run() -> tuple[int, bytes]:
        with session(h) as smtp:
            smtp.mail("alice@example.org")
            code, text = smtp.rcpt(rcpt)
            if code != 250:
                return code, text
            return smtp.data(content)
    return await asyncio.to_thread(run)


async def test_a_mail_to_the_unsubscribe_address_suppresses_the_token_recipient(h):
    token = await token_for(h)
    code, text = await send(h, "unsubscribe@links.gw.test", unsubscribe_mail(
        f"unsubscribe {token.upper()}"))  # case changed on the way: still the same token
    assert (code, text[:5]) == (250, b"2.0.0")
    assert await refused_at_rcpt(h, "alice@example.org")
    (entry,) = await entries(h)
    assert (entry.reason, entry.source) == ("unsubscribe", "mailto")
    (event,) = await unsubscribed_events(h)
    assert event.detail["source"] == "mailto"
    assert len(h.sink.received) == 1  # only the original copy: nothing relayed, no bounce


async def test_an_unsubscribe_mail_without_a_valid_token_is_refused_and_writes_nothing(h):
    token = await token_for(h)
    forged = token[:20] + ("a" if token[20] != "a" else "b") + token[21:]
    for subject in (f"unsubscribe {forged}", "unsubscribe", "=?utf-8?q?d=C3=A9sabonner?="):
        code, text = await send(h, "unsubscribe@links.gw.test", unsubscribe_mail(subject))
        assert (code, text[:5]) == (550, b"5.7.1")
    assert await entries(h) == []
    assert len(h.sink.received) == 1


@pytest.mark.parametrize("rcpt, reply", [
    ("<unsubscribe%links.gw.test@links.gw.test>", 553),  # percent hack
    ("<@relay.example:unsubscribe@links.gw.test>", 553),  # source route
    ("<@a.example,@b.example:unsubscribe@links.gw.test>", 553),
    ("<relay.example!unsubscribe@links.gw.test>", 553),  # bang path
    ('<"unsubscribe@links.gw.test"@links.gw.test>', 553),  # quoted local part holding @
    ('<"a%b"@links.gw.test>', 553),
    ("<unsubscribe@other.example>", 550),  # not our domain: no relaying
    ("<unsubscribe@links.gw.test.evil.example>", 550),
    ("<unsubscribe@gw.test>", 550),  # domains match exactly
    ("<someone@links.gw.test>", 550),
    ("<sales@acme.example>", 550),  # a sending mailbox is not reachable from here
])
async def test_address_tricks_are_refused(h, rcpt, reply):
    def run() -> tuple[int, bytes]:
        with session(h) as smtp:
            smtp.mail("x@example.org")
            return smtp.docmd("RCPT", f"TO:{rcpt}")
    code, _ = await asyncio.to_thread(run)
    assert code == reply


@pytest.mark.parametrize("rcpt", ["<postmaster@links.gw.test>", "<abuse@LINKS.gw.test>",
                                  "<Postmaster>"])
async def test_postmaster_and_abuse_are_accepted_and_kept_for_ops(h, rcpt):
    def run() -> tuple[int, bytes]:
        with session(h) as smtp:
            smtp.mail("reporter@example.net")
            assert smtp.docmd("RCPT", f"TO:{rcpt}")[0] == 250
            return smtp.data(b"Subject: abuse report\r\n\r\nSee attached.\r\n")
    assert (await asyncio.to_thread(run))[0] == 250
    kept = mailbox.Maildir(h.gateway.config.data_dir + "/postmaster", create=False)
    assert [m["subject"] for m in kept] == ["abuse report"]
    assert h.sink.received == []


async def test_starttls_is_offered_and_size_is_capped(h):
    def run() -> tuple[bool, int]:
        with session(h) as smtp:
            offered = smtp.has_extn("starttls")
            smtp.starttls(context=h.pki.client_context())
            smtp.ehlo("mx.recipient.example")
            smtp.mail("alice@example.org")
            smtp.rcpt("unsubscribe@links.gw.test")
            code, _ = smtp.data(unsubscribe_mail("x") + (b"y" * 70 + b"\r\n") * 400)
            return offered, code
    offered, code = await asyncio.to_thread(run)
    assert offered and code == 552


async def test_no_auth_and_no_relay_through_the_mailto_listener(h):
    def run() -> tuple[bool, int]:
        with session(h) as smtp:
            smtp.mail("sales@acme.example")
            return smtp.has_extn("auth"), smtp.rcpt("bob@example.org")[0]
    has_auth, code = await asyncio.to_thread(run)
    assert not has_auth and code == 550
    assert await h.send(messages.simple(), ["bob@example.org"]) == {}  # submission still works


async def test_a_tenants_link_domain_takes_unsubscribe_mail_too(h):
    await h.store().set_tenant_setting("acme", "link_domain", "links.acme.example", "t")
    await h.refresh()

    def run() -> int:
        with session(h) as smtp:
            smtp.mail("x@example.org")
            return smtp.rcpt("unsubscribe@links.acme.example")[0]
    assert await asyncio.to_thread(run) == 250



async def test_messages_per_network_and_open_connections_are_capped(tmp_path, pki, database,
                                                                    monkeypatch):
    monkeypatch.setenv("GATEWAY__UNSUBSCRIBE__MAILTO_LISTEN", "127.0.0.1")
    monkeypatch.setenv("GATEWAY__UNSUBSCRIBE__MAILTO_PORT", "0")
    monkeypatch.setenv("GATEWAY__UNSUBSCRIBE__MAILTO_RATE", "2")
    monkeypatch.setenv("GATEWAY__UNSUBSCRIBE__MAILTO_MAX_CONNECTIONS", "1")
    async with running_harness(tmp_path, pki, database) as h:
        def run() -> tuple[list[int], bytes]:
            with session(h) as smtp:
                codes = []
                for _ in range(3):  # the third MAIL in a minute from 127.0.0.0/24
                    codes.append(smtp.mail("x@example.org")[0])
                    smtp.rset()
                with smtplib.SMTP(timeout=10) as second:  # one connection is the cap
                    code, text = second.connect("127.0.0.1", h.gateway.ports.mailto)
                return codes, text if code == 421 else b"%d" % code
        codes, second = await asyncio.to_thread(run)
        assert codes == [250, 250, 421]
        assert second.startswith(b"4.7.0")


async def test_behind_a_balancer_the_rate_keys_on_the_client_it_names(tmp_path, pki, database,
                                                                     monkeypatch):
    from tests.support.proxy import BALANCER, Proxied, v1, v2

    monkeypatch.setenv("GATEWAY__UNSUBSCRIBE__MAILTO_LISTEN", "127.0.0.1")
    monkeypatch.setenv("GATEWAY__UNSUBSCRIBE__MAILTO_PORT", "0")
    monkeypatch.setenv("GATEWAY__UNSUBSCRIBE__MAILTO_RATE", "2")
    monkeypatch.setenv("GATEWAY__UNSUBSCRIBE__MAILTO_PROXY_PROTOCOL", "true")
    monkeypatch.setenv("GATEWAY__SMTP__LOAD_BALANCERS", f'["{BALANCER}/32"]')
    async with running_harness(tmp_path, pki, database) as h:
        port = h.gateway.ports.mailto

        def mails(header: bytes, source: str = BALANCER) -> list[int] | str:
            try:
                with Proxied(port, header, source=source) as smtp:
                    smtp.ehlo("mx.example")
                    codes = []
                    for _ in range(3):
                        codes.append(smtp.mail("x@example.org")[0])
                        smtp.rset()
                    return codes
            except smtplib.SMTPServerDisconnected:
                return "disconnected"

        assert await asyncio.to_thread(mails, v2("192.0.2.10", port)) == [250, 250, 421]
        # another sender behind the same balancer has its own allowance
        assert await asyncio.to_thread(mails, v1("198.51.100.7", port)) == [250, 250, 421]
        # a PROXY header from anyone but the balancer is not believed
        assert await asyncio.to_thread(mails, v2("192.0.2.99", port), "127.0.0.1") == \
            "disconnected"
