"""A renewed SMTP certificate is taken up on reload without a restart: new sessions get it,
and a session that was open (TLS up, logged in) goes on and sends on the old one."""

from __future__ import annotations

import asyncio
import shutil
import smtplib
from pathlib import Path

import pytest
from cryptography import x509

from tests.conftest import PASSWORD, Database, Pki, running_harness
from tests.support import messages
from tests.support.certificates import issue

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


def session(pki: Pki, port: int) -> tuple[smtplib.SMTP, int]:
    """A logged-in session over STARTTLS and the serial of the certificate it was shown."""
    smtp = smtplib.SMTP("127.0.0.1", port, timeout=10)
    smtp.starttls(context=pki.client_context())
    smtp.login("campaign", PASSWORD)
    der = smtp.sock.getpeercert(binary_form=True)
    return smtp, x509.load_der_x509_certificate(der).serial_number


def send(smtp: smtplib.SMTP, recipient: str) -> dict:
    return smtp.sendmail("sales@acme.example", [recipient], messages.simple(to=recipient))


async def test_a_renewed_certificate_reaches_new_sessions_and_drops_none(
        tmp_path: Path, pki: Pki, database: Database, monkeypatch: pytest.MonkeyPatch):
    cert_file, key_file, first = issue(pki, tmp_path / "live")
    monkeypatch.setenv("GATEWAY__SMTP__TLS_CERT", str(cert_file))
    monkeypatch.setenv("GATEWAY__SMTP__TLS_KEY", str(key_file))
    async with running_harness(tmp_path, pki, database) as h:
        old, serial = await asyncio.to_thread(session, pki, h.port)
        try:
            assert serial == first
            new_cert, new_key, second = issue(pki, tmp_path / "renewed")
            shutil.copy(new_cert, cert_file)
            shutil.copy(new_key, key_file)
            h.gateway.reload()

            new, serial = await asyncio.to_thread(session, pki, h.port)
            try:
                assert serial == second
                assert await asyncio.to_thread(send, new, "new@example.org") == {}
            finally:
                await asyncio.to_thread(new.quit)
            # the session opened before the reload is still up, and still sends
            assert await asyncio.to_thread(send, old, "old@example.org") == {}
        finally:
            await asyncio.to_thread(old.quit)
        assert sorted(r for m in h.sink.received for r in m.recipients) == \
            ["new@example.org", "old@example.org"]
