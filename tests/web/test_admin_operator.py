"""The operator's work through the admin API, as a client would do it: held messages sent
by a campaign tool over SMTP and decided over HTTP, tenants suspended and felt at MAIL
FROM, logins made and used for AUTH, mailboxes paused, the queue, trace, webhooks and a
domain verified against a loopback DNS server — roles and audit rows checked on the way."""

from __future__ import annotations

import asyncio
import smtplib
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from gateway.delivery.queue import CopyKind
from gateway.store.schema import audit_events
from tests.conftest import Harness, running_harness
from tests.support.admin_api import admin, key, queued_copy
from tests.support.dns import Zone, dns_server
from tests.support.held import CARD, held_rows, send_data
from tests.support.optout import possible_opt_out


async def _audited(h: Harness) -> list[tuple[str, str]]:
    async with h.gateway.engine.connect() as conn:
        return [(r.event, r.actor) for r in await conn.execute(
            sa.select(audit_events.c.event, audit_events.c.actor).order_by(audit_events.c.id))]


async def test_held_messages_are_read_and_decided_with_the_roles_of_the_review_pages(
        harness: Harness):
    await asyncio.to_thread(send_data, harness, ["a@example.org"])
    await asyncio.to_thread(send_data, harness, ["b@example.org"])
    first, second = sorted(r.id for r in await held_rows(harness))
    ops, compliance = await key(harness, "ops", "acme"), await key(harness, "compliance")
    async with admin(harness, ops) as client:
        page = (await client.get("/api/v1/held", params={"tenant": "acme"})).json()
        assert [m["id"] for m in page["messages"]] == [first, second]
        assert page["messages"][0]["recipients"] == ["a@example.org"]
        assert page["messages"][0]["check"] == "sensitive-data"
        # ops may look, not read the body or decide
        assert (await client.get(f"/api/v1/held/{first}/body")).status_code == 403
        refused = await client.post(f"/api/v1/held/{first}/release", json={"reason": "ok"})
        assert refused.status_code == 403
    async with admin(harness, compliance) as client:
        body = await client.get(f"/api/v1/held/{first}/body")
        assert body.status_code == 200 and body.headers["content-type"] == "message/rfc822"
        assert CARD in body.content
        empty = await client.post(f"/api/v1/held/{first}/release", json={"reason": ""})
        assert empty.status_code == 422
        released = await client.post(f"/api/v1/held/{first}/release",
                                     json={"reason": "a test card"})
        assert released.status_code == 200 and released.json()["status"] == "release-requested"
        again = await client.post(f"/api/v1/held/{first}/discard", json={"reason": "x"})
        assert again.status_code == 409 and "release-requested" in again.json()["error"]["message"]
        noted = await client.post(f"/api/v1/held/{second}/notes", json={"text": "looking"})
        assert noted.status_code == 201 and noted.json()["notes"][0]["text"] == "looking"
        bulk = await client.post("/api/v1/held/decisions", json={
            "action": "discard", "reason": "card data", "tenant": "acme"})
        assert bulk.json() == {"decided": [second], "skipped": 0}
    # the discarded one's sender is told; the running gateway carries the release out
    reports = [c for c in await harness.gateway.queue.listing() if c.kind is CopyKind.DSN]
    assert [c.recipient for c in reports] == ["sales@acme.example"]
    assert await harness.gateway.review.run_once() == 1
    await harness.gateway.worker.run_once(datetime.now(UTC) + timedelta(seconds=1))
    delivered = {r.recipients[0] for r in harness.sink.received}
    assert "a@example.org" in delivered and "b@example.org" not in delivered
    audited = await _audited(harness)
    assert ("held.viewed", f"apikey:{ops.split('_')[1]}") in audited
    compliance_actor = f"apikey:{compliance.split('_')[1]}"
    assert audited.count(("held.read", compliance_actor)) == 1  # and the report's own read
    assert {"held.release-requested", "held.discarded", "held.noted"} <= {e for e, _ in audited}


