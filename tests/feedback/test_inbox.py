"""Reading a connected mailbox over IMAP: Debian's Dovecot on a loopback port, taking only
XOAUTH2 tokens that its oauth2 passdb checks with the local OAuth server. Bounces, complaints
and replies put there become suppressions; the mailbox is left exactly as it was."""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import json
import smtplib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway.feedback.inbox import InboxReader
from gateway.store.schema import inbox_state
from suppression.schema import suppressions
from tests.conftest import Database, Harness, Pki
from tests.support import messages
from tests.support.dovecot import Dovecot, running_dovecot
from tests.support.oauth_server import OAuthServer
from tests.support.xoauth2 import SENDER, connect, oauth_gateway

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CORPUS = FIXTURES / "replies" / "corpus.jsonl"


def feedback(name: str) -> bytes:
    return (FIXTURES / "feedback" / f"{name}.eml").read_bytes()


def corpus_reply(reply_id: str) -> tuple[str, bytes, str]:
    """(writer's address, the reply, the Message-ID it answers)."""
    for line in CORPUS.read_text().splitlines():
        item = json.loads(line)
        if item["id"] == reply_id:
            writer = item["eml"].split("<", 1)[1].split(">", 1)[0]
            return writer, item["eml"].encode(), item["in_reply_to"]
    raise KeyError(reply_id)


@contextlib.asynccontextmanager
async def mailbox_provider(tmp_path: Path, pki: Pki, database: Database
                           ) -> AsyncIterator[tuple[Harness, OAuthServer, Dovecot, str]]:
    """A gateway whose gmail upstream's mailbox lives in Dovecot; the token tests append with."""
    ca_file = str(Path(pki.cert_file).parent / "ca.pem")
    async with contextlib.AsyncExitStack() as stack:
        server = await OAuthServer().start()
        stack.push_async_callback(server.stop)
        dovecot = await stack.enter_async_context(running_dovecot(
            tmp_path / "dovecot", pki.cert_file, pki.key_file, ca_file,
            f"{server.base}/userinfo"))
        imap = (f'imap_host = "127.0.0.1"\nimap_port = {dovecot.port}\n'
                f'imap_tls = "implicit"\nca_file = "{ca_file}"\n')
        h, _ = await stack.enter_async_context(oauth_gateway(
            tmp_path, pki, database, upstream_extra=imap, oauth_server=server))
        await connect(h, server)
        _, token = server.issue(SENDER)
        yield h, server, dovecot, token


async def send(h: Harness, message_id: str, recipient: str) -> None:
    await h.send(messages.simple().replace(b"<m1@acme.example>", message_id.encode()),
                 [recipient])


async def entries(h: Harness) -> list:
    async with h.gateway.engine.connect() as conn:
        return sorted((await conn.execute(sa.select(suppressions))).all(),
                      key=lambda e: e.id)


def without_recent(flags: dict[int, str]) -> dict[int, str]:
    return {uid: " ".join(f for f in f.split() if f != "\\Recent") for uid, f in flags.items()}


