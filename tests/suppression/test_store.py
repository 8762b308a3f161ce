"""The store and the fast lookup on real SQLite and PostgreSQL: merging, scopes, domains,
expiry, erasure by digest only."""

from __future__ import annotations

import asyncio
import secrets
import time

import pytest
import sqlalchemy as sa

from gateway.store.engine import create_engine, upgrade
from suppression.canonical import canonical
from suppression.digest import Digester
from suppression.entries import GLOBAL, Kind, NewEntry, Reason
from suppression.formats import parse_target
from suppression.lookup import APPLICATION_NAME, lookup_for
from suppression.store import Filters, SuppressionStore
from tests.conftest import Database

ACME, OTHER = 1, 2
NOW = int(time.time())


@pytest.fixture
async def parts(database: Database):
    engine = create_engine(database.url, schema=database.schema)
    await upgrade(engine)
    digester = Digester(secrets.token_bytes(32), "test-key")
    lookup = lookup_for(database.url, database.schema, digester)
    yield engine, SuppressionStore(digester), lookup
    await lookup.close()
    await engine.dispose()


def entry(scope: int, target: str, reason: Reason = Reason.MANUAL, **kw) -> NewEntry:
    return NewEntry(scope, parse_target(target), reason, kw.pop("source", "test"),
                    kw.pop("created_at", NOW), **kw)


async def add(engine, store, *entries: NewEntry) -> None:
    async with engine.begin() as conn:
        await store.add(conn, entries, NOW)


async def test_tenant_and_global_lists_and_their_isolation(parts):
    engine, store, lookup = parts
    await add(engine, store, entry(ACME, "Bob.Smith+x@GMail.com", Reason.UNSUBSCRIBE),
              entry(GLOBAL, "complainer@example.org", Reason.COMPLAINT))
    hit = await lookup.check(ACME, canonical("bobsmith@googlemail.com"), NOW)
    assert (hit.scope, hit.reason, hit.kind) == (ACME, Reason.UNSUBSCRIBE, Kind.ADDRESS)
    assert await lookup.check(OTHER, canonical("bobsmith@gmail.com"), NOW) is None
    for tenant in (ACME, OTHER):
        hit = await lookup.check(tenant, canonical("Complainer@Example.org"), NOW)
        assert (hit.scope, hit.reason) == (GLOBAL, Reason.COMPLAINT)
    assert await lookup.check(ACME, canonical("someone@example.org"), NOW) is None


async def test_domain_and_subdomain_entries(parts):
    engine, store, lookup = parts
    await add(engine, store, entry(ACME, "exact.example"), entry(ACME, "*.wild.example"))
    assert await lookup.check(ACME, "a@exact.example", NOW) is not None
    assert await lookup.check(ACME, "a@sub.exact.example", NOW) is None  # domain only
    for address in ("a@wild.example", "a@x.wild.example", "a@y.x.wild.example"):
        assert (await lookup.check(ACME, address, NOW)).kind is Kind.SUBDOMAINS
    assert await lookup.check(ACME, "a@notwild.example", NOW) is None


async def test_expiry(parts):
    engine, store, lookup = parts
    await add(engine, store, entry(ACME, "soft@example.com", Reason.BOUNCE,
                                   expires_at=NOW + 7 * 86400))
    assert await lookup.check(ACME, "soft@example.com", NOW) is not None
    assert await lookup.check(ACME, "soft@example.com", NOW + 8 * 86400) is None


