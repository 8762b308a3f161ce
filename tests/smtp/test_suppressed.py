"""Suppressed recipients through the real gateway and sink: refused at RCPT, the others of
the same message delivered; an opt-out that arrives while a copy waits in the queue wins."""

from __future__ import annotations

import asyncio
import smtplib
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from gateway import config as config_module
from gateway.errors import VaultError
from gateway.optout.suppressions import SUPPRESSION_PURPOSE, Actor
from gateway.protocol import replies
from gateway.store.engine import create_engine, upgrade
from gateway.store.schema import audit_events
from gateway.vault.envelope import Vault
from gateway.vault.master_keys import provider_for
from gateway.vault.purpose import PurposeKeys
from suppression.entries import GLOBAL, Reason
from suppression.store import Filters
from tests.conftest import Harness, running_harness, write_config
from tests.support import messages

OPS = Actor("test")


async def rcpt_replies(h: Harness, recipients: list[str]) -> tuple[list[tuple[int, str]], int]:
    def run():
        with h.client() as smtp:
            smtp.mail("sales@acme.example")
            got = [(code, text.decode()) for code, text in (smtp.rcpt(r) for r in recipients)]
            try:
                code, _ = smtp.data(messages.simple())
            except smtplib.SMTPException:
                code = 0
            return got, code

    return await asyncio.to_thread(run)


async def test_suppressed_recipient_is_refused_at_rcpt_and_never_reaches_the_sink(
        harness: Harness):
    acme = (await harness.store().tenant("acme")).id
    other = (await harness.store().tenant("other")).id
    s = harness.gateway.suppressions
    await s.add(OPS, acme, "Bob.Smith+old@GMail.com", Reason.UNSUBSCRIBE, "test")
    await s.add(OPS, GLOBAL, "*.blocked.example", Reason.MANUAL, "test")
    await s.add(OPS, other, "only-other@example.org", Reason.COMPLAINT, "test")
    got, data_code = await rcpt_replies(harness, [
        "bobsmith@googlemail.com", "x@mx.blocked.example", "only-other@example.org",
        "fine@example.org"])
    assert got[0] == (550, "5.7.1 " + replies.SUPPRESSED["unsubscribe"].text)
    assert got[1] == (550, "5.7.1 " + replies.SUPPRESSED_GLOBAL.text)
    assert got[2][0] == 250 and got[3][0] == 250  # another tenant's list does not apply
    for _, text in got[:2]:
        assert "bob" not in text.lower() and "blocked" not in text and "acme" not in text
    assert data_code == 250
    assert sorted(r.recipients[0] for r in harness.sink.received) == [
        "fine@example.org", "only-other@example.org"]
    async with harness.gateway.engine.connect() as conn:
        checks = (await conn.execute(sa.select(audit_events.c.check_name).where(
            audit_events.c.event == "recipient.refused"))).scalars().all()
    assert checks == ["recipient-suppressed", "recipient-suppressed"]


async def test_an_opt_out_that_arrives_while_a_copy_waits_wins(harness: Harness):
    acme = (await harness.store().tenant("acme")).id
    harness.sink.faults.rcpt["later@example.org"] = "451 4.2.1 try later"
    _, data_code = await rcpt_replies(harness, ["later@example.org", "now@example.org"])
    assert data_code == 250  # one delivered, one queued
    await harness.gateway.suppressions.add(OPS, acme, "later@example.org",
                                           Reason.UNSUBSCRIBE, "test")
    harness.sink.faults.rcpt.clear()
    later = datetime.now(UTC) + timedelta(hours=2)
    while await harness.gateway.worker.run_once(later):
        pass
    received = [r.recipients[0] for r in harness.sink.received]
    assert "later@example.org" not in received
    # the sender is told in a delivery report (no recipient is silently dropped)
    assert "sales@acme.example" in received



async def test_without_the_digest_key_every_recipient_waits_and_none_is_sent(
        tmp_path, pki, database):
    """The digest key in the database was sealed under a master key this installation does
    not hold (a table restored from another one): the gateway runs, but no recipient can be
    checked, so each gets 451 4.3.5 (the client retries later) and the sink sees nothing."""
    (tmp_path / "elsewhere").mkdir()
    foreign = config_module.load(write_config(tmp_path / "elsewhere", pki, database, 2525))
    engine = create_engine(foreign.database.url, schema=foreign.database.schema)
    await upgrade(engine)
    await PurposeKeys(engine, Vault(provider_for(foreign))).ensure(SUPPRESSION_PURPOSE)
    await engine.dispose()
    async with running_harness(tmp_path, pki, database) as h:
        with pytest.raises(VaultError):
            await h.gateway.suppressions.add(OPS, GLOBAL, "x@example.org", Reason.MANUAL, "t")
        got, data_code = await rcpt_replies(h, ["fine@example.org", "other@example.org"])
        assert [code for code, _ in got] == [451, 451]
        assert all(text.startswith("4.3.5 ") for _, text in got)
        assert data_code != 250 and h.sink.received == []


async def test_the_gateway_purges_long_expired_entries_and_audits_it(tmp_path, pki, database):
    extra = ("[suppressions]\nkeep_expired_days = 0.00001\n"
             "[retention]\ninterval = 0.05\n")
    async with running_harness(tmp_path, pki, database, extra=extra, run_queue=True) as h:
        acme = (await h.store().tenant("acme")).id
        s = h.gateway.suppressions
        soon = int(time.time()) + 1
        await s.add(OPS, acme, "soft@example.org", Reason.BOUNCE, "test", expires_at=soon)
        await s.add(OPS, acme, "hard@example.org", Reason.BOUNCE, "test")
        for _ in range(100):
            if [e.target for e in await s.page(OPS, acme, Filters(), 0, 10)] == [
                    "hard@example.org"]:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the expired entry was not purged")
        async with h.gateway.engine.connect() as conn:
            purged = (await conn.execute(sa.select(audit_events.c.detail).where(
                audit_events.c.event == "suppression.purged"))).scalars().all()
    assert [d["count"] for d in purged] == [1]
