"""The evidence pack against a seeded trail: a month of audit rows written through the
gateway's own audit writer (its hash chain), for two tenants, with rows before and after the
period. Every figure is checked against counts this test makes from its own seed list — not
from the pack's code. Then the pack is regenerated after the other stores are purged and
after late rows land (same hash), and tampered with (a figure, the signature, the trail)."""

from __future__ import annotations

import json
import random
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.audit import trail as audit
from gateway.optout import receipts
from gateway.reports import pack as packs
from gateway.reports.evidence import digest
from gateway.store.schema import audit_batches, audit_events
from tests.conftest import running_harness
from tests.support.admin_api import admin, key
from tests.support.browser import chromium, violations
from tests.support.cli import gw
from tests.support.review import add_reviewer, admin_base, sign_in

START = datetime(2026, 10, 1, tzinfo=UTC)
END = datetime(2026, 11, 1, tzinfo=UTC)
PROVIDERS = {"google": "gmail.com", "microsoft": "outlook.com", "yahoo": "yahoo.com",
             "apple": "icloud.com", "other": "example.org"}
REPLIES = {"delivered": "250 2.0.0 OK", "hard": "550 5.1.1 No such user",
           "block": "550 5.7.515 Access denied", "other": "554 5.3.0 Other"}
LAWFUL = [("allow", "cctld"), ("allow-with-notice", "record"),
          ("allow-with-notice", "tenant-default"), ("require-consent", "record")]


