"""Sending limits: counted across nodes (two counter instances on one PostgreSQL, SQLite,
or Redis), all-or-nothing, windows that reset, `450 4.7.1` with the reset time at MAIL FROM
and at the end of DATA (the client keeps the message), and a tenant's session cap."""

from __future__ import annotations

import asyncio
import os
import smtplib
import time

import pytest
import redis.asyncio as aioredis

from gateway.directory.records import Mailbox, Tenant
from gateway.limits.counters import Count, DatabaseCounters, RedisCounters
from gateway.limits.sending import SendingLimits
from gateway.store.engine import create_engine, upgrade
from tests.conftest import OTHER_PASSWORD, Database, running_harness
from tests.support import messages
from tests.support.config import load

REDIS = "redis://127.0.0.1:6379/13"


async def _redis_counters() -> RedisCounters:
    client = aioredis.Redis.from_url(REDIS)
    try:
        await client.ping()
    except Exception as exc:
        if os.environ.get("CI"):
            pytest.fail(f"Redis on 127.0.0.1:6379 is required in CI: {exc!r}")
        pytest.skip(f"Redis not reachable: {exc!r}")
    await client.flushdb()
    await client.aclose()
    return RedisCounters(REDIS)


@pytest.fixture(params=["database", "redis"])
async def two_nodes(request, database: Database):
    """Two nodes' counters over one shared store."""
    engines = []
    if request.param == "redis":
        nodes = [await _redis_counters(), RedisCounters(REDIS)]
    else:
        engines = [create_engine(database.url, schema=database.schema) for _ in range(2)]
        await upgrade(engines[0])
        nodes = [DatabaseCounters(e) for e in engines]
    yield nodes
    for n in nodes:
        await n.close()
    for e in engines:
        await e.dispose()


async def test_concurrent_hits_from_two_nodes_never_pass_the_limit(two_nodes):
    a, b = two_nodes
    count = Count("m1:msg:60", 1_000_020, 60, 1, 5)
    results = await asyncio.gather(*(node.hit([count]) for node in [a, b] * 10))
    assert sum(r is None for r in results) == 5  # exactly the limit, across both nodes
    assert await a.peek([count]) == count and await b.peek([count]) == count


async def test_a_hit_over_one_limit_counts_nothing_anywhere(two_nodes):
    a, b = two_nodes
    messages_ = Count("m2:msg:60", 60, 60, 1, 10)
    recipients = Count("m2:rcpt:86400", 0, 86400, 4, 5)
    assert await a.hit([messages_, recipients]) is None  # 1 message, 4 recipients
    assert await b.hit([messages_, recipients]) == recipients  # 8 > 5: refused ...
    small = Count("m2:rcpt:86400", 0, 86400, 1, 5)
    assert await a.hit([messages_, small]) is None  # ... and its message was not counted
    nine_more = [Count("m2:msg:60", 60, 60, 1, 10)] * 1
    for _ in range(8):
        assert await b.hit(nine_more) is None
    assert await a.hit(nine_more) == nine_more[0]  # 10 counted: 2 + 8


def _limits(counters, extra: dict[str, str]) -> SendingLimits:
    config = load(**extra)  # the shipped defaults plus `extra`
    return SendingLimits(config, counters, {"out": "smtp", "g": "gmail"})


async def test_windows_reset_and_the_reply_says_when(database: Database):
    engine = create_engine(database.url, schema=database.schema)
    await upgrade(engine)
    limits = _limits(DatabaseCounters(engine), {
        "GATEWAY__LIMITS__SMTP__MESSAGES_PER_MINUTE": "2",
        "GATEWAY__LIMITS__TENANT__MESSAGES_PER_HOUR": "3"})
    tenant = Tenant(1, "acme", "active", "")
    one, two = (Mailbox(i, 1, f"m{i}@acme.example", "out", "active", "", {}) for i in (1, 2))
    minute = 1_800_000_000 - 1_800_000_000 % 3600 + 10  # 10 s into an hour (and a minute)
    assert await limits.count(tenant, one, 1, now=minute) is None
    assert await limits.count(tenant, one, 1, now=minute + 1) is None
    refused = await limits.check(tenant, one, now=minute + 2)
    assert refused is not None and (refused.code, refused.status) == (450, "4.7.1")
    assert "mailbox m1@acme.example sent its 2 messages this minute" in refused.text
    assert refused.text.endswith("try again after 2027-01-15T08:01:00Z")
    assert await limits.count(tenant, one, 1, now=minute + 40) is not None
    assert await limits.check(tenant, one, now=minute + 60) is None  # the next minute
    assert await limits.count(tenant, two, 1, now=minute + 61) is None  # tenant: 3 this hour
    by_tenant = await limits.count(tenant, one, 1, now=minute + 62)
    assert by_tenant is not None and "tenant acme sent its 3 messages this hour" in \
        by_tenant.text and by_tenant.text.endswith("2027-01-15T09:00:00Z")
    assert await limits.count(tenant, one, 1, now=minute + 3600) is None  # next hour
    await engine.dispose()


async def test_provider_defaults_apply_by_upstream_kind(database: Database):
    engine = create_engine(database.url, schema=database.schema)
    await upgrade(engine)
    limits = _limits(DatabaseCounters(engine),
                     {"GATEWAY__LIMITS__GMAIL__RECIPIENTS_PER_DAY": "5"})
    tenant = Tenant(1, "acme", "active", "")
    gmail = Mailbox(7, 1, "g@acme.example", "g", "active", "", {})
    assert await limits.count(tenant, gmail, 5, now=86400 * 20000) is None
    over = await limits.count(tenant, gmail, 1, now=86400 * 20000 + 5)
    assert over is not None and "reached its 5 recipients today" in over.text
    await engine.dispose()


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_over_the_limit_mail_gets_450_at_mail_from_and_at_data(tmp_path, pki, database):
    # day windows: a test straddling a minute boundary would see its counts reset
    extra = "[limits.smtp]\nmessages_per_day = 2\nrecipients_per_day = 2\n"
    async with running_harness(tmp_path, pki, database, extra=extra) as h:
        assert await h.send(messages.simple(), ["a@example.org"]) == {}
        code, text = await h.data_reply(["b@example.org", "c@example.org"])
        assert code == 450 and text.startswith("4.7.1 Sending limit reached: mailbox "
                                               "sales@acme.example reached its 2 recipients")
        assert len(h.sink.received) == 1  # deferred, not sent, not counted
        assert await h.send(messages.simple(), ["b@example.org"]) == {}  # 2nd message
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            await h.send(messages.simple(), ["c@example.org"])
        assert refused.value.smtp_code == 450
        assert b"sent its 2 messages today; try again after" in refused.value.smtp_error


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_a_tenants_concurrent_sessions_are_capped(tmp_path, pki, database):
    async with running_harness(tmp_path, pki, database,
                               extra="[limits]\ntenant_sessions = 1\n") as h:
        def run() -> tuple[int, int, int]:
            first = h.client()
            assert first.mail("sales@acme.example")[0] == 250
            with h.client() as second:
                refused = second.mail("sales@acme.example")[0]
                first.quit()  # the first session ends: its place is free
                for _ in range(50):
                    second.rset()
                    code = second.mail("sales@acme.example")[0]
                    if code == 250:
                        break
                    time.sleep(0.05)  # the server sees the first connection close
                other = 0
                with h.client(user="other-tool", password=OTHER_PASSWORD) as third:
                    other = third.mail("ceo@other.example")[0]  # another tenant: no cap hit
            return refused, code, other

        refused, later, other = await asyncio.to_thread(run)
        assert (refused, later, other) == (450, 250, 250)

