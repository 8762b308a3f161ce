"""Complaint reports mailed to a copy's CFBL-Address, over real SMTP to the inbound listener:
Yahoo, Microsoft (headers-only), generic and RFC 6590-redacted reports, each DKIM-signed by
its provider with a key on a loopback DNS server, map back to the copy's tenant and person,
suppress, and feed the breakers; unsigned, misaligned, altered, forged and unsealed ones are
counted and change nothing."""

from __future__ import annotations

import asyncio
import base64
import re
import smtplib
import time
from pathlib import Path

import dkim
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import config as config_module
from gateway.app.service import Gateway
from gateway.feedback.complaints import authentic
from gateway.feedback.reports import parse
from gateway.observability.metrics import REGISTRY
from gateway.store.schema import feedback_marks, suppressions
from tests.conftest import OTHER_PASSWORD, PASSWORD, running_harness
from tests.support import messages
from tests.support.dns import Zone, dns_server
from tests.support.unsubscribe import refused_at_rcpt

FIXTURES = Path(__file__).parent.parent / "fixtures" / "feedback"
FBL = "fbl@links.acme.example"
SELECTOR = b"fbl2026"
# fixture, the provider's signing domain, what the report returns of the copy
SHAPES = {
    "yahoo": ("cfbl-yahoo.eml", "yahoo.com", "full, To redacted"),
    "microsoft": ("cfbl-microsoft-headers-only.eml", "microsoft.com", "headers"),
    "generic": ("cfbl-generic-full.eml", "example.net", "full"),
    "redacted": ("cfbl-redacted.eml", "example.net", "headers, To redacted"),
}
SMALL = ("[breakers]\nmin_volume = 40\ncomplaint_min_volume = 20\n"
         "complaint_warn_percent = 4\ncomplaint_trip_percent = 8\nsync_seconds = 60\n")


def provider_key() -> tuple[bytes, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode()}"


@pytest.fixture(scope="module")
def providers() -> dict[str, tuple[bytes, str]]:
    return {domain: provider_key() for domain in {d for _, d, _ in SHAPES.values()}
            } | {"evil.example": provider_key()}


@pytest.fixture
async def h(tmp_path, pki, database, providers, request):
    zone = Zone()
    for domain, (_, record) in providers.items():
        zone.add_txt(f"{SELECTOR.decode()}._domainkey.{domain}", record)
    extra = getattr(request, "param", "")
    with dns_server(zone) as port:
        async with running_harness(tmp_path, pki, database, extra=(
                f'[dns]\nnameservers = ["127.0.0.1:{port}"]\ntimeout = 3\n' + extra)) as h:
            made = await h.gateway.dkim.generate("acme.example", "rsa", actor="test")
            await h.gateway.dkim.load()
            zone.add_txt(made.dns_name, made.dns_value)
            await h.store().set_tenant_setting("acme", "link_domain", "links.acme.example",
                                               "t")
            await h.refresh()
            yield h


async def send_each(h, people: list[str], extra: str = "") -> dict[str, tuple[str, bytes]]:
    """One message per person (as campaign tools send); each copy as delivered."""
    for n, person in enumerate(people):
        raw = messages.simple(to=person, extra=extra).replace(
            b"<m1@acme.example>", f"<c{n}@acme.example>".encode())
        assert await h.send(raw, [person]) == {}
    return {r.recipients[0]: (r.envelope_from, r.content) for r in h.sink.received
            if r.recipients[0] in people}


def report(shape: str, copy: tuple[str, bytes], person: str, providers,
           signer: str | None = None) -> bytes:
    fixture, domain, returned = SHAPES[shape]
    mail_from, content = copy
    original = content.split(b"\r\n\r\n", 1)[0] + b"\r\n" if "headers" in returned \
        else content
    if "redacted" in returned:
        original = re.sub(rb"(?m)^To: .*\r\n", b"To: <redacted>\r\n", original)
    local, _, at = person.partition("@")
    text = (FIXTURES / fixture).read_text().replace("\n", "\r\n")
    raw = (text.replace("%%FBL%%", FBL).replace("%%SUBJECT%%", "Hello")
           .replace("%%MAIL_FROM%%", mail_from).replace("%%RCPT%%", person)
           .replace("%%REDACTED_RCPT%%", f"9f3a1c7e5b@{at}")).encode()
    raw = raw.replace(b"%%ORIGINAL%%\r\n", original)
    signer = signer or domain
    pem, _ = providers[signer]
    signature = dkim.sign(raw, SELECTOR, signer.encode(), pem, include_headers=[
        b"from", b"to", b"subject", b"date", b"message-id", b"content-type"])
    return signature + raw


async def mail(h, raw: bytes) -> tuple[int, bytes]:
    def run() -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", h.gateway.ports.mailto, timeout=10) as smtp:
            smtp.ehlo("mta.provider.example")
            smtp.mail("")
            assert smtp.rcpt(FBL)[0] == 250
            return smtp.data(raw)
    return await asyncio.to_thread(run)


def counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("ocg_cfbl_reports_total", {"outcome": outcome}) or 0.0


async def rows(h, table) -> list:
    async with h.gateway.engine.connect() as conn:
        return (await conn.execute(sa.select(table))).all()


