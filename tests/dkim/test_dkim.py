"""DKIM: every copy is signed after all the gateway's changes, and independent verifiers
accept it: dkimpy and Perl's Mail::DKIM asking a loopback DNS server for the keys, and
OpenDKIM (the only one of them with Ed25519 besides dkimpy) in its test mode."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.dkim.signer import SIGNED_FIELDS
from tests.support import messages
from tests.support.dkim import dkimpy_results
from tests.support.dns import Zone, dns_server

VERIFY_PL = Path(__file__).parent.parent / "support" / "dkim_verify.pl"


def opendkim_results(message: bytes, zone: Zone, work: Path) -> list[str]:
    """OpenDKIM's test mode (`opendkim -t`). Its Nameservers option takes no port, so it
    reads the zone's DKIM records from a TestPublicKeys file; returns the dkim= results."""
    keys = work / "opendkim-keys.txt"
    keys.write_text("".join(f"{name} {value}\n" for name, values in zone.txt.items()
                            for value in values))
    conf = work / "opendkim.conf"
    conf.write_text(f"Mode v\nSyslog no\nTestPublicKeys {keys}\nAlwaysAddARHeader yes\n"
                    "AuthservID test\n")
    eml = work / "message.eml"
    eml.write_bytes(message)
    out = subprocess.run(["opendkim", "-x", str(conf), "-t", str(eml), "-vvv"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         timeout=30).stdout.decode()
    return re.findall(r"dkim=(\w+) .*?header\.a=([\w-]+)", out)


def mail_dkim_results(message: bytes, port: int) -> list[str]:
    out = subprocess.run(["perl", str(VERIFY_PL), str(port)], input=message,
                         capture_output=True, timeout=30, check=True).stdout.decode()
    return out.splitlines()


@pytest.fixture
async def signing(harness):
    """acme.example with an RSA-2048 and an Ed25519 key, published on a loopback DNS server."""
    keys = harness.gateway.dkim
    made = [await keys.generate("acme.example", "rsa", actor="test"),
            await keys.generate("acme.example", "ed25519", actor="test")]
    await keys.load()
    zone = Zone()
    for k in made:
        zone.add_txt(k.dns_name, k.dns_value)
    with dns_server(zone) as port:
        harness.zone = zone
        yield harness, port


@pytest.mark.parametrize("make", [messages.simple, messages.multipart], ids=["text", "mime"])
async def test_every_copy_verifies_with_dkimpy_mail_dkim_and_opendkim(signing, make,
                                                                      tmp_path):
    h, port = signing
    assert await h.send(make(), ["a@example.org", "b@example.org"]) == {}
    assert len(h.sink.received) == 2
    for received in h.sink.received:
        copy = received.content  # as the upstream received it
        assert copy.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; "
                               b"d=acme.example;")
        assert dkimpy_results(copy, port) == [True, True]
        lines = await asyncio.to_thread(mail_dkim_results, copy, port)
        assert lines[0].startswith("pass ") and lines[0].endswith("a=rsa-sha256"), lines
        # Debian's Mail::DKIM (1.20230212) predates RFC 8463: it skips the Ed25519 one
        # as unsupported rather than failing it; dkimpy verified it above.
        assert lines[1].startswith(("pass ", "invalid (unsupported algorithm ed25519-sha256)"))
        assert lines[-1] == "RESULT pass"
        assert sorted(opendkim_results(copy, h.zone, tmp_path)) == [
            ("pass", "ed25519-sha256"), ("pass", "rsa-sha256")]


async def test_header_list_is_explicit_and_oversigned_without_l_tag(signing):
    h, _ = signing
    assert await h.send(messages.simple(), ["a@example.org"]) == {}
    copy = h.sink.received[0].content
    field = re.search(rb"DKIM-Signature:(.*?)\r\n(?=\S)", copy, re.S).group(1)
    tags = dict(t.strip().split(b"=", 1) for t in re.sub(rb"\s+", b"", field).split(b";") if t)
    assert b"l" not in tags
    signed = tags[b"h"].decode().split(":")
    for name in ("list-unsubscribe", "list-unsubscribe-post", "from", "to", "subject"):
        assert signed.count(name) == 2, name  # once present, once more: none can be added
    assert set(signed) <= set(SIGNED_FIELDS)


