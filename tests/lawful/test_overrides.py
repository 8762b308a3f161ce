"""A tenant's own rules over the operator's table, tried as a tenant that wants to be laxer
than its operator would: stricter entries decide (and say so), laxer ones change nothing."""

from __future__ import annotations

import smtplib

import pytest
import sqlalchemy as sa

from gateway.directory.lawful_overrides import parse, revision
from gateway.errors import InvalidValue
from gateway.store.schema import audit_events
from tests.support import messages
from tests.support.cli import gw
from tests.support.lawful import give_notice

BOB, ANNA = "bob@company.us", "anna.schmidt@firma.de"


def test_rules_read_as_a_tenant_writes_them():
    assert parse("GB=require-consent, fr.generic=deny; US.sole-trader=allow-with-notice") == {
        ("GB", ""): "require-consent", ("FR", "generic"): "deny",
        ("US", "sole_trader"): "allow-with-notice"}
    assert parse("UK=deny") == {("GB", ""): "deny"}
    assert revision("GB=deny, fr.generic=allow") == revision(
        "FR.generic=allow UK=deny") != revision("GB=deny")


@pytest.mark.parametrize("text, says", [
    ("GB", "COUNTRY[.kind]=decision"), ("Germany=deny", "alpha-2"),
    ("GB.freelancer=deny", "named, generic or sole-trader"), ("GB=maybe", "one of allow"),
])
def test_a_bad_rule_is_refused_naming_it(text, says):
    with pytest.raises(InvalidValue, match=says.replace("[", r"\[").replace(".", r"\.")):
        parse(text)


async def rules(h, text: str) -> None:
    done = await gw(h, "tenant", "set", "acme", "lawful_overrides", text)
    assert done.returncode == 0, done.stderr
    await h.refresh()


async def test_a_stricter_rule_decides_and_a_laxer_one_changes_nothing(harness):
    h = harness
    assert (await gw(h, "tenant", "set", "acme", "lawful_basis", "enforce")).returncode == 0
    await give_notice(h)
    await rules(h, "US=require-consent DE=allow")
    refused = await gw(h, "tenant", "set", "acme", "lawful_overrides", "US=perhaps")
    assert refused.returncode == 5 and "one of allow" in refused.stderr
    with pytest.raises(smtplib.SMTPRecipientsRefused) as caught:
        await h.send(messages.simple(to=BOB), [BOB])
    assert caught.value.recipients[BOB] == (
        550, b"5.7.1 Not sent: no lawful basis for this recipient under ocg-default v1 + "
             b"tenant rules " + revision("DE=allow US=require-consent").encode()
        + b" (require-consent)")
    # DE=allow is laxer than the table: no effect
    with pytest.raises(smtplib.SMTPRecipientsRefused) as caught:
        await h.send(messages.simple(to=ANNA), [ANNA])
    assert caught.value.recipients[ANNA][1].endswith(
        b"under ocg-default v1 (require-consent)")
    await rules(h, "US.named=allow-with-notice")  # BOB's kind is unknown: the strictest
    assert await h.send(messages.simple(to=BOB), [BOB]) == {}
    async with h.gateway.engine.connect() as conn:
        (row,) = (await conn.execute(sa.select(audit_events).where(
            audit_events.c.event == "copy.delivered"))).all()
    assert row.detail["lawful"] == {"policy": "ocg-default v1 + tenant rules "
                                              + revision("US.named=allow-with-notice"),
                                    "decision": "allow-with-notice", "source": "cctld",
                                    "override": "US", "notice": "yes"}
