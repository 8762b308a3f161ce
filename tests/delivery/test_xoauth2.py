"""Sending through Gmail / Microsoft 365 style upstreams with XOAUTH2: a real local token
endpoint and a real aiosmtpd upstream that accepts only tokens that endpoint issued."""

from __future__ import annotations

import asyncio
import logging

import sqlalchemy as sa

from gateway.protocol import replies
from gateway.store.schema import audit_events, mailbox_credentials, mailboxes, sealed_secrets
from gateway.vault.credentials import access_name, refresh_name
from tests.conftest import Database
from tests.support import messages
from tests.support.oauth_server import CLIENT_SECRET
from tests.support.xoauth2 import SENDER, connect, oauth_gateway


async def test_message_goes_out_logged_in_as_the_mailbox_with_its_own_token(
        tmp_path, pki, database):
    async with oauth_gateway(tmp_path, pki, database) as (h, server):
        await connect(h, server)
        await h.send(messages.simple(), ["alice@example.org"])
        assert [r.recipients for r in h.sink.received] == [["alice@example.org"]]
        user, token = h.sink.logins[0]
        assert user == SENDER and server.valid(SENDER, token)
        assert server.refreshes == 0  # the imported access token was still good


async def test_fifty_messages_at_once_with_an_expired_token_refresh_exactly_once(
        tmp_path, pki, database):
    async with oauth_gateway(tmp_path, pki, database) as (h, server):
        await connect(h, server, expires_in=-60)  # expired a minute ago
        recipients = [f"r{i}@example.org" for i in range(50)]
        results = await asyncio.gather(*(h.send(messages.simple(), [r]) for r in recipients))
        assert results == [{}] * 50
        assert server.refreshes == 1
        assert sorted(r.recipients[0] for r in h.sink.received) == sorted(recipients)


async def test_a_rotated_refresh_token_is_stored_and_used_next_time(tmp_path, pki, database):
    async with oauth_gateway(tmp_path, pki, database, rotate=True, expires_in=1) as (h, server):
        first = await connect(h, server, expires_in=-60)
        await h.send(messages.simple(), ["a@example.org"])  # refresh 1: rotates
        assert first not in server.refresh_tokens  # the provider invalidated the old one
        await asyncio.sleep(1.1)  # the new access token (1 s) has expired too
        h.gateway.tokens.forget(h.gateway.directory.mailbox(SENDER).id)
        await h.send(messages.simple(), ["b@example.org"])  # refresh 2 needs the rotated one
        assert server.refreshes == 2
        assert len(h.sink.received) == 2


async def test_invalid_grant_disconnects_the_mailbox_without_a_refresh_loop(
        tmp_path, pki, database):
    async with oauth_gateway(tmp_path, pki, database, mode="invalid_grant") as (h, server):
        await connect(h, server, expires_in=-60)
        code, text = await h.data_reply(["alice@example.org"])
        assert (code, text) == (451, f"{replies.MAILBOX_DISCONNECTED.status} "
                                     f"{replies.MAILBOX_DISCONNECTED.text}")
        assert server.refreshes == 1
        mailbox = h.gateway.directory.mailbox(SENDER)
        async with h.gateway.engine.connect() as conn:
            status = (await conn.execute(sa.select(mailboxes.c.status).where(
                mailboxes.c.id == mailbox.id))).scalar()
            events = (await conn.execute(sa.select(audit_events.c.event).where(
                audit_events.c.tenant_id == mailbox.tenant_id))).scalars().all()
            names = (await conn.execute(sa.select(sealed_secrets.c.name))).scalars().all()
        assert status == "disconnected"
        assert "mailbox.disconnected" in events
        assert refresh_name(mailbox.id) not in names and access_name(mailbox.id) not in names
        # The next message is refused at MAIL, and nobody asks the provider again.
        await h.refresh()

        def mail_reply() -> tuple[int, bytes]:
            with h.client() as smtp:
                return smtp.mail(SENDER)

        code, raw = await asyncio.to_thread(mail_reply)
        assert (code, raw.decode()) == (451, f"{replies.MAILBOX_DISCONNECTED.status} "
                                             f"{replies.MAILBOX_DISCONNECTED.text}")
        assert server.refreshes == 1
        assert h.sink.received == []


async def test_token_endpoint_500_is_temporary_and_keeps_the_mailbox(tmp_path, pki, database):
    async with oauth_gateway(tmp_path, pki, database, mode="error500") as (h, server):
        await connect(h, server, expires_in=-60)
        code, text = await h.data_reply(["alice@example.org"])
        assert (code, text) == (451, f"{replies.TOKEN_REFRESH_FAILED.status} "
                                     f"{replies.TOKEN_REFRESH_FAILED.text}")
        async with h.gateway.engine.connect() as conn:
            row = (await conn.execute(sa.select(mailboxes.c.status, mailbox_credentials.c.
                                                refresh_lease_until).join(
                mailbox_credentials, mailbox_credentials.c.mailbox_id == mailboxes.c.id))).one()
        assert row.status == "active" and row.refresh_lease_until is None  # lease released
        server.mode = "ok"
        # Within the back-off, a retry is answered 451 without asking the provider again.
        assert (await h.data_reply(["alice@example.org"]))[0] == 451
        assert server.refreshes == 0  # the 500s never reached the refresh handler
        h.gateway.tokens.forget(h.gateway.directory.mailbox(SENDER).id)  # back-off over
        assert await h.send(messages.simple(), ["alice@example.org"]) == {}
        assert server.refreshes == 1