@pytest.mark.parametrize("shape", list(SHAPES))
async def test_a_signed_report_suppresses_the_copys_person_and_no_one_else(h, shape,
                                                                            providers):
    people = ["reader.one@yahoo.com", "reader.two@yahoo.com"]
    copies = await send_each(h, people)
    before = counted("counted")
    raw = report(shape, copies[people[0]], people[0], providers)
    assert (await mail(h, raw))[0] == 250
    assert counted("counted") == before + 1
    (entry,) = await rows(h, suppressions)
    assert (entry.reason, entry.source) == ("complaint", "cfbl")
    assert await refused_at_rcpt(h, people[0])
    assert not await refused_at_rcpt(h, people[1])
    # the complaint was about acme's copy: another tenant still reaches the person
    assert await h.send(messages.simple(sender="ceo@other.example", to=people[0]),
                        [people[0]], sender="ceo@other.example", user="other-tool",
                        password=OTHER_PASSWORD) == {}
    assert (await mail(h, raw))[0] == 250  # replayed: counted once, nothing more
    marks = [m for m in await rows(h, feedback_marks) if m.kind == "complaint"]
    assert len(marks) == 1 and len(await rows(h, suppressions)) == 1
    # the report names the person only where it gives the address (generic)
    assert (entry.target is not None) == (shape == "generic")


@pytest.mark.parametrize("shape", ["microsoft"])
async def test_every_headers_only_report_maps_back(h, shape, providers):
    people = [f"reader{n}@outlook.com" for n in range(20)]
    copies = await send_each(h, people)
    for person in people:
        assert (await mail(h, report(shape, copies[person], person, providers)))[0] == 250
    assert len(await rows(h, suppressions)) == len(people)  # 20 of 20 mapped


async def test_reports_that_cannot_be_believed_are_counted_and_change_nothing(h, providers):
    person = "reader.one@yahoo.com"
    copies = await send_each(h, [person])
    good = report("yahoo", copies[person], person, providers)
    ref = re.search(rb"CFBL-Feedback-ID: (\S+)", good).group(1)
    flipped = ref[:20] + (b"A" if ref[20:21] != b"A" else b"B") + ref[21:]
    # a report body altered after the provider signed it
    altered = good.replace(b"Feedback-Type: abuse", b"Feedback-Type: fraud")
    unsigned = good.split(b"\r\nFrom: ", 1)[1]
    cases = {
        "unverified": [b"From: " + unsigned,  # no signature at all
                       altered,
                       # signed, but by a domain that is not the report's author
                       report("yahoo", copies[person], person, providers, "evil.example")],
        "forged": [report("yahoo", (copies[person][0], copies[person][1].replace(
            ref, flipped)), person, providers)],
        "unsealed": [report("yahoo", (copies[person][0], re.sub(
            rb"CFBL-Feedback-ID: \S+\r\n", b"", copies[person][1])), person, providers)],
    }
    for outcome, reports in cases.items():
        before = counted(outcome)
        for raw in reports:
            assert (await mail(h, raw))[0] == 250
        assert counted(outcome) == before + len(reports), outcome
    assert await rows(h, suppressions) == []
    assert not [m for m in await rows(h, feedback_marks) if m.kind == "complaint"]


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
@pytest.mark.parametrize("h", [SMALL], indirect=True)
async def test_complaints_by_report_trip_the_breaker(h, providers):
    people = [f"reader{n}@yahoo.com" for n in range(20)]
    copies = await send_each(h, people, "X-Campaign-ID: spring-launch\r\n")
    for person in people[:2]:  # 2 in 20 copies to feedback providers: 10 % -> trips
        assert (await mail(h, report("microsoft", copies[person], person, providers)))[0] \
            == 250
    await h.gateway.breakers.run_once()

    def mail_from() -> tuple[int, bytes]:
        with h.client() as smtp:
            return smtp.mail("sales@acme.example")
    code, text = await asyncio.to_thread(mail_from)
    assert code == 451 and b"complaint-rate breaker of tenant acme" in text
    # the reference named the campaign: its own breaker tripped too
    named = {h.gateway.breakers.describe(b.scope): b.state
             for b in await h.gateway.breakers.listing()}
    assert named["campaign spring-launch"] == "open" and named["domain acme.example"] == "open"


SIGNED_HEAD = (b"DKIM-Signature: v=1; a=rsa-sha256; d=yahoo.com; s=fbl2026; h=from; bh=x; b=y\r\n"
               b"From: feedback@arf.mail.yahoo.com\r\n")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000), st.booleans())
def test_hostile_bytes_are_never_believed_and_never_raise(body, signed):
    raw = (SIGNED_HEAD if signed else b"") + body
    assert authentic(raw, lambda name: None) is False
    parse(raw)  # whatever it reads, it reads without raising


FAST = SMALL.replace("sync_seconds = 60", "sync_seconds = 0.5")


@pytest.mark.parametrize("database", ["postgres"], indirect=True)
@pytest.mark.parametrize("h", [FAST], indirect=True)
async def test_the_tripping_report_reaches_every_node_within_seconds(h, pki, providers):
    people = [f"reader{n}@yahoo.com" for n in range(20)]
    copies = await send_each(h, people)
    b = Gateway(config_module.load(h.config_path), str(h.config_path))
    await b.start(run_queue=False, roles=("smtp",))
    try:
        assert (await mail(h, report("microsoft", copies[people[0]], people[0],
                                     providers)))[0] == 250  # 5 %: a warning
        tripping = report("microsoft", copies[people[1]], people[1], providers)

        def node_b() -> int:
            with smtplib.SMTP("127.0.0.1", b.ports.submission, timeout=10) as smtp:
                smtp.starttls(context=pki.client_context())
                smtp.login("campaign", PASSWORD)
                return smtp.mail("sales@acme.example")[0]

        assert await asyncio.to_thread(node_b) == 250
        started = time.monotonic()
        assert (await mail(h, tripping))[0] == 250  # 10 %: trips
        while await asyncio.to_thread(node_b) != 451:
            assert time.monotonic() - started < 10, "node B never saw the trip"
            await asyncio.sleep(0.1)
        print(f"\n[cfbl] tripping report to 451 on the second node: "
              f"{time.monotonic() - started:.2f} s")
    finally:
        await b.stop(deadline=1)
