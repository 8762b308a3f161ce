"""Protocol edges: every reply carries an enhanced code, smuggling, STARTTLS injection."""

from __future__ import annotations

import asyncio
import base64
import re
from pathlib import Path

import aiosmtpd.smtp
import pytest

from gateway.protocol import replies
from tests.conftest import PASSWORD, Harness, Pki, running_harness
from tests.support import messages
from tests.support.raw_smtp import RawSession

ENHANCED = re.compile(r"^\d{3}[ -][245]\.\d{1,3}\.\d{1,3} ")


def status_of(reply: str) -> tuple[int, str]:
    last = reply.split("\r\n")[-1]
    return int(last[:3]), last[4:].split(" ", 1)[0]


def same(reply: str, expected: replies.Reply) -> bool:
    return status_of(reply) == (expected.code, expected.status)


def test_every_literal_reply_in_aiosmtpd_maps_to_an_enhanced_code():
    """Scan aiosmtpd's source for the replies it writes itself; each must translate."""
    source = Path(aiosmtpd.smtp.__file__).read_text()
    literals = re.findall(r"""push\(\s*f?(['"])(\d{3}[ -].*?)\1""", source)
    literals += re.findall(r"""status = (['"])(\d{3} .*?)\1""", source)
    literals += re.findall(r"""CODE_\w+ = (['"])(\d{3} .*?)\1""", source)
    assert len(literals) > 40
    unexplained = []
    for _quote, template in literals:
        # RFC 2034 exempts the greeting and HELO/EHLO lines; 354 is intermediate.
        if template.startswith(("220 {", "250-", "354 ")) or template == "250 {}":
            continue
        line = template.replace("{}", "x").replace("{command}", "FOO")
        exception_text = line.startswith(("500 Error: (", "500 Error: Cannot describe"))
        for verb in ("MAIL", "RCPT", "DATA"):
            out = replies.translate(verb, line)
            if not ENHANCED.match(out):
                unexplained.append((verb, line, out))
            if out == str(replies.TEMPORARY_FAILURE) and not exception_text:
                unexplained.append((verb, line, "fell back to 451"))
    assert unexplained == []


def test_malformed_sender_is_5_1_7_and_recipient_5_1_3():
    line = "553 5.1.3 Error: malformed address"
    assert replies.translate("MAIL", line) == str(replies.SENDER_MALFORMED)
    assert replies.translate("RCPT", line) == str(replies.RECIPIENT_MALFORMED)


def test_exception_text_never_reaches_the_wire():
    assert replies.translate("DATA", "500 Error: (KeyError) 'secret'") == str(
        replies.TEMPORARY_FAILURE)


def test_reply_class_must_match_status():
    with pytest.raises(ValueError):
        replies.Reply(550, "4.7.1", "mismatch")


def test_upstream_text_is_sanitised_and_prefixed():
    reply = replies.upstream_said(550, "5.1.1", "No such user\x1b[31m")
    assert str(reply) == "550 5.1.1 Upstream refused: No such user?[31m"
    assert replies.upstream_said(451, None, "busy").status == "4.0.0"


B64 = base64.b64encode

# (setup commands, command, expected reply) in an authenticated TLS session.
AUTHENTICATED_TABLE = [
    ([], "NOOP", replies.OK),
    ([], "RSET", replies.OK),
    ([], "VRFY alice@example.org", replies.VRFY_DISABLED),
    ([], "EXPN list", replies.NOT_IMPLEMENTED),
    ([], "HELP", replies.HELP),
    ([], "FOO", replies.COMMAND_UNRECOGNIZED),
    ([], "", replies.SYNTAX_ERROR),
    ([], "EHLO", replies.EHLO_SYNTAX),
    ([], "HELO", replies.HELO_SYNTAX),
    ([], "STARTTLS", replies.ALREADY_TLS),
    ([], "AUTH PLAIN " + B64(b"\0campaign\0x").decode(), replies.AUTH_ALREADY),
    ([], "RCPT TO:<a@example.org>", replies.NEED_MAIL),
    ([], "DATA", replies.NEED_MAIL),
    ([], "MAIL FROM:", replies.MAIL_SYNTAX),
    ([], "MAIL FROM:<sales@acme.example> FOO=BAR", replies.PARAMETER_NOT_IMPLEMENTED),
    ([], "MAIL FROM:<sales@acme.example> BODY=9BIT", replies.BODY_PARAMETER),
    ([], "MAIL FROM:<sales@acme.example> SMTPUTF8=yes", replies.SMTPUTF8_PARAMETER),
    ([], "MAIL FROM:<sales@acme.example> SIZE=999999999", replies.MESSAGE_TOO_BIG),
    ([], "MAIL FROM:<nobody@acme.example>", replies.SENDER_NOT_ALLOWED),
    ([], "MAIL FROM:<bad address>", replies.SENDER_MALFORMED),
    ([], "MAIL FROM:<sales@acme.example>", replies.SENDER_OK),
    (["MAIL FROM:<sales@acme.example>"], "MAIL FROM:<sales@acme.example>", replies.NESTED_MAIL),
    (["MAIL FROM:<sales@acme.example>"], "DATA", replies.NEED_RCPT),
    (["MAIL FROM:<sales@acme.example>"], "RCPT TO:<a@example.org> FOO=1",
     replies.PARAMETER_NOT_IMPLEMENTED),
    (["MAIL FROM:<sales@acme.example>"], "RCPT TO:", replies.RCPT_SYNTAX),
    (["MAIL FROM:<sales@acme.example>"], "RCPT TO:<a@@example.org>",
     replies.RECIPIENT_MALFORMED),
    (["MAIL FROM:<sales@acme.example>"], "RCPT TO:<jöe@example.org>", replies.NEEDS_SMTPUTF8),
    (["MAIL FROM:<sales@acme.example> SMTPUTF8"], "RCPT TO:<jöe@example.org>",
     replies.RECIPIENT_OK),
    (["MAIL FROM:<sales@acme.example>"], "RCPT TO:<a@example.org>", replies.RECIPIENT_OK),
    ([], "X" * 600, replies.LINE_TOO_LONG),
    ([], "QUIT", replies.BYE),
]


