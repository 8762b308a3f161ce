"""TLS material: the listeners' certificate files (the self-signed one `make run` generates
for development), and how many days each has left."""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.config import Config, data_path


def ensure_self_signed(directory: Path, hostname: str) -> tuple[str, str]:
    """Create (once) a self-signed certificate for `hostname`; return (cert, key) paths."""
    cert_path, key_path = directory / "dev-cert.pem", directory / "dev-key.pem"
    if cert_path.exists() and key_path.exists():
        return str(cert_path), str(key_path)
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, hostname),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "DEVELOPMENT ONLY - not for production"),
    ])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName(hostname), x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]), critical=False)
        .sign(key, hashes.SHA256())
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.private_bytes(serialization.Encoding.PEM,
                                   serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(cert_path), str(key_path)


def tls_files(config: Config) -> tuple[str, str]:
    if config.smtp.tls_self_signed:
        return ensure_self_signed(data_path(config, "tls"), config.smtp.hostname)
    return config.smtp.tls_cert, config.smtp.tls_key


def certificate_days_left(config: Config) -> dict[str, float]:
    """Days until each listener's certificate expires: "smtp", and "http" when the HTTP
    listeners serve HTTPS. A certificate that cannot be read is left out."""
    files = {"smtp": tls_files(config)[0]}
    if config.http.tls_cert:
        files["http"] = config.http.tls_cert
    days = {}
    for listener, cert_file in files.items():
        try:
            with open(cert_file, "rb") as fh:
                cert = x509.load_pem_x509_certificate(fh.read())
        except (OSError, ValueError):
            continue
        left = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
        days[listener] = left.total_seconds() / 86400
    return days