async def test_a_second_list_unsubscribe_added_after_signing_breaks_every_verifier(
        signing, tmp_path):
    h, port = signing
    assert await h.send(messages.simple(), ["a@example.org"]) == {}
    copy = h.sink.received[0].content
    head, body = copy.split(b"\r\n\r\n", 1)
    tampered = head + b"\r\nList-Unsubscribe: <https://evil.example/u/1>\r\n\r\n" + body
    assert dkimpy_results(tampered, port) == [False, False]
    lines = await asyncio.to_thread(mail_dkim_results, tampered, port)
    assert lines[-1] != "RESULT pass"
    assert not any(ln.startswith("pass") for ln in lines)
    results = opendkim_results(tampered, h.zone, tmp_path)
    assert len(results) == 2 and all(r[0] != "pass" for r in results)


async def test_no_key_no_signature_and_no_ed25519_alone(harness):
    await harness.gateway.dkim.generate("acme.example", "ed25519", actor="test")
    await harness.gateway.dkim.load()
    assert await harness.send(messages.simple(), ["a@example.org"]) == {}
    assert b"DKIM-Signature" not in harness.sink.received[0].content


async def test_the_campaign_tools_own_signature_is_removed(signing):
    h, port = signing
    signed_by_tool = b"DKIM-Signature: v=1; a=rsa-sha256; d=tool.example; s=x; bh=x; b=x\r\n"
    assert await h.send(signed_by_tool + messages.simple(), ["a@example.org"]) == {}
    copy = h.sink.received[0].content
    assert b"tool.example" not in copy
    assert dkimpy_results(copy, port) == [True, True]


def test_cli_generates_lists_and_shows_the_dns_record(gw, database):  # noqa: F811
    assert gw("db", "upgrade").returncode == 0
    assert gw("tenant", "add", "acme").returncode == 0
    assert gw("domain", "add", "acme", "acme.example").returncode == 0
    made = gw("dkim", "generate", "acme.example", "--selector", "s1")
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith('s1._domainkey.acme.example. IN TXT ( "v=DKIM1; k=rsa; p=MII')
    assert "PRIVATE" not in made.stdout
    assert gw("dkim", "generate", "acme.example", "--algorithm", "ed25519",
              "--selector", "e1").returncode == 0
    listed = gw("dkim", "list").stdout.splitlines()
    assert [ln.split("\t")[:4] for ln in listed] == [
        ["acme.example", "s1", "rsa-sha256", "active"],
        ["acme.example", "e1", "ed25519-sha256", "active"]]
    shown = gw("dkim", "show-dns", "acme.example").stdout
    assert "k=rsa" in shown and "k=ed25519" in shown
    again = gw("dkim", "generate", "acme.example", "--selector", "s1")
    assert again.returncode != 0 and "exists" in again.stderr
    unknown = gw("dkim", "generate", "nobody.example")
    assert unknown.returncode != 0 and "not a sending domain" in unknown.stderr
    assert gw("dkim", "retire", "acme.example", "s1").returncode == 0
    assert "retired" in gw("dkim", "list").stdout


def test_private_keys_are_sealed_at_rest(gw, database, tmp_path):  # noqa: F811
    assert gw("db", "upgrade").returncode == 0
    gw("tenant", "add", "acme")
    gw("domain", "add", "acme", "acme.example")
    assert gw("dkim", "generate", "acme.example").returncode == 0
    script = ("import asyncio, sqlalchemy as sa, sys\n"
              "from gateway import config as c\nfrom gateway.store.engine import create_engine\n"
              "async def main():\n"
              f"    cfg = c.load({str(tmp_path / 'gateway.toml')!r})\n"
              "    e = create_engine(cfg.database.url, schema=cfg.database.schema)\n"
              "    async with e.connect() as conn:\n"
              "        q = sa.text('select sealed_key from dkim_keys')\n"
              "        row = (await conn.execute(q)).one()\n"
              "    await e.dispose()\n"
              "    sys.stdout.buffer.write(bytes(row[0]))\n"
              "asyncio.run(main())\n")
    sealed = subprocess.run([sys.executable, "-c", script], capture_output=True,
                            check=True).stdout
    assert len(sealed) > 1000
    assert b"\x30\x82" not in sealed[:64]  # not a DER private key in clear
    assert b"BEGIN" not in sealed