@dataclass
class Seed:
    """What was written, kept by the test to compute the expected figures itself."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    copies: Counter[tuple[str, str]] = field(default_factory=Counter)  # (provider, outcome)
    sent_lawful: Counter[tuple[str, str]] = field(default_factory=Counter)
    reports: Counter[tuple[str, str]] = field(default_factory=Counter)  # (provider, reason)
    channels: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    review: Counter[tuple[str, str]] = field(default_factory=Counter)
    dsr: list[tuple[str, float]] = field(default_factory=list)
    dsr_everywhere: list[tuple[str, float]] = field(default_factory=list)  # no tenant
    lawful_refused: Counter[str] = field(default_factory=Counter)


def _row(event: str, at: datetime, tenant_id: int | None = 1, **kw: Any) -> dict[str, Any]:
    row = audit.row(event, actor=kw.pop("actor", "relay"), tenant_id=tenant_id, **kw)
    row["at"] = at
    return row


def seed_month(rng: random.Random, tenant_id: int = 1, count: int = 600) -> Seed:
    seed = Seed()
    span = (END - START).total_seconds()

    def when() -> datetime:
        return START + timedelta(seconds=rng.uniform(0, span - 3600))

    delivered: list[tuple[str, str, str]] = []
    for n in range(count):
        provider = rng.choice(list(PROVIDERS))
        outcome = rng.choices(["delivered", "hard", "block", "other"], [90, 5, 3, 2])[0]
        at, queue_id, digest_ = when(), f"Q{tenant_id}x{n}", f"{n:064x}"
        extra: dict[str, Any] = {}
        if outcome == "delivered" and n % 3:
            decision, source = rng.choice(LAWFUL)
            extra["lawful"] = {"policy": "ocg-default v1", "decision": decision,
                               "source": source}
            seed.sent_lawful[(decision, source)] += 1
        event = "copy.delivered" if outcome == "delivered" else "copy.refused"
        seed.rows.append(_row(event, at, tenant_id, queue_id=queue_id,
                              recipient_digest=digest_, reply=REPLIES[outcome],
                              provider=provider, **extra))
        seed.copies[(provider, outcome)] += 1
        if outcome == "delivered":
            delivered.append((queue_id, digest_, provider))
    for queue_id, digest_, provider in rng.sample(delivered, 40):
        reason = rng.choice(["bounce", "complaint"])
        seed.rows.append(_row("optout.automatic", when(), tenant_id, actor="feedback:dsn",
                              digest="ab" * 16, entry_reason=reason, queue_id=queue_id,
                              recipient_digest=digest_, source="dsn"))
        seed.reports[(provider, reason)] += 1
    for queue_id, digest_, _ in delivered[:3]:  # soft bounces that added up: not hard ones
        seed.rows.append(_row("optout.automatic", when(), tenant_id, actor="feedback:dsn",
                              digest="cd" * 16, entry_reason="bounce", queue_id=queue_id,
                              recipient_digest=digest_, source="dsn",
                              rule="dsn:4.2.2:soft-3"))
    for n in range(30):
        received = when()
        took = rng.uniform(5, 900)
        channel = rng.choice(["one-click", "mailto", "api", "page"])
        seed.rows.append(_row(
            "optout.effective", received + timedelta(milliseconds=took), tenant_id,
            actor="receipts", recipient_digest=f"{10**6 + n:064x}", channel=channel,
            received_at=receipts.iso(received),
            effective_at=receipts.iso(received + timedelta(milliseconds=took))))
        seed.channels[channel] += 1
        seed.latencies.append(round(took, 3))
    for n, check in enumerate(["content", "content", "links", "lawful-basis", "links"]):
        at = when()
        seed.rows.append(_row("message.held", at, tenant_id, queue_id=f"H{tenant_id}x{n}",
                              check_name=check, kept=True))
        seed.review[(check, "held")] += 1
        decision = ["released", "discarded", None][n % 3]
        if decision:
            seed.rows.append(_row(f"held.{decision}", at + timedelta(minutes=5), tenant_id,
                                  actor="review:ann", queue_id=f"H{tenant_id}x{n}",
                                  **({"check": check} if decision == "discarded" else {})))
            seed.review[(check, decision)] += 1
    seed.rows.append(_row("message.refused", when(), tenant_id, queue_id="R1",
                          check_name="content", kept=True))
    seed.review[("content", "refused_kept")] += 1
    for n in range(4):
        seed.rows.append(_row("recipient.refused", when(), tenant_id,
                              check_name="lawful-basis", recipient_digest=f"{n:060x}ffff"))
        seed.lawful_refused["at_rcpt"] += 1
    seed.rows.append(_row("message.refused", when(), tenant_id, check_name="lawful-basis",
                          lawful=[{"decision": "require-consent", "source": "cctld",
                                   "policy": "ocg-default v1"},
                                  {"decision": "require-consent", "source": "record",
                                   "policy": "ocg-default v1", "consent": "yes"}]))
    seed.lawful_refused["at_send_time"] += 1
    for n in range(3):
        done = when()
        took = rng.uniform(60, 86400 * 5)
        kind = ["subject.exported", "subject.erased"][n % 2]
        seed.rows.append(_row(kind, done, tenant_id if n else None, actor="cli:dpo",
                              recipient_digest=f"{n:064x}",
                              requested_at=(done - timedelta(seconds=took)).isoformat()))
        (seed.dsr if n else seed.dsr_everywhere).append(
            ("export" if kind == "subject.exported" else "erasure", round(took, 3)))
    seed.rows.append(_row("breaker.tripped", when(), tenant_id, actor="breakers",
                          scope="domain", name="acme.example", metric="complaint",
                          rate=0.004, window="24h", breaker=1, generation=0))
    seed.rows.append(_row("breaker.resumed", END - timedelta(hours=2), tenant_id,
                          actor="review:ann", scope="domain", name="acme.example",
                          breaker=1, generation=1))
    # asked for in the last second of the period, in force just after it: received, not
    # honored, in this period
    asked = END - timedelta(milliseconds=300)
    seed.rows.append(_row("optout.effective", END + timedelta(milliseconds=200), tenant_id,
                          actor="receipts", recipient_digest=f"{2 * 10**6:064x}",
                          channel="one-click", received_at=receipts.iso(asked),
                          effective_at=receipts.iso(END + timedelta(milliseconds=200))))
    if tenant_id == 1:  # the gateway's own rows, once
        seed.rows.append(_row("key.rotated", when(), None, actor="cli:ops",
                              purpose="receipt-signing", version=2))
        seed.rows.append(_row("policy.published", START - timedelta(days=40), None,
                              actor="gateway:shipped", policy_id="ocg-default", version=1,
                              digest="d1" * 32))
        seed.rows.append(_row("policy.published", when(), None, actor="cli:counsel",
                              policy_id="ocg-default", version=2, digest="d2" * 32))
        seed.rows.append(_row("retention.purged", when(), None, actor="retention",
                              counts={"opens": 12, "queue": 3}))
    # outside the period: must not count
    seed.rows.append(_row("copy.delivered", START - timedelta(seconds=1), tenant_id,
                          queue_id="before", reply=REPLIES["delivered"], provider="google"))
    seed.rows.append(_row("copy.delivered", END, tenant_id, queue_id="after",
                          reply=REPLIES["delivered"], provider="google"))
    return seed


async def write_seed(h: Any, rows: list[dict[str, Any]]) -> None:
    """Through the audit writer, in batches; each batch dated as its rows (written then)."""
    rows = sorted(rows, key=lambda r: r["at"])
    for n in range(0, len(rows), 200):
        part = rows[n:n + 200]
        async with h.gateway.engine.begin() as conn:
            await audit.write(conn, part)
            newest = (await conn.execute(sa.select(sa.func.max(audit_batches.c.id)))).scalar()
            await conn.execute(audit_batches.update().where(audit_batches.c.id == newest)
                               .values(at=part[-1]["at"]))


def expected(seed: Seed) -> dict[str, Any]:
    delivery = {}
    for provider in PROVIDERS:
        c = {o: seed.copies[(provider, o)] for o in REPLIES}
        relayed = sum(c.values())
        hard = c["hard"] + seed.reports[(provider, "bounce")]
        complaints = seed.reports[(provider, "complaint")]
        delivery[provider] = {
            "relayed": relayed, "delivered": c["delivered"], "hard_bounces": hard,
            "policy_blocks": c["block"], "complaints": complaints,
            "hard_bounce_rate": round(hard / relayed, 6) if relayed else 0.0,
            "complaint_rate": round(complaints / c["delivered"], 6) if c["delivered"] else 0.0}
    latencies = sorted(seed.latencies)
    return {"delivery": delivery, "channels": dict(seed.channels),
            "p50": latencies[(len(latencies) + 1) // 2 - 1], "max": latencies[-1]}


async def test_every_figure_matches_what_was_seeded(harness, tmp_path: Path):
    h = harness
    seed = seed_month(random.Random(31))
    other = seed_month(random.Random(32), tenant_id=2, count=200)  # another tenant's month
    await write_seed(h, seed.rows + other.rows)
    out = tmp_path / "pack"
    done = await gw(h, "report", "--tenant", "acme", "--from", "2026-10-01", "--to",
                    "2026-11-01", "--out", str(out))
    assert done.returncode == 0, done.stderr
    pack = json.loads((out / "evidence-acme-2026-10-01-2026-11-01.json").read_text())
    figures = pack["document"]["figures"]
    want = expected(seed)

    for provider, cell in want["delivery"].items():
        got = figures["delivery"][provider]
        assert {k: got[k] for k in cell} == cell, provider
    o = figures["opt_outs"]
    assert o["received"] == 31 and o["honored"] == 30  # one asked at the end, in force after
    assert o["by_channel"] == want["channels"]
    assert abs(o["enforcement_ms"]["p50"] - want["p50"]) <= 0.06
    assert abs(o["enforcement_ms"]["max"] - want["max"]) <= 0.06
    assert o["copies_relayed_after_opt_out"] == 0

    sent = {(d, s): n for d, by in figures["lawful_basis"]["sent"].items()
            for s, n in by.items()}
    assert sent == dict(seed.sent_lawful)
    assert figures["lawful_basis"]["refused"] == {"at_rcpt": 4, "at_send_time": 1,
                                                  "at_release": 0}
    review = {(check, k): n for check, c in figures["review"].items()
              for k, n in c.items() if n}
    assert review == dict(seed.review)
    assert sorted((r["kind"], r["seconds"]) for r in figures["data_subject_requests"]) == \
        sorted(seed.dsr + seed.dsr_everywhere + other.dsr_everywhere)  # a request for
    # every tenant (an operator's erasure) is in every tenant's pack
    assert [b["event"] for b in figures["breakers"]] == ["tripped", "resumed"]
    assert [(k["event"], k["version"]) for k in figures["keys"]
            if k["purpose"] == "receipt-signing" and k["event"] == "key.rotated"] == \
        [("key.rotated", 2)]
    tables = figures["policies"]["lawful_tables"]
    assert [(t["version"], t["in_force_at_start"]) for t in tables] == [(1, True), (2, False)]
    assert figures["retention_purges"][0]["counts"] == {"opens": 12, "queue": 3}
    assert pack["document"]["audit"]["settled"] is True

    # the signature, offline, with the published keys; then the whole recheck
    keys = tmp_path / "keys.json"
    keys.write_text((await gw(h, "receipt", "key")).stdout)
    path = out / "evidence-acme-2026-10-01-2026-11-01.json"
    offline = await gw(h, "report", "verify", str(path), "--keys", str(keys), "--offline")
    assert offline.returncode == 0, offline.stderr
    checked = await gw(h, "report", "verify", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "the same" in checked.stderr


async def test_a_closed_period_hashes_the_same_after_purges_and_late_rows(harness):
    h = harness
    await write_seed(h, seed_month(random.Random(33)).rows)
    start, end = START, END
    async with h.gateway.engine.connect() as conn:
        first = await packs.generate(conn, 1, "acme", start, end)
    # every other store purged as if 200 days had passed (the audit trail keeps 730)
    purged = await h.gateway.retention.run_once(datetime.now(UTC) + timedelta(days=200))
    # and a row about October written now (a late report): after the heads, not counted
    async with h.gateway.engine.begin() as conn:
        await audit.write(conn, [_row("copy.delivered", END - timedelta(days=1), 1,
                                      queue_id="late", reply=REPLIES["delivered"],
                                      provider="google")])
    async with h.gateway.engine.connect() as conn:
        again = await packs.generate(conn, 1, "acme", start, end)
    assert purged.total >= 0 and again["audit"]["settled"] is True
    assert digest(again) == digest(first)


async def test_real_traffic_the_pdf_and_tampering(harness, tmp_path: Path):
    """Mail sent through the gateway, an opt-out by one-click POST, an erasure asked for an
    hour earlier: the pack says so, its PDF renders, it verifies after every other store
    is purged, and each kind of tampering is caught and named."""
    from tests.support import messages
    from tests.support.unsubscribe import public, token_for

    h = harness
    for to in ("ann@gmail.com", "bo@outlook.com", "cy@example.org"):
        assert await h.send(messages.simple(to=to), [to]) == {}
    token = await token_for(h, "cy@example.org")
    async with public(h) as client:
        assert (await client.post(f"/u/{token}")).status_code == 200
    asked = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert (await gw(h, "subject", "erase", "ann@gmail.com", "--tenant", "acme",
                     "--evidence", "ticket 7", "--requested", asked)).returncode == 0
    out = tmp_path / "pack"
    made = await gw(h, "report", "--tenant", "acme", "--out", str(out))
    assert made.returncode == 0, made.stderr
    path = next(out.glob("*.json"))
    pack = json.loads(path.read_text())
    figures = pack["document"]["figures"]
    assert {p: figures["delivery"][p]["delivered"] for p in ("google", "microsoft", "other")} \
        == {"google": 1, "microsoft": 1, "other": 2}  # token_for mails cy once more
    assert figures["opt_outs"]["by_channel"] == {"one-click": 1}
    assert figures["opt_outs"]["copies_relayed_after_opt_out"] == 0
    erasure = [r for r in figures["data_subject_requests"] if r["kind"] == "erasure"]
    assert len(erasure) == 1 and 3599 < erasure[0]["seconds"] < 3700
    assert pack["document"]["audit"]["heads"]

    # the PDF: pages rendered by poppler, and the figures in its text
    pdf = path.with_suffix(".pdf")
    assert pdf.read_bytes().startswith(b"%PDF-")
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(pdf), str(tmp_path / "page")],
                   check=True, timeout=60)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 2 and all(p.stat().st_size > 2000 for p in pages)
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True, timeout=60).stdout
    assert "Compliance evidence pack" in text and "Tenant: acme" in text
    assert pack["sha256"] in text.replace("\n", " ")
    assert "Copies relayed after an opt-out" in text and "one-click" in text

    # still verifies once every other store is purged
    await h.gateway.retention.run_once(datetime.now(UTC) + timedelta(days=200))
    checked = await gw(h, "report", "verify", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr

    # a figure changed: the hash no longer matches
    forged = json.loads(path.read_text())
    forged["document"]["figures"]["opt_outs"]["copies_relayed_after_opt_out"] = 0
    forged["document"]["figures"]["delivery"]["google"]["delivered"] = 9
    bad = tmp_path / "forged.json"
    bad.write_text(json.dumps(forged))
    done = await gw(h, "report", "verify", str(bad))
    assert done.returncode == 5 and "was changed" in done.stderr
    # ... and hashed again: the signature no longer holds
    forged["sha256"] = digest(forged["document"])
    bad.write_text(json.dumps(forged))
    done = await gw(h, "report", "verify", str(bad))
    assert done.returncode == 5 and "signature" in done.stderr
    # the trail changed under a signed pack: the figure that moved is named
    async with h.gateway.engine.begin() as conn:
        await conn.execute(audit_events.delete().where(
            audit_events.c.event == "copy.delivered",
            audit_events.c.detail["provider"].as_string() == "microsoft"))
    done = await gw(h, "report", "verify", str(path))
    assert done.returncode == 5
    assert "differs: figures.delivery.microsoft.delivered: 1 in the pack, 0 in the trail" \
        in done.stdout
    # not a pack at all
    bad.write_text("{\"document\": 1}")
    done = await gw(h, "report", "verify", str(bad))
    assert done.returncode == 5 and "Traceback" not in done.stderr


async def test_cli_api_and_review_page_give_the_same_pack(harness, tmp_path: Path):
    """A settled period: the CLI, the admin API and the review page's download hash the
    same; the API's verify route takes a pack and names what fails; a key bound to another
    tenant reads nothing."""
    h = harness
    await write_seed(h, seed_month(random.Random(34)).rows)
    out = tmp_path / "pack"
    assert (await gw(h, "report", "--tenant", "acme", "--from", "2026-10-01", "--to",
                     "2026-11-01", "--out", str(out))).returncode == 0
    by_cli = json.loads(next(out.glob("*.json")).read_text())
    period_ = {"from": "2026-10-01", "to": "2026-11-01"}
    async with admin(h, await key(h, "compliance")) as client:
        got = await client.get("/api/v1/tenants/acme/evidence-pack", params=period_)
        assert got.status_code == 200, got.text
        by_api = got.json()
        assert by_api["sha256"] == by_cli["sha256"]
        assert by_api["document"] == by_cli["document"]
        pdf = await client.get("/api/v1/tenants/acme/evidence-pack",
                               params={**period_, "pdf": "true"})
        assert pdf.headers["content-type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF-")
        checked = (await client.post("/api/v1/evidence-pack/verify", json=by_cli)).json()
        assert checked["valid"] is True and checked["sha256"] == by_cli["sha256"]
        by_cli["document"]["figures"]["opt_outs"]["received"] += 1
        checked = (await client.post("/api/v1/evidence-pack/verify", json=by_cli)).json()
        assert checked["valid"] is False and "was changed" in checked["reason"]
        bad = await client.get("/api/v1/tenants/acme/evidence-pack", params={"from": "soon"})
        assert bad.status_code in (400, 422) and "--from" in bad.text
    async with admin(h, await key(h, "compliance", tenant="other")) as client:
        assert (await client.get("/api/v1/tenants/acme/evidence-pack")).status_code == 404
        assert (await client.post("/api/v1/evidence-pack/verify",
                                  json=by_api)).status_code == 404
    async with admin(h, await key(h, "ops")) as client:  # compliance evidence: not ops
        assert (await client.get("/api/v1/tenants/acme/evidence-pack")).status_code == 403


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_the_review_page_shows_the_pack_and_is_axe_clean(tmp_path, pki, database):
    async with running_harness(tmp_path, pki, database) as h:
        await write_seed(h, seed_month(random.Random(35)).rows)
        secret = await add_reviewer(h, "dora", "compliance")
        async with admin(h, await key(h, "compliance")) as client:
            expected_sha = (await client.get("/api/v1/tenants/acme/evidence-pack", params={
                "from": "2026-10-01", "to": "2026-11-01"})).json()["sha256"]
        async with chromium() as browser:
            page = await browser.new_page()
            await sign_in(page, h, "dora", secret)
            await page.get_by_role("link", name="Evidence pack").click()
            await page.get_by_label("Tenant").select_option("acme")
            await page.get_by_label("From").fill("2026-10-01")
            await page.get_by_label("To (excluded)").fill("2026-11-01")
            await page.get_by_role("button", name="Show").click()
            await page.wait_for_url("**/review/evidence-pack?tenant=acme*")
            assert expected_sha in await page.content()
            relayed = page.get_by_role("row").filter(has_text="Copies relayed after an opt-out")
            assert (await relayed.inner_text()).split()[-1] == "0"
            assert await page.locator("svg[role=img]").count() >= 4
            assert await violations(page) == []
            href = await page.get_by_role("link", name="the signed JSON").get_attribute("href")
            download = await page.request.get(f"{admin_base(h)}/review/evidence-pack{href}")
            assert download.ok and (await download.json())["sha256"] == expected_sha


async def test_a_request_time_in_the_future_or_unreadable_is_refused(harness):
    h = harness
    done = await gw(h, "subject", "erase", "ann@example.org", "--evidence", "t-1",
                    "--requested", "2999-01-01")
    assert done.returncode == 5 and "future" in done.stderr and "Traceback" not in done.stderr
    done = await gw(h, "subject", "export", "ann@example.org", "--requested", "last week")
    assert done.returncode == 5 and "--requested must be a date" in done.stderr
    async with admin(h, await key(h, "compliance")) as client:
        answer = await client.post("/api/v1/subjects/export", json={
            "address": "ann@example.org", "requested_at": "2999-01-01"})
        assert answer.status_code in (400, 422) and "future" in answer.text
        answer = await client.post("/api/v1/subjects/export", json={
            "address": "ann@example.org", "requested_at": "2026-12-01T10:00:00Z"})
        assert answer.status_code == 200
    async with h.gateway.engine.connect() as conn:
        asked = (await conn.execute(sa.select(audit_events.c.detail).where(
            audit_events.c.event == "subject.exported"))).scalar_one()["requested_at"]
    assert asked.startswith("2026-12-01T10:00:00")
