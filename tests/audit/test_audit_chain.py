"""The audit trail's tamper evidence: `verify` passes an untouched trail and names each kind
of tampering the issue lists: an edited row, a deleted row, reordering, a truncated tail, and
a rewrite with recomputed hashes. Pruning under a checkpoint keeps it verifiable."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit import chain as audit_chain
from gateway.audit import trail as audit
from gateway.audit.verify import prune, verify
from gateway.errors import StoreError
from gateway.store.engine import aware, create_engine, upgrade
from gateway.store.schema import audit_batches, audit_chains, audit_events
from tests.conftest import Database

KEY = secrets.token_bytes(32)


@pytest.fixture
async def engine(database: Database) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database.url, schema=database.schema)
    await upgrade(engine)
    yield engine
    audit_chain.set_chain_name("test-node")
    await engine.dispose()


async def _batch(engine: AsyncEngine, n: int, label: str) -> None:
    async with engine.begin() as conn:
        await audit.write(conn, [audit.row("test.event", actor=f"{label}-{i}", reason="why",
                                           recipient_digest="ab" * 32, n=i, nested={"k": [i]})
                                 for i in range(n)])


async def _trail(engine: AsyncEngine) -> None:
    """Two nodes' chains, batches of several sizes, a group commit, then an anchor."""
    for node in ("node-a", "node-b"):
        audit_chain.set_chain_name(node)
        await _batch(engine, 3, node)
        await _batch(engine, 1, node)
    trail = audit.AuditTrail(engine)
    await trail.start()
    await asyncio.gather(*(trail.record([audit.row("group", actor=f"g{i}")]) for i in range(20)))
    await trail.stop()
    assert await audit_chain.write_anchor(engine, KEY)


async def _problems(engine: AsyncEngine) -> list[str]:
    report = await verify(engine, KEY)
    return report.problems


async def _ids(engine: AsyncEngine) -> list[int]:
    async with engine.connect() as conn:
        return list((await conn.execute(sa.select(audit_events.c.id).where(
            audit_events.c.chain == "node-a").order_by(audit_events.c.id))).scalars())


async def test_an_untouched_trail_verifies(engine: AsyncEngine):
    await _trail(engine)
    report = await verify(engine, KEY)
    assert report.ok, report.problems
    assert report.rows == 28 and report.chains == 2 and report.anchors == 1
    assert report.batches >= 5  # 4 written alone, the group commit in one or more
    assert not await audit_chain.write_anchor(engine, KEY)  # nothing new: no anchor


async def test_an_edited_row_is_found(engine: AsyncEngine):
    await _trail(engine)
    row_id = (await _ids(engine))[1]
    async with engine.begin() as conn:
        await conn.execute(audit_events.update().where(audit_events.c.id == row_id)
                           .values(reason="nothing to see"))
    problems = await _problems(engine)
    assert any(f"row {row_id}:" in p for p in problems), problems


async def test_an_edited_detail_is_found(engine: AsyncEngine):
    await _trail(engine)
    row_id = (await _ids(engine))[0]
    async with engine.begin() as conn:
        await conn.execute(audit_events.update().where(audit_events.c.id == row_id)
                           .values(detail={"n": 0, "nested": {"k": [1]}}))
    assert any(f"row {row_id}:" in p for p in await _problems(engine))


async def test_a_deleted_row_is_found(engine: AsyncEngine):
    await _trail(engine)
    row_id = (await _ids(engine))[1]
    async with engine.begin() as conn:
        await conn.execute(audit_events.delete().where(audit_events.c.id == row_id))
    problems = await _problems(engine)
    assert any("holds 2 of its 3 rows" in p for p in problems), problems


async def test_a_deleted_batch_is_found(engine: AsyncEngine):
    await _trail(engine)
    async with engine.begin() as conn:
        await conn.execute(audit_events.delete().where(
            audit_events.c.chain == "node-a", audit_events.c.batch_seq == 1))
        await conn.execute(audit_batches.delete().where(
            audit_batches.c.chain == "node-a", audit_batches.c.seq == 1))
    problems = await _problems(engine)
    assert any("node-a" in p and "missing" in p for p in problems), problems