async def test_a_tenant_is_added_suspended_resumed_and_tuned(harness: Harness):
    async with admin(harness, await key(harness, "ops", "acme")) as client:
        bound = await client.post("/api/v1/tenants", json={"name": "newco"})
        assert bound.status_code == 403
        assert (await client.post("/api/v1/tenants/acme/suspend",
                                  json={"reason": "x"})).status_code == 403
        assert [t["name"] for t in (await client.get("/api/v1/tenants")).json()] == ["acme"]
        # a tenant tunes its own settings, within the operator's limits, all or none
        bad = await client.patch("/api/v1/tenants/acme/settings",
                                 json={"max_recipients": 7, "no_such_setting": 1})
        assert bad.status_code == 422 and "no_such_setting" in bad.json()["error"]["message"]
        before = (await client.get("/api/v1/tenants/acme")).json()["settings"]
        assert before["max_recipients"] != 7
        good = await client.patch("/api/v1/tenants/acme/settings", json={"max_recipients": 7})
        assert good.status_code == 200 and good.json()["settings"]["max_recipients"] == 7
    async with admin(harness, await key(harness, "ops")) as client:
        added = await client.post("/api/v1/tenants", json={"name": "newco"})
        assert added.status_code == 201 and added.json()["status"] == "active"
        assert (await client.post("/api/v1/tenants", json={"name": "newco"})).status_code == 409
        suspended = await client.post("/api/v1/tenants/acme/suspend",
                                      json={"reason": "unpaid invoice"})
        assert suspended.json()["status"] == "suspended"
        await harness.gateway.directory.refresh()

        def mail_from() -> tuple[int, bytes]:
            with harness.client() as smtp:
                return smtp.mail("sales@acme.example")

        code, text = await asyncio.to_thread(mail_from)
        assert code == 451 and b"unpaid invoice" in text
        await client.post("/api/v1/tenants/acme/resume")
        await harness.gateway.directory.refresh()
        assert (await asyncio.to_thread(mail_from))[0] == 250
        assert (await client.put("/api/v1/tenants/acme/legal-hold",
                                 json={"reason": "case 7"})).status_code == 403  # ops
    async with admin(harness, await key(harness, "compliance")) as client:
        held = await client.put("/api/v1/tenants/acme/legal-hold", json={"reason": "case 7"})
        assert held.json()["legal_hold"]["reason"] == "case 7"
        lifted = await client.delete("/api/v1/tenants/acme/legal-hold")
        assert lifted.json()["legal_hold"] is None
    events = {e for e, _ in await _audited(harness)}
    assert {"tenant.added", "tenant.suspended", "tenant.active", "tenant.setting",
            "tenant.legal-hold", "tenant.legal-hold-lifted"} <= events


async def test_a_login_made_over_the_api_authenticates_and_removed_does_not(harness: Harness):
    async with admin(harness, await key(harness, "ops", "acme")) as client:
        short = await client.post("/api/v1/logins", json={"username": "tool2",
                                                          "password": "short"})
        assert short.status_code == 422
        made = await client.post("/api/v1/logins", json={"username": "tool2"})
        assert made.status_code == 201 and made.json()["tenant"] == "acme"
        password = made.json()["password"]
        assert len(password) >= 32
        assert "tool2" in str((await client.get("/api/v1/logins")).json())
        await harness.gateway.directory.refresh()

        def login(pw: str) -> int:
            with harness.client(login=False) as smtp:
                try:
                    return smtp.login("tool2", pw)[0]
                except smtplib.SMTPAuthenticationError as exc:
                    return exc.smtp_code

        assert await asyncio.to_thread(login, password) == 235
        assert (await client.delete("/api/v1/logins/tool2")).status_code == 200
        await harness.gateway.directory.refresh()
        assert await asyncio.to_thread(login, password) == 535
        assert (await client.delete("/api/v1/logins/tool2")).status_code == 404


