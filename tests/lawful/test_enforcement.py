"""The table enforced at RCPT for a tenant that asks for it: 550 5.7.1 naming the policy,
its version and the decision — never the person's data — unless a record or the tenant's
default gives a basis; a consent record lifts require-consent; a new version applies without
a restart; a tenant that has not asked is untouched."""

from __future__ import annotations

import asyncio
import smtplib
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from gateway.lawful import records
from gateway.lawful.index import RecordIndex
from gateway.lawful.records import Basis, Consent
from gateway.lawful.signals import Attributes
from gateway.lawful.table import Kind
from gateway.lawful.versions import SHIPPED
from gateway.store.schema import audit_events, pending_copies
from tests.support import messages
from tests.support.cli import gw
from tests.support.lawful import give_notice

SHIPPED_US = '[countries.US]\nnamed = "allow"\ngeneric = "allow"\nsole_trader = "allow"'


async def rcpt(h, recipient: str) -> tuple[int, str]:
    try:
        await h.send(messages.simple(to=recipient), [recipient])
    except smtplib.SMTPRecipientsRefused as exc:
        code, text = exc.recipients[recipient]
        return code, text.decode()
    return 250, ""


async def enforce(h, default: str = "") -> None:
    assert (await gw(h, "tenant", "set", "acme", "lawful_basis", "enforce")).returncode == 0
    if default:
        assert (await gw(h, "tenant", "set", "acme", "lawful_default", default)
                ).returncode == 0
    await h.refresh()


async def test_a_recipient_without_a_basis_is_refused_naming_only_the_policy(harness):
    h = harness
    assert await rcpt(h, "anna.schmidt@firma.de") == (250, "")  # not enforced yet
    await enforce(h)
    code, text = await rcpt(h, "anna.schmidt@firma.de")
    assert code == 550 and text == ("5.7.1 Not sent: no lawful basis for this recipient under "
                                    "ocg-default v1 (require-consent)")
    assert "anna" not in text and "DE" not in text and "firma" not in text
    assert await rcpt(h, "ceo@startup.com") == (550, text)  # a gTLD says nothing: default row
    assert await rcpt(h, "bob@company.us") == (250, "")  # CAN-SPAM: allow


async def test_records_consent_and_the_tenants_default_give_a_basis(harness):
    h = harness
    await enforce(h)
    await give_notice(h)  # FR named, and the default below: allow-with-notice
    tenant = (await h.store().tenant("acme")).id
    anna, marie = "anna.schmidt@firma.de", "marie@societe.fr"
    async with h.gateway.engine.begin() as conn:
        await records.add_consent(conn, Consent(
            tenant, h.gateway.digest(anna), Basis.EXPRESS,
            datetime.now(UTC) - timedelta(days=1), "webform", "double opt-in", "form 17"), "t")
        await records.put_attributes(conn, tenant, h.gateway.digest(marie),
                                     Attributes("FR", Kind.NAMED), "csv", "t")
    await h.gateway.lawful.index.refresh()  # what every node does every settings_refresh
    assert await rcpt(h, anna) == (250, "")  # consent lifts require-consent
    assert await rcpt(h, marie) == (250, "")  # FR named: allow-with-notice
    assert (await rcpt(h, "pierre@artisan.fr"))[0] == 550  # FR, kind unknown: the strictest
    assert (await rcpt(h, "ceo@startup.com"))[0] == 550
    await enforce(h, default="allow-with-notice")
    assert await rcpt(h, "ceo@startup.com") == (250, "")
    assert (await rcpt(h, "office@firma.at"))[0] == 550  # a ccTLD beats the tenant default


async def test_a_record_another_node_wrote_counts_once_the_index_has_read_it(harness):
    """Until its node reads it, a record another node wrote is not used: its person can
    only be refused (never sent to on a basis that is not there)."""
    h = harness
    other_node = RecordIndex(h.gateway.engine)
    await other_node.refresh()
    digest = h.gateway.digest("anna.schmidt@firma.de")
    async with h.gateway.engine.begin() as conn:
        await records.add_consent(conn, Consent(1, digest, Basis.EXPRESS,
                                                datetime.now(UTC), "webform"), "t")
    assert other_node.held(1, digest) is None
    assert await other_node.refresh() == 1
    held = other_node.held(1, digest)
    assert held is not None and held[0] is None and [c.basis for c in held[1]] == [
        Basis.EXPRESS]
    assert other_node.held(2, digest) is None  # another tenant's person


async def test_a_new_version_applies_without_a_restart_and_names_itself(harness, tmp_path):
    h = harness
    await enforce(h)
    assert await rcpt(h, "bob@company.us") == (250, "")
    stricter = tmp_path / "counsel.toml"
    text = SHIPPED.read_text()
    stricter.write_text(text.replace(SHIPPED_US, SHIPPED_US.replace('"allow"',
                                                                    '"require-consent"')))
    assert (await gw(h, "policy", "load", str(stricter))).returncode == 0
    await h.gateway.policies.refresh()  # what every node does every settings_refresh
    code, said = await rcpt(h, "bob@company.us")
    assert code == 550 and said.endswith("under ocg-default v2 (require-consent)")


