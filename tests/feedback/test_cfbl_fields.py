"""RFC 9477 CFBL fields and Gmail's Feedback-ID on every signed copy: the campaign tool's
own are replaced, the reference names one copy and opens only here, and our DKIM signature
covers and oversigns all three (dkimpy verifies, a field added later breaks it)."""

from __future__ import annotations

import re

import pytest

from gateway.feedback.cfbl import InvalidFeedbackRef
from gateway.limits.breakers import campaign_key
from tests.support import messages
from tests.support.dkim import dkimpy_results
from tests.support.dns import Zone, dns_server

TOOL_FIELDS = (b"CFBL-Address: fbl@tool.example; report=arf\r\n"
               b"CFBL-Feedback-ID: tool-ref-123\r\n"
               b"Feedback-ID: a@example.org:tool:per-recipient\r\n"
               b"X-Campaign-ID: spring-launch\r\n")


@pytest.fixture
async def signing(harness):
    keys = harness.gateway.dkim
    made = await keys.generate("acme.example", "rsa", actor="test")
    await keys.load()
    zone = Zone()
    zone.add_txt(made.dns_name, made.dns_value)
    with dns_server(zone) as port:
        yield harness, port


def fields(copy: bytes, name: bytes) -> list[bytes]:
    head = copy.split(b"\r\n\r\n", 1)[0].replace(b"\r\n ", b" ").replace(b"\r\n\t", b" ")
    return [line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
            if line.lower().startswith(name.lower() + b":")]


def with_tool_fields(raw: bytes) -> bytes:
    return TOOL_FIELDS + raw


async def test_each_copy_carries_its_own_sealed_reference_under_an_aligned_address(signing):
    h, port = signing
    await h.store().set_tenant_setting("acme", "link_domain", "links.acme.example", "t")
    await h.refresh()
    people = ["a@example.org", "b@example.org"]
    assert await h.send(with_tool_fields(messages.simple()), people) == {}
    copies = {c.recipients[0]: c.content for c in h.sink.received}
    refs = h.gateway.feedback_refs
    acme = (await h.store().tenant("acme")).id
    seen = set()
    for person, copy in copies.items():
        assert fields(copy, b"CFBL-Address") == [b"fbl@links.acme.example; report=arf"]
        (value,) = fields(copy, b"CFBL-Feedback-ID")
        assert b"tool-ref" not in value and len(value) < 120
        ref = refs.open(value.decode())
        assert ref.tenant_id == acme and ref.queue_id
        assert ref.names(h.gateway.digest(person))
        assert not ref.names(h.gateway.digest(next(p for p in people if p != person)))
        assert ref.campaign == campaign_key("spring-launch")
        # the breaker scopes a complaint about it counts in besides the mailbox's
        domain = h.gateway.directory.domain_id("acme.example")
        assert ref.scopes() == (f"d{domain}", f"c{acme}.{campaign_key('spring-launch').hex()}")
        assert person.encode() not in value and b"acme" not in value
        seen.add(value)
        # Gmail's Feedback-ID: low cardinality, nothing about the person
        assert fields(copy, b"Feedback-ID") == [
            b"spring-launch:t%d:outreach:ocg" % acme]
        signature = b" ".join(fields(copy, b"DKIM-Signature"))
        names = re.search(rb"h=([^;]+);", signature).group(1).replace(b" ", b"").split(b":")
        for name in (b"cfbl-address", b"cfbl-feedback-id", b"feedback-id"):
            assert names.count(name) == 2  # signed and oversigned
        assert dkimpy_results(copy, port) == [True]
        head, body = copy.split(b"\r\n\r\n", 1)
        forged = head + b"\r\nCFBL-Address: fbl@evil.example; report=arf\r\n\r\n" + body
        assert dkimpy_results(forged, port) == [False]
    assert len(seen) == 2  # one reference per copy


async def test_without_an_aligned_feedback_domain_only_feedback_id_is_added(signing):
    h, _ = signing  # links.gw.test is not under acme.example: no receiver would believe it
    assert await h.send(with_tool_fields(messages.simple()), ["a@example.org"]) == {}
    copy = h.sink.received[0].content
    assert fields(copy, b"CFBL-Address") == [] and fields(copy, b"CFBL-Feedback-ID") == []
    acme = (await h.store().tenant("acme")).id
    assert fields(copy, b"Feedback-ID") == [b"spring-launch:t%d:outreach:ocg" % acme]


async def test_an_unsigned_copy_carries_none_of_the_tools_fields(harness):
    assert await harness.send(with_tool_fields(messages.simple()), ["a@example.org"]) == {}
    copy = harness.sink.received[0].content
    for name in (b"CFBL-Address", b"CFBL-Feedback-ID", b"Feedback-ID"):
        assert fields(copy, name) == []


async def test_a_reference_that_was_not_sealed_here_does_not_open(harness):
    refs = harness.gateway.feedback_refs
    good = refs.seal(7, "Q1", "ab" * 32, campaign_key("x"), 3)
    assert (refs.open(good).queue_id, refs.open(good).domain_id) == ("Q1", 3)
    flipped = good[:10] + ("A" if good[10] != "A" else "B") + good[11:]
    for bad in ("", "tool-ref-123", flipped, good[:-4], "x" * 500):
        with pytest.raises(InvalidFeedbackRef):
            refs.open(bad)