async def test_a_mailbox_is_added_paused_resumed_and_removed(harness: Harness):
    async with admin(harness, await key(harness, "ops", "acme")) as client:
        unknown = await client.post("/api/v1/mailboxes", json={
            "address": "new@acme.example", "upstream": "nowhere"})
        assert unknown.status_code == 422 and "nowhere" in unknown.json()["error"]["message"]
        foreign = await client.post("/api/v1/mailboxes", json={
            "address": "x@other.example", "upstream": "sink"})
        assert foreign.status_code == 422
        added = await client.post("/api/v1/mailboxes", json={
            "address": "new@acme.example", "upstream": "sink"})
        assert added.status_code == 201 and added.json()["status"] == "active"
        mailbox = added.json()["id"]
        paused = await client.post(f"/api/v1/mailboxes/{mailbox}/pause",
                                   json={"reason": "warming up"})
        assert paused.json()["status"] == "paused"
        assert (await client.post(f"/api/v1/mailboxes/{mailbox}/resume")).json()[
            "status"] == "active"
        assert (await client.post(f"/api/v1/mailboxes/{mailbox}/resume")).status_code == 409
        assert (await client.delete(f"/api/v1/mailboxes/{mailbox}")).json()["removed"]
        assert (await client.get(f"/api/v1/mailboxes/{mailbox}")).status_code == 404


