"""`gateway domain verify|check` against a loopback DNS server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Database, Pki, write_config
from tests.support.dns import Zone, dns_server


@pytest.fixture
def zone_and_gw(tmp_path: Path, pki: Pki, database: Database):
    zone = Zone()
    with dns_server(zone) as port:
        path = write_config(tmp_path, pki, database, sink_port=2525,
                            extra=f'[dns]\nnameservers = ["127.0.0.1:{port}"]\ntimeout = 3\n')

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "gateway", "--config", str(path),
                                   *args], capture_output=True, text=True, timeout=60)

        assert run("db", "upgrade").returncode == 0
        assert run("tenant", "add", "acme").returncode == 0
        assert run("domain", "add", "acme", "acme.example").returncode == 0
        yield zone, run


def findings(output: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in output.splitlines():
        level, check, _ = line.split("\t", 2)
        out.setdefault(check, []).append(level)
    return out


def test_verify_prints_the_record_then_proves_the_domain(zone_and_gw):
    zone, gw = zone_and_gw
    first = gw("domain", "verify", "acme.example")
    assert first.returncode == 1
    record = first.stdout.split('"')[1]
    assert record.startswith("ocg-verify=") and "_ocg-verify.acme.example." in first.stdout
    assert gw("domain", "verify", "acme.example").stdout == first.stdout  # same token
    zone.add_txt("_ocg-verify.acme.example", "something else")
    assert gw("domain", "verify", "acme.example").returncode == 1
    zone.add_txt("_ocg-verify.acme.example", record)
    proven = gw("domain", "verify", "acme.example")
    assert proven.returncode == 0 and proven.stdout.startswith("ok\tverify")


def test_check_reports_each_record_and_fails_until_all_are_right(zone_and_gw):
    zone, gw = zone_and_gw
    assert gw("tenant", "set", "acme", "link_domain", "links.acme.example").returncode == 0
    made = gw("dkim", "generate", "acme.example", "--selector", "s1")
    assert made.returncode == 0
    bare = gw("domain", "check", "acme.example")
    assert bare.returncode == 1
    assert findings(bare.stdout) == {"verify": ["warn"], "spf": ["fail"], "dkim": ["fail"],
                                     "dmarc": ["fail"], "mx": ["warn"],
                                     "feedback-address": ["fail"], "link-domain": ["fail"]}
    dns_value = made.stdout.split("( ")[1].rsplit(" )", 1)[0].replace('" "', "").strip('"')
    zone.add_txt("s1._domainkey.acme.example", "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAA")
    wrong = findings(gw("domain", "check", "acme.example").stdout)
    assert wrong["dkim"] == ["fail"]  # another key is published
    zone.txt["s1._domainkey.acme.example"] = [dns_value]
    zone.add_txt("acme.example", "v=spf1 include:_spf.relay.example -all")
    zone.add_txt("_dmarc.acme.example", "v=DMARC1; p=quarantine; rua=mailto:d@acme.example")
    zone.mx["acme.example"] = ["mx1.acme.example"]
    zone.cname["links.acme.example"] = "links.gw.test"
    zone.mx["links.gw.test"] = ["inbound.gw.test"]  # the CNAME's MX: the inbound listener
    good = gw("domain", "check", "acme.example")
    assert good.returncode == 0, good.stdout
    assert findings(good.stdout) == {"verify": ["warn"], "spf": ["ok"], "dkim": ["ok"],
                                     "dmarc": ["ok"], "mx": ["ok"], "feedback-address": ["ok"],
                                     "link-domain": ["ok"]}
    assert "fbl@links.acme.example (MX inbound.gw.test)" in good.stdout
    assert "p=quarantine" in good.stdout and "links.acme.example -> links.gw.test" in good.stdout
    zone.add_txt("acme.example", "v=spf1 -all")  # two SPF records: permerror at receivers
    assert findings(gw("domain", "check", "acme.example").stdout)["spf"] == ["fail"]


def test_unknown_domain_is_a_clear_error(zone_and_gw):
    _, gw = zone_and_gw
    result = gw("domain", "verify", "nobody.example")
    assert result.returncode != 0 and "not a sending domain" in result.stderr


def test_a_link_domain_outside_the_sending_domain_cannot_carry_complaints(zone_and_gw):
    zone, gw = zone_and_gw
    assert gw("tenant", "set", "acme", "link_domain", "links.elsewhere.example").returncode == 0
    zone.mx["links.elsewhere.example"] = ["inbound.gw.test"]
    out = gw("domain", "check", "acme.example").stdout
    (line,) = [x for x in out.splitlines() if "\tfeedback-address\t" in x]
    assert line.startswith("warn\t") and "links.acme.example" in line