async def test_reordered_rows_are_found(engine: AsyncEngine):
    await _trail(engine)
    first, second = (await _ids(engine))[:2]
    async with engine.begin() as conn:  # swap the two rows' places (their ids)
        await conn.execute(audit_events.update().where(audit_events.c.id == first)
                           .values(id=-1))
        await conn.execute(audit_events.update().where(audit_events.c.id == second)
                           .values(id=first))
        await conn.execute(audit_events.update().where(audit_events.c.id == -1)
                           .values(id=second))
    problems = await _problems(engine)
    assert any(f"row {first}:" in p for p in problems), problems


async def test_a_truncated_tail_is_found_even_with_the_head_rewound(engine: AsyncEngine):
    await _trail(engine)
    async with engine.begin() as conn:  # drop node-a's newest batch and hide it everywhere
        await conn.execute(audit_events.delete().where(
            audit_events.c.chain == "node-a", audit_events.c.batch_seq == 2))
        await conn.execute(audit_batches.delete().where(
            audit_batches.c.chain == "node-a", audit_batches.c.seq == 2))
        head = (await conn.execute(sa.select(audit_batches.c.head).where(
            audit_batches.c.chain == "node-a", audit_batches.c.seq == 1))).scalar_one()
        await conn.execute(audit_chains.update().where(audit_chains.c.chain == "node-a")
                           .values(seq=1, head=head))
    problems = await _problems(engine)
    assert problems == ["anchor 1: chain node-a batch 2 is gone (deleted or tail truncated)"]


async def test_a_truncated_tail_is_found_by_the_writers_head(engine: AsyncEngine):
    await _trail(engine)
    async with engine.begin() as conn:
        newest = (await conn.execute(sa.select(sa.func.max(audit_batches.c.seq)).where(
            audit_batches.c.chain == "node-b"))).scalar_one()
        await conn.execute(audit_events.delete().where(
            audit_events.c.chain == "node-b", audit_events.c.batch_seq == newest))
        await conn.execute(audit_batches.delete().where(
            audit_batches.c.chain == "node-b", audit_batches.c.seq == newest))
    problems = await _problems(engine)
    assert any("node-b" in p and "tail truncated" in p for p in problems), problems


async def _rewrite(engine: AsyncEngine, chain: str, row_id: int, reason: str) -> None:
    """What an attacker with database access but no vault key can do: edit a row and
    recompute every hash after it, the batches' heads and the chain's head."""
    async with engine.begin() as conn:
        await conn.execute(audit_events.update().where(audit_events.c.id == row_id)
                           .values(reason=reason))
        head = audit_chain.GENESIS
        for batch in (await conn.execute(sa.select(audit_batches).where(
                audit_batches.c.chain == chain).order_by(audit_batches.c.seq))).all():
            await conn.execute(audit_batches.update().where(audit_batches.c.id == batch.id)
                               .values(prev_head=head))
            rows = (await conn.execute(sa.select(audit_events).where(
                audit_events.c.chain == chain, audit_events.c.batch_seq == batch.seq)
                .order_by(audit_events.c.id))).all()
            for r in rows:
                head = audit_chain.row_hash(head, {**r._mapping, "at": aware(r.at)})
                await conn.execute(audit_events.update().where(audit_events.c.id == r.id)
                                   .values(row_hash=head))
            await conn.execute(audit_batches.update().where(audit_batches.c.id == batch.id)
                               .values(head=head))
        await conn.execute(audit_chains.update().where(audit_chains.c.chain == chain)
                           .values(head=head))


async def test_a_rewrite_with_recomputed_hashes_is_found_by_the_anchor(engine: AsyncEngine):
    await _trail(engine)
    await _rewrite(engine, "node-a", (await _ids(engine))[0], "rewritten")
    problems = await _problems(engine)
    assert problems == ["anchor 1: chain node-a batch 2 differs from what was anchored "
                        "(rewritten)"], problems


async def test_without_an_anchor_a_rewrite_goes_unseen(engine: AsyncEngine):
    """Why anchors exist: the hashes alone are recomputable (this pins the window the
    README states: rows after the newest anchor rest on the hashes only)."""
    audit_chain.set_chain_name("node-a")
    await _batch(engine, 3, "node-a")
    await _rewrite(engine, "node-a", (await _ids(engine))[0], "rewritten")
    assert (await verify(engine, KEY)).ok


