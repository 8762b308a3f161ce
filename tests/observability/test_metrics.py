"""`/metrics`, `/readyz` and `/healthz` on the admin listener: what happened is counted by
action, check, reply code and upstream; queue and held depths are read at scrape; no label
carries a tenant, an address or a token."""

from __future__ import annotations

import asyncio
import smtplib

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.optout.suppressions import Actor
from gateway.web import health
from suppression.entries import Reason
from tests.conftest import start_harness
from tests.support import messages
from tests.support.held import send_data

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


async def scrape(h) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{h.gateway.ports.admin}") as c:
        response = await c.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def delta(before, after, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


async def test_metrics_count_what_happened_without_personal_data(harness, monkeypatch):
    before = await scrape(harness)
    await harness.gateway.suppressions.add(Actor("test"), 1, "gone@example.org",
                                           Reason.UNSUBSCRIBE, "test")
    assert await harness.send(messages.simple(), ["a@example.org"]) == {}
    await asyncio.to_thread(send_data, harness, ["b@example.org"])  # held
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        await harness.send(messages.simple(), ["gone@example.org"])
    monkeypatch.setattr(health, "_suppression_counted", 0.0)  # counted once a minute
    after = await scrape(harness)
    assert delta(before, after, "ocg_messages_total", action="relayed", check="") == 1
    assert delta(before, after, "ocg_messages_total", action="held",
                 check="sensitive-data") == 1
    assert delta(before, after, "ocg_messages_total", action="recipient-refused",
                 check="recipient-suppressed") == 1
    assert delta(before, after, "ocg_smtp_replies_total", code="550") == 1
    assert delta(before, after, "ocg_smtp_replies_total", code="250") >= 4
    assert delta(before, after, "ocg_upstream_seconds_count", upstream="sink",
                 outcome="delivered") == 1
    assert delta(before, after, "ocg_check_seconds_count", check="sensitive-data") == 2
    assert after[("ocg_held_messages", ())] == 1
    assert after[("ocg_suppression_entries", ())] >= 1
    assert after[("ocg_tls_certificate_days_left", (("listener", "smtp"),))] > 1
    # a breaker's scope kind is one of four words ("campaign" among them), never a name
    kinds = {v for _, pairs in after for k, v in pairs if k == "kind"}
    assert kinds == {"tenant", "domain", "mailbox", "campaign"}
    labels = " ".join(f"{k}={v}" for _, pairs in after for k, v in pairs if k != "kind")
    for personal in ("@", "acme", "example.org", "campaign"):
        assert personal not in labels, personal


async def test_readyz_reports_its_checks_and_turns_503_when_shutting_down(harness):
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{harness.gateway.ports.admin}") \
            as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        checks = ready.json()["checks"]
        assert checks["database"] == "ok" and checks["vault"] == "ok"
        assert checks["upstreams"]["sink"] == "ok"
        harness.gateway.web.ready = False
        draining = await client.get("/readyz")
        assert draining.status_code == 503 and draining.json()["checks"]["shutting_down"]
        harness.gateway.web.ready = True


async def test_on_stop_readyz_turns_503_before_the_listeners_close(tmp_path, pki, database,
                                                                   monkeypatch):
    # A drain long enough that a loaded CI worker still connects inside it.
    monkeypatch.setenv("GATEWAY__HTTP__DRAIN_SECONDS", "4")
    h = await start_harness(tmp_path, pki, database)
    try:
        admin = f"http://127.0.0.1:{h.gateway.ports.admin}"
        stopping = asyncio.create_task(h.gateway.stop(deadline=10))
        await asyncio.sleep(0.3)
        async with httpx.AsyncClient(base_url=admin) as client:
            assert (await client.get("/readyz")).status_code == 503
        def noop() -> int:
            with smtplib.SMTP("127.0.0.1", h.port, timeout=5) as smtp:
                return smtp.noop()[0]

        assert await asyncio.to_thread(noop) == 250  # accepting while the balancer drains
        await stopping
        with pytest.raises(OSError):
            await asyncio.to_thread(smtplib.SMTP, "127.0.0.1", h.port, timeout=5)
    finally:
        await h.sink.stop()
