"""Signed opt-out receipts (issue 29.1): a one-click opt-out's confirmation page offers its
receipt; it verifies offline against the key document the public listener publishes, and
fails when one byte changes; repeats give the same receipt; bounces, complaints and mailto
opt-outs get theirs; a rotated key keeps old receipts verifying and is never retired; the
CLI and the admin API check them."""

from __future__ import annotations

import asyncio
import html
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from gateway.feedback.apply import Arrival
from gateway.optout.receipts import InvalidReceipt, iso, keys_from, receipts_of, verify
from gateway.store.schema import audit_events, optout_receipts
from tests.support import messages
from tests.support.admin_api import admin, key
from tests.support.cli import gw
from tests.support.feedback import FEEDBACK
from tests.support.unsubscribe import public, token_for

ALICE = "alice@example.org"


async def one_click(h, token: str) -> str:
    async with public(h) as client:
        page = await client.post(f"/u/{token}")
    assert page.status_code == 200
    (receipt,) = re.findall(r'<pre class="receipt">(.*?)</pre>', page.text, re.S)
    return html.unescape(receipt)


async def key_document(h) -> dict:
    async with public(h) as client:
        found = await client.get("/.well-known/ocg-receipt-keys.json")
    assert found.status_code == 200
    return found.json()


async def stored(h) -> list:
    async with h.gateway.engine.connect() as conn:
        return (await conn.execute(sa.select(optout_receipts))).all()


async def test_the_confirmation_page_offers_a_receipt_that_verifies_offline(harness):
    h = harness
    token = await token_for(h, ALICE)
    receipt = await one_click(h, token)
    keys = keys_from(await key_document(h))
    fields = verify(receipt, keys)
    acme = (await h.store().tenant("acme")).id
    assert (fields["tenant"], fields["channel"]) == (acme, "one-click")
    assert fields["recipient_digest"] == h.gateway.digest(ALICE)
    assert ALICE not in receipt and "alice" not in receipt
    async with h.gateway.engine.connect() as conn:
        row = (await conn.execute(sa.select(audit_events).where(
            audit_events.c.event == "optout.recorded"))).one()
    assert fields["audit_head"] == row.row_hash  # the chain head right after the opt-out
    assert fields["received_at"] <= fields["effective_at"]
    for i in range(len(receipt)):  # one altered byte anywhere fails
        changed = receipt[:i] + ("0" if receipt[i] != "0" else "1") + receipt[i + 1:]
        with pytest.raises(InvalidReceipt):
            verify(changed, keys)
    # a repeated POST (providers repeat one-click) answers the same receipt, stores no other
    assert await one_click(h, token) == receipt
    assert [r.receipt for r in await stored(h)] == [receipt]


async def test_bounces_complaints_and_mailto_get_their_receipts(harness):
    h = harness
    raw = messages.simple(to="oliver.taylor@brightpath.example").replace(
        b"<m1@acme.example>", b"<OCG.EF90AB12CD.0@acme.example>")
    assert await h.send(raw, ["oliver.taylor@brightpath.example"]) == {}
    (copy,) = await h.gateway.sent_index.find(["<OCG.EF90AB12CD.0@acme.example>"])
    applied = await h.gateway.feedback.apply((FEEDBACK / "arf-abuse.eml").read_bytes(),
                                             Arrival.inbox(copy.tenant_id, copy.mailbox_id))
    assert applied.suppressed[:1] == ["complaint"]
    (row,) = await stored(h)
    fields = verify(row.receipt, keys_from(await key_document(h)))
    assert fields["channel"] == "complaint"
    assert fields["recipient_digest"] == copy.recipient_digest


async def test_a_rotated_key_keeps_old_receipts_verifying_and_is_never_retired(harness):
    h = harness
    first = await one_click(h, await token_for(h, ALICE))
    assert (await gw(h, "key", "rotate", "receipt-signing")).returncode == 0
    await h.gateway.purpose_keys.load()
    second = await one_click(h, await token_for(h, "bob@example.org"))
    document = await key_document(h)
    assert [k["key"] for k in document["keys"]] == [1, 2]
    keys = keys_from(document)
    assert (verify(first, keys)["key"], verify(second, keys)["key"]) == (1, 2)
    refused = await gw(h, "key", "retire", "receipt-signing", "1")
    assert refused.returncode != 0 and "never retired" in refused.stderr


async def test_the_cli_verifies_offline_and_lists_a_persons_receipts(harness, tmp_path):
    h = harness
    receipt = await one_click(h, await token_for(h, ALICE))
    keys = await gw(h, "receipt", "key")
    assert keys.returncode == 0, keys.stderr
    (tmp_path / "keys.json").write_text(keys.stdout)
    (tmp_path / "receipt.json").write_text(receipt)
    ok = await gw(h, "receipt", "verify", str(tmp_path / "receipt.json"), "--keys",
                  str(tmp_path / "keys.json"))
    assert ok.returncode == 0 and "channel\tone-click" in ok.stdout
    (tmp_path / "bad.json").write_text(receipt.replace('"one-click"', '"one-clicks"'))
    bad = await gw(h, "receipt", "verify", str(tmp_path / "bad.json"), "--keys",
                   str(tmp_path / "keys.json"))
    assert bad.returncode == 5 and "Not a valid receipt" in bad.stderr  # invalid value
    listed = await gw(h, "receipt", "list", "acme", ALICE)
    assert listed.stdout.strip() == receipt


