"""The tool's own statement of its recipients (`X-Gateway-Recipient: <address>; country=DE;
kind=sole-trader`), tried as a campaign tool and a careless one would send it: decided after
DATA, below the tenant's records; a recipient it leaves without a basis is reported (or the
message refused when it was the only one); never seen upstream; unreadable -> 550 5.6.0."""

from __future__ import annotations

import smtplib

import pytest
import sqlalchemy as sa

from gateway.errors import InvalidValue
from gateway.lawful import records, stated
from gateway.lawful.signals import Attributes
from gateway.lawful.table import Kind
from gateway.store.schema import audit_events
from tests.support import messages
from tests.support.cli import gw

ANNA, BOB = "anna.schmidt@firma.de", "bob@company.us"


def said(*fields: str) -> bytes:
    return messages.simple(extra="".join(f"X-Gateway-Recipient: {f}\r\n" for f in fields))


async def enforce(h, statements: str = "yes") -> None:
    for name, value in (("lawful_basis", "enforce"), ("lawful_statements", statements)):
        assert (await gw(h, "tenant", "set", "acme", name, value)).returncode == 0
    await h.refresh()


async def copies(h) -> dict[str, dict]:
    async with h.gateway.engine.connect() as conn:
        return {r.recipient_digest: {"event": r.event, **r.detail}
                for r in await conn.execute(sa.select(audit_events).where(
                    audit_events.c.event.in_(["copy.delivered", "copy.suppressed"])))}


def test_the_field_reads_as_a_tool_writes_it():
    assert stated.parse([f"<{ANNA}>; country=de; kind=sole-trader",
                         "<Bob@Company.US> ; kind=\"named\""]) == {
        ANNA: Attributes("DE", Kind.SOLE_TRADER), BOB: Attributes(None, Kind.NAMED)}
    assert stated.parse(["<x@y.example>; country=UK"]) == {
        "x@y.example": Attributes("GB", None)}


@pytest.mark.parametrize("field, why", [
    ("anna@firma.de; country=DE", "starts with the recipient's <address>"),
    ("<anna@firma.de>", "states a country, a kind or both"),
    ("<anna@firma.de>; country=Germany", "alpha-2"),
    ("<anna@firma.de>; kind=freelancer", "named, generic or sole-trader"),
    ("<anna@firma.de>; region=EU", "country and kind"),
    ("<anna@firma.de>; country", "name=value"),
])
def test_an_unreadable_field_says_why_without_the_address(field, why):
    with pytest.raises(InvalidValue) as caught:
        stated.parse(["<ok@firma.de>; country=DE", field])
    assert "field 2" in str(caught.value) and why in str(caught.value)
    assert "anna" not in str(caught.value)


async def test_a_statement_decides_after_data_and_never_goes_upstream(harness):
    h = harness
    await enforce(h)
    before = len(h.sink.received)
    # ANNA's .de would be refused at RCPT on its ccTLD; the tool says she is in the US.
    # BOB's .us would be allowed; the tool says he is a German sole trader.
    message = said(f"<{ANNA}>; country=US; kind=named", f"<{BOB}>; country=DE; "
                   "kind=sole-trader", "<nobody@elsewhere.example>; country=FR")
    assert await h.send(message, [ANNA, BOB]) == {}
    (copy,) = h.sink.received[before:]
    assert copy.recipients == [ANNA]
    assert b"x-gateway-recipient" not in copy.content.lower()
    assert b"elsewhere" not in copy.content
    rows = await copies(h)
    assert rows[h.gateway.digest(ANNA)]["lawful"] == {
        "policy": "ocg-default v1", "decision": "allow", "source": "header"}
    refused = rows[h.gateway.digest(BOB)]
    assert refused["event"] == "copy.suppressed" and "(require-consent)" in refused["reply"]


async def test_the_only_recipient_refused_by_a_statement_refuses_the_message(harness):
    h = harness
    await enforce(h)
    before = len(h.sink.received)
    code, text = await h.data_reply([BOB], said(f"<{BOB}>; country=AT"))
    assert code == 550 and text.startswith("5.7.1 Not sent: no lawful basis")
    assert "AT" not in text and "bob" not in text
    assert len(h.sink.received) == before


async def test_the_tenants_record_outranks_the_tools_statement(harness):
    h = harness
    await enforce(h)
    tenant = (await h.store().tenant("acme")).id
    async with h.gateway.engine.begin() as conn:
        await records.put_attributes(conn, tenant, h.gateway.digest(BOB),
                                     Attributes("DE", Kind.NAMED), "csv", "t")
    await h.gateway.lawful.index.refresh()
    with pytest.raises(smtplib.SMTPRecipientsRefused):  # refused at RCPT, on the record
        await h.send(said(f"<{BOB}>; country=US"), [BOB])


async def test_without_statements_the_rcpt_refusal_stands_and_a_statement_can_only_refuse(
        harness):
    h = harness
    await enforce(h, statements="no")
    with pytest.raises(smtplib.SMTPRecipientsRefused):  # the ccTLD decides at RCPT
        await h.send(said(f"<{ANNA}>; country=US"), [ANNA])
    code, _ = await h.data_reply([BOB], said(f"<{BOB}>; country=DE"))
    assert code == 550  # what the tool knows is never overruled by the weaker ccTLD


async def test_an_unreadable_statement_refuses_the_message_for_every_tenant(harness):
    h = harness  # acme does not enforce the table: the field is still the tool's mistake
    before = len(h.sink.received)
    code, text = await h.data_reply([BOB], said(f"<{BOB}>; kind=freelancer"))
    assert (code, text) == (550, "5.6.0 X-Gateway-Recipient field 1: kind is named, "
                                 "generic or sole-trader.")
    assert len(h.sink.received) == before
    assert await h.send(said(f"<{BOB}>; country=DE"), [BOB]) == {}  # not enforced: sent
    assert b"X-Gateway-Recipient" not in h.sink.received[-1].content