async def test_a_forged_anchor_is_found(engine: AsyncEngine):
    await _trail(engine)
    await _rewrite(engine, "node-a", (await _ids(engine))[0], "rewritten")
    forged = secrets.token_bytes(32)
    assert await audit_chain.write_anchor(engine, forged)
    problems = await _problems(engine)
    assert "anchor 2: HMAC does not match (forged or edited)" in problems


async def test_pruning_under_a_checkpoint_keeps_the_trail_verifiable(engine: AsyncEngine):
    await _trail(engine)
    async with engine.begin() as conn:  # make node-a's first batch old
        await conn.execute(audit_batches.update().where(
            audit_batches.c.chain == "node-a", audit_batches.c.seq == 1)
            .values(at=datetime.now(UTC) - timedelta(days=800)))
    audit_chain.set_chain_name("node-a")
    await _batch(engine, 2, "node-a")
    deleted = await prune(engine, KEY, datetime.now(UTC) - timedelta(days=730))
    assert deleted == 3
    report = await verify(engine, KEY)
    assert report.ok, report.problems
    assert report.checkpoints == 1 and report.rows == 27
    # the checkpoint is signed: moving where a chain starts is found
    async with engine.begin() as conn:
        await conn.execute(sa.text("UPDATE audit_checkpoints SET rows_pruned = 0, "
                                   "anchor_mac = 'x'"))
    assert any("checkpoint 1: signature" in p for p in await _problems(engine))


async def test_everything_pruned_then_new_rows_still_verify(engine: AsyncEngine):
    await _trail(engine)
    assert await prune(engine, KEY, datetime.now(UTC) + timedelta(seconds=1)) == 28
    report = await verify(engine, KEY)
    assert report.ok and report.rows == 0, report.problems
    await _trail(engine)
    report = await verify(engine, KEY)
    assert report.ok and report.rows == 28, report.problems


async def test_a_rolled_back_batch_leaves_no_gap(engine: AsyncEngine):
    audit_chain.set_chain_name("node-a")
    await _batch(engine, 2, "node-a")
    with pytest.raises(RuntimeError):
        async with engine.begin() as conn:
            await audit.write(conn, [audit.row("doomed", actor="x")])
            raise RuntimeError("the caller's transaction fails")
    await _batch(engine, 2, "node-a")
    report = await verify(engine, KEY)
    assert report.ok and report.batches == 2, report.problems


async def test_the_group_writer_extends_its_known_head_and_takes_a_turn_after_another_writer(
        engine: AsyncEngine):
    """Issue 26: the group-commit writer keeps its chain's head in memory and extends it by
    a compare-and-set; a batch another writer of the same chain put in between (a review
    page in the same process) makes the swap miss, and that batch takes its turn."""
    audit_chain.set_chain_name("node-a")
    trail = audit.AuditTrail(engine)
    await trail.start()
    try:
        for i in range(3):
            await trail.record([audit.row("group", actor=f"a{i}")])
        await _batch(engine, 2, "direct")  # the other writer, the locking way
        for i in range(3):
            await trail.record([audit.row("group", actor=f"b{i}")])
    finally:
        await trail.stop()
    assert (trail.head.turns, trail.head.swaps) == (2, 4)
    report = await verify(engine, KEY)
    assert report.ok and report.batches == 7, report.problems
    async with engine.connect() as conn:
        head = (await conn.execute(sa.select(audit_chains.c.seq, audit_chains.c.head).where(
            audit_chains.c.chain == "node-a"))).one()
        last = (await conn.execute(sa.select(audit_batches.c.seq, audit_batches.c.head).where(
            audit_batches.c.chain == "node-a").order_by(audit_batches.c.seq.desc()))).first()
    assert tuple(head) == tuple(last)


async def test_a_failed_group_commit_leaves_the_chain_and_the_known_head_as_they_were(
        engine: AsyncEngine):
    audit_chain.set_chain_name("node-a")
    trail = audit.AuditTrail(engine)
    await trail.start()
    try:
        await trail.record([audit.row("group", actor="first")])
        with pytest.raises(StoreError):  # a row the database refuses: the batch rolls back
            await trail.record([audit.row("group", actor="doomed")], (),
                               [{"message_id_hash": None, "tenant_id": 1}])
        await trail.record([audit.row("group", actor="after")])
    finally:
        await trail.stop()
    report = await verify(engine, KEY)
    assert report.ok and report.batches == 2, report.problems