async def test_the_admin_api_publishes_keys_verifies_and_lists(harness):
    h = harness
    receipt = await one_click(h, await token_for(h, ALICE))
    async with admin(h, await key(h, "ops", "acme")) as client:
        keys = await client.get("/api/v1/receipt-keys")
        assert keys.json() == json.loads(json.dumps(await key_document(h)))
        good = await client.post("/api/v1/receipts/verify", json={"receipt": receipt})
        assert good.json()["valid"] is True and good.json()["fields"]["channel"] == "one-click"
        bad = await client.post("/api/v1/receipts/verify",
                                json={"receipt": receipt.replace('"tenant":', '"tenant": ')})
        assert bad.json()["valid"] is False
        listed = await client.get("/api/v1/tenants/acme/receipts", params={"recipient": ALICE})
        assert listed.json() == {"receipts": [receipt]}
        other = await client.get("/api/v1/tenants/other/receipts", params={"recipient": ALICE})
        assert other.status_code == 404


async def test_an_opt_out_added_by_the_api_or_the_cli_gets_its_receipt(harness):
    h = harness
    async with admin(h, await key(h, "ops", "acme")) as client:
        added = await client.post("/api/v1/suppression-lists/acme/entries",
                                  json={"target": "Carol@Example.org", "reason": "unsubscribe"})
        assert added.status_code == 201, added.text
        again = await client.post("/api/v1/suppression-lists/acme/entries",
                                  json={"target": "carol@example.org", "reason": "unsubscribe"})
        assert again.status_code == 201
        manual = await client.post("/api/v1/suppression-lists/acme/entries",
                                   json={"target": "dave@example.org", "reason": "manual"})
        assert manual.status_code == 201
    cli = await gw(h, "suppress", "add", "erin@example.org", "--tenant", "acme", "--reason",
                   "unsubscribe")
    assert cli.returncode == 0, cli.stderr
    keys = keys_from(await key_document(h))
    found = {verify(r.receipt, keys)["recipient_digest"]: r.channel for r in await stored(h)}
    assert found == {h.gateway.digest("carol@example.org"): "api",
                     h.gateway.digest("erin@example.org"): "cli"}  # once each; no manual


async def test_a_data_subjects_export_carries_their_receipts(harness):
    h = harness
    receipt = await one_click(h, await token_for(h, ALICE))
    exported = await gw(h, "subject", "export", ALICE)
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["optout_receipts"] == [receipt]


async def test_effective_at_is_a_time_the_opt_out_was_already_enforced(harness):
    """Signed after the entry commits: whatever looked after effective-at saw it."""
    h = harness
    receipt = await one_click(h, await token_for(h, ALICE))
    fields = verify(receipt, keys_from(await key_document(h)))
    async with h.gateway.engine.connect() as conn:
        recorded, effective = (await conn.execute(sa.select(audit_events).where(
            audit_events.c.event.in_(["optout.recorded", "optout.effective"])).order_by(
            audit_events.c.id))).all()
    assert recorded.event == "optout.recorded" and effective.event == "optout.effective"
    assert effective.batch_seq > recorded.batch_seq  # a later transaction than the entry's
    assert effective.recipient_digest == h.gateway.digest(ALICE)
    assert effective.detail["effective_at"] == fields["effective_at"]
    assert effective.detail["received_at"] == fields["received_at"]
    assert effective.detail["channel"] == "one-click"


async def test_a_receipt_a_killed_process_left_pending_is_signed_by_the_next_round(harness):
    h = harness
    signer = h.gateway.receipts
    async with h.gateway.engine.begin() as conn:  # the opt-out committed, then the kill
        pending = await signer.pend(conn, 1, h.gateway.digest(ALICE), "one-click",
                                    datetime.now(UTC) - timedelta(minutes=5), "ab" * 32)
    async with h.gateway.engine.connect() as conn:
        assert await receipts_of(conn, 1, h.gateway.digest(ALICE)) == []  # not handed out
    assert await signer.complete_pending(h.gateway.engine) == 1
    assert await signer.complete_pending(h.gateway.engine) == 0  # once
    (row,) = await stored(h)
    fields = verify(row.receipt, keys_from(await key_document(h)))
    assert row.id == pending and fields["audit_head"] == "ab" * 32
    assert fields["received_at"] < fields["effective_at"]
    # one the opt-out's own process is about to sign is left to it
    async with h.gateway.engine.begin() as conn:
        await signer.pend(conn, 1, h.gateway.digest("bob@example.org"), "api",
                          datetime.now(UTC), "cd" * 32)
    assert await signer.complete_pending(h.gateway.engine) == 0


async def test_a_feedback_opt_out_was_requested_when_its_message_arrived(harness):
    h = harness
    raw = messages.simple(to="oliver.taylor@brightpath.example").replace(
        b"<m1@acme.example>", b"<OCG.EF90AB12CD.0@acme.example>")
    assert await h.send(raw, ["oliver.taylor@brightpath.example"]) == {}
    (copy,) = await h.gateway.sent_index.find(["<OCG.EF90AB12CD.0@acme.example>"])
    arrived = Arrival.inbox(copy.tenant_id, copy.mailbox_id)
    await asyncio.sleep(0.2)  # read later than it came
    await h.gateway.feedback.apply((FEEDBACK / "arf-abuse.eml").read_bytes(), arrived)
    (row,) = await stored(h)
    fields = verify(row.receipt, keys_from(await key_document(h)))
    assert fields["received_at"] == iso(arrived.received_at)
    assert fields["effective_at"] >= iso(arrived.received_at + timedelta(seconds=0.2))
