"""The HTTP listeners serve HTTPS when given a certificate, and a renewed certificate is
taken up on reload (SIGHUP) without a restart: new connections get it, a connection already
open keeps working on the old one."""

from __future__ import annotations

import asyncio
import http.client
import shutil
from pathlib import Path

import pytest
from cryptography import x509

from gateway.config import load
from gateway.errors import ConfigError
from tests.conftest import Database, Pki, running_harness, write_config
from tests.support.certificates import issue

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


def get(conn: http.client.HTTPSConnection, path: str) -> tuple[int, int, str]:
    """(status, serial of the certificate this connection was served, body)."""
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read().decode()
    assert conn.sock is not None
    der = conn.sock.getpeercert(binary_form=True)
    return response.status, x509.load_der_x509_certificate(der).serial_number, body


def fetch(pki: Pki, port: int, path: str) -> tuple[int, int, str]:
    """One request on a new connection."""
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10,
                                       context=pki.client_context())
    try:
        return get(conn, path)
    finally:
        conn.close()


def plain_http(port: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/healthz")
        conn.getresponse().read()
    finally:
        conn.close()


async def test_https_listeners_take_a_renewed_certificate_on_reload(
        tmp_path: Path, pki: Pki, database: Database, monkeypatch: pytest.MonkeyPatch):
    live = tmp_path / "live"  # where a renewal tool (certbot...) keeps replacing the files
    cert_file, key_file, first = issue(pki, live)
    monkeypatch.setenv("GATEWAY__HTTP__TLS_CERT", str(cert_file))
    monkeypatch.setenv("GATEWAY__HTTP__TLS_KEY", str(key_file))
    async with running_harness(tmp_path, pki, database) as h:
        ports = h.gateway.ports
        assert h.gateway.web.public_base_url.startswith("https://127.0.0.1:")
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            await asyncio.to_thread(plain_http, ports.public)  # no plain HTTP here

        before = http.client.HTTPSConnection("127.0.0.1", ports.admin, timeout=10,
                                             context=pki.client_context())
        try:
            assert (await asyncio.to_thread(get, before, "/healthz"))[:2] == (200, first)

            new_cert, new_key, second = issue(pki, tmp_path / "renewed")
            shutil.copy(new_cert, cert_file)
            shutil.copy(new_key, key_file)
            h.gateway.reload()

            for port in (ports.public, ports.admin):
                assert (await asyncio.to_thread(fetch, pki, port, "/healthz"))[:2] == \
                    (200, second)
            # the connection opened before the reload was not dropped
            assert (await asyncio.to_thread(get, before, "/healthz"))[:2] == (200, first)
        finally:
            before.close()

        status, _, text = await asyncio.to_thread(fetch, pki, ports.admin, "/metrics")
        assert status == 200  # the expiry metric covers both listeners
        assert 'ocg_tls_certificate_days_left{listener="http"}' in text
        assert 'ocg_tls_certificate_days_left{listener="smtp"}' in text


def test_a_certificate_without_its_key_is_refused(tmp_path: Path, pki: Pki, database: Database,
                                                  monkeypatch: pytest.MonkeyPatch):
    path = write_config(tmp_path, pki, database, 2525)
    monkeypatch.setenv("GATEWAY__HTTP__TLS_CERT", pki.cert_file)
    with pytest.raises(ConfigError, match="http.tls_cert and http.tls_key go together"):
        load(path)