async def test_every_reply_in_a_session_has_the_catalogued_code(harness: Harness):
    def run():
        results = []
        for setup, command, expected in AUTHENTICATED_TABLE:
            session = RawSession(harness.port, harness.pki.client_context())
            session.ready("campaign", PASSWORD)
            for line in setup:
                session.cmd(line)
            results.append((command, session.cmd(command), expected))
            session.close()
        return results

    for command, got, expected in await asyncio.to_thread(run):
        assert same(got, expected), (command, got, str(expected))


async def test_unauthenticated_replies_have_codes_too(harness: Harness):
    def run():
        s = RawSession(harness.port, harness.pki.client_context())
        out = {"greeting": s.greeting, "before_ehlo": s.cmd("MAIL FROM:<x@acme.example>")}
        s.cmd("EHLO c")
        out["auth_plaintext"] = s.cmd("AUTH PLAIN " + B64(b"\0campaign\0x").decode())
        out["mail_no_auth"] = s.cmd("MAIL FROM:<sales@acme.example>")
        out["starttls"] = s.starttls()
        s.cmd("EHLO c")
        out["auth_unknown"] = s.cmd("AUTH CRAM-MD5")
        out["auth_empty"] = s.cmd("AUTH")
        out["auth_bad_b64"] = s.cmd("AUTH PLAIN !!!")
        out["auth_malformed"] = s.cmd("AUTH PLAIN " + B64(b"just-one-part").decode())
        out["auth_login_abort"] = (s.cmd("AUTH LOGIN"), s.cmd("*"))
        s.close()
        return out

    out = await asyncio.to_thread(run)
    assert out["greeting"] == "220 gw.test ESMTP"
    assert same(out["before_ehlo"], replies.HELO_FIRST)
    assert same(out["auth_plaintext"], replies.AUTH_ENCRYPTION_REQUIRED)
    assert same(out["mail_no_auth"], replies.AUTH_REQUIRED)
    assert same(out["starttls"], replies.READY_FOR_TLS)
    assert same(out["auth_unknown"], replies.AUTH_MECHANISM_UNKNOWN)
    assert same(out["auth_empty"], replies.PARAMETER_SYNTAX)
    assert same(out["auth_bad_b64"], replies.AUTH_BAD_BASE64)
    assert same(out["auth_malformed"], replies.AUTH_MALFORMED)
    challenge, aborted = out["auth_login_abort"]
    assert challenge.startswith("334 ")
    assert same(aborted, replies.AUTH_ABORTED)


