"""The review pages over HTTP: sign-in with password and TOTP, lockout, session cookie
flags, idle timeout, CSRF and Origin checks, the Content-Security-Policy of every page and of
the body endpoint, roles, and tenant isolation. (tests/web/test_review_browser.py drives them
in a real browser.)"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from gateway.review.accounts import SignInRefused
from gateway.store.schema import audit_events, review_sessions
from gateway.web.review.common import BODY_CSP, PAGE_CSP
from suppression.entries import GLOBAL
from tests.support.cli import gw
from tests.support.held import held_rows, send_data
from tests.support.review import (
    PASSWORD,
    Client,
    add_reviewer,
    admin_base,
    csrf_of,
    fresh_code,
    signed_in,
)

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


async def test_sign_in_needs_password_and_code_and_sets_a_strict_cookie(harness):
    secret = await add_reviewer(harness, "alice")
    async with Client(admin_base(harness)) as client:
        assert (await client.get("/review/")).headers["location"] == "/review/login"
        page = await client.get("/review/login")
        assert page.headers["content-security-policy"] == PAGE_CSP
        login_cookie = page.headers["set-cookie"]
        assert "Secure" in login_cookie and "HttpOnly" in login_cookie
        csrf = csrf_of(page.text)
        wrong = await client.post("/review/login", data={
            "csrf": csrf, "username": "alice", "password": PASSWORD, "code": "000000"})
        assert wrong.status_code == 401 and "Wrong username, password or code" in wrong.text
        csrf = csrf_of(wrong.text)  # each sign-in form has a fresh token
        no_csrf = await client.post("/review/login", data={
            "csrf": "forged", "username": "alice", "password": PASSWORD,
            "code": await fresh_code(harness, "alice", secret)})
        assert no_csrf.status_code == 403
        ok = await client.post("/review/login", data={
            "csrf": csrf, "username": "alice", "password": PASSWORD,
            "code": await fresh_code(harness, "alice", secret)})
        assert ok.status_code == 303
        cookie = ok.headers["set-cookie"]
        assert cookie.startswith("__Host-ocg-review=")
        for flag in ("HttpOnly", "Secure", "SameSite=strict", "Path=/"):
            assert flag in cookie, flag
        queue = await client.get("/review/")
        assert queue.status_code == 200 and "Review queue" in queue.text
        assert queue.headers["content-security-policy"] == PAGE_CSP
        assert queue.headers["x-frame-options"] == "DENY"


async def test_a_used_code_cannot_be_replayed(harness):
    secret = await add_reviewer(harness, "alice")
    code = await fresh_code(harness, "alice", secret)
    await harness.gateway.reviewers.sign_in("alice", PASSWORD, code)
    with pytest.raises(SignInRefused):
        await harness.gateway.reviewers.sign_in("alice", PASSWORD, code)


async def test_repeated_failures_lock_the_account_until_unlocked(harness):
    secret = await add_reviewer(harness, "alice")
    reviewers = harness.gateway.reviewers
    for _ in range(4):
        with pytest.raises(SignInRefused) as refused:
            await reviewers.sign_in("alice", "wrong password!", "123456")
        assert not refused.value.locked
    with pytest.raises(SignInRefused) as refused:
        await reviewers.sign_in("alice", "wrong password!", "123456")
    assert refused.value.locked
    with pytest.raises(SignInRefused) as refused:  # even the right password now
        await reviewers.sign_in("alice", PASSWORD, await fresh_code(harness, "alice", secret))
    assert refused.value.locked
    unlocked = await gw(harness, "user", "unlock", "alice")
    assert unlocked.returncode == 0, unlocked.stderr
    await reviewers.sign_in("alice", PASSWORD, await fresh_code(harness, "alice", secret))
    async with harness.gateway.engine.connect() as conn:
        events = [r.event for r in await conn.execute(sa.select(audit_events.c.event).where(
            audit_events.c.actor == "reviewer:alice"))]
    assert events.count("reviewer.sign-in-failed") == 4 and "reviewer.locked" in events


async def test_an_idle_session_ends(harness):
    secret = await add_reviewer(harness, "alice")
    client = await signed_in(harness, "alice", secret)
    async with client:
        assert (await client.get("/review/")).status_code == 200
        async with harness.gateway.engine.begin() as conn:
            await conn.execute(review_sessions.update().values(
                last_seen_at=datetime.now(UTC) - timedelta(minutes=16)))
        assert (await client.get("/review/")).headers["location"] == "/review/login"
        async with harness.gateway.engine.connect() as conn:
            assert (await conn.execute(sa.select(sa.func.count()).select_from(
                review_sessions))).scalar_one() == 0


async def test_forms_need_the_session_csrf_token_and_this_origin(harness):
    secret = await add_reviewer(harness, "alice")
    await asyncio.to_thread(send_data, harness, ["a@example.org"])
    (row,) = await held_rows(harness)
    client = await signed_in(harness, "alice", secret)
    async with client:
        page = await client.get(f"/review/messages/{row.id}")
        csrf = csrf_of(page.text)
        forged = await client.post(f"/review/messages/{row.id}/decide", data={
            "csrf": "x" * 43, "action": "release", "reason": "r"})
        assert forged.status_code == 403
        cross = await client.post(f"/review/messages/{row.id}/decide", data={
            "csrf": csrf, "action": "release", "reason": "r"},
            headers={"Origin": "https://evil.example"})
        assert cross.status_code == 403
        assert (await held_rows(harness))[0].status == "held"
        ok = await client.post(f"/review/messages/{row.id}/decide", data={
            "csrf": csrf, "action": "note", "reason": "looked at it"},
            headers={"Origin": admin_base(harness)})
        assert ok.status_code == 303
    assert (await held_rows(harness))[0].notes[0]["text"] == "looked at it"


async def test_the_body_is_served_with_the_sandbox_policy_and_reads_are_audited(harness):
    secret = await add_reviewer(harness, "alice")
    await asyncio.to_thread(send_data, harness, ["a@example.org"])
    (row,) = await held_rows(harness)
    client = await signed_in(harness, "alice", secret)
    async with client:
        body = await client.get(f"/review/messages/{row.id}/body")
        assert body.status_code == 200
        assert body.headers["content-security-policy"] == (
            "default-src 'none'; img-src data: cid:; style-src 'unsafe-inline'; sandbox")
        assert body.headers["content-security-policy"] == BODY_CSP
        assert "4111 1111 1111 1111" in body.text
        text = await client.get(f"/review/messages/{row.id}/body?as=text")
        assert text.headers["content-type"].startswith("text/plain")
    async with harness.gateway.engine.connect() as conn:
        reads = (await conn.execute(sa.select(sa.func.count()).where(
            audit_events.c.event == "held.read",
            audit_events.c.actor == "reviewer:alice"))).scalar_one()
    assert reads == 2


async def test_a_reviewer_bound_to_a_tenant_never_sees_another_tenants_messages(harness):
    await asyncio.to_thread(send_data, harness, ["a@example.org"])  # acme's
    (row,) = await held_rows(harness)
    secret = await add_reviewer(harness, "olga", tenant="other")
    client = await signed_in(harness, "olga", secret)
    async with client:
        queue = await client.get("/review/?status=held")
        assert f'href="/review/messages/{row.id}"' not in queue.text
        assert (await client.get("/review/?tenant=acme")).text.count("/review/messages/") == 0
        assert (await client.get(f"/review/messages/{row.id}")).status_code == 404
        assert (await client.get(f"/review/messages/{row.id}/body")).status_code == 404
        page = await client.get("/review/")
        decided = await client.post(f"/review/messages/{row.id}/decide", data={
            "csrf": csrf_of(page.text), "action": "discard", "reason": "not mine"})
        assert decided.status_code == 404
        bulk = await client.post("/review/bulk", data={
            "csrf": csrf_of(page.text), "action": "release", "reason": "x",
            "ids": str(row.id)})
        assert bulk.headers["location"].endswith("n=0")
        audit = await client.get("/review/audit")
        assert "message.held" not in audit.text  # acme's audit rows are not shown
    assert (await held_rows(harness))[0].status == "held"


async def test_ops_reviewers_see_the_queue_but_neither_bodies_nor_decisions(harness):
    await asyncio.to_thread(send_data, harness, ["a@example.org"])
    (row,) = await held_rows(harness)
    secret = await add_reviewer(harness, "oscar", role="ops")
    client = await signed_in(harness, "oscar", secret)
    async with client:
        page = await client.get(f"/review/messages/{row.id}")
        assert page.status_code == 200 and "<iframe" not in page.text
        assert "4111" not in page.text
        assert (await client.get(f"/review/messages/{row.id}/body")).status_code == 403
        refused = await client.post(f"/review/messages/{row.id}/decide", data={
            "csrf": csrf_of(page.text), "action": "release", "reason": "x"})
        assert refused.status_code == 403


async def test_suppression_search_add_and_remove_from_the_pages(harness):
    secret = await add_reviewer(harness, "alice")
    client = await signed_in(harness, "alice", secret)
    async with client:
        page = await client.get("/review/suppressions?list=acme")
        added = await client.post("/review/suppressions", data={
            "csrf": csrf_of(page.text), "list": "acme", "action": "add",
            "target": "bob@example.org", "reason": "manual"})
        assert added.status_code == 303
        found = await client.post("/review/suppressions", data={
            "csrf": csrf_of(page.text), "list": "acme", "action": "search",
            "address": "bob@example.org"})  # a POST: the address is in no URL
        assert found.status_code == 200
        assert "bob@example.org" in found.text and "manual" in found.text
        legacy = await client.get("/review/suppressions?list=acme&address=bob@example.org")
        assert "manual" in legacy.text  # the old GET still answers (its log line redacted)
        forged = await client.post("/review/suppressions", data={
            "list": "acme", "action": "search", "address": "bob@example.org"})
        assert forged.status_code == 403  # a search needs the session's CSRF token too
        removed = await client.post("/review/suppressions", data={
            "csrf": csrf_of(page.text), "list": "acme", "action": "remove",
            "target": "bob@example.org", "why": "asked by the tenant"})
        assert removed.status_code == 303
        bad = await client.post("/review/suppressions", data={
            "csrf": csrf_of(page.text), "list": "acme", "action": "add",
            "target": "not an address", "reason": "manual"})
        assert bad.status_code == 400 and "Not an address" in bad.text
    async with harness.gateway.engine.connect() as conn:
        searched = (await conn.execute(sa.select(audit_events.c.detail).where(
            audit_events.c.event == "suppression.searched"))).scalars().all()
    assert searched and "bob" not in str(searched)  # audited, by digest


async def test_gateway_user_add_prints_the_totp_uri_and_list_shows_the_account(harness):
    added = await gw(harness, "user", "add", "carol", "--role", "compliance", "--tenant",
                     "acme")
    assert added.returncode == 0, added.stderr
    assert "totp: otpauth://totp/" in added.stdout and "password: " in added.stdout
    listed = await gw(harness, "user", "list")
    assert "carol\tcompliance\tacme\tlast sign-in never" in listed.stdout
    again = await gw(harness, "user", "add", "carol", "--role", "ops")
    assert again.returncode != 0 and "exists already" in again.stderr


def _add_form(page: str) -> str:
    return page.split("<h2>Add</h2>", 1)[1].split("</form>", 1)[0]


async def test_adding_a_suppression_defaults_to_the_reviewers_tenant_and_manual(harness):
    """Issue 27: "Add" no longer defaults to the global list with reason `unsubscribe`. A
    tenant's reviewer adds to that tenant's list; global is offered only to a compliance
    reviewer bound to no tenant, and never preselected; the reason starts at `manual`."""
    bound = await add_reviewer(harness, "tara", role="ops", tenant="acme")
    ops = await add_reviewer(harness, "otto", role="ops")
    compliance = await add_reviewer(harness, "cora", role="compliance")

    async with await signed_in(harness, "tara", bound) as client:
        page = await client.get("/review/suppressions")
        form = _add_form(page.text)
        assert '<option value="acme" selected>' in form and "global" not in form
        assert "<option selected>manual</option>" in form
        added = await client.post("/review/suppressions", data={
            "csrf": csrf_of(page.text), "list": "acme", "action": "add",
            "target": "t@example.org", "reason": "manual"})
        assert added.status_code == 303

    async with await signed_in(harness, "otto", ops) as client:
        page = await client.get("/review/suppressions")
        assert "global" not in _add_form(page.text)
        refused = await client.post("/review/suppressions", data={
            "csrf": csrf_of(page.text), "list": "global", "action": "add",
            "target": "o@example.org", "reason": "manual"})
        assert refused.status_code == 400
        assert "Only a compliance reviewer adds to the global list." in refused.text

    async with await signed_in(harness, "cora", compliance) as client:
        page = await client.get("/review/suppressions")
        form = _add_form(page.text)
        assert '<option value="" selected disabled>Choose a list</option>' in form
        assert '<option value="global">' in form  # offered, not chosen
        unchosen = await client.post("/review/suppressions", data={
            "csrf": csrf_of(page.text), "list": "", "action": "add",
            "target": "c@example.org", "reason": "manual"})
        assert unchosen.status_code == 400 and "Choose the list to add to." in unchosen.text
        chosen = await client.post("/review/suppressions", data={
            "csrf": csrf_of(page.text), "list": "global", "action": "add",
            "target": "c@example.org", "reason": "manual"})
        assert chosen.status_code == 303

    suppressions = harness.gateway.suppressions
    assert await suppressions.check(1, "t@example.org") is not None  # acme's list
    assert await suppressions.check(1, "o@example.org") is None  # refused: nowhere
    assert (await suppressions.check(1, "c@example.org")).scope == GLOBAL


def _browsed(page: str) -> list[str]:
    table = page.split('aria-label="Browsed entries"', 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr><td>([^<]+)</td>", table)


async def test_a_suppression_list_is_browsed_by_page_filter_and_prefix_and_audited(harness):
    """Issue 27: a reviewer browses a list (not only searches one address): 50 entries a
    page, filters on reason, source and date, a prefix of an address or of its domain; the
    filters travel in POST bodies (a prefix may be an address), each page read is audited
    and a prefix is recorded by its digest only."""
    from gateway.optout.suppressions import Actor
    from suppression.entries import Reason as R

    suppressions = harness.gateway.suppressions
    acme = (await harness.store().tenant("acme")).id
    operator = Actor("test")
    for i in range(110):
        await suppressions.add(operator, acme, f"user{i:03d}@example.org", R.MANUAL, "import")
    await suppressions.add(operator, acme, "bob@example.org", R.BOUNCE, "upstream")
    await suppressions.add(operator, acme, "x@bobcat.example", R.COMPLAINT, "feedback")
    await suppressions.add(operator, acme, "bobby.example", R.MANUAL, "review")  # a domain
    await suppressions.add(operator, 0, "global-only@example.org", R.MANUAL, "review")
    secret = await add_reviewer(harness, "bea", role="compliance")
    async with await signed_in(harness, "bea", secret) as client:
        first = await client.get("/review/suppressions?list=acme")
        shown = _browsed(first.text)
        assert len(shown) == 50 and shown[0] == "user000@example.org"
        assert "global-only@example.org" not in first.text
        csrf = csrf_of(first.text)

        async def browse(**fields: str) -> list[str]:
            page = await client.post("/review/suppressions", data={
                "csrf": csrf, "list": "acme", "action": "browse", **fields})
            assert page.status_code == 200, page.text
            return _browsed(page.text)

        after = re.search(r'name="after" value="(\d+)"', first.text).group(1)
        second = await browse(after=after)
        assert second[0] == "user050@example.org" and len(second) == 50
        assert sorted(await browse(prefix="bob")) == [
            "bob@example.org", "bobby.example", "x@bobcat.example"]
        assert await browse(prefix="BOB@") == ["bob@example.org"]
        assert await browse(reason_filter="bounce") == ["bob@example.org"]
        assert await browse(source="feedback") == ["x@bobcat.example"]
        today = datetime.now(UTC).strftime("%Y-%m-%d")
        tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d")
        assert len(await browse(**{"from": today, "prefix": "bob"})) == 3
        assert await browse(**{"from": tomorrow}) == []
        bad = await client.post("/review/suppressions", data={
            "csrf": csrf, "list": "acme", "action": "browse", "from": "5 Dec"})
        assert "Dates are written YYYY-MM-DD." in bad.text
    async with harness.gateway.engine.connect() as conn:
        browsed = (await conn.execute(sa.select(audit_events.c.detail).where(
            audit_events.c.event == "suppression.browsed"))).scalars().all()
    assert len(browsed) >= 8
    assert any(d.get("prefix_digest") for d in browsed)
    assert "bob" not in str(browsed)