async def test_slow_token_endpoint_times_out_as_temporary(tmp_path, pki, database):
    async with oauth_gateway(tmp_path, pki, database, mode="slow", slow_seconds=10) as (h, s):
        await connect(h, s, expires_in=-60)
        code, text = await h.data_reply(["alice@example.org"])
        assert code == 451 and text.startswith(replies.TOKEN_REFRESH_FAILED.status)


async def test_a_token_the_upstream_refuses_is_refreshed_once_and_the_copy_delivered(
        tmp_path, pki, database):
    async with oauth_gateway(tmp_path, pki, database) as (h, server):
        await connect(h, server)
        server.access_tokens.clear()  # revoked early at the provider: still "fresh" to us
        assert await h.send(messages.simple(), ["alice@example.org"]) == {}
        assert server.refreshes == 1
        assert len(h.sink.logins) == 2  # refused once, then the new token


async def test_a_token_for_another_user_is_refused_with_451_4_7_0(tmp_path, pki, database):
    async with oauth_gateway(tmp_path, pki, database) as (h, server):
        # the campaign tool hands over another mailbox's tokens
        refresh, access = server.issue("someone@else.example")
        mailbox = h.gateway.directory.mailbox(SENDER)
        await h.gateway.credentials.import_tokens(mailbox, {
            "refresh_token": refresh, "access_token": access,
            "expires_at": "2099-01-01T00:00:00+00:00"}, "test")
        code, text = await h.data_reply(["alice@example.org"])
        assert (code, text) == (451, f"{replies.UPSTREAM_AUTH_FAILED.status} "
                                     f"{replies.UPSTREAM_AUTH_FAILED.text}")
        assert h.sink.received == []


async def test_a_grant_without_the_send_scope_needs_reconsent(tmp_path, pki, database):
    async with oauth_gateway(tmp_path, pki, database, provider="microsoft", kind="microsoft",
                             granted_scope="https://outlook.office.com/SMTP.Send") as (h, s):
        full = ("https://outlook.office.com/SMTP.Send "
                "https://outlook.office.com/IMAP.AccessAsUser.All offline_access")
        await connect(h, s, expires_in=-60, scope=full)
        assert h.gateway.directory.mailbox(SENDER).status == "active"
        # the refresh answers with a narrower grant (the user unticked IMAP at consent)
        code, text = await h.data_reply(["alice@example.org"])
        assert (code, text) == (451, f"{replies.MAILBOX_NEEDS_RECONSENT.status} "
                                     f"{replies.MAILBOX_NEEDS_RECONSENT.text}")
        async with h.gateway.engine.connect() as conn:
            status, reason = (await conn.execute(sa.select(
                mailboxes.c.status, mailboxes.c.status_reason).where(
                mailboxes.c.address == SENDER))).one()
        assert status == "needs-reconsent" and "IMAP.AccessAsUser.All" in reason


async def test_importing_a_grant_short_of_a_scope_marks_needs_reconsent(tmp_path, pki, database):
    async with oauth_gateway(tmp_path, pki, database, provider="microsoft",
                             kind="microsoft") as (h, s):
        await connect(h, s, scope="https://outlook.office.com/SMTP.Send")
        assert h.gateway.directory.mailbox(SENDER).status == "needs-reconsent"


async def test_disconnect_deletes_the_tokens_and_revokes_them_at_the_provider(
        tmp_path, pki, database):
    async with oauth_gateway(tmp_path, pki, database) as (h, server):
        refresh = await connect(h, server)
        mailbox = h.gateway.directory.mailbox(SENDER)
        revoked = await h.gateway.credentials.disconnect(mailbox, "test", "customer left")
        assert revoked and server.revoked == [refresh]
        async with h.gateway.engine.connect() as conn:
            assert (await conn.execute(sa.select(sa.func.count()).select_from(
                sealed_secrets).where(sealed_secrets.c.name.like(f"mailbox/{mailbox.id}/%")))
                    ).scalar() == 0
            assert (await conn.execute(sa.select(sa.func.count()).select_from(
                mailbox_credentials))).scalar() == 0


async def test_no_token_or_client_secret_in_logs_or_the_raw_database(tmp_path, pki, caplog):
    database = Database("sqlite", f"sqlite+aiosqlite:///{tmp_path}/gateway.db")
    caplog.set_level(logging.DEBUG)
    async with oauth_gateway(tmp_path, pki, database, rotate=True) as (h, server):
        first = await connect(h, server, expires_in=-60)
        await h.send(messages.simple(), ["alice@example.org"])
        secrets_seen = [first, CLIENT_SECRET, *server.refresh_tokens,
                        *server.access_tokens]
        mailbox = h.gateway.directory.mailbox(SENDER)
        await h.gateway.credentials.disconnect(mailbox, "test", "done", revoke=False)
        text = caplog.text + "".join(repr(r.__dict__) for r in caplog.records)
        raw = (tmp_path / "gateway.db").read_bytes()
        for wal in tmp_path.glob("gateway.db-wal"):
            raw += wal.read_bytes()
        for value in secrets_seen:
            assert value not in text
            assert value.encode() not in raw
        assert repr(h.gateway.tokens).count("ya29") == 0
