"""Each node's in-memory copy of the records, tried as a second node would meet them: a
change written anywhere is read in one refresh — a new record, a replaced one, an erasure, a
change that committed late, an import too big to list — and nothing else is re-read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.lawful import records
from gateway.lawful.index import RecordIndex
from gateway.lawful.records import Basis, Consent
from gateway.lawful.signals import Attributes
from gateway.lawful.table import Kind
from gateway.store.schema import lawful_record_changes

TENANT = 1


async def test_another_nodes_writes_reach_this_nodes_copy_in_one_refresh(harness):
    h = harness
    engine, digest = h.gateway.engine, h.gateway.digest
    node = RecordIndex(engine)
    await node.refresh()
    anna, bob = digest("anna@firma.de"), digest("bob@company.us")
    async with engine.begin() as conn:
        await records.put_attributes(conn, TENANT, anna, Attributes("DE", Kind.NAMED),
                                     "csv", "t")
        await records.add_consent(conn, Consent(TENANT, anna, Basis.EXPRESS,
                                                datetime.now(UTC), "webform", "", "form 1"),
                                  "t")
    assert node.held(TENANT, anna) is None  # not read yet: decided as if absent
    assert await node.refresh() == 1
    held = node.held(TENANT, anna)
    assert held is not None and held[0] == Attributes("DE", Kind.NAMED) and len(held[1]) == 1
    async with engine.begin() as conn:  # replaced
        await records.put_attributes(conn, TENANT, anna, Attributes("US", None), "csv", "t")
    await node.refresh()
    assert node.held(TENANT, anna)[0] == Attributes("US", None)
    async with engine.begin() as conn:  # erased: the attribute record goes, the consent stays
        await records.keep_proof_only(conn, anna)
    await node.refresh()
    held = node.held(TENANT, anna)
    assert held is not None and held[0] is None and len(held[1]) == 1
    # a change that committed late (its time before this node's last look) is still read
    async with engine.begin() as conn:
        await conn.execute(records.recipient_records.insert().values(
            tenant_id=TENANT, digest=bob, country="AT", kind=None, source="csv",
            updated_at=datetime.now(UTC), updated_by="t"))
        await conn.execute(lawful_record_changes.insert().values(
            tenant_id=TENANT, digests=[bob], changed_at=datetime.now(UTC) - timedelta(
                seconds=30)))
    assert await node.refresh() == 1 and node.held(TENANT, bob)[0] == Attributes("AT", None)
    assert await node.refresh() == 0  # read once, not again


async def test_an_import_too_big_to_list_rereads_the_tenant(harness):
    h = harness
    engine, digest = h.gateway.engine, h.gateway.digest
    node = RecordIndex(engine)
    await node.refresh()
    people = [digest(f"p{n}@firma.de") for n in range(records.MAX_DIGESTS + 5)]
    touched: list[str] = []
    async with engine.begin() as conn:
        for d in people:
            await records.put_attributes(conn, TENANT, d, Attributes("DE", None), "csv", "t",
                                         touched)
        await records.note_change(conn, TENANT, touched)
    assert await node.refresh() == 1  # one tenant re-read whole
    assert all(node.held(TENANT, d) is not None for d in people)
    assert node.size == len(people)


async def test_past_what_a_node_holds_it_reads_the_database(harness):
    h = harness
    engine, digest = h.gateway.engine, h.gateway.digest
    async with engine.begin() as conn:
        for n in range(3):
            await records.put_attributes(conn, TENANT, digest(f"q{n}@firma.de"),
                                         Attributes("DE", Kind.GENERIC), "csv", "t")
    small = RecordIndex(engine, max_held=2)
    await small.refresh()
    held = [d for d in (digest(f"q{n}@firma.de") for n in range(3))
            if small.held(TENANT, d) is not None]
    marked = [d for d in (digest(f"q{n}@firma.de") for n in range(3))
              if small.may_have(TENANT, d)]
    assert len(held) == 2 and len(marked) == 1 and set(held).isdisjoint(marked)
