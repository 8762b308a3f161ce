"""MAIL FROM and RCPT TO paths: the gateway's one-pattern reading of `<dot-atom@domain>`
gives what aiosmtpd's RFC 5322 parser gives, for every string (hypothesis), and hands the
rest to it."""

from __future__ import annotations

import asyncio
import logging
import ssl

import pytest
from aiosmtpd.smtp import SMTP
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.config import SmtpConfig
from gateway.protocol import replies
from gateway.smtp.server import GatewaySMTP
from tests.conftest import PASSWORD, Harness
from tests.support.raw_smtp import RawSession

ATEXT = "abcXYZ019!#$%&'*+/=?^_`{|}~-"
# what a path and its parameters are made of, the characters that change a parse included
CHARS = ATEXT + '.@<> \t\x0b()"[]\\:,;é'


def _session(local_part_limit: int = 0) -> GatewaySMTP:
    async def make() -> GatewaySMTP:
        server = GatewaySMTP(object(), SmtpConfig(), ssl.create_default_context(
            ssl.Purpose.CLIENT_AUTH), implicit_tls=False)
        server.local_part_limit = local_part_limit
        return server

    return asyncio.run(make())


SESSION = _session()
LIMITED = _session(local_part_limit=8)


def _parser(server: GatewaySMTP, arg: str) -> tuple[str | None, str | None]:
    text = arg.lstrip()
    if text.startswith("<@") and ">" in text:  # the source-route rule comes first in both
        written, _, after = text[1:].partition(">")
        return written, after
    try:
        result: tuple[str | None, str | None] = SMTP._getaddr(server, arg)
    except (IndexError, AttributeError, UnboundLocalError):  # the stdlib parser trips
        return None, None  # on `<a@`, `!@[`, `"`: malformed, the gateway says
    return result


atoms = st.text(ATEXT, min_size=1, max_size=6)
paths = st.builds(
    lambda lead, local, domain, gap, rest: f"{lead}<{local}@{domain}>{gap}{rest}",
    st.sampled_from(["", " ", "\t", " \t"]),
    st.lists(atoms, min_size=1, max_size=3).map(".".join),
    st.lists(st.text("abc-019", min_size=1, max_size=5), min_size=1, max_size=3).map(".".join),
    st.sampled_from(["", " ", "  ", "\t", " \x0b"]),
    st.text(CHARS, max_size=12))


@settings(max_examples=3000, deadline=None)
@given(st.one_of(paths, st.text(CHARS, max_size=30)))
@example("<a@b.example> SIZE=100 BODY=8BITMIME")
@example("<a@b.example> (comment) SIZE=1")
@example("<a..b@c.example>")
@example("<a@b.example.>")
@example("<longlocalpart@x.example>")
@example("")
@example("<a@")
@example('"')
@example("!@[")
@example("!@[\t")
def test_the_fast_reading_is_the_parsers(arg: str) -> None:
    for server in (SESSION, LIMITED):
        assert server._getaddr(arg) == _parser(server, arg)


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_a_path_the_stdlib_parser_trips_on_is_malformed_not_a_failure(harness: Harness,
                                                                              caplog):
    """`<a@` made the stdlib's parser raise IndexError (others: AttributeError,
    UnboundLocalError): a 451 and a traceback in the error log, for a client's typo."""
    def run() -> tuple[list[str], list[str]]:
        with RawSession(harness.port, harness.pki.client_context()) as s:
            s.ready("campaign", PASSWORD)
            at_mail = [s.cmd(f"MAIL FROM:{path}") for path in ("<sales@", '"', "!@[")]
            assert s.cmd("MAIL FROM:<sales@acme.example>").startswith("250")
            return at_mail, [s.cmd(f"RCPT TO:{path}") for path in ("<someone@", "!@[\t")]

    at_mail, at_rcpt = await asyncio.to_thread(run)
    assert at_mail == [str(replies.SENDER_MALFORMED)] * 3
    assert at_rcpt == [str(replies.RECIPIENT_MALFORMED)] * 2
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
