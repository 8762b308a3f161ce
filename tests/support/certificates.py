"""Certificates from the test CA written where a renewal tool would keep replacing them."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509

from tests.conftest import Pki


def issue(pki: Pki, directory: Path) -> tuple[Path, Path, int]:
    """A certificate for 127.0.0.1 and localhost: (cert file, key file, serial)."""
    cert = pki.ca.issue_cert("localhost", "127.0.0.1")
    directory.mkdir(exist_ok=True)
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    serial = x509.load_pem_x509_certificate(cert.cert_chain_pems[0].bytes()).serial_number
    return cert_file, key_file, serial