async def test_bounces_complaints_and_replies_in_the_mailbox_become_suppressions(
        tmp_path, pki, database):
    async with mailbox_provider(tmp_path, pki, database) as (h, server, dovecot, token):
        writer, opt_out, answered = corpus_reply("de-opt-out-dev-00")
        await send(h, "<OCG.11AA22BB33.0@acme.example>", "sophie.dubois@gmail.example")
        await send(h, "<OCG.EF90AB12CD.0@acme.example>", "oliver.taylor@brightpath.example")
        await send(h, answered, writer)
        _, auto_reply, auto_answered = corpus_reply("en-auto-reply-dev-00")

        def fill() -> None:
            dovecot.append(SENDER, token, feedback("gmail-no-such-user"))
            dovecot.append(SENDER, token, feedback("arf-abuse"), flags="\\Seen")
            dovecot.append(SENDER, token, opt_out)
            dovecot.append(SENDER, token, auto_reply)
            dovecot.append(SENDER, token, feedback("postfix-user-unknown"))  # not our copy
        await asyncio.to_thread(fill)
        before = without_recent(await asyncio.to_thread(dovecot.flags, SENDER, token))

        assert await h.gateway.inbox.run_once() == 5
        found = {(e.target, e.reason, e.source) for e in await entries(h)}
        assert found == {("sophie.dubois@gmail.example", "bounce", "inbox"),
                         ("oliver.taylor@brightpath.example", "complaint", "inbox"),
                         (writer, "unsubscribe", "reply")}
        # read-only: EXAMINE and BODY.PEEK[] left every flag as it was (no \Seen added)
        after = without_recent(await asyncio.to_thread(dovecot.flags, SENDER, token))
        assert after == before and after[2] == "\\Seen" and after[1] == ""
        assert server.userinfo_calls >= 2  # Dovecot asked the provider about each login

        with pytest.raises(smtplib.SMTPRecipientsRefused):  # the next send: refused at RCPT
            await h.send(messages.simple(), ["sophie.dubois@gmail.example"])

        # nothing is read twice: not by this node, not by another one (shared progress)
        assert await h.gateway.inbox.run_once() == 0
        other = InboxReader(h.gateway.config, h.gateway.engine, h.gateway.directory,
                            h.gateway.tokens, h.gateway.feedback, owner="node-b")
        assert await other.run_once() == 0
        await asyncio.to_thread(dovecot.append, SENDER, token, feedback("gmail-no-such-user"))
        assert await other.run_once() == 1
        assert await h.gateway.inbox.run_once() == 0
        async with h.gateway.engine.connect() as conn:
            states = {r.mailbox_id: r for r in await conn.execute(sa.select(inbox_state))}
        state = states[h.gateway.directory.mailbox(SENDER).id]
        assert (state.folder, state.next_uid, state.lease_owner) == ("INBOX", 7, None)


async def test_a_labelling_tenant_gets_a_keyword_on_what_was_acted_on(tmp_path, pki, database):
    async with mailbox_provider(tmp_path, pki, database) as (h, server, dovecot, token):
        await h.gateway.directory._store.set_tenant_setting(  # as `gateway tenant set`
            "acme", "inbox_labelling", "yes", "test")
        await h.refresh()
        await send(h, "<OCG.11AA22BB33.0@acme.example>", "sophie.dubois@gmail.example")

        def fill() -> None:
            dovecot.append(SENDER, token, feedback("gmail-no-such-user"))
            dovecot.append(SENDER, token, corpus_reply("en-auto-reply-dev-00")[1])
        await asyncio.to_thread(fill)
        assert await h.gateway.inbox.run_once() == 2
        flags = without_recent(await asyncio.to_thread(dovecot.flags, SENDER, token))
        assert flags == {1: "OCG-OptOut", 2: ""}  # only the bounce it acted on; never \Seen


async def test_the_first_reading_skips_mail_older_than_anything_sent(tmp_path, pki, database):
    async with mailbox_provider(tmp_path, pki, database) as (h, server, dovecot, token):
        await asyncio.to_thread(dovecot.append, SENDER, token, feedback("gmail-no-such-user"))
        assert await h.gateway.inbox.run_once() == 0  # nothing sent yet: starts at UIDNEXT
        await send(h, "<OCG.11AA22BB33.0@acme.example>", "sophie.dubois@gmail.example")
        await asyncio.to_thread(dovecot.append, SENDER, token, feedback("gmail-no-such-user"))
        assert await h.gateway.inbox.run_once() == 1
        assert [e.reason for e in await entries(h)] == ["bounce"]


async def test_dovecot_refuses_a_token_the_provider_did_not_issue(tmp_path, pki, database):
    async with mailbox_provider(tmp_path, pki, database) as (h, server, dovecot, token):
        await asyncio.to_thread(lambda: dovecot.client(SENDER, token).logout())
        with pytest.raises(imaplib.IMAP4.error):
            await asyncio.to_thread(dovecot.client, SENDER, "ya29.forged")


async def test_a_token_the_imap_server_refuses_is_refreshed_once(tmp_path, pki, database):
    async with mailbox_provider(tmp_path, pki, database) as (h, server, dovecot, token):
        await send(h, "<OCG.11AA22BB33.0@acme.example>", "sophie.dubois@gmail.example")
        await asyncio.to_thread(dovecot.append, SENDER, token, feedback("gmail-no-such-user"))
        server.access_tokens.clear()  # revoked early: the stored token still looks fresh
        refreshes = server.refreshes
        assert await h.gateway.inbox.run_once() == 1
        assert server.refreshes == refreshes + 1
        assert [e.reason for e in await entries(h)] == ["bounce"]
