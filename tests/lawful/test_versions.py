"""Versions of the lawful-basis table: the shipped one is version 1 on a first start; a
table counsel publishes (CLI or API) is a new version, audited, in force on every node
within seconds; the same document makes none; a bad one is refused naming its mistake."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway import config as config_module
from gateway.app.service import Gateway
from gateway.lawful.table import Decision, Kind
from gateway.lawful.versions import Policies
from gateway.store.engine import create_engine, upgrade
from gateway.store.schema import audit_events
from tests.conftest import running_harness
from tests.support.admin_api import admin, key
from tests.support.cli import gw

SHIPPED = Path(__file__).resolve().parents[2] / "deploy" / "lawful-basis.toml"


def counsels_table() -> str:
    """The shipped table with Finland confirmed by counsel and made stricter."""
    return SHIPPED.read_text().replace(
        '[countries.FI]\nnamed = "allow-with-notice"\ngeneric = "allow-with-notice"',
        '[countries.FI]\nnamed = "require-consent"\ngeneric = "require-consent"').replace(
        'note = "named: job-related"\nverified = false\n\n[countries.IT]',
        'note = "confirmed by counsel"\nverified = true\n\n[countries.IT]')


async def published(h) -> list:
    async with h.gateway.engine.connect() as conn:
        return (await conn.execute(sa.select(audit_events).where(
            audit_events.c.event == "policy.published").order_by(audit_events.c.id))).all()


async def test_the_shipped_table_is_version_one_and_shown_with_its_unverified_rows(harness):
    h = harness
    assert h.gateway.policies.current.version == 1
    (row,) = await published(h)
    assert row.actor == "gateway:shipped" and row.detail["unverified"] == [
        "BE", "DK", "FI", "IE", "IT", "NL"]
    shown = await gw(h, "policy", "show")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("ocg-default v1:") and "not legal advice" in shown.stdout
    lines = {line.split()[0]: line for line in shown.stdout.splitlines()[1:]}
    assert "[UNVERIFIED]" in lines["IT"] and "[UNVERIFIED]" not in lines["DE"]
    assert "sole_trader=require-consent" in lines["GB"]


async def test_a_published_table_is_a_new_audited_version_and_the_same_one_is_not(
        harness, tmp_path):
    h = harness
    path = tmp_path / "counsel.toml"
    path.write_text(counsels_table())
    loaded = await gw(h, "policy", "load", str(path))
    assert loaded.returncode == 0 and "ocg-default v2 published" in loaded.stdout
    again = await gw(h, "policy", "load", str(path))
    assert "ocg-default v2 is already in force" in again.stdout
    assert [r.detail["version"] for r in await published(h)] == [1, 2]
    assert (await gw(h, "policy", "versions")).stdout.count("ocg-default") == 2
    old = await gw(h, "policy", "show", "--version", "1")
    assert "[UNVERIFIED]" in [line for line in old.stdout.splitlines()
                              if line.startswith("FI")][0]
    path.write_text(counsels_table().replace('sole_trader = "allow"', 'sole_trader = "maybe"'))
    refused = await gw(h, "policy", "load", str(path))
    assert refused.returncode == 5 and "[countries.US].sole_trader" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert len(await published(h)) == 2
    missing = await gw(h, "policy", "show", "--version", "9")
    assert missing.returncode != 0 and "No such version" in missing.stderr


async def test_the_api_shows_and_an_admin_key_publishes(harness):
    h = harness
    async with admin(h, await key(h, "ops")) as ops:
        shown = (await ops.get("/api/v1/lawful-policy")).json()
        assert shown["version"] == 1 and shown["countries"]["IT"]["verified"] is False
        assert shown["countries"]["DE"]["named"] == "require-consent"
        refused = await ops.post("/api/v1/lawful-policy", json={"document": counsels_table()})
        assert refused.status_code == 403
    async with admin(h, await key(h, "admin")) as root:
        made = await root.post("/api/v1/lawful-policy", json={"document": counsels_table()})
        assert made.status_code == 200 and made.json()["version"] == 2 and made.json()["new"]
        bad = await root.post("/api/v1/lawful-policy", json={"document": "id = ["})
        assert bad.status_code in (400, 422) and "not TOML" in bad.text
        assert [v["version"] for v in (await root.get(
            "/api/v1/lawful-policy/versions")).json()] == [1, 2]


@pytest.mark.parametrize("database", ["postgres"], indirect=True)
async def test_a_table_published_on_one_node_is_in_force_on_the_other_within_seconds(
        tmp_path, pki, database):
    async with running_harness(tmp_path, pki, database) as a:
        b = Gateway(config_module.load(a.config_path), str(a.config_path))
        await b.start(run_queue=False, roles=("smtp",))
        try:
            assert b.policies.current.version == 1  # not published twice
            assert b.policies.current.table.decide("FI", Kind.NAMED) is \
                Decision.ALLOW_WITH_NOTICE
            started = time.monotonic()
            await a.gateway.policies.publish(counsels_table(), "test", "counsel.toml")
            while b.policies.current.version != 2:
                assert time.monotonic() - started < 10, "node B never took version 2"
                await asyncio.sleep(0.1)
            print(f"\n[lawful] a new table in force on the other node after "
                  f"{time.monotonic() - started:.2f} s")
            assert b.policies.current.table.decide("FI", Kind.NAMED) is \
                Decision.REQUIRE_CONSENT
        finally:
            await b.stop(deadline=1)


@pytest.mark.parametrize("database", ["postgres"], indirect=True)
async def test_nodes_starting_at_once_on_a_new_database_publish_the_shipped_table_once(
        database):
    """Two nodes' first start at the same moment: one version 1, not one each (a bench run
    found version 2 holding the shipped table again, and counsel's table became v3)."""
    engines = [create_engine(database.url, schema=database.schema) for _ in range(4)]
    await upgrade(engines[0])
    nodes = [Policies(e) for e in engines]
    try:
        await asyncio.gather(*(n.start() for n in nodes))
        assert [v.version for v in await nodes[0].versions()] == [1]
        assert {n.current.version for n in nodes} == {1}
        # counsel's table from every node at once: one version 2, the next number (a
        # loser's insert used up a sequence number, and CI saw counsel's table as v3)
        await asyncio.gather(*(n.publish(counsels_table(), "test", "counsel.toml")
                               for n in nodes))
        assert [v.version for v in await nodes[0].versions()] == [1, 2]
        assert {n.current.version for n in nodes} == {2}
    finally:
        for n, e in zip(nodes, engines, strict=True):
            await n.stop()
            await e.dispose()