async def test_command_and_unknown_command_budgets_end_the_session(
        tmp_path: Path, pki: Pki, database, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GATEWAY__SMTP__MAX_COMMANDS", "3")
    async with running_harness(tmp_path, pki, database) as h:
        def run():
            s = RawSession(h.port, pki.client_context())
            answers = [s.cmd("NOOP") for _ in range(4)]
            s.close()
            s = RawSession(h.port, pki.client_context())
            bogus = [s.cmd(f"BOGUS{i}") for i in range(5)]
            s.close()
            return answers, bogus

        answers, bogus = await asyncio.to_thread(run)
        assert same(answers[3], replies.TOO_MANY_COMMANDS)
        assert same(bogus[-1], replies.TOO_MANY_UNKNOWN_COMMANDS)


async def test_data_line_too_long_is_refused_after_the_data(harness: Harness):
    def run():
        s = RawSession(harness.port, harness.pki.client_context()).ready("campaign", PASSWORD)
        s.cmd("MAIL FROM:<sales@acme.example>")
        s.cmd("RCPT TO:<a@example.org>")
        s.cmd("DATA")
        s.send(messages.simple(body="x" * 3000 + "\r\n") + b".\r\n")
        with s:
            return s.reply()

    assert same(await asyncio.to_thread(run), replies.DATA_LINE_TOO_LONG)
    assert harness.sink.received == []


SMUGGLING_ENDINGS = [b"\n.\r\n", b"\n.\n", b"\r\n.\n", b"\r.\r", b"\r.\r\n", b"\n.\r"]


@pytest.mark.parametrize("ending", SMUGGLING_ENDINGS, ids=repr)
async def test_no_end_of_data_variant_splits_a_submission(harness: Harness, ending: bytes):
    smuggled = (b"MAIL FROM:<sales@acme.example>\r\nRCPT TO:<victim@example.org>\r\n"
                b"DATA\r\nFrom: sales@acme.example\r\n\r\nsmuggled\r\n")

    def run():
        s = RawSession(harness.port, harness.pki.client_context()).ready("campaign", PASSWORD)
        s.cmd("MAIL FROM:<sales@acme.example>")
        s.cmd("RCPT TO:<alice@example.org>")
        s.cmd("DATA")
        s.send(messages.simple(body="first") + ending + smuggled + b".\r\n")
        first = s.reply()
        after = s.cmd("NOOP")  # the next reply answers NOOP, not a smuggled command
        s.close()
        return first, after

    first, after = await asyncio.to_thread(run)
    assert same(first, replies.BARE_LINE_ENDING)
    assert same(after, replies.OK)
    assert harness.sink.received == []
    assert "MAIL" not in harness.sink.commands


async def test_bare_lf_message_is_refused_and_nothing_is_sent(harness: Harness):
    def run():
        s = RawSession(harness.port, harness.pki.client_context()).ready("campaign", PASSWORD)
        s.cmd("MAIL FROM:<sales@acme.example>")
        s.cmd("RCPT TO:<alice@example.org>")
        s.cmd("DATA")
        s.send(b"From: sales@acme.example\nSubject: x\n\nbody\r\n.\r\n")
        with s:
            return s.reply()

    assert same(await asyncio.to_thread(run), replies.BARE_LINE_ENDING)
    assert harness.sink.received == []


async def test_commands_pipelined_before_starttls_are_discarded(harness: Harness):
    """CVE-2024-34083-style injection: nothing sent in clear is answered inside TLS."""

    def run():
        s = RawSession(harness.port, harness.pki.client_context())
        s.cmd("EHLO c")
        s.send(b"STARTTLS\r\nNOOP\r\nMAIL FROM:<sales@acme.example>\r\n")
        ready = s.reply()
        s.sock = s.context.wrap_socket(s.sock, server_hostname="localhost")
        s.buffer = b""
        ehlo = s.cmd("EHLO c")
        noop = s.cmd("NOOP")
        s.close()
        return ready, ehlo, noop

    ready, ehlo, noop = await asyncio.to_thread(run)
    assert same(ready, replies.READY_FOR_TLS)
    assert ehlo.startswith("250-gw.test")  # the first reply inside TLS answers our EHLO
    assert same(noop, replies.OK)


async def test_unparsable_message_gets_554_and_nothing_is_sent(harness: Harness):
    def run():
        s = RawSession(harness.port, harness.pki.client_context()).ready("campaign", PASSWORD)
        s.cmd("MAIL FROM:<sales@acme.example>")
        s.cmd("RCPT TO:<alice@example.org>")
        s.cmd("DATA")
        s.send(b" continuation first\r\nFrom: sales@acme.example\r\n\r\nbody\r\n.\r\n")
        with s:
            return s.reply()

    assert same(await asyncio.to_thread(run), replies.MESSAGE_UNPARSABLE)
    assert harness.sink.received == []


def test_a_session_finds_the_commands_hooks_and_mechanisms_a_full_dir_finds():
    """GatewaySMTP and GatewayHandler list for dir() only the names aiosmtpd seeks (once
    per class, not every connection): a session built on them has the same command table,
    hooks and AUTH mechanisms as one built on a full dir()."""
    import ssl

    from gateway.config import SmtpConfig
    from gateway.smtp.handler import GatewayHandler
    from gateway.smtp.server import GatewaySMTP

    class FullHandler(GatewayHandler):
        def __dir__(self) -> list[str]:
            return list(object.__dir__(self))

    class FullSession(GatewaySMTP):
        def __dir__(self) -> list[str]:
            return list(object.__dir__(self))

    async def tables() -> list[tuple[list[str], list[str], list[str]]]:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        built = [GatewaySMTP(GatewayHandler.__new__(GatewayHandler), SmtpConfig(), context,
                             False),
                 FullSession(FullHandler.__new__(FullHandler), SmtpConfig(), context, False)]
        return [(sorted(s._smtp_methods), sorted(s._handle_hooks), sorted(s._auth_methods))
                for s in built]

    cached, full = asyncio.run(tables())
    assert cached == full
    assert "DATA" in cached[0] and "DATA" in cached[1] and "PLAIN" in cached[2]