async def test_purge_deletes_only_entries_expired_before_the_cut_in_batches(parts):
    engine, store, lookup = parts
    day = 86400
    await add(engine, store,
              *(entry(ACME, f"old{i}@example.com", Reason.BOUNCE, expires_at=NOW - 40 * day)
                for i in range(5)),
              entry(ACME, "recent@example.com", Reason.BOUNCE, expires_at=NOW - day),
              entry(ACME, "soon@example.com", Reason.BOUNCE, expires_at=NOW + day),
              entry(GLOBAL, "forever@example.com", Reason.COMPLAINT))
    async with engine.begin() as conn:
        assert await store.purge_expired(conn, NOW - 30 * day, limit=3) == 3
        assert await store.purge_expired(conn, NOW - 30 * day, limit=3) == 2
        assert await store.purge_expired(conn, NOW - 30 * day, limit=3) == 0
    async with engine.connect() as conn:
        left = await store.page(conn, [ACME, GLOBAL], Filters(), limit=100)
    assert sorted(e.target for e in left) == [
        "forever@example.com", "recent@example.com", "soon@example.com"]


async def test_adding_again_merges_without_weakening(parts):
    engine, store, _ = parts
    target = parse_target("x@example.com")
    await add(engine, store, entry(ACME, "x@example.com", Reason.UNSUBSCRIBE, source="link",
                                   created_at=NOW - 100))
    # the same entry again, an expiring bounce, and a manual one: nothing is weakened
    await add(engine, store, entry(ACME, "X@example.com", Reason.UNSUBSCRIBE),
              entry(ACME, "x+tag@example.com", Reason.BOUNCE, expires_at=NOW + 60))
    await add(engine, store, entry(ACME, "x@example.com", Reason.MANUAL))
    async with engine.connect() as conn:
        found = await store.find(conn, ACME, target)
        count = (await conn.execute(sa.text("SELECT count(*) FROM suppressions"))).scalar()
    assert count == 1
    assert (found.reason, found.source, found.created_at, found.expires_at) == (
        Reason.UNSUBSCRIBE, "link", NOW - 100, None)
    # an expiring entry made permanent by a permanent re-add; the stronger reason wins
    await add(engine, store, entry(ACME, "y@example.com", Reason.BOUNCE, expires_at=NOW + 60))
    await add(engine, store, entry(ACME, "y@example.com", Reason.COMPLAINT))
    async with engine.connect() as conn:
        found = await store.find(conn, ACME, parse_target("y@example.com"))
    assert (found.reason, found.expires_at) == (Reason.COMPLAINT, None)


async def test_erasure_keeps_only_the_digest_everywhere(parts, database: Database, tmp_path):
    engine, store, lookup = parts
    await add(engine, store, entry(ACME, "gone@example.com", Reason.UNSUBSCRIBE),
              entry(OTHER, "gone@example.com", Reason.BOUNCE))
    await add(engine, store, entry(GLOBAL, "Gone+x@example.com", Reason.ERASURE))
    async with engine.connect() as conn:
        targets = (await conn.execute(sa.text("SELECT target FROM suppressions"))).scalars()
        assert list(targets) == [None, None, None]
        page = await store.page(conn, [GLOBAL], Filters())
    assert page[0].display == f"digest:{page[0].digest.hex()}"
    for tenant in (ACME, OTHER, 3):
        assert await lookup.check(tenant, "gone@example.com", NOW) is not None
    if database.kind == "sqlite":
        await engine.dispose()
        assert b"gone@example.com" not in (tmp_path / "gateway.db").read_bytes()


async def test_bulk_rows_with_duplicates_in_one_batch(parts):
    engine, store, _ = parts
    rows = [store.row(entry(ACME, f"u{i % 50}@example.com"), NOW) for i in range(200)]
    async with engine.begin() as conn:
        assert await store.add_rows(conn, rows) == 50
    async with engine.connect() as conn:
        assert len(await store.page(conn, [ACME], Filters(), limit=1000)) == 50
        assert len(await store.page(conn, [ACME], Filters(contains="U1"), limit=1000)) == 11