@pytest.mark.parametrize("mode", ["maybe", "ENFORCE"])
async def test_a_bad_mode_is_refused(harness, mode):
    refused = await gw(harness, "tenant", "set", "acme", "lawful_basis", mode)
    assert refused.returncode == 5 and "off or enforce" in refused.stderr


async def test_accept_and_report_turns_the_refusal_into_a_report(harness):
    """For tools that stop a run on one 550: 250 at RCPT, never sent, a delivery report to
    the sender naming the policy, a `copy.suppressed` row with the check."""
    h = harness
    await enforce(h)
    assert (await gw(h, "tenant", "set", "acme", "suppressed_recipients",
                     "accept-and-report")).returncode == 0
    await h.refresh()
    before = len(h.sink.received)
    assert await h.send(messages.simple(to="anna.schmidt@firma.de"),
                        ["anna.schmidt@firma.de", "bob@company.us"]) == {}
    assert [r.recipients for r in h.sink.received[before:]] == [["bob@company.us"]]
    async with h.gateway.engine.connect() as conn:
        (row,) = (await conn.execute(sa.select(audit_events).where(
            audit_events.c.event == "copy.suppressed"))).all()
        (report,) = (await conn.execute(sa.select(pending_copies).where(
            pending_copies.c.kind == "dsn"))).all()
    assert row.check_name == "lawful-basis" and "ocg-default v1" in row.detail["reply"]
    assert report.recipient == "sales@acme.example"


async def test_each_copy_records_the_basis_it_was_sent_on(harness):
    h = harness
    await enforce(h)
    tenant = (await h.store().tenant("acme")).id
    async with h.gateway.engine.begin() as conn:
        await records.add_consent(conn, Consent(
            tenant, h.gateway.digest("anna.schmidt@firma.de"), Basis.EXPRESS,
            datetime.now(UTC) - timedelta(days=1), "webform"), "t")
    await h.gateway.lawful.index.refresh()
    assert await h.send(messages.simple(), ["bob@company.us", "anna.schmidt@firma.de"]) == {}
    async with h.gateway.engine.connect() as conn:
        rows = {r.recipient_digest: r.detail["lawful"] for r in await conn.execute(
            sa.select(audit_events).where(audit_events.c.event == "copy.delivered"))}
    assert rows[h.gateway.digest("bob@company.us")] == {
        "policy": "ocg-default v1", "decision": "allow", "source": "cctld"}
    assert rows[h.gateway.digest("anna.schmidt@firma.de")] == {
        "policy": "ocg-default v1", "decision": "require-consent", "source": "cctld",
        "consent": "yes"}


async def test_a_version_published_during_the_transaction_decides_at_send_time(
        harness, tmp_path):
    """RCPT accepted both under v1; v2 is in force when DATA ends: the one it leaves without
    a basis is not sent and is reported; the other is sent."""
    h = harness
    await enforce(h)
    tenant = (await h.store().tenant("acme")).id
    async with h.gateway.engine.begin() as conn:
        await records.add_consent(conn, Consent(
            tenant, h.gateway.digest("carol@company.us"), Basis.EXPRESS,
            datetime.now(UTC) - timedelta(days=1), "webform"), "t")
    await h.gateway.lawful.index.refresh()
    session = await asyncio.to_thread(h.client)  # blocking: it connects at once
    try:
        await asyncio.to_thread(session.mail, "sales@acme.example")
        for person in ("bob@company.us", "carol@company.us"):
            assert (await asyncio.to_thread(session.rcpt, person))[0] == 250
        stricter = tmp_path / "counsel.toml"
        stricter.write_text(SHIPPED.read_text().replace(
            SHIPPED_US, SHIPPED_US.replace('"allow"', '"require-consent"')))
        assert (await gw(h, "policy", "load", str(stricter))).returncode == 0
        await h.gateway.policies.refresh()
        before = len(h.sink.received)
        code, _ = await asyncio.to_thread(session.data, messages.simple())
        assert code == 250
    finally:
        await asyncio.to_thread(session.quit)
    assert [r.recipients for r in h.sink.received[before:]] == [["carol@company.us"]]
    async with h.gateway.engine.connect() as conn:
        (row,) = (await conn.execute(sa.select(audit_events).where(
            audit_events.c.event == "copy.suppressed"))).all()
        (copy,) = (await conn.execute(sa.select(audit_events).where(
            audit_events.c.event == "copy.delivered"))).all()
    assert row.check_name == "lawful-basis" and "ocg-default v2" in row.detail["reply"]
    assert row.recipient_digest == h.gateway.digest("bob@company.us")
    assert copy.detail["lawful"]["policy"] == "ocg-default v2"