async def test_the_queue_and_trace_show_a_tenants_copies_and_act_on_them(harness: Harness):
    copy_id, queue_id = await queued_copy(harness, "acme", "sales@acme.example")
    async with admin(harness, await key(harness, "ops", "acme")) as client:
        listed = (await client.get("/api/v1/queue")).json()
        assert [c["id"] for c in listed] == [copy_id]
        assert (await client.post(f"/api/v1/queue/{copy_id}/retry")).json() == {"due_now": 1}
        deleted = await client.post(f"/api/v1/queue/{copy_id}/delete",
                                    json={"reason": "wrong list"})
        assert deleted.status_code == 200 and deleted.json()["state"] == "deleted"
        assert (await client.post(f"/api/v1/queue/{copy_id}/retry")).status_code == 409
        traced = (await client.get(f"/api/v1/trace/{queue_id}",
                                   params={"recipient": "lead@example.org"})).json()
        (message,) = traced["messages"]
        assert {"message.accepted", "copy.deleted"} <= {line["event"]
                                                         for line in message["lines"]}
        assert any(line["who"] == "lead@example.org" for line in message["lines"])
    report = [c for c in await harness.gateway.queue.listing() if c.kind is CopyKind.DSN]
    assert [c.recipient for c in report] == ["sales@acme.example"]
    async with admin(harness, await key(harness, "ops", "other")) as client:
        assert (await client.get(f"/api/v1/trace/{queue_id}")).status_code == 404


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_webhooks_and_opt_out_reviews(tmp_path, pki, database):
    extra = "[events]\nallow_private_targets = true\n"
    async with running_harness(tmp_path, pki, database, extra=extra) as harness:
        async with admin(harness, await key(harness, "ops", "acme")) as client:
            assert (await client.get("/api/v1/tenants/acme/webhook")).json()["url"] is None
            bad = await client.put("/api/v1/tenants/acme/webhook", json={"url": "ftp://x.y/z"})
            assert bad.status_code == 422
            url = "http://127.0.0.1:9/hook"
            made = await client.put("/api/v1/tenants/acme/webhook", json={"url": url})
            assert made.status_code == 200 and len(made.json()["secret"]) >= 40
            assert (await client.get("/api/v1/tenants/acme/webhook")).json()["url"] == url
            assert (await client.delete("/api/v1/tenants/acme/webhook")).status_code == 200
            assert (await client.delete("/api/v1/tenants/acme/webhook")).status_code == 404
        review_id = await possible_opt_out(harness, "assistant@example.org",
                                           "wendy@example.net")
        async with admin(harness, await key(harness, "ops", "acme")) as client:
            assert [r["id"] for r in (await client.get("/api/v1/optout-reviews")).json()] == [
                review_id]
            assert (await client.post(f"/api/v1/optout-reviews/{review_id}/dismiss",
                                      json={"reason": "x"})).status_code == 403
        async with admin(harness, await key(harness, "compliance", "acme")) as client:
            shown = (await client.get(f"/api/v1/optout-reviews/{review_id}")).json()
            assert "Who gave you my address?" in shown["words"]
            confirmed = await client.post(f"/api/v1/optout-reviews/{review_id}/confirm",
                                          json={"reason": "asks to be removed"})
            assert confirmed.status_code == 200 and confirmed.json()["suppressed_now"] is True
            again = await client.post(f"/api/v1/optout-reviews/{review_id}/dismiss",
                                      json={"reason": "x"})
            assert again.status_code == 409
        audited = await _audited(harness)
        assert {"optout.review_read", "optout.review_confirmed"} <= {e for e, _ in audited}


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_a_domain_is_added_verified_and_checked_with_its_dkim_keys(tmp_path, pki,
                                                                          database):
    zone = Zone()
    with dns_server(zone) as port:
        extra = f'[dns]\nnameservers = ["127.0.0.1:{port}"]\ntimeout = 3\n'
        async with running_harness(tmp_path, pki, database, extra=extra) as harness:
            async with admin(harness, await key(harness, "ops", "acme")) as client:
                added = await client.post("/api/v1/domains", json={"name": "Mail.Acme.Example"})
                assert added.status_code == 201 and added.json() == {
                    "name": "mail.acme.example", "tenant": "acme"}
                first = (await client.post("/api/v1/domains/mail.acme.example/verify")).json()
                assert first["level"] == "fail" and "IN TXT" in first["detail"]
                record = first["detail"].split('"')[1]
                zone.add_txt("_ocg-verify.mail.acme.example", record)
                proven = (await client.post("/api/v1/domains/mail.acme.example/verify")).json()
                assert proven["level"] == "ok"
                made = await client.post("/api/v1/domains/mail.acme.example/dkim",
                                         json={"algorithm": "ed25519", "selector": "s1"})
                assert made.status_code == 201 and made.json()["dns_value"].startswith(
                    "v=DKIM1; k=ed25519; p=")
                checked = (await client.get("/api/v1/domains/mail.acme.example/check")).json()
                levels = {f["check"]: f["level"] for f in checked["findings"]}
                assert levels["verify"] == "ok" and checked["passed"] is False  # no SPF yet
                retired = await client.delete("/api/v1/domains/mail.acme.example/dkim/s1")
                assert retired.json()["active"] is False


async def test_a_mailbox_with_undelivered_copies_keeps_its_credentials_when_removal_is_refused(
        harness: Harness):
    await queued_copy(harness, "acme", "sales@acme.example")
    mailbox = harness.gateway.directory.mailbox("sales@acme.example").public_id
    async with admin(harness, await key(harness, "ops", "acme")) as client:
        sealed = await client.put(f"/api/v1/mailboxes/{mailbox}/password",
                                  json={"username": "sales", "password": "a long password!"})
        assert sealed.status_code == 200
        refused = await client.delete(f"/api/v1/mailboxes/{mailbox}")
        assert refused.status_code == 409 and "undelivered" in refused.json()["error"]["message"]
        kept = (await client.get(f"/api/v1/mailboxes/{mailbox}")).json()
        assert (kept["status"], kept["credentials"]) == ("active", "password")
        # and `resume` brings back a paused mailbox only, never a disconnected one
        assert (await client.post(f"/api/v1/mailboxes/{mailbox}/resume")).status_code == 409