async def test_concurrent_checks_each_get_their_own_answer(parts, database):
    """On PostgreSQL checks that arrive together share one query; each caller must still
    get the answer for its own address and tenant, and one that gives up must not disturb
    the rest."""
    engine, store, lookup = parts
    await add(engine, store, *(entry(1 + i % 3, f"user{i}@example.com", Reason.BOUNCE)
                               for i in range(0, 300, 2)),
              entry(GLOBAL, "*.blocked.example", Reason.COMPLAINT))

    async def expect(i: int) -> None:
        tenant = 1 + i % 3
        hit = await lookup.check(tenant, f"user{i}@example.com", NOW)
        assert (hit is not None) == (i % 2 == 0), i
        assert await lookup.check(tenant + 1, f"user{i}@example.com", NOW) is None
        wild = await lookup.check(tenant, f"u{i}@a.blocked.example", NOW)
        assert (wild.scope, wild.kind) == (GLOBAL, Kind.SUBDOMAINS)

    abandoned = [asyncio.ensure_future(lookup.check(ACME, "user0@example.com", NOW))
                 for _ in range(20)]
    await asyncio.sleep(0)
    for check in abandoned[::2]:
        check.cancel()
    await asyncio.gather(*(expect(i) for i in range(300)))
    answers = await asyncio.gather(*abandoned, return_exceptions=True)
    if database.kind == "postgres":  # (SQLite's check has answered before the cancel)
        assert all(isinstance(a, asyncio.CancelledError) for a in answers[::2])
    assert all(a is not None and a.scope == ACME for a in answers[1::2])


async def test_a_lost_server_connection_fails_the_checks_then_recovers(parts, database):
    """Checks in flight when the connection dies raise (the gateway then answers 451, never
    250); the next checks work on a new connection."""
    if database.kind != "postgres":
        pytest.skip("the SQLite lookup has no server connection to lose")
    engine, store, lookup = parts
    await add(engine, store, entry(ACME, "gone@example.com", Reason.UNSUBSCRIBE))
    assert await lookup.check(ACME, "gone@example.com", NOW) is not None
    # this lookup's own connections only: other tests (other processes) share the server
    pids = [connection.get_server_pid() for connection, _ in lookup._idle]
    ours = ("FROM pg_stat_activity WHERE pid = ANY(:pids) AND application_name = :name")
    async with engine.connect() as conn:
        await conn.execute(sa.text(f"SELECT pg_terminate_backend(pid) {ours}"),
                           {"name": APPLICATION_NAME, "pids": pids})
        results = await asyncio.gather(*(lookup.check(ACME, "gone@example.com", NOW)
                                         for _ in range(10)), return_exceptions=True)
        assert all(isinstance(r, Exception) or r is not None for r in results)
    for _ in range(3):  # the pool replaces the dead connection
        assert await lookup.check(ACME, "gone@example.com", NOW) is not None


async def test_check_many_answers_what_check_answers_for_each_address(parts):
    """The last look before sending asks for every recipient at once: the same answers,
    address by address, as one check each (tenant and global entries, domains, expiry,
    an address twice, and a batch larger than one PostgreSQL query takes)."""
    engine, store, lookup = parts
    await add(engine, store, entry(ACME, "gone@example.org", Reason.UNSUBSCRIBE),
              entry(GLOBAL, "gone@example.org", Reason.COMPLAINT),
              entry(GLOBAL, "blocked.example"), entry(ACME, "*.wild.example"),
              entry(OTHER, "theirs@example.org"),
              entry(ACME, "soft@example.org", Reason.BOUNCE, expires_at=NOW + 60))
    addresses = ["gone@example.org", "a@blocked.example", "b@x.wild.example",
                 "theirs@example.org", "soft@example.org", "fine@example.org",
                 "gone@example.org"] + [f"n{i}@example.net" for i in range(250)]
    for now in (NOW, NOW + 120):
        many = await lookup.check_many(ACME, addresses, now)
        one_by_one = [await lookup.check(ACME, a, now) for a in addresses]
        assert many == one_by_one
    assert [m is not None for m in many[:7]] == [True, True, True, False, False, False, True]
    assert await lookup.check_many(ACME, [], NOW) == []
