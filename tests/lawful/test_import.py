"""Records imported from CSV by the CLI and the API: good rows in, bad rows reported by line
and left out, the addresses never stored, and the decision at RCPT using them at once."""

from __future__ import annotations

import pytest

from tests.support.admin_api import admin, key
from tests.support.cli import gw
from tests.support.lawful import give_notice

ATTRIBUTES = """address,country,kind
marie@societe.fr,FR,named
Jean@Societe.FR,,generic
not-an-address,FR,named
pierre@artisan.fr,GER,named
paul@artisan.fr,FR,plumber
"""
CONSENTS = """address,basis,given_at,source,method,evidence,scope,expires_at
anna.schmidt@firma.de,express,2026-11-02,webform,double opt-in,form 17,newsletter,
bob@company.ca,casl-inquiry,2026-11-02T10:00:00Z,crm,,,,
carl@firma.de,sometimes,2026-11-02,crm,,,,
dora@firma.de,express,,crm,,,,
emil@firma.de,express,2026-11-02,crm,,mailed emil@firma.de,,
"""


async def rcpt_code(h, recipient: str) -> int:
    import smtplib

    from tests.support import messages
    try:
        await h.send(messages.simple(to=recipient), [recipient])
    except smtplib.SMTPRecipientsRefused as exc:
        return exc.recipients[recipient][0]
    return 250


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_the_cli_imports_good_rows_reports_bad_ones_and_stores_no_address(
        harness, tmp_path):
    h = harness
    attributes, consents = tmp_path / "attributes.csv", tmp_path / "consents.csv"
    attributes.write_text(ATTRIBUTES)
    consents.write_text(CONSENTS)
    done = await gw(h, "records", "import-attributes", "acme", str(attributes))
    assert done.returncode == 0 and "2 imported, 3 refused" in done.stdout
    assert "line 4: not an address" in done.stderr and "line 5: country" in done.stderr
    assert "line 6: kind is one of" in done.stderr
    done = await gw(h, "records", "import-consent", "acme", str(consents))
    assert done.returncode == 0 and "2 imported, 3 refused" in done.stdout
    assert "line 4: basis is one of" in done.stderr and "line 5: given_at is needed" in \
        done.stderr and "line 6: Evidence names the consent" in done.stderr
    database = (tmp_path / "gateway.db").read_bytes() + (
        (tmp_path / "gateway.db-wal").read_bytes() if (tmp_path / "gateway.db-wal").exists()
        else b"")
    for address in (b"marie@societe.fr", b"anna.schmidt@firma.de", b"bob@company.ca"):
        assert address not in database.lower()
    missing = tmp_path / "missing.csv"
    missing.write_text("email,country\nx@y.de,DE\n")
    refused = await gw(h, "records", "import-attributes", "acme", str(missing))
    assert refused.returncode == 5 and "missing: address, kind" in refused.stderr


async def test_the_api_imports_for_the_keys_tenant_and_rcpt_uses_them_at_once(harness):
    h = harness
    assert (await gw(h, "tenant", "set", "acme", "lawful_basis", "enforce")).returncode == 0
    await give_notice(h)
    assert await rcpt_code(h, "anna.schmidt@firma.de") == 550
    async with admin(h, await key(h, "ops", tenant="other")) as other:
        assert (await other.post("/api/v1/tenants/acme/consent-records", content=CONSENTS,
                                 headers={"Content-Type": "text/csv"})).status_code == 404
    async with admin(h, await key(h, "ops", tenant="acme")) as client:
        made = await client.post("/api/v1/tenants/acme/consent-records", content=CONSENTS,
                                 headers={"Content-Type": "text/csv"})
        assert made.status_code == 200 and made.json()["imported"] == 2
        assert made.json()["refused"] == 3 and len(made.json()["problems"]) == 3
        made = await client.post("/api/v1/tenants/acme/recipient-records",
                                 content=ATTRIBUTES, headers={"Content-Type": "text/csv"})
        assert made.json()["imported"] == 2
    assert await rcpt_code(h, "anna.schmidt@firma.de") == 250  # consent: no wait
    assert await rcpt_code(h, "jean@societe.fr") == 250  # FR generic: with notice
    assert await rcpt_code(h, "pierre@artisan.fr") == 550


async def test_consents_export_by_digest_and_import_back(harness, tmp_path):
    """Exported as suppressions are: a CSV the import reads back, naming people by digest
    only (no address was stored), here imported into another tenant and exported again."""
    h = harness
    source = tmp_path / "consents.csv"
    source.write_text(CONSENTS)
    assert (await gw(h, "records", "import-consent", "acme", str(source))).returncode == 0
    exported = await gw(h, "records", "export-consent", "acme")
    assert exported.returncode == 0, exported.stderr
    lines = exported.stdout.splitlines()
    assert lines[0] == "digest,basis,given_at,source,method,evidence,scope,expires_at," \
                       "withdrawn_at" and len(lines) == 3
    assert "@" not in exported.stdout and h.gateway.digest("anna.schmidt@firma.de") in \
        exported.stdout and "form 17" in exported.stdout
    async with admin(h, await key(h, "ops")) as client:
        made = await client.post("/api/v1/tenants/other/consent-records",
                                 content=exported.stdout, headers={"Content-Type": "text/csv"})
        assert made.json() == {"imported": 2, "refused": 0, "problems": []}
        again = await client.get("/api/v1/tenants/other/consent-records")
    assert again.status_code == 200 and again.headers["content-type"].startswith("text/csv")
    assert again.text == exported.stdout
    bad = "digest,basis,given_at,source\nnot-a-digest,express,2026-11-02,crm\n"
    async with admin(h, await key(h, "ops")) as client:
        refused = await client.post("/api/v1/tenants/other/consent-records", content=bad,
                                    headers={"Content-Type": "text/csv"})
    assert refused.json()["problems"] == ["line 2: give an address (or an export's 64-hex "
                                          "digest)"]
